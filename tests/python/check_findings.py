#!/usr/bin/env python3
"""Checks that the tables of a findings page state what their CSV files hold (a stale figure is a bug).

Every markdown table with an accuracy column (Linear, 1%, k-NN, Fine-tuning) must be preceded, on the line before
it or the one before that, by a marker naming its data:

    <!-- cells: table1-medium-3seeds.csv -->
    <!-- cells: lr-search-small.csv; grid: lower x upper; values: linear / knn -->

A methods table: each row is found in the CSV by its recipe key or the name `graftlab-cli table` prints for it
(bold, italics and backticks aside; "MIM → CL (any note)" is the row MIM → CL), and every cell must be the CSV's
value as the table prints it: mean ± sample sd to one decimal (a one-seed table: the mean), "–" where the CSV has
none; Steps ("a + b" for a grafted row: their sum), Seeds, Train time (as "43 s", "3.6 min", "36 min") and Train
TFLOP (three significant figures) likewise. A grid table (a sweep over two keys): a row per value of the first key,
a column per value of the second, each cell the listed protocols' values separated by " / ".
Each `NAME-seeds.csv` beside a `NAME.csv` must agree with it: every row's mean and sample sd recomputed from the
per-seed values. Exit status 1 with every mismatch listed (file, line, cell, stated, expected).
A table's own page (`NAME.md` beside `NAME.csv`, as `graftlab-cli table` writes them) needs no marker; a sweep's
(protocol columns named linear, knn, ... after the grid's key columns) is checked point by point against its CSV.
Every table page must state the command docs/findings-commands.txt lists for it (docs/reproduce_findings.py).
Every published part of a table made a seed at a time (docs/parts/NAME/<stem>-part-seedS.json, `table --only-seed S`)
must belong to a listed table, hold seed S, have been made by the listed command with --only-seed S (binary and
--out aside), and, once NAME-seeds.csv is published, agree with it value for value.
Usage: check_findings.py DOCS_DIR [PAGE.md ...]   (pages: DOCS_DIR/FINDINGS.md and every NAME.md with a NAME.csv)"""
import csv, json, math, os, re, shlex, sys
from collections import defaultdict

PROTOCOLS = {"Linear": "linear", "1%": "fewshot", "k-NN": "knn", "Fine-tuning": "finetune"}
DISPLAY = {"mae": "MAE", "mocov3": "MoCo v3", "mtl": "MTL (MAE + MoCo v3)", "cl_to_mim": "CL → MIM",
           "mim_to_cl": "MIM → CL", "layer_grafted": "Layer Grafted", "conmim": "ConMIM",
           "random_init": "Random-init encoder (baseline)", "raw_pixels": "Raw pixels (baseline)",
           "scratch_equal_steps": "From scratch, equal total steps (baseline)"}
MARKER = re.compile(r"<!--\s*cells:\s*(.*?)\s*-->")

errors = []


def fail(where, msg):
    errors.append(f"{where}: {msg}")


def plain(cell):
    return re.sub(r"[*`]", "", cell).strip()


def row_cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def one_decimal(x):
    """The ways the table code may have printed x to one decimal: the CSV keeps 4 decimals, so a value that sits on a
    tie there (0.9500, 78.6500) may have been just above or below it before (0.95002 -> "1.0", 0.78649999 -> "78.6")."""
    lo, hi = math.floor(x * 10) / 10, math.ceil(x * 10) / 10
    if abs(x * 10 - math.floor(x * 10) - 0.5) < 1e-3:
        return {f"{lo:.1f}", f"{hi:.1f}"}
    return {f"{x:.1f}"}


def expect_accuracy(where, stated, mean, sd, seeds):
    stated = plain(stated)
    if mean is None:
        if stated not in ("–", "-", ""):
            fail(where, f"states {stated!r}, the CSV has no value")
        return
    if seeds <= 1 or sd is None:
        wants = one_decimal(mean)
    else:
        wants = {f"{m} ± {s}" for m in one_decimal(mean) for s in one_decimal(sd)}
    if stated not in wants:
        fail(where, f"states {stated!r}, the CSV gives {' or '.join(sorted(wants))!r}")


def minutes(seconds):
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def tera(flops):
    t = flops / 1e12
    return f"{t:.0f}" if t >= 1000 else f"{t:.3g}"


def expect_printed(where, stated, value, printer, what):
    """A compute cell: "–" where the CSV has none (a baseline), else the value as the table code prints it."""
    stated = plain(stated)
    if value is None or value <= 0:
        if stated not in ("–", "-"):
            fail(where, f"states {stated!r}, the CSV has no {what}")
        return
    if stated != printer(value):
        fail(where, f"states {stated!r}, the CSV's {what} ({value:g}) print as {printer(value)!r}")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def find_row(name, rows):
    n = plain(name)
    for r in rows:
        key = r.get("recipe", "")
        shown = DISPLAY.get(key, key)
        if n in (key, shown) or n.startswith(shown + " (") or n.startswith(key + " ("):
            return r
    return None


