#!/usr/bin/env bash
# `graftlab-cli table` end to end on a tiny budget and the synthetic set: trains, evaluates every protocol, writes
# table.md / table.csv with the baselines (random-init encoder, raw pixels) and the MTL run's gradient cosines;
# with --seeds 2 each cell is the mean ± sd of the per-seed results that eval.json holds; a second call reuses a
# finished run only when its recipe is the one asked for, and every evaluation the first call made.
set -euo pipefail
cli=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3
# (depth 6 as the presets: their per-block lr multipliers name 6 blocks)
tiny=(--set data.dataset=synthetic --set data.synthetic_size=160 --set data.image_size=16 --set model.embed_dim=32
      --set model.depth=6 --set model.num_heads=2 --set model.decoder_embed_dim=16 --set model.decoder_depth=1
      --set model.decoder_num_heads=2 --set moco.hidden_dim=32 --set moco.out_dim=16 --set optim.batch_size=16
      --set probes.every=10 --set probes.samples=4)
"$cli" table --out "$work/t" --recipes mae,mtl,mim_to_cl --budget tiny --seeds 2 "${tiny[@]}" > "$work/out.md" 2> "$work/log" \
  || { cat "$work/log"; fail "table"; }
[ -f "$work/t/table.md" ] && [ -f "$work/t/table.csv" ] || fail "table files missing"
for m in "MAE" "MTL (MAE + MoCo v3)" "MIM → CL"; do grep -qF "| $m | 20 |" "$work/t/table.md" || { cat "$work/t/table.md"; fail "row $m"; }; done
for m in "*Random-init encoder (baseline)* | 0 |" "*Raw pixels (baseline)* | 0 |"; do
  grep -qF "| $m" "$work/t/table.md" || { cat "$work/t/table.md"; fail "baseline row $m"; }
done
grep -q "mean ± standard deviation over 2 seeds" "$work/t/table.md" || fail "seeds not stated"
grep -q "^- Linear: above both baselines: " "$work/t/table.md" || fail "no statement of what exceeds the noise"
# and, between the methods, either the pairs that differ significantly (paired t-test, Holm marked) or that there are none
grep -A4 "^Between the methods" "$work/t/table.md" | grep -qE "^- Linear: (none: no difference is significant at 5 %|.+ > .+ \(\+[0-9.]+ ± [0-9.]+, p [=<] [0-9.]+†?\))" \
  || { cat "$work/t/table.md"; fail "no statement of which methods differ significantly"; }
grep -qE "^Tests: [0-9]+ comparisons, each two-sided at 5 %; rows that share their seeds are compared seed by seed \(paired t-test on the per-seed differences, 1 degree of freedom\)\. † marks" "$work/t/table.md" \
  || { cat "$work/t/table.md"; fail "the tests and their number are not stated"; }
grep -qF "| Method | Steps | Train time | Train TFLOP |" "$work/t/table.md" || fail "no compute beside the steps"
grep -q "Gradient cosine between the MIM and CL losses" "$work/t/table.md" || fail "MTL gradient cosines missing"
grep -q "| blocks.5 |" "$work/t/table.md" || fail "per-block cosine rows"
for d in mae-seed0 mae-seed1 mtl-seed0 mim_to_cl-seed1 random_init-seed0 random_init-seed1; do [ -d "$work/t/$d" ] || fail "no run $d"; done
# Each cell is the mean and sample sd of what the per-seed runs' eval.json files hold, recomputed here.
"$py" - "$work/t" <<'PY' || fail "table values"
import csv, glob, json, math, os, statistics, sys
t = sys.argv[1]
rows = {r["recipe"]: r for r in csv.DictReader(open(os.path.join(t, "table.csv")))}
assert list(rows) == ["random_init", "scratch_equal_steps", "raw_pixels", "mae", "mtl", "mim_to_cl"], list(rows)
for key in ["random_init", "mae", "mtl", "mim_to_cl"]:
    evals = []
    for d in sorted(glob.glob(os.path.join(t, key + "-seed*"))):
        e = json.load(open(os.path.join(d, "checkpoints", "eval.json")))
        assert len(e) == 1, e.keys()
        evals.append(next(iter(e.values())))
    assert len(evals) == 2, key
    assert rows[key]["seeds"] == "2"
    for p in ("linear", "fewshot", "knn", "finetune"):
        v = [100 * x["protocols"][p]["top1"] for x in evals]
        mean, sd = float(rows[key][p]), float(rows[key][p + "_sd"])
        assert abs(mean - statistics.mean(v)) < 1e-3, (key, p, mean, v)
        assert abs(sd - statistics.stdev(v)) < 1e-3, (key, p, sd, v)
