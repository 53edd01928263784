#!/usr/bin/env bash
# docs/reproduce_findings.py end to end on a tiny table: `run` trains the listed command in its work directory and
# publishes the result as docs pages (the command as listed, run directories relative), which check_findings.py
# accepts; run again it reuses everything and publishes the same files; `publish` refuses a directory made by
# another command than the one listed, naming the word that differs, and writes nothing then.
set -euo pipefail
cli=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3
tiny="--set data.dataset=synthetic --set data.synthetic_size=160 --set data.image_size=16 --set model.embed_dim=32
--set model.depth=2 --set model.num_heads=2 --set model.decoder_embed_dim=16 --set model.decoder_depth=1
--set model.decoder_num_heads=2 --set optim.batch_size=16 --set probes.every=10 --set probes.samples=4"
tiny=$(echo $tiny)
cat > "$work/commands.txt" <<EOT
# a comment line
tiny-mae: graftlab-cli table --out t --recipes mae --budget tiny --seeds 2 --protocol linear,knn $tiny
EOT
mkdir "$work/docs"
"$py" "$src/docs/reproduce_findings.py" run --cli "$cli" --work "$work/w" --docs "$work/docs" --commands "$work/commands.txt" \
  > "$work/run.out" 2>&1 || { cat "$work/run.out" "$work/w/tiny-mae.log"; fail "run"; }
for f in tiny-mae.md tiny-mae.csv tiny-mae-seeds.csv; do [ -s "$work/docs/$f" ] || { cat "$work/run.out"; fail "$f not published"; }; done
grep -qxF "Command: \`graftlab-cli table --out t --recipes mae --budget tiny --seeds 2 --protocol linear,knn $tiny\`" "$work/docs/tiny-mae.md" \
  || { grep Command "$work/docs/tiny-mae.md"; fail "the page does not state the listed command"; }
"$py" - "$work/docs/tiny-mae-seeds.csv" <<'PY' || fail "run directories"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
dirs = sorted({r["run_dir"] for r in rows})
assert dirs == ["t/mae-seed0", "t/mae-seed1", "t/random_init-seed0", "t/random_init-seed1"], dirs
PY
"$py" "$src/tests/python/check_findings.py" "$work/docs" "$work/docs/tiny-mae.md" > "$work/check.out" \
  || { cat "$work/check.out"; fail "check_findings rejects the published page"; }
# Again: every run and evaluation reused, the same pages.
cp "$work/docs/tiny-mae.md" "$work/first.md"
cp "$work/docs/tiny-mae-seeds.csv" "$work/first-seeds.csv"
"$py" "$src/docs/reproduce_findings.py" run --cli "$cli" --work "$work/w" --docs "$work/docs" --commands "$work/commands.txt" tiny-mae \
  > "$work/run2.out" 2>&1 || { cat "$work/run2.out"; fail "run again"; }
grep -q "reusing the finished run" "$work/w/tiny-mae.log" || fail "runs not reused"
cmp "$work/docs/tiny-mae.md" "$work/first.md" && cmp "$work/docs/tiny-mae-seeds.csv" "$work/first-seeds.csv" || fail "another page the second time"
# Published from wherever it was made (another --out, an absolute path): the listed --out in the page and the paths.
"$py" - "$work" <<'PY'
import sys
w = sys.argv[1]
t = open(f"{w}/commands.txt").read().replace("--out t ", "--out elsewhere ")
open(f"{w}/commands-elsewhere.txt", "w").write(t)
PY
rm "$work/docs/"*
"$py" "$src/docs/reproduce_findings.py" publish tiny-mae "$work/w/t" --docs "$work/docs" --commands "$work/commands-elsewhere.txt" \
  > "$work/pub.out" 2>&1 || { cat "$work/pub.out"; fail "publish"; }
