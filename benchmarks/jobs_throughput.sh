#!/usr/bin/env bash
# Throughput of training runs side by side (what `table --jobs N` / `sweep --jobs N` do) against one run with every
# core, measured back to back with `graftlab-cli bench` on the same recipe: one process with all T threads, then
# N processes with T/N threads each at once. Prints images/s of each and the ratio (sum of the N / the one).
# Usage: bash benchmarks/jobs_throughput.sh CLI [N] [bench args...]   (default: the width-96 MoCo v3 of README's
# longer budgets, batch 64, 30 steps)
set -euo pipefail
cli=$1; n=${2:-2}; shift $(( $# >= 2 ? 2 : 1 ))
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--recipe mocov3 --set model.embed_dim=96 --set model.num_heads=3 --set moco.hidden_dim=512
                               --set moco.out_dim=128 --set optim.batch_size=64 --steps 30 --warmup 5)
cores=$(nproc)
per=$(( cores / n > 0 ? cores / n : 1 ))
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ips() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['images_per_s'])" "$1"; }
"$cli" bench "${args[@]}" --threads "$cores" --json "$work/one.json" > /dev/null 2>&1
pids=()
for j in $(seq 1 "$n"); do "$cli" bench "${args[@]}" --threads "$per" --json "$work/job$j.json" > /dev/null 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
one=$(ips "$work/one.json")
sum=0; each=""
for j in $(seq 1 "$n"); do v=$(ips "$work/job$j.json"); each="$each $(printf %.1f "$v")"; sum=$(python3 -c "print($sum + $v)"); done
python3 -c "print(f'one process, $cores threads: {float($one):.1f} img/s; $n processes x $per threads:$each -> {float($sum):.1f} img/s in all; ratio {float($sum)/float($one):.2f}x')"
