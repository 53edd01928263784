#!/usr/bin/env bash
# The GPU check (DESIGN.md "GPU"), for a machine with an NVIDIA GPU and a CUDA PyTorch but no Debian packages.
# Prepare here: `bash tests/gpu/bundle_deps.sh` (headers + Debian's Qt as .debs into .gpu-deps), then on the device
#   run(command="bash tests/gpu/run_on_device.sh", carry=[".gpu-deps"], timeout_s=600)
# It builds against python3's PyTorch (Qt unpacked from the carried .debs; without them the GUI is left out and
# said so), then
#   1. the core tests of the LibTorch 2.x paths (SDPA, fused AdamW, device-side loss checks) against that PyTorch;
#   2. the GUI test on CUDA, offscreen: a short run started from the GUI trains on cuda on its worker thread and
#      every live view gets its data;
#   3. trains MAE on CUDA (precision auto = bf16 autocast), stops, resumes: finite, decreasing loss;
#   4. benchmarks, side by side in this one call, GraftLab against what a PyTorch user runs
#      (benchmarks/pytorch_reference.py --attention sdpa --optimizer fused, and with --compile for MAE ViT-B/16):
#      MAE ViT-S/16 and ViT-B/16, MoCo v3 and ConMIM ViT-S/16, 224 px, bf16, batch 256;
#   5. a real `graftlab-cli train` of MAE ViT-S/16 (loader, augmentation, metrics) against its bench figure.
# Everything lands in $OUT (default /tmp/graftlab-gpu): summary.txt, logs, JSON figures. Budget: 8 minutes.
# DEVICE=cpu rehearses it on a machine without a GPU (e.g. a bare Debian chroot with only a PyTorch): the build
# from the carried files, the core tests and the GUI test, on the CPU; nothing is benchmarked.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${OUT:-/tmp/graftlab-gpu}
mkdir -p "$out/logs"
summary="$out/summary.txt"
: > "$summary"
say() { echo "[gpu] $*" | tee -a "$summary"; }
fail() { say "FAIL: $*"; exit 1; }
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/logs/gpu.txt" 2>&1 || true
say "GPU: $(head -1 "$out/logs/gpu.txt")"
py=${PYTHON:-python3}
"$py" - > "$out/logs/torch.txt" <<'PY' || fail "no PyTorch in $py"
import os, torch
print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(torch.__version__, torch.version.cuda, torch.cuda.is_available())
PY
torch_dir=$(sed -n 1p "$out/logs/torch.txt"); abi=$(sed -n 2p "$out/logs/torch.txt")
say "PyTorch: $(sed -n 3p "$out/logs/torch.txt") at $torch_dir (C++11 ABI $abi)"
[ -d .gpu-deps/include/spdlog ] || fail ".gpu-deps missing: run 'bash tests/gpu/bundle_deps.sh' here and carry .gpu-deps"