px = rows["raw_pixels"]
assert px["finetune"] == "" and px["baseline"] == "1" and px["method"] == "raw pixels", px
for p in ("linear", "knn"):
    assert 20 < float(px[p]) <= 100, (p, px)  # ten synthetic classes: pixels are well above chance (1% = 2 labels is not)
assert px["fewshot"] != "", px
# The fair scratch baselines: random init fine-tuned without layer-wise decay and with its own warm-up, and the same
# for the pretraining's steps too (20 + 10); the pretrained rows keep decay 0.75.
store = json.load(open(os.path.join(t, "evaluations.json")))
ft = {}
for entry in store.values():
    r = entry.get("report", entry)
    d = r["protocols"].get("finetune", {}).get("details") if "protocols" in r else None
    if d: ft.setdefault((os.path.basename(os.path.dirname(os.path.dirname(r["checkpoint"]))), d["steps"]), []).append(d)
for seed in ("0", "1"):
    ri = ft[("random_init-seed" + seed, 10)]
    assert all(d["layer_decay"] == 1.0 and d["warmup_steps"] == 20 for d in ri), ri
    long = ft[("random_init-seed" + seed, 30)]
    assert all(d["layer_decay"] == 1.0 for d in long), long
    assert all(d["layer_decay"] == 0.75 for d in ft[("mae-seed" + seed, 10)])
sc = rows["scratch_equal_steps"]
assert sc["finetune"] != "" and sc["linear"] == "" and sc["baseline"] == "1" and sc["seeds"] == "2", sc
# Compute beside steps, and every seed's result published: table-seeds.csv holds what the cells summarise.
for key in ["mae", "mtl", "mim_to_cl"]:
    assert float(rows[key]["train_seconds"]) > 0 and int(rows[key]["train_flops"]) > 0, rows[key]
assert int(rows["mtl"]["train_flops"]) > int(rows["mae"]["train_flops"]), "MTL runs MAE and MoCo v3 a step"
seeds = list(csv.DictReader(open(os.path.join(t, "table-seeds.csv"))))
assert len(seeds) == 3 * 2 * 4 + 2 * 4 + 2 * 1 + 2 * 3, len(seeds)
for key in ["random_init", "scratch_equal_steps", "raw_pixels", "mae", "mtl", "mim_to_cl"]:
    for p in ("linear", "fewshot", "knn", "finetune"):
        v = [float(s["top1"]) for s in seeds if s["recipe"] == key and s["protocol"] == p]
        if rows[key][p] == "":
            assert not v, (key, p)
            continue
        assert sorted(s["seed"] for s in seeds if s["recipe"] == key and s["protocol"] == p) == ["0", "1"], (key, p)
        assert abs(statistics.mean(v) - float(rows[key][p])) < 1e-3 and abs(statistics.stdev(v) - float(rows[key][p + "_sd"])) < 1e-3, (key, p, v)
print("table values OK")
PY
[ -f "$work/t/mim_to_cl-seed0/checkpoints/eval.json" ] || fail "eval.json beside the checkpoint"
# The same command again: every run and every evaluation (3 recipes + random init + scratch + pixels, 2 seeds each) is
# reused from what the first call stored (DIR/evaluations.json), and the table is the same.
cp "$work/t/table.csv" "$work/table-first.csv"
"$cli" table --out "$work/t" --recipes mae,mtl,mim_to_cl --budget tiny --seeds 2 "${tiny[@]}" > /dev/null 2> "$work/log-again" \
  || { cat "$work/log-again"; fail "table again"; }
[ "$(grep -c "reusing the evaluation stored in $work/t/evaluations.json" "$work/log-again")" -eq 12 ] \
  || { cat "$work/log-again"; fail "evaluations not reused"; }