def check_methods_table(where, header, body, rows):
    cols = [plain(h) for h in header]
    for line_no, cells in body:
        name = cells[0]
        r = find_row(name, rows)
        at = f"{where}:{line_no}"
        if r is None:
            fail(at, f"row {plain(name)!r} is not in the CSV")
            continue
        seeds = int(num(r.get("seeds")) or 1)
        for col, cell in zip(cols[1:], cells[1:]):
            here = f"{at} [{plain(name)} / {col}]"
            if col in PROTOCOLS:
                p = PROTOCOLS[col]
                expect_accuracy(here, cell, num(r.get(p)), num(r.get(p + "_sd")), seeds)
            elif col == "Steps":
                parts = [num(x) for x in plain(cell).split("+")]
                if None in parts or abs(sum(parts) - (num(r.get("steps")) or 0)) > 0.5:
                    fail(here, f"states {plain(cell)!r}, the CSV gives {r.get('steps')} steps")
            elif col == "Seeds":
                if num(plain(cell)) != num(r.get("seeds")):
                    fail(here, f"states {plain(cell)!r}, the CSV gives {r.get('seeds')} seeds")
            elif col == "Train time" and "train_seconds" in r:
                expect_printed(here, cell, None if r.get("baseline") == "1" else num(r.get("train_seconds")), minutes, "training time")
            elif col == "Train TFLOP" and "train_flops" in r:
                expect_printed(here, cell, None if r.get("baseline") == "1" else num(r.get("train_flops")), tera, "FLOPs")


def check_grid_table(where, header, body, rows, row_key, col_key, protocols):
    col_values = [plain(h) for h in header[1:]]
    seeds = 3 if any(p + "_sd" in rows[0] for p in protocols) else 1
    for line_no, cells in body:
        rv = plain(cells[0])
        for cv, cell in zip(col_values, cells[1:]):
            here = f"{where}:{line_no} [{row_key}={rv}, {col_key}={cv}]"
            match = [r for r in rows if num(r.get(row_key)) == num(rv) and num(r.get(col_key)) == num(cv)]
            if len(match) != 1:
                fail(here, f"{len(match)} CSV rows have these values")
                continue
            stated = [s.strip() for s in plain(cell).split("/")]
            if len(stated) != len(protocols):
                fail(here, f"states {plain(cell)!r}, expected {len(protocols)} values ({' / '.join(protocols)})")
                continue
            for p, s in zip(protocols, stated):
                expect_accuracy(f"{here} {p}", s, num(match[0].get(p)), num(match[0].get(p + "_sd")), seeds)


def check_sweep_table(where, header, body, rows):
    """A sweep's own page: a row per grid point (its values in the key columns before the first protocol column),
    each protocol cell mean ± sd as the sweep's CSV holds them."""
    cols = [plain(h) for h in header]
    first = next(i for i, c in enumerate(cols) if c in PROTOCOLS.values())
    keys = cols[:first]
    if any(k not in rows[0] for k in keys):
        fail(where, f"key columns {keys} are not all columns of its CSV")
        return
    for line_no, cells in body:
        point = [plain(c) for c in cells[:first]]
        at = f"{where}:{line_no} [{', '.join(f'{k}={v}' for k, v in zip(keys, point))}]"
        match = [r for r in rows if all(num(r[k]) == num(v) if num(v) is not None else r[k] == v for k, v in zip(keys, point))]
        if len(match) != 1:
            fail(at, f"{len(match)} CSV rows have these values")
            continue
        r = match[0]
        seeds = 2 if any(p + "_sd" in r for p in PROTOCOLS.values()) else 1  # several: cells are mean ± sd
        for col, cell in zip(cols[first:], cells[first:]):
            if col in PROTOCOLS.values():
                expect_accuracy(f"{at} {col}", cell, num(r.get(col)), num(r.get(col + "_sd")), seeds)


