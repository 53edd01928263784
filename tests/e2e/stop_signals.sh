#!/usr/bin/env bash
# SIGTERM / SIGINT at random moments of a MoCo v3 run (width 96, 28 px: the size at which it showed): every stop must
# end the process normally ("stopped at step N", exit 0) with a checkpoint whose weights are all finite, and the
# run must resume from it. A stop signal delivered to a thread of LibTorch / OpenBLAS / OpenCV in the middle of
# its work used to corrupt the heap (glibc abort "corrupted size vs. prev_size", or a NaN in a saved weight) in
# about a third of the stops; now one thread takes the signals (core/base/util/StopSignals.cpp). Bounded: 12 stops.
# With the GUI's binary as the second argument, the same for the GUI (offscreen): 8 stops by SIGTERM, SIGINT or
# SIGHUP during a run started with --autostart; each must close the window with a checkpoint at the last step.
set -euo pipefail
cli=$1
gui=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
check_finite() {  # run directory, round: the last checkpoint's weights are all finite
  local ckpt
  ckpt=$(ls "$1/checkpoints/"step-*.ckpt | tail -1)
  "$cli" export --ckpt "$ckpt" --out "$1/enc.safetensors" > /dev/null 2>&1 || fail "round $2: export of $ckpt"
  python3 - "$1/enc.safetensors" <<'PY' || fail "round $2: a weight saved at the stop is not finite"
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
}
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
  check_finite "$run" "$round"
  rm -rf "$run"
done
# A stop while the run is being prepared (its directory made, the data and the model being built, no route of the
# trainer yet) used to end the process by the signal (status 143, no checkpoint, no word). Now it is kept and the
# run stops before its first step, with a step-0 checkpoint it resumes from. (A signal before main() starts finds
# nothing written: the program has not started its work.)
for sig in TERM INT; do
  run="$work/early$sig"
  "$cli" train --recipe mocov3 --out "$run" --steps 400 "${sets[@]}" --set data.synthetic_size=40000 > "$run.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do [ -e "$run/.graftlab-writer" ] && break; sleep 0.01; done
  kill -$sig $pid
  rc=0; wait $pid || rc=$?
  [ $rc -eq 0 ] && grep -q "stopped at step 0" "$run.log" || { tail -5 "$run.log"; fail "SIG$sig while preparing ended the run with status $rc"; }
  "$cli" resume "$run" --steps 2 > "$run.resume.log" 2>&1 || { tail -5 "$run.resume.log"; fail "resume after SIG$sig while preparing"; }
  echo "ok: SIG$sig while preparing: stopped at step 0, resumed"
done
if [ -n "$gui" ]; then
  "$cli" recipe --recipe mocov3 "${sets[@]}" --set train.steps=400 --set train.checkpoint_every=100000 > "$work/gui.json"
  for round in $(seq 1 8); do
    run="$work/gui$round"
    sigs=(TERM INT HUP); sig=${sigs[$((round % 3))]}
    QT_QPA_PLATFORM=offscreen "$gui" --recipe "$work/gui.json" --autostart --out "$run" > "$run.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
      [ -s "$run/metrics.jsonl" ] && break
      sleep 0.05
    done
    [ -s "$run/metrics.jsonl" ] || { kill -9 $pid; tail -5 "$run.log"; fail "GUI round $round: the run did not start"; }
    sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
    kill -$sig $pid
    rc=0; timeout 60 tail --pid=$pid -f /dev/null || rc=124
    [ $rc -eq 0 ] || { kill -9 $pid; tail -5 "$run.log"; fail "GUI round $round: still running 60 s after SIG$sig"; }
    wait $pid || rc=$?
    [ $rc -eq 0 ] && grep -q "SIG$sig received" "$run.log" || { tail -5 "$run.log"; fail "GUI round $round: SIG$sig ended it with status $rc"; }
    last=$(tail -1 "$run/metrics.jsonl" | python3 -c "import json,sys; print(json.load(sys.stdin)['step'])")
    [ -f "$(printf "%s/checkpoints/step-%08d.ckpt" "$run" "$last")" ] || fail "GUI round $round: no checkpoint at the last step $last"
    check_finite "$run" "GUI $round"
    rm -rf "$run"
  done
  echo "e2e.stop_signals: 8 GUI stops, each a clean close with a checkpoint of finite weights"
fi
# The last stop resumes and trains on (no NaN loss from what was saved).
"$cli" train --recipe mocov3 --out "$work/r" --steps 400 --stop-at 3 "${sets[@]}" > /dev/null 2>&1 || fail "train to 3"
"$cli" resume "$work/r" --stop-at 6 > "$work/r.log" 2>&1 || { tail -5 "$work/r.log"; fail "resume after a stop"; }
echo "e2e.stop_signals: 12 stops, each a clean exit with finite weights"
