#!/usr/bin/env bash
# SIGTERM / SIGINT at random moments of a MoCo v3 run (width 96, 28 px: the size at which it showed): every stop must
# end the process normally ("stopped at step N", exit 0) with a checkpoint whose weights are all finite, and the
# run must resume from it. A stop signal delivered to a thread of LibTorch / OpenBLAS / OpenCV in the middle of
# its work used to corrupt the heap (glibc abort "corrupted size vs. prev_size", or a NaN in a saved weight) in
# about a third of the stops; now one thread takes the signals (app/cli/StopSignals.cpp). Bounded: 12 stops.
set -euo pipefail
cli=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
sets=(--set data.dataset=synthetic --set data.synthetic_size=512 --set model.embed_dim=96 --set model.num_heads=3
      --set moco.hidden_dim=512 --set moco.out_dim=128 --set probes.every=0 --set train.log_every=1)
RANDOM=7
for round in $(seq 1 12); do
  run="$work/run$round"
  sig=TERM; [ $((round % 4)) -eq 0 ] && sig=INT
  "$cli" train --recipe mocov3 --out "$run" --steps 400 "${sets[@]}" > "$run.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do  # until the first step is logged: the signal lands in training
    [ -s "$run/metrics.jsonl" ] && break
    sleep 0.05
  done
  sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
  kill -$sig $pid
  rc=0; wait $pid || rc=$?
  [ $rc -eq 0 ] && grep -q "stopped at step" "$run.log" || { tail -5 "$run.log"; fail "round $round: SIG$sig ended the run with status $rc"; }
  ckpt=$(ls "$run/checkpoints/"step-*.ckpt | tail -1)
  "$cli" export --ckpt "$ckpt" --out "$run/enc.safetensors" > /dev/null 2>&1 || fail "round $round: export of $ckpt"
  python3 - "$run/enc.safetensors" <<'PY' || fail "round $round: a weight saved at the stop is not finite"
import array, json, math, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
for name, t in header.items():
    if name == "__metadata__" or t["dtype"] != "F32":
        continue
    s, e = t["data_offsets"]
    a = array.array("f")
    a.frombytes(b[8 + n + s:8 + n + e])
    bad = sum(1 for x in a if not math.isfinite(x))
    assert bad == 0, f"{name}: {bad} non-finite values"
PY
  rm -rf "$run"
done
# The last stop resumes and trains on (no NaN loss from what was saved).
"$cli" train --recipe mocov3 --out "$work/r" --steps 400 --stop-at 3 "${sets[@]}" > /dev/null 2>&1 || fail "train to 3"
"$cli" resume "$work/r" --stop-at 6 > "$work/r.log" 2>&1 || { tail -5 "$work/r.log"; fail "resume after a stop"; }
echo "e2e.stop_signals: 12 stops, each a clean exit with finite weights"