# each evaluation counted as it starts, in the order made: 1 of 12 ... 12 of 12
[ "$(grep -o "evaluation [0-9]* of [0-9]* (seed [0-9])" "$work/log-again" | cut -d' ' -f2,4 | tr '\n' ' ')" = \
  "1 12 2 12 3 12 4 12 5 12 6 12 7 12 8 12 9 12 10 12 11 12 12 12 " ] || { cat "$work/log-again"; fail "evaluations not counted"; }
cmp "$work/t/table.csv" "$work/table-first.csv" || fail "another table from the stored evaluations"
# --pool mean in the same directory: the runs reused, the encoder rows (random init included) evaluated again on the
# mean of their patch tokens into table-meanpool.*, the pixels' evaluations reused (pixels are not pooled); the cls
# table and the runs' own eval.json (cls) are left as they were.
cp "$work/t/mim_to_cl-seed0/checkpoints/eval.json" "$work/eval-cls.json"
"$cli" table --out "$work/t" --recipes mae,mtl,mim_to_cl --budget tiny --seeds 2 --pool mean "${tiny[@]}" > /dev/null 2> "$work/log-mean" \
  || { cat "$work/log-mean"; fail "table --pool mean"; }
cmp "$work/t/table.csv" "$work/table-first.csv" || fail "the cls table was changed by --pool mean"
cmp "$work/t/mim_to_cl-seed0/checkpoints/eval.json" "$work/eval-cls.json" || fail "a run's eval.json was changed by --pool mean"
[ -f "$work/t/table-meanpool.md" ] && [ -f "$work/t/table-meanpool.csv" ] && [ -f "$work/t/table-meanpool-seeds.csv" ] \
  || { ls "$work/t"; fail "no table-meanpool files"; }
grep -q "the mean of the encoder's patch tokens (--pool mean)" "$work/t/table-meanpool.md" || fail "the pooling is not stated"
grep -q "wrote $work/t/table-meanpool.md" "$work/log-mean" || { cat "$work/log-mean"; fail "the log names another file"; }
[ "$(grep -c "reusing the finished run" "$work/log-mean")" -eq 8 ] || { cat "$work/log-mean"; fail "runs not reused"; }
[ "$(grep -c "reusing the evaluation stored" "$work/log-mean")" -eq 2 ] && grep -c "raw_pixels: reusing the evaluation stored" "$work/log-mean" | grep -qx 2 \
  || { cat "$work/log-mean"; fail "only the pixels' evaluations are the cls table's"; }
"$py" - "$work/t" <<'PY' || fail "mean-pooled table values"
import csv, json, os, statistics, sys
t = sys.argv[1]
cls = {r["recipe"]: r for r in csv.DictReader(open(os.path.join(t, "table.csv")))}
mean = {r["recipe"]: r for r in csv.DictReader(open(os.path.join(t, "table-meanpool.csv")))}
assert list(mean) == list(cls), list(mean)
for p in ("linear", "fewshot", "knn"):
    assert mean["raw_pixels"][p] == cls["raw_pixels"][p], p
# every encoder row's cells are the means of the mean-pooled evaluations in the store, one per seed
store = [json.loads(k) | {"report": v} for k, v in json.load(open(os.path.join(t, "evaluations.json"))).items()]
for key in ("random_init", "mae", "mtl", "mim_to_cl"):
    reps = [e["report"] for e in store if e["pooling"] == "mean" and e["features"] == "encoder"
            and os.path.basename(os.path.dirname(os.path.dirname(e["checkpoint"]))).startswith(key + "-seed")
            and "linear" in e["protocols"]]  # (not the longer scratch row's fine-tuning alone)
    assert len(reps) == 2, (key, len(reps))
    assert all(r["pooling"] == "mean" for r in reps), key
    for p in ("linear", "knn", "finetune"):
        v = [100 * r["protocols"][p]["top1"] for r in reps]
        assert abs(statistics.mean(v) - float(mean[key][p])) < 1e-3, (key, p, v, mean[key][p])
print("mean-pooled table OK")
PY
# --jobs 2: every run trained by a job of its own (1 of the 2 cores each: threads 1 in its recipe.json), then the
# table evaluates them here, reusing each; the table is whole.
"$cli" table --out "$work/j" --recipes mae,mocov3 --budget tiny --seeds 2 --no-baselines --jobs 2 "${tiny[@]}" > /dev/null 2> "$work/logj" \
  || { cat "$work/logj"; fail "table --jobs 2"; }
