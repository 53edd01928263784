#!/usr/bin/env bash
# A full disk during training: the run ends with a message naming the file and the reason, the previous
# checkpoint stays intact (no temp file left behind) and resume continues from it once there is room.
# Needs to mount a small tmpfs (root in a container that allows it); skipped (77) elsewhere.
set -euo pipefail
cli=$1
work=$(mktemp -d)
mnt="$work/small"
mkdir -p "$mnt"
cleanup() { umount "$mnt" 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
mount -t tmpfs -o size=2M tmpfs "$mnt" 2> /dev/null || { echo "cannot mount a tmpfs here: skipped"; exit 77; }
# checkpoints of ~1.5 MB: the first fits, the second does not
set +e
"$cli" train --recipe mae --out "$mnt/run" --steps 200 --set data.dataset=synthetic --set data.synthetic_size=64 \
  --set data.image_size=16 --set model.embed_dim=64 --set model.depth=2 --set model.num_heads=2 \
  --set model.decoder_embed_dim=32 --set model.decoder_depth=1 --set model.decoder_num_heads=2 \
  --set optim.batch_size=16 --set probes.every=0 --set train.checkpoint_every=2 > "$work/train.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "the run ended with status 0 on a full disk"
[ $rc -lt 128 ] || fail "the run crashed (status $rc)"
grep -q "No space left on device" "$work/train.log" || { tail -3 "$work/train.log"; fail "no message saying the disk is full"; }
grep -q "step-00000004.ckpt" "$work/train.log" || { tail -3 "$work/train.log"; fail "the message does not name the file"; }
ls "$mnt/run/checkpoints" > "$work/ls.txt"
[ "$(cat "$work/ls.txt")" = "step-00000002.ckpt" ] || { cat "$work/ls.txt"; fail "expected only the previous checkpoint, intact"; }
cp -r "$mnt/run" "$work/run"
"$cli" resume "$work/run" > "$work/resume.log" 2>&1 || { tail -3 "$work/resume.log"; fail "resume after the full disk"; }
grep -q "finished 200 steps" "$work/resume.log" || fail "resume did not finish"
echo "e2e.disk_full: the full disk was named, the previous checkpoint survived and resumed"