grep -q "^Command: \`graftlab-cli table --out elsewhere --recipes mae" "$work/docs/tiny-mae.md" || fail "the listed --out not stated"
[ "$(grep -c ',elsewhere/' "$work/docs/tiny-mae-seeds.csv")" -eq 12 ] || { cat "$work/docs/tiny-mae-seeds.csv"; fail "run directories not under the listed --out"; }
# Made by another command than the one listed: refused, naming the word, nothing written.
sed 's/--seeds 2/--seeds 3/' "$work/commands.txt" > "$work/commands-3.txt"
rm "$work/docs/"*
if "$py" "$src/docs/reproduce_findings.py" publish tiny-mae "$work/w/t" --docs "$work/docs" --commands "$work/commands-3.txt" > "$work/bad.out" 2>&1; then
  fail "published a table made by another command"
fi
grep -qF "was made by another command than tiny-mae's (word 9: '2' there, '3' listed)" "$work/bad.out" || { cat "$work/bad.out"; fail "the difference not named"; }
[ -z "$(ls "$work/docs")" ] || fail "wrote pages though it refused"
# An unknown name is refused with the names listed.
if "$py" "$src/docs/reproduce_findings.py" run --commands "$work/commands.txt" nosuch > "$work/bad2.out" 2>&1; then fail "ran an unknown name"; fi
grep -q "unknown NAME or option 'nosuch'; the names: tiny-mae" "$work/bad2.out" || { cat "$work/bad2.out"; fail "unknown name message"; }
# A table made a seed at a time: `run --only-seed 1` publishes that seed's part under docs/parts/NAME/ (no page);
# `run` in a fresh work directory takes seed 1 from it, makes seed 0, and publishes a page that says so.
echo "tiny-parts: graftlab-cli table --out p --recipes mae --budget tiny --seeds 2 --protocol knn $tiny" >> "$work/commands.txt"
rm -rf "$work/docs" && mkdir "$work/docs"
"$py" "$src/docs/reproduce_findings.py" run --only-seed 1 --cli "$cli" --work "$work/w1" --docs "$work/docs" --commands "$work/commands.txt" tiny-parts \
  > "$work/part.out" 2>&1 || { cat "$work/part.out" "$work/w1/tiny-parts.log"; fail "run --only-seed"; }
[ -s "$work/docs/parts/tiny-parts/table-part-seed1.json" ] && [ ! -e "$work/docs/tiny-parts.md" ] && [ ! -d "$work/w1/p/mae-seed0" ] \
  || { cat "$work/part.out"; ls -R "$work/docs" "$work/w1/p"; fail "the part not published alone"; }
# `status` says which seeds are left, and how to make them
"$py" "$src/docs/reproduce_findings.py" status --docs "$work/docs" --commands "$work/commands.txt" > "$work/status1.out" 2>&1 || { cat "$work/status1.out"; fail "status"; }
grep -qxF "tiny-parts: not published; part of seed 1 published, seed 0 to make: run --only-seed 0 tiny-parts (or run tiny-parts for all)" "$work/status1.out" \
  && grep -qxF "tiny-mae: not published; no seed's part published; make it: run tiny-mae (or a seed at a time: run --only-seed S tiny-mae)" "$work/status1.out" \
  || { cat "$work/status1.out"; fail "status before the table"; }
"$py" "$src/docs/reproduce_findings.py" run --cli "$cli" --work "$work/w2" --docs "$work/docs" --commands "$work/commands.txt" tiny-parts \
  > "$work/whole.out" 2>&1 || { cat "$work/whole.out" "$work/w2/tiny-parts.log"; fail "run with a part"; }
grep -qF "tiny-parts: seed taken from $work/docs/parts/tiny-parts/table-part-seed1.json" "$work/whole.out" || { cat "$work/whole.out"; fail "the part not gathered"; }
grep -qF "taken from p/table-part-seed1.json" "$work/w2/tiny-parts.log" && [ ! -d "$work/w2/p/mae-seed1" ] && [ -d "$work/w2/p/mae-seed0" ] \
  || { cat "$work/w2/tiny-parts.log"; fail "seed 1 made again"; }
