#!/usr/bin/env bash
# The field's formats, read back by their own readers: TensorBoard event files (python3-protobuf, after a stop and
# a resume from an earlier checkpoint: steps unique and complete), safetensors and .pt exports (a plain PyTorch
# forward pass with the exported normalisation matches GraftLab's features), .npz probe exports (numpy.load), and
# the HTML report (rendered by headless Chromium when it is installed).
set -euo pipefail
cli=$1
src=$2
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$py" -c "import torch, numpy, google.protobuf" 2> /dev/null || { echo "python3-torch, python3-numpy or python3-protobuf missing (packaging/debian-packages.txt lists them)"; exit 77; }
command -v protoc > /dev/null || { echo "protoc missing (protobuf-compiler)"; exit 77; }
fashion=/usr/share/datasets/fashion-mnist
[ -f "$fashion/t10k-images-idx3-ubyte.gz" ] || { echo "dataset-fashion-mnist is not installed"; exit 77; }
small=(--set model.embed_dim=48 --set model.depth=2 --set model.num_heads=3 --set optim.batch_size=16
       --set train.log_every=1 --set train.checkpoint_every=4 --set train.keep_every=4 --set probes.every=3)

# 1. TensorBoard: train 10 steps (checkpoints 4, 8, 10), lose the newest checkpoint, resume from step 8:
#    steps 9 and 10 are trained again and must not appear twice.
"$cli" train --recipe mtl --out "$work/run" --steps 10 "${small[@]}" 2> "$work/train.log" || { cat "$work/train.log"; fail "train"; }
ls "$work/run/tensorboard/"events.out.tfevents.* > /dev/null || fail "no event file"
rm "$work/run/checkpoints/step-00000010.ckpt"
"$cli" resume "$work/run" 2> "$work/resume.log" || { cat "$work/resume.log"; fail "resume"; }
"$py" "$src/tests/python/check_tensorboard.py" "$work/run" "$src/core/base/export/tensorboard.proto" 10 loss,loss/mae,loss/moco,lr,images_per_s \
  gradcos,reconstruction,attention,similarity || fail "tensorboard check"

# 2. Encoder exports and 3. probe exports
ckpt="$work/run/checkpoints/step-00000010.ckpt"
"$cli" export --ckpt "$ckpt" --out "$work/enc.safetensors" 2> "$work/x.log" || { cat "$work/x.log"; fail "export safetensors"; }
"$cli" export --ckpt "$ckpt" --out "$work/enc.pt" 2> "$work/x.log" || { cat "$work/x.log"; fail "export pt"; }
"$cli" embed --ckpt "$ckpt" --split test --out "$work/feats.pt" 2> "$work/x.log" || { cat "$work/x.log"; fail "embed"; }
"$cli" probe --ckpt "$ckpt" --kind gradcos --format npz --out "$work/probe" 2> "$work/x.log" > /dev/null || { cat "$work/x.log"; fail "probe npz"; }
[ -f "$work/probe/gradcos.npz" ] && [ ! -f "$work/probe/gradcos.csv" ] || fail "probe --format npz wrote $(ls "$work/probe")"
"$cli" export --run "$work/run" --out "$work/run.npz" 2> "$work/x.log" || { cat "$work/x.log"; fail "export --run"; }
"$py" "$src/tests/python/check_formats.py" "$work/enc.safetensors" "$work/enc.pt" "$work/enc.json" "$work/feats.pt" "$fashion" \
  "$work/probe/gradcos.npz" "$work/run.npz" || fail "formats check"
# user errors name what is wrong and exit 2
set +e
"$cli" export --ckpt "$ckpt" --out "$work/e.x" --format onnx 2> "$work/e.log"; c1=$?
"$cli" export --run "$work/probe" --out "$work/e.npz" 2> "$work/e2.log"; c2=$?
"$cli" report "$work/nothing" 2> "$work/e3.log"; c3=$?
set -e
[ $c1 -eq 2 ] && grep -q "format must be pt or safetensors" "$work/e.log" || { cat "$work/e.log"; fail "bad --format"; }
[ $c2 -eq 2 ] && grep -q "no recipe.json" "$work/e2.log" || { cat "$work/e2.log"; fail "export --run of a non-run"; }
[ $c3 -eq 2 ] && grep -q "nothing" "$work/e3.log" || { cat "$work/e3.log"; fail "report of a non-run"; }

# 4. The report: one file, no external references, every section; rendered when Chromium is there.
"$cli" eval --ckpt "$ckpt" --protocol knn --max-train 500 2> "$work/x.log" > /dev/null || { cat "$work/x.log"; fail "eval"; }
"$cli" report "$work/run" --out "$work/report.html" 2> "$work/x.log" || { cat "$work/x.log"; fail "report"; }
for needle in "<svg" "masked (magenta)" "Losses" "Learning rate" "data:image/png;base64," "by depth" "Evaluation" "k-NN" '&quot;method&quot;: &quot;mtl&quot;'; do
  grep -qF "$needle" "$work/report.html" || fail "report lacks $needle"
done
! grep -qE '(src|href)="(https?:|//)' "$work/report.html" || fail "the report refers to something outside itself"
# the reconstruction figure's masked column is magenta (the fill or the hatch), not the stored grey panel
python3 - "$work/report.html" <<'PY' || fail "the report's masked panel has no magenta"
import base64, re, struct, sys, zlib
h = open(sys.argv[1]).read()
png = base64.b64decode(re.search(r'alt="MAE reconstructions" src="data:image/png;base64,([A-Za-z0-9+/=]+)', h).group(1))
w, ht = struct.unpack(">II", png[16:24])
data, i = b"", 8
while i < len(png):  # GraftLab's PNG: 8-bit RGB, filter "none" on every row
    n = struct.unpack(">I", png[i:i + 4])[0]
    if png[i + 4:i + 8] == b"IDAT": data += png[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(data)
px = [tuple(raw[y * (3 * w + 1) + 1 + 3 * x:y * (3 * w + 1) + 4 + 3 * x]) for y in range(ht) for x in range(w // 4, w // 2)]
sys.exit(0 if sum(p in ((220, 0, 150), (240, 150, 220)) for p in px) > len(px) // 10 else 1)
PY
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$browser" ]; then
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$work/chromium" --window-size=900,2400 \
    --screenshot="$work/report.png" "file://$work/report.html" > "$work/chromium.log" 2>&1 || { cat "$work/chromium.log"; fail "chromium"; }
  [ "$(stat -c %s "$work/report.png")" -gt 20000 ] || fail "the report's screenshot is nearly empty"
  echo "report rendered by $("$browser" --version 2>/dev/null | head -1)"
else
  echo "note: chromium is not installed; the report was checked as text only (apt-get install chromium to render it)"
fi
echo "e2e.formats: all checks passed"
