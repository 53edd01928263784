#!/usr/bin/env bash
# Before/after for a change: two graftlab-cli builds benchmarked alternately (A B A B ...), ROUNDS rounds per
# configuration, in one invocation; prints each side's median images/s and the ratio B/A.
# Usage: benchmarks/compare_builds.sh CLI_A CLI_B   (env: CONFIGS, ROUNDS=3, STEPS=5, WARMUP=2, THREADS, PRECISION)
set -euo pipefail
a=${1:?usage: compare_builds.sh CLI_A CLI_B}
b=${2:?usage: compare_builds.sh CLI_A CLI_B}
configs=${CONFIGS:-"bench_mae_tiny bench_conmim_tiny bench_mocov3_tiny"}
rounds=${ROUNDS:-3}
args=(--steps "${STEPS:-5}" --warmup "${WARMUP:-2}" --threads "${THREADS:-$(nproc)}" --set "train.precision=${PRECISION:-fp32}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-20s %12s %12s %8s\n" configuration "A img/s" "B img/s" "B/A"
for c in $configs; do
  for r in $(seq "$rounds"); do
    for side in a b; do
      cli=$a; [ $side = b ] && cli=$b
      "$cli" bench --recipe "$c" "${args[@]}" --json "$tmp/$c.$side.$r.json" > /dev/null 2> "$tmp/log" || { cat "$tmp/log"; exit 1; }
    done
  done
  python3 - "$tmp" "$c" "$rounds" <<'PY'
import json, statistics, sys
d, c, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
med = {s: statistics.median(json.load(open(f"{d}/{c}.{s}.{r}.json"))["images_per_s"] for r in range(1, n + 1)) for s in "ab"}
print(f"{c:20s} {med['a']:12.1f} {med['b']:12.1f} {med['b'] / med['a']:8.3f}")
PY
done