grep -qF "Seed 1 was trained and evaluated by itself (\`--only-seed\`)" "$work/docs/tiny-parts.md" || { cat "$work/docs/tiny-parts.md"; fail "the page does not say so"; }
[ "$(grep -c ',p/mae-seed1$' "$work/docs/tiny-parts-seeds.csv")" -eq 1 ] || { cat "$work/docs/tiny-parts-seeds.csv"; fail "seed 1's run directory"; }
(cd "$work" && "$py" "$src/docs/reproduce_findings.py" status tiny-parts --docs docs --commands commands.txt) > "$work/status2.out" 2>&1 || { cat "$work/status2.out"; fail "status 2"; }
grep -qxF "tiny-parts: published (docs/tiny-parts.md)" "$work/status2.out" || { cat "$work/status2.out"; fail "status after the table"; }
sed 's/--protocol knn/--protocol linear/' "$work/commands.txt" > "$work/commands-other.txt"
(cd "$work" && "$py" "$src/docs/reproduce_findings.py" status tiny-parts --docs docs --commands commands-other.txt) > "$work/status3.out" 2>&1 || { cat "$work/status3.out"; fail "status 3"; }
grep -qxF "tiny-parts: docs/tiny-parts.md was made by another command (word 11: 'knn' there, 'linear' listed); make it again: run tiny-parts" "$work/status3.out" \
  || { cat "$work/status3.out"; fail "status of a page made by another command"; }
cp "$work/commands.txt" "$work/docs/findings-commands.txt"
"$py" "$src/tests/python/check_findings.py" "$work/docs" "$work/docs/tiny-parts.md" > "$work/check2.out" \
  || { cat "$work/check2.out"; fail "check_findings rejects the page made from a part"; }
grep -q "and 1 published parts checked: 0 mismatches" "$work/check2.out" || { cat "$work/check2.out"; fail "the part not checked"; }
# a published part that disagrees with the page's per-seed data, or was made by another command, is named
"$py" - "$work/docs/parts/tiny-parts/table-part-seed1.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["rows"][-1]["report"]["protocols"]["knn"]["top1"] += 0.01
p["command"] = p["command"].replace("--budget tiny", "--budget small")
json.dump(p, open(sys.argv[1], "w"))
PY
if "$py" "$src/tests/python/check_findings.py" "$work/docs" "$work/docs/tiny-parts.md" > "$work/check3.out"; then fail "a wrong part passed"; fi
grep -q "parts/tiny-parts/table-part-seed1.json: mae seed 1 knn: .* here, .* in tiny-parts-seeds.csv" "$work/check3.out" \
  && grep -q "parts/tiny-parts/table-part-seed1.json: made by another command than tiny-parts's (word 7: 'small' there, 'tiny' listed)" "$work/check3.out" \
  || { cat "$work/check3.out"; fail "a wrong part not named"; }
if "$py" "$src/docs/reproduce_findings.py" run --only-seed x --commands "$work/commands.txt" tiny-parts > "$work/bad3.out" 2>&1; then fail "--only-seed x"; fi
grep -qF -- "--only-seed needs a seed number, got 'x'" "$work/bad3.out" || { cat "$work/bad3.out"; fail "--only-seed x message"; }
# a graftlab-cli that is not there: said so, with what to do (not a Python traceback)
if "$py" "$src/docs/reproduce_findings.py" run --cli "$work/no/graftlab-cli" --work "$work/w3" --commands "$work/commands.txt" tiny-parts > "$work/bad4.out" 2>&1; then fail "a missing --cli"; fi
grep -qF "graftlab-cli not found: '$work/no/graftlab-cli' is not an executable file; build it (make build) and pass --cli build/app/graftlab-cli" "$work/bad4.out" \
  && ! grep -q Traceback "$work/bad4.out" || { cat "$work/bad4.out"; fail "a missing --cli not named"; }
echo "reproduce_findings OK"