# Qt from the carried Debian packages, unpacked under .gpu-deps/root (never into /)
qtroot="$root/.gpu-deps/root"
gui=OFF
if ls .gpu-deps/debs/*.deb > /dev/null 2>&1; then
  rm -rf "$qtroot"; mkdir -p "$qtroot"
  for f in .gpu-deps/debs/*.deb; do
    if command -v dpkg > /dev/null; then dpkg -x "$f" "$qtroot"
    else "$py" - "$f" "$qtroot" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
pos = 8
while pos < len(data):  # an ar archive: 60-byte headers
    name, size = data[pos:pos + 16].decode().strip(), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size & 1)
PY
    fi
  done
  gui=ON
fi
lib="$qtroot/usr/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export QT_PLUGIN_PATH="$lib/qt6/plugins" QT_QPA_PLATFORM=offscreen QT_QPA_FONTDIR="$qtroot/usr/share/fonts/truetype/dejavu"

gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
configure() {
  cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGRAFTLAB_GUI=$1 -DGRAFTLAB_OPENCV=OFF -DGRAFTLAB_TESTS=ON \
    -DGRAFTLAB_TORCH_DIR="$torch_dir" -DGRAFTLAB_TORCH_CXX11_ABI="$abi" -DGRAFTLAB_BUNDLED_DEPS="$root/.gpu-deps" \
    -DCMAKE_PREFIX_PATH="$lib/cmake;$qtroot/usr" > "$out/logs/configure-$1.log" 2>&1
}
if [ $gui = ON ] && ! configure ON; then
  say "GUI: configuring against the carried Qt failed (logs/configure-ON.log: $(grep -m1 -E 'Error|error' "$out/logs/configure-ON.log"));"
  say "     falling back to the headless build (core, CLI; tests only where Qt Core and Test configure)"
  rm -rf build-gpu; gui=OFF
fi
[ $gui = OFF ] && { configure OFF || { tail -30 "$out/logs/configure-OFF.log"; fail "configure"; }; }
targets=(graftlab-cli)
grep -q "graftlab_core_tests" build-gpu/build.ninja 2>/dev/null && targets+=(graftlab_core_tests)
[ $gui = ON ] && targets+=(graftlab_gui_tests)
cmake --build build-gpu -j "$(nproc)" --target "${targets[@]}" > "$out/logs/build.log" 2>&1 \
  || { grep -m20 -E "error" "$out/logs/build.log"; fail "build"; }
cli=build-gpu/app/graftlab-cli
say "built ${targets[*]} in $(elapsed) s: $("$cli" --version)"
say "$(grep -h -m1 'NCCL for CUDA tensors' "$out"/logs/configure-*.log | tail -1 | sed 's/^-- //')"
[ -f build-gpu/nccl-check.log ] && cp build-gpu/nccl-check.log "$out/logs/"

# 1. the 2.x code paths' tests against this PyTorch (SDPA, fused AdamW, device-side checks, views made on the GPU,
#    NCCL for CUDA tensors at world size 1)
if [ -x build-gpu/tests/graftlab_core_tests ]; then
  timeout 150 build-gpu/tests/graftlab_core_tests TrainTest ModelTest DistTest > "$out/logs/core-tests.log" 2>&1 \
    && say "core tests (TrainTest, ModelTest, DistTest: NCCL at world size 1) pass against PyTorch $(sed -n 3p "$out/logs/torch.txt" | cut -d' ' -f1): $(grep -c '^SKIP' "$out/logs/core-tests.log") skipped" \
    || say "FAIL: core tests: $(grep -m3 -E '^FAIL|Loc' "$out/logs/core-tests.log" | tr '\n' ' ')"
fi
# 2. the GUI on CUDA
device=${DEVICE:-cuda}
if [ $gui = ON ]; then
  GRAFTLAB_TEST_DEVICE=$device timeout 180 build-gpu/tests/graftlab_gui_tests shortRunFeedsEveryLiveView > "$out/logs/gui-test.log" 2>&1 \
    && say "GUI test on $device: a run started from the GUI trained on $device on its worker thread; every live view got data" \
    || say "FAIL: GUI test on $device: $(grep -m3 -E '^FAIL|Loc|error' "$out/logs/gui-test.log" | tr '\n' ' ')"
fi

[ "$device" = cuda ] || { say "DEVICE=$device: rehearsal ends here (no CUDA train or benchmark) after $(elapsed) s"; exit 0; }

# 3. train on CUDA, bf16 autocast (precision auto), synthetic data, stop and resume
tiny=(--set device=cuda --set data.dataset=synthetic --set data.synthetic_size=4096 --set optim.batch_size=256
      --set train.log_every=50 --set train.checkpoint_every=150 --set probes.every=100)
"$cli" train --recipe mae --out "$out/run-mae" --steps 300 --stop-at 150 "${tiny[@]}" 2> "$out/logs/train.log" \
  || { tail -20 "$out/logs/train.log"; fail "train on CUDA"; }
grep -q "bf16 autocast" "$out/logs/train.log" || fail "train.precision auto did not pick bf16 autocast on CUDA"
"$cli" resume "$out/run-mae" 2> "$out/logs/resume.log" || { tail -20 "$out/logs/resume.log"; fail "resume on CUDA"; }
"$py" - "$out/run-mae/metrics.jsonl" >> "$summary" <<'PY' || fail "CUDA losses not finite and decreasing"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
losses = [r["loss"] for r in rows]
assert len(rows) == 6 and rows[-1]["step"] == 300, rows
assert all(math.isfinite(l) for l in losses) and losses[-1] < losses[0], losses
print(f"[gpu] train on CUDA: 300 steps (stopped at 150, resumed), loss {losses[0]:.4f} -> {losses[-1]:.4f}")
PY

# 4. side by side: GraftLab, eager PyTorch as a 2.x user runs it (SDPA + fused AdamW), and torch.compile
vit_s=(--set model.patch_size=16 --set model.embed_dim=384 --set model.depth=12 --set model.num_heads=6)
vit_b=(--set model.patch_size=16 --set model.embed_dim=768 --set model.depth=12 --set model.num_heads=12)
common=(--set device=cuda --set train.precision=bf16 --set data.image_size=224 --set optim.batch_size=256 --set probes.every=0
        --set model.decoder_embed_dim=512 --set model.decoder_depth=8 --set model.decoder_num_heads=16)
bench_one() {  # name recipe compile? vit-args...
  local name=$1 recipe=$2 compile=$3; shift 3
  "$cli" recipe --recipe "$recipe" "${common[@]}" "$@" > "$out/logs/full-$name.json" || { say "FAIL: recipe $name"; return; }
  timeout 120 "$cli" bench --recipe "$recipe" "${common[@]}" "$@" --steps 30 --warmup 5 --json "$out/logs/bench-$name.json" \
    > "$out/logs/bench-$name.txt" 2>&1 || { say "FAIL: bench $name: $(tail -2 "$out/logs/bench-$name.txt" | tr '\n' ' ')"; return; }
  local refs=(eager)
  [ "$compile" = yes ] && refs+=(compile)
  for ref in "${refs[@]}"; do
    local flag=(); [ $ref = compile ] && flag=(--compile)
    timeout 240 "$py" benchmarks/pytorch_reference.py "$out/logs/full-$name.json" --device cuda --bf16 --attention sdpa \
      --optimizer fused "${flag[@]}" --steps 30 --warmup 5 --json "$out/logs/pytorch-$name-$ref.json" \
      > "$out/logs/pytorch-$name-$ref.txt" 2>&1 || say "FAIL: pytorch $name $ref: $(tail -1 "$out/logs/pytorch-$name-$ref.txt")"
  done
  "$py" - "$out/logs" "$name" >> "$summary" <<'PY'
import json, os, sys
d, name = sys.argv[1], sys.argv[2]
g = json.load(open(f"{d}/bench-{name}.json"))
line = (f"[gpu] {name:9s} GraftLab {g['images_per_s']:7.0f} img/s (MFU {100 * g['mfu']:.0f} % of {g['roofline']} "
        f"{g['sgemm_gflops'] / 1000:.0f} TFLOP/s; {g['attention'].split(' (')[0]}, {g['optimizer'].split(',')[0]})")
for ref in ("eager", "compile"):
    p = f"{d}/pytorch-{name}-{ref}.json"
    if os.path.exists(p):
        r = json.load(open(p))
        line += f" | PyTorch {ref} {r['images_per_s']:7.0f} img/s -> {g['images_per_s'] / r['images_per_s']:.2f}x"
print(line + f"; loss {g['first_loss']:.3f}->{g['last_loss']:.3f}")
PY
  say "  ($name done at $(elapsed) s)"
}
# torch.compile takes a minute or more per model: only for MAE ViT-B/16, the headline (COMPILE_ALL=1 for ViT-S too)
bench_one mae-vit-s mae "$([ "${COMPILE_ALL:-0}" = 1 ] && echo yes || echo no)" "${vit_s[@]}"
bench_one mae-vit-b mae yes "${vit_b[@]}"
bench_one moco-vit-s mocov3 no "${vit_s[@]}" --set moco.hidden_dim=4096 --set moco.out_dim=256
bench_one conmim-vit-s conmim no "${vit_s[@]}"

# 5. real training runs at the bench sizes: loader + augmentation + metrics against bench, the views made on the
#    CPU (data.augment_on=cpu) and on the GPU (device, what auto does on CUDA)
train_one() {  # name recipe steps augment_on bench-name args...
  local name=$1 recipe=$2 steps=$3 aug=$4 bname=$5; shift 5
  timeout 120 "$cli" train --recipe "$recipe" --out "$out/run-$name-$aug" --steps "$steps" "${common[@]}" "$@" \
    --set data.augment_on=$aug --set data.dataset=synthetic --set data.synthetic_size=8192 \
    --set train.log_every=$((steps / 3)) --set train.checkpoint_every=1000 \
    2> "$out/logs/train-$name-$aug.log" || { say "FAIL: train $name ($aug): $(tail -2 "$out/logs/train-$name-$aug.log" | tr '\n' ' ')"; return; }
  "$py" - "$out/run-$name-$aug/metrics.jsonl" "$out/logs/bench-$bname.json" "$name" "$aug" >> "$summary" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = json.load(open(sys.argv[2]))["images_per_s"]
t = rows[-1]["images_per_s"]  # the last window: the loader is warm
print(f"[gpu] train {sys.argv[3]} (loader, views on {sys.argv[4]}, metrics): {t:.0f} img/s vs bench {b:.0f} -> {t / b:.2f} (done-when: >= 0.90)")
PY
}
train_one mae-vit-s mae 120 device mae-vit-s "${vit_s[@]}"
train_one mae-vit-s mae 120 cpu mae-vit-s "${vit_s[@]}"
train_one moco-vit-s mocov3 60 device moco-vit-s "${vit_s[@]}" --set moco.hidden_dim=4096 --set moco.out_dim=256
train_one moco-vit-s mocov3 60 cpu moco-vit-s "${vit_s[@]}" --set moco.hidden_dim=4096 --set moco.out_dim=256
say "done in $(elapsed) s"
