#!/usr/bin/env bash
# The GUI end to end, offscreen: load a recipe, start, stop after a few steps (Stop writes a checkpoint),
# and render the window. Checks the run directory and the screenshot.
set -euo pipefail
gui=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export HOME="$work/home" XDG_RUNTIME_DIR="$work/xdg"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
# --help and --version print without a display (a QApplication used to abort: "could not connect to display")
env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM "$gui" --help > "$work/help.txt" 2>&1 || { cat "$work/help.txt"; fail "graftlab --help without a display"; }
grep -q -- "--open-run" "$work/help.txt" || fail "graftlab --help lists no options"
env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM "$gui" --version | grep -q "GraftLab" || fail "graftlab --version without a display"
python3 - "$src/resources/recipes/mae.json" "$work/recipe.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["data"].update(dataset="synthetic", image_size=16, synthetic_size=256)
r["model"].update(embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
r["optim"].update(batch_size=16, warmup_steps=2)
r["train"].update(steps=200, log_every=2)
json.dump(r, open(sys.argv[2], "w"))
PY
timeout 300 "$gui" --recipe "$work/recipe.json" --autostart --steps 10 --out "$work/run" --tab reconstructions \
  --screenshot "$work/shot.png" > "$work/gui.log" 2>&1 || { cat "$work/gui.log"; fail "gui exited non-zero"; }
[ -s "$work/shot.png" ] || fail "no screenshot"
head -c 8 "$work/shot.png" | od -An -c | grep -q "P   N   G" || fail "screenshot is not a PNG"
[ -f "$work/run/recipe.json" ] || fail "no recipe.json in the run directory"
ls "$work/run/checkpoints/"step-*.ckpt > /dev/null 2>&1 || fail "Stop wrote no checkpoint"
rows=$(wc -l < "$work/run/metrics.jsonl")
[ "$rows" -ge 5 ] || fail "expected at least 5 metrics rows, got $rows"
# probes ran (at the start and, shortened for the screenshot run, every few steps) and were stored
n=$(ls "$work/run/snapshots/reconstruction/" | wc -l)
[ "$n" -ge 2 ] || fail "expected reconstruction snapshots, got $n"
[ -f "$work/run/snapshots/attention/000000000.snap" ] || fail "no attention snapshot at step 0"
# the run opens again with its probe history (offscreen screenshot of the attention tab)
timeout 120 "$gui" --open-run "$work/run" --tab attention --screenshot "$work/open.png" > "$work/open.log" 2>&1 \
  || { cat "$work/open.log"; fail "open-run exited non-zero"; }
[ -s "$work/open.png" ] || fail "no open-run screenshot"
# SIGTERM (a logout, kill, a cluster's preemption) during a run: the GUI stops after the current step, writes a
# checkpoint there and exits 0, so no step since the last periodic checkpoint is lost.
python3 - "$work/recipe.json" "$work/long.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["train"].update(steps=100000, log_every=1, checkpoint_every=100000)
r.setdefault("probes", {})["every"] = 0
json.dump(r, open(sys.argv[2], "w"))
PY
"$gui" --recipe "$work/long.json" --autostart --out "$work/term" > "$work/term.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$work/term/metrics.jsonl" ] && [ "$(wc -l < "$work/term/metrics.jsonl")" -ge 5 ] && break
  sleep 0.1
done
[ "$(wc -l < "$work/term/metrics.jsonl" 2> /dev/null || echo 0)" -ge 5 ] || { kill -9 $pid; cat "$work/term.log"; fail "the long run did not start"; }
kill -TERM $pid
set +e
timeout 60 tail --pid=$pid -f /dev/null
wait $pid; code=$?
set -e
[ $code -eq 0 ] || { cat "$work/term.log"; fail "the GUI ended with status $code on SIGTERM"; }
grep -q "SIGTERM received" "$work/term.log" || { cat "$work/term.log"; fail "SIGTERM not reported"; }
last=$(tail -1 "$work/term/metrics.jsonl" | python3 -c "import json,sys; print(json.load(sys.stdin)['step'])")
ckpt=$(printf "%s/term/checkpoints/step-%08d.ckpt" "$work" "$last")
[ -f "$ckpt" ] || { ls "$work/term/checkpoints"; fail "no checkpoint at the last step $last after SIGTERM"; }
echo "e2e.gui: all checks passed"
