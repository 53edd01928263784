#!/usr/bin/env bash
# graftlab-cli import on checkpoints in the field's layouts (written by tests/python/make_checkpoints.py with Debian's
# python3-torch), then every command on the imported models: probe and reconstruct on the user's own images, embed,
# eval, export (equal to the source tensors), report, and a MoCo v3 stage grafted onto an imported MAE.
set -euo pipefail
cli=$1
src=$2
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$py" -c "import torch" 2> /dev/null || { echo "python3-torch is not installed (packaging/debian-packages.txt lists it)"; exit 77; }
fx=$work/fx
"$py" "$src/tests/python/make_checkpoints.py" "$fx" "$work/pwned" > "$work/fx.log" 2>&1 || { cat "$work/fx.log"; fail "fixtures"; }

expect() {  # expect CODE LOG PATTERN -- command...
  local code=$1 log=$2 pattern=$3
  shift 4
  set +e
  "$@" > "$log" 2>&1
  local got=$?
  set -e
  [ "$got" -eq "$code" ] || { cat "$log"; fail "exit $got (expected $code): $*"; }
  grep -q -- "$pattern" "$log" || { cat "$log"; fail "no \"$pattern\" in the output of: $*"; }
}

# every layout imports and says what it found
expect 0 "$work/i1.log" "4 heads (from --set model.num_heads)" -- "$cli" import "$fx/mae_encoder.pth" --out "$work/m/enc" --set model.num_heads=4
expect 0 "$work/i2.log" "decoder: yes (width 32, depth 1, 16 heads from models_mae.py.s 16) -> reconstructions" -- "$cli" import "$fx/mae_visualize.pth" --out "$work/m/vis" --set model.num_heads=4
grep -q "decoder: no" "$work/i1.log" || fail "an encoder-only file reported a decoder"
grep -q "\[legacy\]" "$work/i2.log" || fail "legacy format not reported"
expect 0 "$work/i3.log" "norm-pix on" -- "$cli" import "$fx/mae_train.pth" --out "$work/m/train" --set model.num_heads=4
expect 0 "$work/i4.log" "12 heads (from the checkpoint's model name \"vit_small\" (moco-v3" -- "$cli" import "$fx/mocov3.pth.tar" --out "$work/m/moco"
grep -q "CL heads: yes" "$work/i4.log" || fail "MoCo v3 heads not reported"
expect 0 "$work/i5.log" "CL heads: yes" -- "$cli" import "$fx/layer_grafted.pth.tar" --out "$work/m/lg"
expect 0 "$work/i6.log" "3 heads (from the standard ViT table" -- "$cli" import "$fx/dino.pth" --out "$work/m/dino" \
  --set data.dataset=image_folder --set data.root="$work/folder"
expect 0 "$work/i7.log" "left out \"head.weight\"" -- "$cli" import "$fx/timm.safetensors" --out "$work/m/timm"
grep -q "sha256" "$work/m/enc/import.json" || fail "import.json without the SHA-256"
sha=$(sha256sum "$fx/mae_encoder.pth" | cut -d' ' -f1)
grep -q "$sha" "$work/m/enc/import.json" || fail "import.json has another SHA-256 than sha256sum"

# refused: ConMIM's parts, a pickle that would run a command, an existing directory
expect 2 "$work/r1.log" "layer scale" -- "$cli" import "$fx/conmim.pth" --out "$work/m/conmim"
[ ! -e "$work/m/conmim" ] || fail "a refused import left a directory"
for evil in evil_zip.pth evil_legacy.pth; do
  expect 2 "$work/r2.log" "refuses the pickled global \"posix.system\"" -- "$cli" import "$fx/$evil" --out "$work/m/evil"
done
[ ! -e "$work/pwned" ] || fail "the malicious pickle ran"
expect 2 "$work/r3.log" "already holds an imported model" -- "$cli" import "$fx/dino.pth" --out "$work/m/timm"
expect 0 "$work/r4.log" "model:" -- "$cli" import "$fx/timm.safetensors" --out "$work/m/timm" --force

