#!/usr/bin/env bash
# kill -9 at random moments (during steps and during checkpoint writes, which come every 2 steps here), then
# resume: the newest complete checkpoint must always load and the run must always reach its end. Bounded: 4 kills.
set -euo pipefail
cli=$1
src=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
sets=(--set data.dataset=synthetic --set data.synthetic_size=512 --set optim.batch_size=32 --set model.depth=2
      --set train.log_every=1 --set train.checkpoint_every=2)
"$cli" train --recipe mae --out "$work/run" --steps 60 "${sets[@]}" 2> "$work/log" &
pid=$!
RANDOM=42
kills=0
for round in 1 2 3 4; do
  if [ $round -eq 1 ]; then
    # the first kill lands mid-run for sure: once a few steps are written (a fast machine could otherwise finish
    # all 60 steps before a timed kill, and the test would pass without killing anything)
    for _ in $(seq 1 600); do
      [ "$( { wc -l < "$work/run/metrics.jsonl"; } 2> /dev/null || echo 0)" -ge 3 ] && break
      sleep 0.05
    done
  else
    sleep "$(( (RANDOM % 20) + 5 ))e-1" 2> /dev/null || sleep 1
    sleep 0.$(( RANDOM % 9 + 1 ))
  fi
  if kill -0 $pid 2> /dev/null; then kill -9 $pid; wait $pid 2> /dev/null || true; kills=$((kills + 1)); fi
  # metrics never hold a torn line; every line is a whole JSON object
  python3 - "$work/run/metrics.jsonl" <<'PY' || fail "metrics.jsonl has a torn line"
import json, os, sys
p = sys.argv[1]
if os.path.exists(p):
    for line in open(p):
        json.loads(line)
PY
  if ls "$work/run/checkpoints/"step-*.ckpt > /dev/null 2>&1; then
    "$cli" resume "$work/run" 2>> "$work/log" &
  else  # killed before the first checkpoint: nothing to resume, start again
    "$cli" train --recipe mae --out "$work/run" --force --steps 60 "${sets[@]}" 2>> "$work/log" &
  fi
  pid=$!
done
wait $pid || { tail -20 "$work/log"; fail "the last resume failed"; }
[ -f "$work/run/checkpoints/step-00000060.ckpt" ] || { tail -20 "$work/log"; fail "run did not reach step 60"; }
ls -A "$work/run/checkpoints/" | grep -q tmp && fail "a temporary checkpoint file was left behind" || true
steps=$(python3 -c "import json,sys; print([json.loads(l)['step'] for l in open(sys.argv[1])][-1])" "$work/run/metrics.jsonl")
[ "$steps" -eq 60 ] || fail "last metrics row is step $steps"
# The TensorBoard log went through the same kills: whole records only, every step exactly once.
if [ -n "$src" ] && /usr/bin/python3 -c "import google.protobuf" 2> /dev/null && command -v protoc > /dev/null; then
  /usr/bin/python3 "$src/tests/python/check_tensorboard.py" "$work/run" "$src/core/base/export/tensorboard.proto" 60 loss,lr \
    || fail "TensorBoard log after the kills"
fi
[ $kills -ge 1 ] || fail "no process was killed: the test checked nothing"