def check_page(docs, page):
    with open(page, encoding="utf-8") as f:
        lines = f.read().split("\n")
    name = os.path.basename(page)
    tables = 0
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip())):
            i += 1
            continue
        header = row_cells(lines[i])
        start = i
        body = []
        i += 2
        while i < len(lines) and lines[i].startswith("|"):
            body.append((i + 1, row_cells(lines[i])))
            i += 1
        is_grid = "\\" in header[0]
        is_sweep = any(plain(h) in PROTOCOLS.values() for h in header)  # a sweep's page: protocols by their keys
        if not is_grid and not is_sweep and not any(plain(h) in PROTOCOLS for h in header):
            continue
        tables += 1
        marker = None
        for back in (1, 2):
            if start - back >= 0:
                m = MARKER.search(lines[start - back])
                if m:
                    marker = m.group(1)
                    break
        where = f"{name}:{start + 1}"
        if marker is None and os.path.exists(os.path.join(docs, name[:-3] + ".csv")):
            marker = name[:-3] + ".csv"  # a table's own page (table1-medium-3seeds.md): its CSV beside it
        if marker is None:
            fail(where, "a table of accuracies without a `<!-- cells: FILE.csv -->` marker naming its data")
            continue
        fields = [x.strip() for x in marker.split(";")]
        path = os.path.join(docs, fields[0])
        if not os.path.exists(path):
            fail(where, f"its data {fields[0]} does not exist in {docs}")
            continue
        rows = read_csv(path)
        if not rows:
            fail(where, f"its data {fields[0]} holds no row")
            continue
        notes = [(k.strip(), v.strip()) for k, v in (x.split(":", 1) for x in fields[1:] if ":" in x)]
        opts = dict(notes)
        if is_sweep:
            check_sweep_table(where, header, body, rows)
        elif "grid" in opts:
            axes = [x.strip() for x in opts["grid"].split(" x ")]
            if len(axes) != 2 or any(a not in rows[0] for a in axes):
                fail(where, f"marker's grid {opts['grid']!r} is not two columns of {fields[0]} (\"ROW_KEY x COLUMN_KEY\")")
                continue
            row_key, col_key = axes
            protocols = [x.strip() for x in opts.get("values", "linear").split("/")]
            check_grid_table(where, header, body, rows, row_key, col_key, protocols)
        else:
            check_methods_table(where, header, body, rows)
    return tables


def decimals_tolerance(text):
    """Half a unit of the last decimal the means file printed (4 in a table's CSV, 1 in a sweep's)."""
    d = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10 ** -d + 1e-9


def check_seed_files(docs):
    checked = 0
    for f in sorted(os.listdir(docs)):
        if not f.endswith("-seeds.csv"):
            continue
        means_path = os.path.join(docs, f[: -len("-seeds.csv")] + ".csv")
        if not os.path.exists(means_path):
            fail(f, "per-seed data without its table's CSV beside it")
            continue
        seeds_rows = read_csv(os.path.join(docs, f))
        if not seeds_rows or "seed" not in seeds_rows[0]:
            fail(f, "no seed column")
            continue
        if any(None in r for r in seeds_rows):
            fail(f, "a line has more fields than the header (an unquoted comma)")
            continue
        means = read_csv(means_path)
        if not means:
            fail(f, f"{os.path.basename(means_path)} holds no row")
            continue
        columns = list(seeds_rows[0].keys())
        # what names a row: the columns before "seed" that the means file has too (recipe, method, baseline; a
        # sweep's keys)
        key_cols = [c for c in columns[: columns.index("seed")] if c in means[0]]
        per = defaultdict(list)
        for r in seeds_rows:
            per[tuple(r[c] for c in key_cols) + (r["protocol"],)].append(float(r["top1"]))
        for r in means:
            name = "/".join(r[c] for c in key_cols)
            for p in PROTOCOLS.values():
                if p not in r:
                    continue
                values = per.get(tuple(r[c] for c in key_cols) + (p,), [])
                m = num(r.get(p))
                if m is None:
                    if values:
                        fail(f, f"{name} {p}: {len(values)} seeds, no mean in {os.path.basename(means_path)}")
                    continue
                if "seeds" in r and len(values) != int(num(r.get("seeds")) or 0) or not values:
                    fail(f, f"{name} {p}: {len(values)} seeds, the table says {r.get('seeds', 'some')}")
                    continue
                mean = sum(values) / len(values)
                sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
                sd_text = r.get(p + "_sd") or "0"
                if abs(mean - m) > decimals_tolerance(r[p]) or abs(sd - float(sd_text)) > decimals_tolerance(sd_text):
                    fail(f, f"{name} {p}: the seeds give {mean:.4f} ± {sd:.4f}, "
                            f"{os.path.basename(means_path)} says {r.get(p)} ± {r.get(p + '_sd')}")
                checked += 1
    return checked


def read_listed(docs):
    """docs/findings-commands.txt as {NAME: COMMAND}; None without the file."""
    path = os.path.join(docs, "findings-commands.txt")
    if not os.path.exists(path):
        return None
    listed = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, cmd = line.partition(": ")
                listed[name] = cmd
    return listed


