#!/usr/bin/env bash
# `make bench`: GraftLab's training step and eager PyTorch's, side by side in one invocation, per configuration.
# Usage: benchmarks/run_bench.sh CLI [OUT_DIR]   (env: CONFIGS, STEPS, WARMUP, THREADS, PRECISION=fp32|bf16)
# PRECISION=bf16 runs both sides with bf16 autocast in the forward pass (train.precision = bf16 / --bf16).
# Each configuration runs GraftLab then PyTorch back to back with the same threads, batch, model and optimizer;
# the ratio of their images/s is printed and everything goes to OUT_DIR/bench-<date>.json.
# PyTorch 2.x beside 1.13: run as root where the LibTorch 2.6 chroot of tests/torch2/run_in_trixie.sh exists
# (TORCH2_CHROOT, default /var/tmp/graftlab-trixie; TORCH2_CHROOT=none skips it), each configuration also runs
# Debian 13's PyTorch 2.6 as a 2.x user would (F.scaled_dot_product_attention + AdamW(fused=True); TORCH2_COMPILE=1
# adds torch.compile), and GraftLab's LibTorch 2.6 build when that script has built it (TORCH2_BUILD, default
# build-trixie/).
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
root=$(cd "$here/.." && pwd)
t2=${TORCH2_CHROOT:-/var/tmp/graftlab-trixie}
t2_on=0
if [ "$t2" != none ] && [ -x "$t2/usr/bin/python3" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "(PyTorch 2.6 column skipped: the chroot $t2 needs root; sudo make bench, or TORCH2_CHROOT=none)"
  elif chroot "$t2" python3 -c "import torch" 2> /dev/null; then
    t2_on=1
    mkdir -p "$t2/graftlab-bench" "$t2/tmp/graftlab-bench"
    mountpoint -q "$t2/graftlab-bench" || mount --bind "$root" "$t2/graftlab-bench"
    mountpoint -q "$t2/proc" || mount --bind /proc "$t2/proc"
    trap 'umount "$t2/graftlab-bench" "$t2/graftlab-build" 2> /dev/null || true' EXIT
    t2_build=${TORCH2_BUILD:-$root/build-trixie}  # GraftLab built against LibTorch 2.6 in that chroot
    t2_cli=""
    if [ -x "$t2_build/app/graftlab-cli" ]; then
      mkdir -p "$t2/graftlab-build"
      mountpoint -q "$t2/graftlab-build" || mount --bind "$t2_build" "$t2/graftlab-build"
      t2_cli=/graftlab-build/app/graftlab-cli
    fi
    t2_compile=(); [ "${TORCH2_COMPILE:-0}" = 1 ] && t2_compile=(--compile)
  fi
fi
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
  t2_files=()
  if [ "$t2_on" = 1 ]; then
    # PyTorch 2.6 eager with SDPA and the fused AdamW, right after the 1.13 runs; then GraftLab's 2.6 build
    cp "$out/$c.recipe.json" "$t2/tmp/graftlab-bench/$c.recipe.json"
    chroot "$t2" python3 /graftlab-bench/benchmarks/pytorch_reference.py "/tmp/graftlab-bench/$c.recipe.json" "${py_prec[@]}" \
      --attention sdpa --optimizer fused "${t2_compile[@]}" --steps "$steps" --warmup "$warmup" --threads "$threads" \
      --json "/tmp/graftlab-bench/$c.pytorch2.json" > "$out/$c.pytorch2.txt"
    cp "$t2/tmp/graftlab-bench/$c.pytorch2.json" "$out/$c.pytorch2.json"
    t2_files=("$out/$c.pytorch2.json")
    if [ -n "$t2_cli" ]; then
      chroot "$t2" "$t2_cli" bench --recipe "/tmp/graftlab-bench/$c.recipe.json" "${gl_prec[@]}" --steps "$steps" --warmup "$warmup" \
        --threads "$threads" --json "/tmp/graftlab-bench/$c.graftlab2.json" > "$out/$c.graftlab2.txt" 2> "$out/$c.graftlab2.log" ||
        { cat "$out/$c.graftlab2.log"; exit 1; }
      cp "$t2/tmp/graftlab-bench/$c.graftlab2.json" "$out/$c.graftlab2.json"
      t2_files+=("$out/$c.graftlab2.json")
    fi
  fi
  "$py" - "$out/$c.graftlab.json" "$out/$c.pytorch.json" "$out/$c.pytorch-same-env.json" "$c" "$summary" "$first" "${t2_files[@]}" <<'PY'
import json, sys
g, p, pp = (json.load(open(f)) for f in sys.argv[1:4])
ratio, ratio_p = g["images_per_s"] / p["images_per_s"], g["images_per_s"] / pp["images_per_s"]
print(f"{sys.argv[4]:<20} {g['images_per_s']:10.1f} {p['images_per_s']:10.1f} {ratio:6.2f}x {pp['images_per_s']:12.1f} {ratio_p:6.2f}x"
      f" {g['gflop_per_image']:10.3f} {100 * g['mfu']:6.1f}%")
entry = {"graftlab": g, "pytorch": p, "pytorch_same_env": pp, "ratio": ratio, "ratio_same_env": ratio_p}
if len(sys.argv) > 7:  # PyTorch 2.6 (and GraftLab's LibTorch 2.6 build)
    p2 = json.load(open(sys.argv[7]))
    entry.update(pytorch2=p2, ratio_pytorch2=g["images_per_s"] / p2["images_per_s"])
    line = (f"{'':<20} pytorch {p2['torch']} ({p2['attention']} attention, {p2['optimizer']} AdamW"
            f"{', compiled' if p2.get('compile') else ''}): {p2['images_per_s']:.1f}; graftlab (this build) {entry['ratio_pytorch2']:.2f}x")
    if len(sys.argv) > 8:
        g2 = json.load(open(sys.argv[8]))
        entry.update(graftlab2=g2, ratio2_pytorch2=g2["images_per_s"] / p2["images_per_s"])
        line += f"; graftlab LibTorch 2.6 build {g2['images_per_s']:.1f} ({entry['ratio2_pytorch2']:.2f}x; attention {g2.get('attention', '?')})"
    print(line)
with open(sys.argv[5], "a") as f:
    if sys.argv[6] != "1":
        f.write(",\n")
    f.write(f'  "{sys.argv[4]}": ' + json.dumps(entry))
PY
  first=0
done
echo "}" >> "$summary"
echo "precision $precision, threads $threads, $steps timed steps after $warmup warm-up, batch from each recipe; figures in $summary"