grep -q "training 4 runs in 2 jobs side by side" "$work/logj" || { cat "$work/logj"; fail "no jobs started"; }
for d in mae-seed0 mae-seed1 mocov3-seed0 mocov3-seed1; do
  grep -q '"threads": 1,' "$work/j/$d/recipe.json" || { cat "$work/logj"; fail "$d was not trained by a job"; }
  grep -q "reusing the finished run in $work/j/$d\$" "$work/logj" || { cat "$work/logj"; fail "$d not reused by the table"; }
done
[ "$(grep -cE '^(mae|mocov3),[^,]*,0,20,16,2,[0-9]' "$work/j/table.csv")" -eq 2 ] || { cat "$work/j/table.csv"; fail "table after --jobs"; }
# --only-seed: each seed made by itself (as on two machines: seed 1 with --jobs 2) into a part file and no table;
# the parts gathered in a third directory make the table with the same command, nothing trained or evaluated again,
# cell for cell the table made whole above; a seed the table does not have, or a part of another table, is refused.
for seed in 1 0; do
  "$cli" table --out "$work/o$seed" --recipes mae,mocov3 --budget tiny --seeds 2 --no-baselines --jobs 2 --only-seed $seed "${tiny[@]}" \
    > /dev/null 2> "$work/logo$seed" || { cat "$work/logo$seed"; fail "table --only-seed $seed"; }
  [ -f "$work/o$seed/table-part-seed$seed.json" ] && [ ! -f "$work/o$seed/table.md" ] && [ ! -d "$work/o$seed/mae-seed$((1 - seed))" ] \
    || { ls "$work/o$seed"; fail "--only-seed $seed made more than its part"; }
  grep -q "training 2 runs in 2 jobs side by side" "$work/logo$seed" || { cat "$work/logo$seed"; fail "--only-seed with --jobs"; }
  grep -qF "seed $seed of the table made: wrote $work/o$seed/table-part-seed$seed.json" "$work/logo$seed" || { cat "$work/logo$seed"; fail "part not named"; }
done
mkdir "$work/gathered"
cp "$work/o0/table-part-seed0.json" "$work/o1/table-part-seed1.json" "$work/gathered/"
"$cli" table --out "$work/gathered" --recipes mae,mocov3 --budget tiny --seeds 2 --no-baselines --jobs 2 "${tiny[@]}" > /dev/null 2> "$work/logg" \
  || { cat "$work/logg"; fail "table from parts"; }
[ "$(grep -c "taken from $work/gathered/table-part-seed" "$work/logg")" -eq 2 ] && ! grep -qE "training|evaluation [0-9]" "$work/logg" \
  || { cat "$work/logg"; fail "the parts were not used, or something was made again"; }
# every column but the train time (the machines' own) is the whole table's
cmp <(cut -d, -f1-15,17- "$work/gathered/table.csv") <(cut -d, -f1-15,17- "$work/j/table.csv") || { cat "$work/gathered/table.csv" "$work/j/table.csv"; fail "parts' table differs"; }
grep -qF "Seeds 0, 1 were each trained and evaluated by themselves (\`--only-seed\`)" "$work/gathered/table.md" || { cat "$work/gathered/table.md"; fail "parts not stated"; }
set +e
"$cli" table --out "$work/gathered" --recipes mae,mocov3 --budget tiny --seeds 2 --no-baselines --only-seed 2 "${tiny[@]}" > /dev/null 2> "$work/logo2"; code=$?
set -e
[ $code -eq 2 ] && grep -qF -- "--only-seed 2 is not one of the table's seeds (0 to 1)" "$work/logo2" || { cat "$work/logo2"; fail "a seed outside the table"; }
set +e
"$cli" table --out "$work/gathered" --recipes mae,mocov3 --budget tiny --seeds 2 --no-baselines "${tiny[@]}" --set optim.base_lr=0.002 > /dev/null 2> "$work/logo3"; code=$?
set -e
[ $code -ne 0 ] && grep -qF "$work/gathered/table-part-seed0.json: is a part of another table: recipes.0.recipe.optim.base_lr" "$work/logo3" \
  || { cat "$work/logo3"; fail "a part of another table was used"; }
