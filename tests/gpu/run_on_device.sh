#!/usr/bin/env bash
# The GPU check (DESIGN.md "GPU"), for a machine with an NVIDIA GPU and a CUDA PyTorch but no Debian packages:
# builds the core and the CLI against that PyTorch (no GUI, no OpenCV; headers from .gpu-deps, made by
# tests/gpu/bundle_deps.sh), then
#   1. trains MAE on the synthetic set on CUDA (train.precision auto = bf16 autocast): finite, decreasing loss;
#   2. resumes it from its checkpoint (CUDA checkpoint written, read back);
#   3. benchmarks bench_{mae,mocov3,conmim}_tiny on CUDA in fp32 and bf16 against eager PyTorch on the same GPU
#      (benchmarks/pytorch_reference.py --device cuda [--bf16]), side by side.
# Everything it measures lands in $OUT (default /tmp/graftlab-gpu): logs, JSON figures, summary.txt.
# Budget: under 8 minutes on the H200 machine (build ~3 min on 16 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${OUT:-/tmp/graftlab-gpu}
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
say() { echo "[gpu] $*" | tee -a "$summary"; }
fail() { say "FAIL: $*"; exit 1; }
start=$(date +%s)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1 || true
say "GPU: $(head -1 "$out/gpu.txt")"
py=${PYTHON:-python3}
"$py" - > "$out/torch.txt" <<'PY' || fail "no PyTorch in $py"
import os, torch
print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(torch.__version__, torch.version.cuda, torch.cuda.is_available())
PY
torch_dir=$(sed -n 1p "$out/torch.txt"); abi=$(sed -n 2p "$out/torch.txt")
say "PyTorch: $(sed -n 3p "$out/torch.txt") at $torch_dir (C++11 ABI $abi)"
[ -d .gpu-deps/include/spdlog ] || fail ".gpu-deps missing: run tests/gpu/bundle_deps.sh and carry .gpu-deps"

gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGRAFTLAB_GUI=OFF -DGRAFTLAB_OPENCV=OFF \
  -DGRAFTLAB_TESTS=OFF -DGRAFTLAB_TORCH_DIR="$torch_dir" -DGRAFTLAB_TORCH_CXX11_ABI="$abi" \
  -DGRAFTLAB_BUNDLED_DEPS="$root/.gpu-deps" > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; fail "configure"; }
cmake --build build-gpu -j "$(nproc)" --target graftlab-cli > "$out/build.log" 2>&1 || { grep -m20 -E "error" "$out/build.log"; fail "build"; }
cli=build-gpu/app/graftlab-cli
say "built in $(( $(date +%s) - start )) s: $("$cli" --version)"

# 1. train on CUDA, bf16 autocast (precision auto), synthetic data
tiny=(--set device=cuda --set data.dataset=synthetic --set data.synthetic_size=4096 --set optim.batch_size=256
      --set train.log_every=50 --set train.checkpoint_every=150 --set probes.every=100)
"$cli" train --recipe mae --out "$out/run-mae" --steps 300 --stop-at 150 "${tiny[@]}" 2> "$out/train.log" \
  || { tail -20 "$out/train.log"; fail "train on CUDA"; }
grep -q "bf16 autocast" "$out/train.log" || fail "train.precision auto did not pick bf16 autocast on CUDA"
grep -q "device cuda" "$out/train.log" || fail "did not train on CUDA"
"$cli" resume "$out/run-mae" 2> "$out/resume.log" || { tail -20 "$out/resume.log"; fail "resume on CUDA"; }
"$py" - "$out/run-mae/metrics.jsonl" >> "$summary" <<'PY' || fail "CUDA losses not finite and decreasing"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
losses = [r["loss"] for r in rows]
assert len(rows) == 6 and rows[-1]["step"] == 300, rows
assert all(math.isfinite(l) for l in losses) and losses[-1] < losses[0], losses
print(f"[gpu] train on CUDA: 300 steps (stopped at 150, resumed), loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
      f"{rows[-1].get('images_per_s', float('nan')):.0f} images/s")
PY

# 2. bench side by side: GraftLab and eager PyTorch on the same GPU, fp32 and bf16
for cfg in mae mocov3 conmim; do
  recipe=resources/recipes/bench_${cfg}_tiny.json
  "$cli" recipe --recipe "$recipe" --set device=cuda > "$out/full-$cfg.json"
  for prec in fp32 bf16; do
    flag=(); [ $prec = bf16 ] && flag=(--bf16)
    "$cli" bench --recipe "$recipe" --set device=cuda --set train.precision=$prec --steps 50 --warmup 10 \
      --json "$out/bench-$cfg-$prec.json" > "$out/bench-$cfg-$prec.txt" 2>&1 || { tail "$out/bench-$cfg-$prec.txt"; fail "bench $cfg $prec"; }
    "$py" benchmarks/pytorch_reference.py "$out/full-$cfg.json" --device cuda "${flag[@]}" --steps 50 --warmup 10 \
      --json "$out/pytorch-$cfg-$prec.json" > "$out/pytorch-$cfg-$prec.txt" 2>&1 || { tail "$out/pytorch-$cfg-$prec.txt"; fail "pytorch $cfg $prec"; }
    "$py" - "$out/bench-$cfg-$prec.json" "$out/pytorch-$cfg-$prec.json" "$cfg" "$prec" >> "$summary" <<'PY'
import json, sys
g, p = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(f"[gpu] bench {sys.argv[3]:7s} {sys.argv[4]}: GraftLab {g['images_per_s']:9.0f} img/s, PyTorch {p['images_per_s']:9.0f} img/s, "
      f"ratio {g['images_per_s'] / p['images_per_s']:.2f}x; loss {g['first_loss']:.3f}->{g['last_loss']:.3f} vs "
      f"{p['first_loss']:.3f}->{p['last_loss']:.3f}")
PY
  done
done
say "done in $(( $(date +%s) - start )) s"
