#!/usr/bin/env bash
# `make bench`: GraftLab's training step and eager PyTorch's, side by side in one invocation, per configuration.
# Usage: benchmarks/run_bench.sh CLI [OUT_DIR]   (env: CONFIGS, STEPS, WARMUP, THREADS, PRECISION=fp32|bf16)
# PRECISION=bf16 runs both sides with bf16 autocast in the forward pass (train.precision = bf16 / --bf16).
# Each configuration runs GraftLab then PyTorch back to back with the same threads, batch, model and optimizer;
# the ratio of their images/s is printed and everything goes to OUT_DIR/bench-<date>.json.
set -euo pipefail
cli=${1:?usage: run_bench.sh CLI [OUT_DIR]}
out=${2:-benchmarks/out}
here=$(cd "$(dirname "$0")" && pwd)
configs=${CONFIGS:-"bench_mae_tiny bench_conmim_tiny bench_mocov3_tiny"}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
threads=${THREADS:-$(nproc)}
precision=${PRECISION:-fp32}
gl_prec=(--set "train.precision=$precision"); py_prec=(); [ "$precision" = bf16 ] && py_prec=(--bf16)
py=/usr/bin/python3
mkdir -p "$out"
"$py" -c "import torch" 2> /dev/null || { echo "python3-torch is missing (apt install python3-torch): no PyTorch side to compare"; exit 1; }
stamp=$(date -u +%Y%m%d-%H%M%S)
summary="$out/bench-$stamp.json"
echo "{" > "$summary"
printf "%-20s %10s %10s %7s %12s %7s %10s %7s\n" configuration graftlab pytorch ratio "pytorch(E)" ratio "GFLOP/img" MFU
echo "(images/s; pytorch = eager PyTorch as it starts by default; pytorch(E) = eager PyTorch given the process"
echo " settings that help it: OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4 and glibc malloc without"
echo " per-block mmap and without trimming, see core/util/ThreadEnv.h)"
same_env=(env OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824)
first=1
for c in $configs; do
  "$cli" recipe --recipe "$c" > "$out/$c.recipe.json"
  "$cli" bench --recipe "$c" "${gl_prec[@]}" --steps "$steps" --warmup "$warmup" --threads "$threads" --json "$out/$c.graftlab.json" \
    > "$out/$c.graftlab.txt" 2> "$out/$c.graftlab.log" || { cat "$out/$c.graftlab.log"; exit 1; }
  "$py" "$here/pytorch_reference.py" "$out/$c.recipe.json" "${py_prec[@]}" --steps "$steps" --warmup "$warmup" --threads "$threads" \
    --json "$out/$c.pytorch.json" > "$out/$c.pytorch.txt"
  "${same_env[@]}" "$py" "$here/pytorch_reference.py" "$out/$c.recipe.json" "${py_prec[@]}" --steps "$steps" --warmup "$warmup" \
    --threads "$threads" --json "$out/$c.pytorch-same-env.json" > "$out/$c.pytorch-same-env.txt"
  "$py" - "$out/$c.graftlab.json" "$out/$c.pytorch.json" "$out/$c.pytorch-same-env.json" "$c" "$summary" "$first" <<'PY'
import json, sys
g, p, pp = (json.load(open(f)) for f in sys.argv[1:4])
ratio, ratio_p = g["images_per_s"] / p["images_per_s"], g["images_per_s"] / pp["images_per_s"]
print(f"{sys.argv[4]:<20} {g['images_per_s']:10.1f} {p['images_per_s']:10.1f} {ratio:6.2f}x {pp['images_per_s']:12.1f} {ratio_p:6.2f}x"
      f" {g['gflop_per_image']:10.3f} {100 * g['mfu']:6.1f}%")
with open(sys.argv[5], "a") as f:
    if sys.argv[6] != "1":
        f.write(",\n")
    f.write(f'  "{sys.argv[4]}": ' + json.dumps({"graftlab": g, "pytorch": p, "pytorch_same_env": pp, "ratio": ratio,
                                               "ratio_same_env": ratio_p}))
PY
  first=0
done
echo "}" >> "$summary"
echo "precision $precision, threads $threads, $steps timed steps after $warmup warm-up, batch from each recipe; figures in $summary"