def check_commands(docs):
    """Every table page NAME.md (beside NAME.csv) states the command docs/findings-commands.txt lists for NAME, so
    that docs/reproduce_findings.py remakes what the page shows."""
    listed = read_listed(docs)
    if listed is None:
        return 0
    checked = 0
    for f in sorted(os.listdir(docs)):
        if not f.endswith(".md") or not os.path.exists(os.path.join(docs, f[:-3] + ".csv")):
            continue
        name = f[:-3]
        with open(os.path.join(docs, f), encoding="utf-8") as page:
            m = re.search(r"^Command: `(.*)`\s*$", page.read(), re.M)
        if not m:
            fail(f, "a table page without its \"Command: `...`\" line")
        elif name not in listed:
            fail(f, f"its command is not listed in findings-commands.txt as {name}: docs/reproduce_findings.py cannot remake it")
        elif m.group(1) != listed[name]:
            fail(f, f"states the command {m.group(1)!r}, findings-commands.txt lists {listed[name]!r}")
        checked += 1
    return checked


def check_parts(docs):
    """docs/parts/NAME/*.json: parts of the listed table NAME, made by its command, agreeing with NAME-seeds.csv."""
    root = os.path.join(docs, "parts")
    if not os.path.isdir(root):
        return 0
    listed = read_listed(docs) or {}
    checked = 0
    for name in sorted(os.listdir(root)):
        where = os.path.join("parts", name)
        if name not in listed:
            fail(where, "not a table listed in findings-commands.txt")
            continue
        words = shlex.split(listed[name])
        stem = "table-meanpool" if "--pool" in words and words[words.index("--pool") + 1] == "mean" else "table"
        seeds_csv = os.path.join(docs, name + "-seeds.csv")
        published = {}
        if os.path.exists(seeds_csv):
            for r in read_csv(seeds_csv):
                published[(r["recipe"], r["seed"], r["protocol"])] = float(r["top1"])
        for f in sorted(os.listdir(os.path.join(root, name))):
            w = os.path.join(where, f)
            m = re.fullmatch(re.escape(stem) + r"-part-seed(-?[0-9]+)\.json", f)
            if not m:
                fail(w, f"not a part of {name} ({stem}-part-seedS.json)")
                continue
            try:
                part = json.load(open(os.path.join(root, name, f), encoding="utf-8"))
                seed, made, rows = part["seed"], part["command"].split(" "), part["rows"]
            except (ValueError, KeyError, TypeError) as e:
                fail(w, f"not a table part: {e}")
                continue
            if part.get("graftlab_table_part") != 1 or str(seed) != m.group(1):
                fail(w, f"holds seed {seed}, its name says {m.group(1)}")
            # the command as made: binary and --out aside, --only-seed S removed
            if "--only-seed" in made:
                i = made.index("--only-seed")
                if made[i + 1:i + 2] != [m.group(1)]:
                    fail(w, f"made with --only-seed {made[i + 1:i + 2]}, not {m.group(1)}")
                made = made[:i] + made[i + 2:]
            else:
                fail(w, "its command has no --only-seed")
            made[0] = "graftlab-cli"
            if "--out" in made and "--out" in words:
                made[made.index("--out") + 1] = words[words.index("--out") + 1]
            if made != words:
                diff = next((f"word {i}: {a!r} there, {b!r} listed" for i, (a, b) in enumerate(zip(made, words)) if a != b),
                            f"{len(made)} words there, {len(words)} listed")
                fail(w, f"made by another command than {name}'s ({diff})")
            for r in rows:
                for proto, res in r.get("report", {}).get("protocols", {}).items():
                    key = (r["key"], str(r["seed"]), proto)
                    if published and key not in published:
                        fail(w, f"{r['key']} seed {r['seed']} {proto}: not in {name}-seeds.csv")
                    elif published and abs(published[key] - 100 * res["top1"]) > 1e-3:
                        fail(w, f"{r['key']} seed {r['seed']} {proto}: {100 * res['top1']:.4f} here, {published[key]} in {name}-seeds.csv")
            checked += 1
    return checked


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    docs = argv[1]
    pages = argv[2:] or [os.path.join(docs, "FINDINGS.md")] + sorted(
        os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md") and os.path.exists(os.path.join(docs, f[:-3] + ".csv")))
    tables = sum(check_page(docs, p) for p in pages)
    cells = check_seed_files(docs)
    commands = check_commands(docs)
    parts = check_parts(docs)
    for e in errors:
        print(e)
    if tables == 0:
        print("no table of accuracies found: nothing was checked")
        return 1
    print(f"{tables} tables, {cells} per-seed means, {commands} pages' commands and {parts} published parts checked: "
          f"{len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