# Again with one seed and the same recipe: reused. With another batch size: that is another recipe, trained again.
"$cli" table --out "$work/u" --recipes mae --budget tiny --no-baselines "${tiny[@]}" > /dev/null 2> "$work/log2" || { cat "$work/log2"; fail "table u"; }
"$cli" table --out "$work/u" --recipes mae --budget tiny --no-baselines "${tiny[@]}" > /dev/null 2> "$work/log3" || { cat "$work/log3"; fail "table again"; }
grep -q "reusing the finished run" "$work/log3" || { cat "$work/log3"; fail "finished run not reused"; }
# Another thread count is how the run ran, not what it trained: still reused (seeds trained side by side).
"$cli" table --out "$work/u" --recipes mae --budget tiny --no-baselines "${tiny[@]}" --set threads=1 > /dev/null 2> "$work/log3t" \
  || { cat "$work/log3t"; fail "table with threads=1"; }
grep -q "reusing the finished run" "$work/log3t" || { cat "$work/log3t"; fail "a run was trained again for another thread count"; }
# Nor is where the views were made; and a run written before a field existed (recipe.json without it) is the same
# recipe with that field's default.
python3 - "$work/u/mae/recipe.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
del r["data"]["augment_on"], r["train"]["precision"]  # fields a run of an earlier version lacks
json.dump(r, open(sys.argv[1], "w"), indent=2)
PY
"$cli" table --out "$work/u" --recipes mae --budget tiny --no-baselines "${tiny[@]}" --set data.augment_on=cpu > /dev/null 2> "$work/log3a" \
  || { cat "$work/log3a"; fail "table with data.augment_on=cpu"; }
grep -q "reusing the finished run" "$work/log3a" || { cat "$work/log3a"; fail "a run of an older recipe.json (or other augment_on) was trained again"; }
"$cli" table --out "$work/u" --recipes mae --budget tiny --no-baselines "${tiny[@]}" --set optim.batch_size=8 > /dev/null 2> "$work/log4" \
  || { cat "$work/log4"; fail "table with another batch"; }
grep -q "holds a run of another recipe (or budget): optim.batch_size (16 there, 8 now); moved it to $work/u/mae.replaced-1" "$work/log4" \
  && ! grep -q "reusing the finished run" "$work/log4" || { cat "$work/log4"; fail "a run of another recipe was reused"; }
grep -q '"batch_size": 8' "$work/u/mae/recipe.json" || fail "the retrained run does not have the new recipe"
# ... and the run that was there is kept whole beside it, never overwritten.
grep -q '"batch_size": 16' "$work/u/mae.replaced-1/recipe.json" && ls "$work/u/mae.replaced-1/checkpoints/"step-*.ckpt > /dev/null \
  || fail "the earlier run was not kept in mae.replaced-1"
# --protocol: only those columns are evaluated (fine-tuning left out: the longest evaluation at large budgets);
# the others stay empty and the table says so; an unknown protocol is named and exits 2.
"$cli" table --out "$work/p" --recipes mae --budget tiny --protocol linear,knn "${tiny[@]}" > /dev/null 2> "$work/logp" \
  || { cat "$work/logp"; fail "table --protocol"; }
