#!/usr/bin/env bash
# Exported encoders and features load in Python (Debian's python3-torch) and give the same forward pass.
set -euo pipefail
cli=$1
src=$2
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$py" -c "import torch" 2> /dev/null || { echo "python3-torch is not installed (packaging/debian-packages.txt lists it)"; exit 77; }
"$cli" train --recipe mae --out "$work/run" --steps 3 --set data.dataset=synthetic --set data.synthetic_size=128 \
  --set model.embed_dim=48 --set model.depth=2 --set model.num_heads=3 --set optim.batch_size=16 --set probes.every=0 \
  2> "$work/train.log" || { cat "$work/train.log"; fail "train"; }
ckpt="$work/run/checkpoints/step-00000003.ckpt"
"$cli" export --ckpt "$ckpt" --out "$work/encoder.pt" 2> "$work/export.log" || { cat "$work/export.log"; fail "export"; }
"$cli" embed --ckpt "$ckpt" --split test --out "$work/feats.pt" --with-inputs 2> "$work/embed.log" || { cat "$work/embed.log"; fail "embed"; }
"$py" "$src/tests/python/check_export.py" "$work/encoder.pt" "$work/feats.pt" 3 || fail "python check"
# not a checkpoint: named, exit 2
echo nothing > "$work/bad.ckpt"
set +e
"$cli" export --ckpt "$work/bad.ckpt" --out "$work/x.pt" 2> "$work/bad.log"
code=$?
set -e
[ $code -eq 2 ] && grep -q "bad.ckpt" "$work/bad.log" || { cat "$work/bad.log"; fail "bad checkpoint"; }
echo "e2e.python_export: all checks passed"
