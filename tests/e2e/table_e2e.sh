#!/usr/bin/env bash
# `graftlab-cli table` end to end on a tiny budget and the synthetic set: trains, evaluates every protocol,
# writes table.md / table.csv with the MTL run's gradient cosines; a second call reuses the finished runs.
set -euo pipefail
cli=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# (depth 6 as the presets: their per-block lr multipliers name 6 blocks)
tiny=(--set data.dataset=synthetic --set data.synthetic_size=160 --set data.image_size=16 --set model.embed_dim=32
      --set model.depth=6 --set model.num_heads=2 --set model.decoder_embed_dim=16 --set model.decoder_depth=1
      --set model.decoder_num_heads=2 --set moco.hidden_dim=32 --set moco.out_dim=16 --set optim.batch_size=16
      --set probes.every=10 --set probes.samples=4)
"$cli" table --out "$work/t" --recipes mae,mtl,mim_to_cl --budget tiny "${tiny[@]}" > "$work/out.md" 2> "$work/log" \
  || { cat "$work/log"; fail "table"; }
[ -f "$work/t/table.md" ] && [ -f "$work/t/table.csv" ] || fail "table files missing"
for m in "MAE" "MTL (MAE + MoCo v3)" "MIM → CL"; do grep -qF "| $m | 20 |" "$work/t/table.md" || { cat "$work/t/table.md"; fail "row $m"; }; done
grep -q "Gradient cosine between the MIM and CL losses" "$work/t/table.md" || fail "MTL gradient cosines missing"
grep -q "| blocks.5 |" "$work/t/table.md" || fail "per-block cosine rows"
[ "$(wc -l < "$work/t/table.csv")" -eq 4 ] || fail "csv rows"
python3 - "$work/t/table.csv" <<'PY' || fail "csv values"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["recipe"] for r in rows] == ["mae", "mtl", "mim_to_cl"], rows
for r in rows:
    for k in ("linear", "fewshot", "knn", "finetune"):
        v = float(r[k]); assert 0 <= v <= 100 and math.isfinite(v), (k, r)
PY
[ -f "$work/t/mim_to_cl/checkpoints/eval.json" ] || fail "eval.json beside the checkpoint"
# again: the finished runs are reused, not retrained
"$cli" table --out "$work/t" --recipes mae --budget tiny "${tiny[@]}" > /dev/null 2> "$work/log2" || { cat "$work/log2"; fail "table again"; }
grep -q "reusing the finished run" "$work/log2" || { cat "$work/log2"; fail "finished run not reused"; }
echo "e2e.table: all checks passed"