"$py" - "$work/p/table.csv" <<'PY' || { cat "$work/p/table.md"; fail "table --protocol columns"; }
import csv, sys
rows = {r["recipe"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert list(rows) == ["random_init", "raw_pixels", "mae"], list(rows)
for r in rows.values():
    assert r["linear"] != "" and r["knn"] != "" and r["fewshot"] == "" and r["finetune"] == "", r
PY
grep -q "fine-tuning not run (--protocol)" "$work/p/table.md" || fail "table --protocol: footnote"
! grep -q "^- Fine-tuning:" "$work/p/table.md" || fail "table --protocol: a statement on a column not evaluated"
set +e
"$cli" table --out "$work/p2" --recipes mae --budget tiny --protocol linear,probe "${tiny[@]}" > /dev/null 2> "$work/logp2"; code=$?
set -e
[ $code -eq 2 ] && grep -q -- '--protocol: unknown protocol "probe"' "$work/logp2" || { cat "$work/logp2"; fail "a bad --protocol was not named"; }
# A sweep over two keys: a run per combination with that recipe, a table whose cells are those runs' eval.json,
# a heat map; the same command reuses the runs; a grid value the recipe refuses is named and exits 2.
sweep=(--set data.dataset=synthetic --set data.synthetic_size=160 --set data.image_size=16 --set model.embed_dim=32
       --set model.depth=2 --set model.num_heads=2 --set optim.batch_size=16 --set probes.every=0)
"$cli" sweep --recipe mae --out "$work/s" --grid optim.base_lr=1e-3,4e-3 --grid mae.mask_ratio=0.5,0.75 --budget tiny \
  "${sweep[@]}" > /dev/null 2> "$work/sweep.log" || { cat "$work/sweep.log"; fail "sweep"; }
"$py" - "$work/s" <<'PY' || fail "sweep values"
import csv, json, os, sys
s = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(s, "sweep.csv"))))
assert [(r["optim.base_lr"], r["mae.mask_ratio"]) for r in rows] == [("1e-3", "0.5"), ("1e-3", "0.75"), ("4e-3", "0.5"), ("4e-3", "0.75")], rows
index = json.load(open(os.path.join(s, "sweep.json")))
assert len(index["runs"]) == 4
for r, name in zip(rows, index["runs"]):
    recipe = json.load(open(os.path.join(s, name, "recipe.json")))
    assert abs(recipe["optim"]["base_lr"] - float(r["optim.base_lr"])) < 1e-12 and abs(recipe["mae"]["mask_ratio"] - float(r["mae.mask_ratio"])) < 1e-12, (name, recipe["optim"], recipe["mae"])
    e = next(iter(json.load(open(os.path.join(s, name, "checkpoints", "eval.json"))).values()))
    for p in ("linear", "knn"):
        assert abs(float(r[p]) - 100 * e["protocols"][p]["top1"]) < 0.051, (name, p, r[p], e["protocols"][p])
seeds = list(csv.DictReader(open(os.path.join(s, "sweep-seeds.csv"))))
assert len(seeds) == 4 * 2, len(seeds)
for r in rows:
    for p in ("linear", "knn"):
        [x] = [x for x in seeds if x["optim.base_lr"] == r["optim.base_lr"] and x["mae.mask_ratio"] == r["mae.mask_ratio"] and x["protocol"] == p]
        assert abs(float(x["top1"]) - float(r[p])) < 0.051 and x["seed"] == "0" and float(x["train_seconds"]) > 0 and float(x["train_flops"]) > 0, x
assert open(os.path.join(s, "sweep.md")).read().startswith("| optim.base_lr | mae.mask_ratio | linear | knn | Train time | Train TFLOP |\n|---|---|---:|---:|---:|---:|\n")
svg = open(os.path.join(s, "sweep.svg")).read()
assert svg.count("<rect") == 4 and "mae.mask_ratio (columns)" in svg
print("sweep values OK")
PY
"$cli" sweep --recipe mae --out "$work/s" --grid optim.base_lr=1e-3,4e-3 --grid mae.mask_ratio=0.5,0.75 --budget tiny \
  "${sweep[@]}" > /dev/null 2> "$work/sweep2.log" || { cat "$work/sweep2.log"; fail "sweep again"; }
[ "$(grep -c "reusing the finished run" "$work/sweep2.log")" -eq 4 ] || { cat "$work/sweep2.log"; fail "sweep runs not reused"; }
[ "$(grep -c "reusing the evaluation stored" "$work/sweep2.log")" -eq 4 ] || { cat "$work/sweep2.log"; fail "sweep evaluations not reused"; }
[ "$(grep -o "evaluation [0-9]* of [0-9]*" "$work/sweep2.log" | tr '\n' ' ')" = "evaluation 1 of 4 evaluation 2 of 4 evaluation 3 of 4 evaluation 4 of 4 " ] \
  || { cat "$work/sweep2.log"; fail "sweep evaluations not counted"; }
# sweep --jobs 2: each grid point trained by a job (threads 1), then evaluated here; the same table and index.
"$cli" sweep --recipe mae --out "$work/sj" --grid optim.base_lr=1e-3,4e-3 --grid mae.mask_ratio=0.5,0.75 --budget tiny \
  "${sweep[@]}" --jobs 2 > /dev/null 2> "$work/sweepj.log" || { cat "$work/sweepj.log"; fail "sweep --jobs 2"; }