# A fine-tuning killed after its first saved state continues from it when the same eval runs again, and gives the
# top-1 of an uninterrupted one (the state beside the checkpoint, removed when done).
ckpt="$work/run/checkpoints/step-00000060.ckpt"
# the fine-tuning's state: .NAME.finetune-HASH.state, one file per fine-tuning of the checkpoint
states() { ls -d "$work/run/checkpoints"/.step-00000060.ckpt.finetune-*.state 2> /dev/null; }
have_state() { [ -n "$(states)" ]; }
ft=(eval --ckpt "$ckpt" --protocol finetune --finetune-steps 400 --threads 1)
"$cli" "${ft[@]}" > "$work/ft-whole.out" 2> "$work/ft-whole.log" || { cat "$work/ft-whole.log"; fail "uninterrupted fine-tuning"; }
have_state && fail "the state of a finished fine-tuning was left behind"
"$cli" "${ft[@]}" > /dev/null 2> "$work/ft-killed.log" &
pid=$!
for _ in $(seq 1 1200); do have_state && break; sleep 0.05; done
have_state || { kill -9 $pid 2> /dev/null; cat "$work/ft-killed.log"; fail "no fine-tuning state was saved"; }
kill -9 $pid 2> /dev/null || fail "the fine-tuning ended before it could be killed"
[ "$(states | wc -l)" = 1 ] || fail "not one state file for one fine-tuning: $(states)"
wait $pid 2> /dev/null || true
"$cli" "${ft[@]}" > "$work/ft-resumed.out" 2> "$work/ft-resumed.log" || { cat "$work/ft-resumed.log"; fail "resumed fine-tuning"; }
grep -q "continuing the fine-tuning from step [1-9][0-9]* of 400" "$work/ft-resumed.log" \
  || { cat "$work/ft-resumed.log"; fail "the killed fine-tuning started again instead of continuing"; }
whole=$(grep -o "finetune .*%" "$work/ft-whole.out"); resumed=$(grep -o "finetune .*%" "$work/ft-resumed.out")
[ -n "$whole" ] && [ "$whole" = "$resumed" ] || fail "resumed fine-tuning gave '$resumed', uninterrupted '$whole'"
have_state && fail "the state of the resumed fine-tuning was left behind"
# Ctrl-C (SIGINT) during a fine-tuning: it stops at its next step with its state saved there (not at the last
# periodic save), says so, and the same command continues from that step with the uninterrupted result.
"$cli" "${ft[@]}" > /dev/null 2> "$work/ft-int.log" &
pid=$!
for _ in $(seq 1 1200); do have_state && break; sleep 0.05; done
have_state || { kill -9 $pid 2> /dev/null; cat "$work/ft-int.log"; fail "no fine-tuning state before the SIGINT"; }
sleep 0.3
kill -INT $pid 2> /dev/null || fail "the fine-tuning ended before the SIGINT"
rc=0; timeout 60 tail --pid=$pid -f /dev/null || rc=124
[ $rc -eq 0 ] || { kill -9 $pid; cat "$work/ft-int.log"; fail "the fine-tuning still ran 60 s after SIGINT"; }
wait $pid 2> /dev/null || rc=$?
at=$(grep -o "stopped at step [0-9]* of 400: its state is kept" "$work/ft-int.log" | grep -o "[0-9]* of" | grep -o "[0-9]*" || true)
[ $rc -eq 1 ] && [ -n "$at" ] && have_state || { cat "$work/ft-int.log"; fail "SIGINT: status $rc, no kept state said (step '$at')"; }
# another fine-tuning of the same checkpoint (other steps), killed after its first save, keeps a state of its own
"$cli" eval --ckpt "$ckpt" --protocol finetune --finetune-steps 401 --threads 1 > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 1200); do [ "$(states | wc -l)" = 2 ] && break; sleep 0.05; done
kill -9 $pid 2> /dev/null || true; wait $pid 2> /dev/null || true
[ "$(states | wc -l)" = 2 ] || fail "a second fine-tuning of the checkpoint did not keep a state beside the first's: $(states)"
"$cli" "${ft[@]}" > "$work/ft-int2.out" 2> "$work/ft-int2.log" || { cat "$work/ft-int2.log"; fail "fine-tuning after SIGINT"; }
grep -q "continuing the fine-tuning from step $at of 400" "$work/ft-int2.log" \
  || { cat "$work/ft-int2.log"; fail "after SIGINT at step $at the fine-tuning did not continue from it"; }
again=$(grep -o "finetune .*%" "$work/ft-int2.out")
[ "$whole" = "$again" ] || fail "fine-tuning continued after SIGINT gave '$again', uninterrupted '$whole'"
echo "e2e.kill_resume: $kills kill(s) survived; a killed fine-tuning continued ($resumed); one stopped by SIGINT at step $at continued"