# the user's own images in the probes and the reconstruction
expect 0 "$work/p1.log" "reconstruction:" -- "$cli" probe --ckpt "$work/m/vis" --kind all --out "$work/probe" --image "$fx/images/colour.png" --image "$fx/images/grey.png" --format npz --mask-ratio 0.5
for k in reconstruction attention similarity gradcos; do [ -s "$work/probe/$k.npz" ] && [ -s "$work/probe/$k.png" ] || fail "probe $k missing"; done
"$py" - "$work/probe/reconstruction.npz" << 'EOF' || fail "reconstruction.npz"
import json, sys, numpy as np
z = np.load(sys.argv[1])
meta = json.loads(z['meta'].item())['meta']
assert z['original'].shape == (2, 3, 16, 16), z['original'].shape
assert abs(meta['mask_ratio'] - 0.5) < 1e-9 and z['mask'].sum(1).tolist() == [8, 8], (meta, z['mask'].sum(1))
EOF
expect 0 "$work/p2.log" "wrote" -- "$cli" reconstruct --ckpt "$work/m/vis" --out "$work/rec.png" --image-dir "$fx/images" --mask-ratio 0.6
[ -s "$work/rec.png" ] || fail "reconstruct wrote no PNG"
expect 2 "$work/p3.log" "has no MAE decoder" -- "$cli" reconstruct --ckpt "$work/m/dino" --out "$work/rec2.png" --image-dir "$fx/images"
expect 0 "$work/p4.log" "attention:" -- "$cli" probe --ckpt "$work/m/moco" --kind attention --out "$work/probe-moco" --image-dir "$fx/images"
expect 2 "$work/p5.log" "colour.pngx" -- "$cli" probe --ckpt "$work/m/vis" --kind attention --out "$work/p5" --image "$fx/images/colour.pngx"

# eval, embed, export, report on an imported model with a dataset of the user's (set at import)
mkdir -p "$work/folder/a" "$work/folder/b"
for i in 0 1 2 3 4 5 6 7 8 9 10 11; do cp "$fx/images/colour.png" "$work/folder/a/$i.png"; cp "$fx/images/grey.png" "$work/folder/b/$i.png"; done
expect 0 "$work/e1.log" "knn" -- "$cli" eval --ckpt "$work/m/dino" --protocol knn
expect 0 "$work/e2.log" "wrote" -- "$cli" embed --ckpt "$work/m/dino" --out "$work/feats.pt"
expect 0 "$work/e3.log" "wrote" -- "$cli" export --ckpt "$work/m/dino" --out "$work/dino.safetensors"
"$py" - "$work/dino.safetensors" "$fx/dino.pth" << 'EOF' || fail "exported encoder differs from the imported file"
import json, struct, sys, numpy as np, torch
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
sd = torch.load(sys.argv[2])
for k, v in sd.items():
    o = h[k]['data_offsets']
    a = np.frombuffer(b[8 + n + o[0]:8 + n + o[1]], dtype=np.float32).reshape(h[k]['shape'])
    assert np.array_equal(a, v.numpy()), k
EOF
expect 0 "$work/e4.log" "wrote" -- "$cli" report "$work/m/dino"

# a MoCo v3 stage grafted onto the imported MAE (its lower block at 0.1x), trained from the CLI
stages='[{"method": "mocov3", "steps": 4, "init": "checkpoint", "checkpoint": "'"$work/m/vis"'", "lr_mult": {"embed": 0.1, "blocks": [0.1, 1.0], "head": 1.0}}]'
expect 0 "$work/g1.log" "tensors from" -- "$cli" train --recipe mocov3 --out "$work/graft" --set "stages=$stages" \
  --set data.dataset=image_folder --set data.root="$work/folder" --set data.image_size=16 --set model.patch_size=4 \
  --set model.embed_dim=32 --set model.depth=2 --set model.num_heads=4 --set optim.batch_size=8 --set probes.every=0 \
  --set moco.hidden_dim=32 --set moco.out_dim=16
[ -s "$work/graft/checkpoints/step-00000004.ckpt" ] || fail "the grafted stage wrote no checkpoint"
echo "e2e.import: all checks passed"