grep -q "training 4 runs in 2 jobs side by side" "$work/sweepj.log" || { cat "$work/sweepj.log"; fail "sweep: no jobs started"; }
[ "$(grep -c "reusing the finished run" "$work/sweepj.log")" -eq 4 ] || { cat "$work/sweepj.log"; fail "sweep --jobs: runs not reused"; }
[ "$(grep -l '"threads": 1,' "$work"/sj/*/recipe.json | wc -l)" -eq 4 ] || fail "sweep --jobs: a point was not trained by a job"
cmp <(cut -d, -f1,2 "$work/s/sweep.csv") <(cut -d, -f1,2 "$work/sj/sweep.csv") || fail "sweep --jobs: another table"
"$py" -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); assert a['runs']==b['runs'], (a['runs'], b['runs'])" \
  "$work/s/sweep.json" "$work/sj/sweep.json" || fail "sweep --jobs: another index"
# sweep --seeds 2 (with --jobs 2): every point trained with seeds 0 and 1 in its own run, cells mean ± sd, every
# seed's result in sweep-seeds.csv, and the points tested against the best one, seed by seed.
"$cli" sweep --recipe mae --out "$work/ss" --grid optim.base_lr=1e-3,4e-3 --budget tiny --seeds 2 --jobs 2 \
  "${sweep[@]}" > /dev/null 2> "$work/sweeps.log" || { cat "$work/sweeps.log"; fail "sweep --seeds 2"; }
grep -q "training 4 runs in 2 jobs side by side" "$work/sweeps.log" || { cat "$work/sweeps.log"; fail "sweep --seeds: not 4 runs"; }
"$py" - "$work/ss" <<'PY' || fail "sweep --seeds values"
import csv, json, os, statistics, sys
s = sys.argv[1]
index = json.load(open(os.path.join(s, "sweep.json")))
assert index["runs"] == ["optim.base_lr=1e-3-seed0", "optim.base_lr=1e-3-seed1", "optim.base_lr=4e-3-seed0", "optim.base_lr=4e-3-seed1"], index["runs"]
seeds = list(csv.DictReader(open(os.path.join(s, "sweep-seeds.csv"))))
assert len(seeds) == 2 * 2 * 2, len(seeds)
rows = list(csv.DictReader(open(os.path.join(s, "sweep.csv"))))
assert [r["optim.base_lr"] for r in rows] == ["1e-3", "4e-3"], rows
for r in rows:
    for p in ("linear", "knn"):
        per = []
        for seed in (0, 1):
            run = os.path.join(s, "optim.base_lr=%s-seed%d" % (r["optim.base_lr"], seed))
            assert json.load(open(os.path.join(run, "recipe.json")))["seed"] == seed, run
            e = next(iter(json.load(open(os.path.join(run, "checkpoints", "eval.json"))).values()))
            [x] = [x for x in seeds if x["optim.base_lr"] == r["optim.base_lr"] and x["seed"] == str(seed) and x["protocol"] == p]
            assert abs(float(x["top1"]) - 100 * e["protocols"][p]["top1"]) < 1e-3 and x["run_dir"].endswith("-seed%d" % seed), (x, e)
            per.append(100 * e["protocols"][p]["top1"])
        assert abs(float(r[p]) - statistics.mean(per)) < 0.051 and abs(float(r[p + "_sd"]) - statistics.stdev(per)) < 0.051, (r, per)
md = open(os.path.join(s, "sweep.md")).read()
assert "mean ± sample standard deviation over 2 seeds (0–1;" in md and "paired t-test on the per-seed differences, 1 degree of freedom" in md, md
assert "- linear: highest mean optim.base_lr=" in md and "- knn: highest mean optim.base_lr=" in md, md
assert "(mean ± sd over 2 seeds)" in open(os.path.join(s, "sweep.svg")).read()
print("sweep --seeds OK")
PY
set +e
"$cli" sweep --recipe mae --out "$work/s2" --grid mae.mask_ratio=0.5,1.5 --budget tiny "${sweep[@]}" > /dev/null 2> "$work/sweep3.log"; code=$?
set -e
[ $code -eq 2 ] && grep -q "mae.mask_ratio" "$work/sweep3.log" || { cat "$work/sweep3.log"; fail "a bad grid value was not named"; }
# --graft-steps: MIM → CL grafted onto the table's MAE run of the same seed, trained by jobs of whole seeds; its
# Steps cell counts both; without the MAE recipe the usage error names it.
"$cli" table --out "$work/g" --recipes mim_to_cl,mae --budget tiny --seeds 2 --jobs 2 --graft-steps 4 --protocol knn \
  --no-baselines "${tiny[@]}" > /dev/null 2> "$work/graft.log" || { cat "$work/graft.log"; fail "table --graft-steps"; }
grep -q "training 2 runs in 2 jobs side by side" "$work/graft.log" || { cat "$work/graft.log"; fail "graft: a job per seed"; }
grep -qF "| MIM → CL | 20 + 4 |" "$work/g/table.md" || { cat "$work/g/table.md"; fail "graft: steps cell"; }
for s in 0 1; do
  "$py" - "$work/g" $s <<'PY' || fail "graft: seed $s not grafted onto its own MAE run"
import json, os, sys
g, s = sys.argv[1], sys.argv[2]
st = json.load(open(os.path.join(g, f"mim_to_cl-seed{s}", "recipe.json")))["stages"]
assert len(st) == 1 and st[0]["method"] == "mocov3" and st[0]["init"] == "checkpoint", st
assert st[0]["checkpoint"].endswith(f"mae-seed{s}/checkpoints/step-00000020.ckpt"), st[0]["checkpoint"]
PY
done
set +e
"$cli" table --out "$work/g2" --recipes mim_to_cl --budget tiny --graft-steps 4 "${tiny[@]}" > /dev/null 2> "$work/graft2.log"; code=$?
set -e
[ $code -eq 2 ] && grep -q "mim_to_cl starts with a mae stage" "$work/graft2.log" || { cat "$work/graft2.log"; fail "graft: missing source not named"; }
# Ctrl-C (SIGINT) during a table's or a sweep's fine-tuning: it stops at its next step with its state kept beside
# evaluations.json (it used to run all its steps first: 52,000 at xlarge), and the same command continues it.
# sigint_finetune WHAT DIR COMMAND...: runs COMMAND (its --out DIR), SIGINTs it once its first state is saved, checks
# the stop and the continuation; sets $at to the step it stopped at.
sigint_finetune() {
  local what=$1 dir=$2 rc=0 pid
  shift 2
  "$cli" "$@" > /dev/null 2> "$dir.log" &
  pid=$!
  for _ in $(seq 1 2400); do compgen -G "$dir/.evaluations.json-finetune-*.state" > /dev/null && break; sleep 0.05; done
  compgen -G "$dir/.evaluations.json-finetune-*.state" > /dev/null || { kill -9 $pid; cat "$dir.log"; fail "$what: no fine-tuning state"; }
  kill -INT $pid 2> /dev/null || fail "$what: it ended before the SIGINT"
  wait $pid || rc=$?
  at=$(grep -o "fine-tuning stopped at step [0-9]* of 200: its state is kept" "$dir.log" | grep -o "[0-9]* of" | grep -o "[0-9]*" || true)
  [ $rc -eq 1 ] && [ -n "$at" ] || { cat "$dir.log"; fail "$what: SIGINT during fine-tuning (status $rc, step '$at')"; }
  "$cli" "$@" > /dev/null 2> "$dir.again.log" || { cat "$dir.again.log"; fail "$what after SIGINT"; }
  grep -q "continuing the fine-tuning from step $at of 200" "$dir.again.log" || { cat "$dir.again.log"; fail "$what: not continued from step $at"; }
}
sigint_finetune table "$work/ts" table --out "$work/ts" --recipes mae --budget small --protocol finetune --no-baselines "${tiny[@]}"
grep -q "stopped; run the same command again" "$work/ts.log" || { cat "$work/ts.log"; fail "table: the stop not said"; }
tat=$at
sigint_finetune sweep "$work/ss2" sweep --recipe mae --out "$work/ss2" --grid mae.mask_ratio=0.75 --budget small --protocol finetune "${sweep[@]}"
echo "e2e.table: all checks passed (SIGINT at fine-tuning step $tat of a table, $at of a sweep)"
