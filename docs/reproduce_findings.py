#!/usr/bin/env python3
"""Remakes the tables of docs/FINDINGS.md and publishes them into docs/.

    python3 docs/reproduce_findings.py list
    python3 docs/reproduce_findings.py status [NAME ...]
    python3 docs/reproduce_findings.py run [--cli PATH] [--work DIR] [--no-publish] [--only-seed S] [NAME ...]
    python3 docs/reproduce_findings.py publish NAME DIR
  (each also takes --commands FILE, default docs/findings-commands.txt, and --docs DIR, default docs/)

The commands are those of docs/findings-commands.txt (NAME: COMMAND). `run` runs the named ones (all without a name)
one after another in the work directory (default ~/GraftLab/findings; graftlab-cli from PATH, or --cli): each
resumes where it stopped (finished runs and stored evaluations are reused), so a stopped `run` is continued by
running it again. Each finished command's result is then published: `publish` copies DIR's table.md, table.csv
and table-seeds.csv (table-meanpool.* for --pool mean; sweep.* for a sweep) to docs/NAME.md, NAME.csv and
NAME-seeds.csv, with the page's command written as listed and the run directories made relative to the work
directory (DIR's own name replaced by the listed --out). DIR may have been made anywhere (another --out, another
path to the binary); any other difference from the listed command is refused, naming it.

A table too long for one sitting is made a seed at a time: `run --only-seed S NAME` runs the listed command with
--only-seed S (that seed's runs and evaluations only) and publishes its part file as docs/parts/NAME/<stem>-part-seedS.json.
`run NAME` first copies the parts published there into the work directory's --out, so the table takes those seeds
from them and makes only the others; publishing the table then states which seeds came from parts.

`status` says for each listed command (or those named) what docs/ holds: its page published by the listed command,
a page made by another command (the first word that differs), or no page yet, and for a table the seeds whose parts
are published and the `run` that makes the rest.
"""
import csv, io, os, re, shlex, shutil, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
COMMANDS = os.path.join(HERE, "findings-commands.txt")


def read_commands(path=COMMANDS):
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, cmd = line.partition(": ")
            if not sep or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                raise SystemExit(f"{path}:{n}: expected NAME: COMMAND")
            args = shlex.split(cmd)
            if len(args) < 2 or args[0] != "graftlab-cli" or args[1] not in ("table", "sweep") or "--out" not in args:
                raise SystemExit(f"{path}:{n}: expected a graftlab-cli table or sweep command with --out")
            if name in out:
                raise SystemExit(f"{path}:{n}: {name} is listed twice")
            out[name] = cmd
    return out


def option(args, name):
    i = args.index(name)
    return args[i + 1] if i + 1 < len(args) else None


def outputs(args):
    """The stem of the files a command writes into its --out: table, table-meanpool or sweep."""
    if args[1] == "sweep":
        return "sweep"
    return "table-meanpool" if "--pool" in args and option(args, "--pool") == "mean" else "table"


def normalised(tokens, out_name):
    """A command's words with the binary as graftlab-cli and --out as out_name."""
    t = list(tokens)
    t[0] = "graftlab-cli"
    if "--out" in t:
        t[t.index("--out") + 1] = out_name
    return t


def page_command(md_text):
    m = re.search(r"^Command: `(.*)`\s*$", md_text, re.M)
    return m.group(1) if m else None


def first_difference(there, listed):
    """Where two commands' words first differ, in the words of the refusals: "word 7: 'a' there, 'b' listed"."""
    return next((f"word {i}: {a!r} there, {b!r} listed" for i, (a, b) in enumerate(zip(there, listed)) if a != b),
                f"{len(there)} words there, {len(listed)} listed")


def part_seed(stem, filename):
    """The seed of a part file's name (<stem>-part-seedS.json), or None for another file."""
    m = re.fullmatch(re.escape(stem) + r"-part-seed(-?[0-9]+)\.json", filename)
    return int(m.group(1)) if m else None


def parts_dir(docs, name):
    return os.path.join(docs, "parts", name)


def gather_parts(name, cmd, work, docs):
    """Copies NAME's published parts into the work directory's --out (a part already there is kept)."""
    listed = shlex.split(cmd)
    src = parts_dir(docs, name)
    if not os.path.isdir(src):
        return []
    out = os.path.join(work, option(listed, "--out"))
    os.makedirs(out, exist_ok=True)
    copied = []
    for f in sorted(os.listdir(src)):
        if part_seed(outputs(listed), f) is not None and not os.path.exists(os.path.join(out, f)):
            shutil.copyfile(os.path.join(src, f), os.path.join(out, f))
            copied.append(f)
    return copied


def publish_part(name, cmd, work, seed, docs):
    listed = shlex.split(cmd)
    f = f"{outputs(listed)}-part-seed{seed}.json"
    part = os.path.join(work, option(listed, "--out"), f)
    if not os.path.exists(part):
        raise SystemExit(f"{part} does not exist: seed {seed} has not finished there")
    os.makedirs(parts_dir(docs, name), exist_ok=True)
    shutil.copyfile(part, os.path.join(parts_dir(docs, name), f))
    print(f"published {part} as {os.path.join(parts_dir(docs, name), f)}")


def table_seeds(name, listed):
    """The seeds a table command makes: --seed S (default 0) and the --seeds N after it."""
    try:
        first = int(option(listed, "--seed")) if "--seed" in listed else 0
        n = int(option(listed, "--seeds")) if "--seeds" in listed else 1
    except (TypeError, ValueError):
        raise SystemExit(f"{name}: its --seed and --seeds must be numbers")
    return list(range(first, first + n))


def status(name, cmd, docs):
    """One line on what docs/ holds of NAME (see `status` above)."""
    listed = shlex.split(cmd)
    page = os.path.join(docs, name + ".md")
    if os.path.exists(page):
        made = page_command(open(page, encoding="utf-8").read())
        if made is not None and shlex.split(made) == listed:
            return f"{name}: published ({os.path.relpath(page)})"
        diff = first_difference(shlex.split(made), listed) if made is not None else "it names no command"
        return f"{name}: {os.path.relpath(page)} was made by another command ({diff}); make it again: run {name}"
    if listed[1] != "table":
        return f"{name}: not published; make it: run {name}"
    src = parts_dir(docs, name)
    have = {part_seed(outputs(listed), f) for f in os.listdir(src)} if os.path.isdir(src) else set()
    seeds = table_seeds(name, listed)
    done = [s for s in seeds if s in have]
    left = [s for s in seeds if s not in have]
    words = lambda ss: ", ".join(str(s) for s in ss)
    plural = lambda ss: "s" if len(ss) > 1 else ""
    if not done:
        return f"{name}: not published; no seed's part published; make it: run {name} (or a seed at a time: run --only-seed S {name})"
    if not left:
        return f"{name}: not published; every seed's part published ({words(done)}); make the table from them: run {name}"
    return (f"{name}: not published; part{plural(done)} of seed{plural(done)} {words(done)} published, seed{plural(left)} "
            f"{words(left)} to make: " + ", ".join(f"run --only-seed {s} {name}" for s in left) + f" (or run {name} for all)")


def publish(name, cmd, src, docs):
    listed = shlex.split(cmd)
    out_name = option(listed, "--out")
    stem = outputs(listed)
    files = {suffix: os.path.join(src, stem + suffix) for suffix in (".md", ".csv", "-seeds.csv")}
    for f in files.values():
        if not os.path.exists(f):
            raise SystemExit(f"{f} does not exist: the command has not finished there")
    md = open(files[".md"], encoding="utf-8").read()
    made = page_command(md)
    if made is None:
        raise SystemExit(f"{files['.md']} names no command")
    # The page states the command as the binary received it (words joined by spaces, so split on spaces).
    made_words = normalised(made.split(" "), out_name)
    if made_words != listed:
        diff = first_difference(made_words, listed)
        raise SystemExit(f"{src} was made by another command than {name}'s ({diff})")
    made_out = made.split(" ")[made.split(" ").index("--out") + 1]
    md = md.replace(f"Command: `{made}`", f"Command: `{cmd}`").replace(f"in {stem}-seeds.csv", f"in {name}-seeds.csv")
    # Run directories: the path the command wrote (absolute or relative to where it ran) -> OUT/run.
    with open(files["-seeds.csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or "run_dir" not in rows[0]:
        raise SystemExit(f"{files['-seeds.csv']} has no run_dir column")
    col = rows[0].index("run_dir")
    prefixes = {made_out.rstrip("/") + "/", os.path.abspath(src).rstrip("/") + "/", os.path.realpath(src).rstrip("/") + "/"}
    for r in rows[1:]:
        if len(r) != len(rows[0]):
            raise SystemExit(f"{files['-seeds.csv']}: a line with {len(r)} fields, the header has {len(rows[0])}")
        p = next((p for p in prefixes if r[col].startswith(p)), None)
        if p is None:
            raise SystemExit(f"{files['-seeds.csv']}: run directory {r[col]!r} is not under {src}")
        r[col] = out_name + "/" + r[col][len(p):]
    seeds = io.StringIO()
    csv.writer(seeds, lineterminator="\n").writerows(rows)
    os.makedirs(docs, exist_ok=True)
    target = os.path.join(docs, name)
    with open(target + ".md", "w", encoding="utf-8") as f:
        f.write(md)
    with open(files[".csv"], encoding="utf-8") as f, open(target + ".csv", "w", encoding="utf-8") as g:
        g.write(f.read())
    with open(target + "-seeds.csv", "w", encoding="utf-8") as f:
        f.write(seeds.getvalue())
    print(f"published {src} as {target}.md, .csv, -seeds.csv")


def main(argv):
    if len(argv) < 2 or argv[1] not in ("list", "status", "run", "publish"):
        print(__doc__)
        return 2
    what, rest = argv[1], argv[2:]
    commands_file, docs = COMMANDS, HERE
    for flag in ("--commands", "--docs"):
        if flag in rest:
            i = rest.index(flag)
            if i + 1 >= len(rest):
                raise SystemExit(f"{flag} needs a value")
            if flag == "--commands":
                commands_file = rest[i + 1]
            else:
                docs = rest[i + 1]
            rest = rest[:i] + rest[i + 2:]
    commands = read_commands(commands_file)
    if what == "list":
        for name, cmd in commands.items():
            print(f"{name}: {cmd}")
        return 0
    if what == "status":
        unknown = [n for n in rest if n not in commands]
        if unknown:
            raise SystemExit(f"unknown NAME {unknown[0]!r}; the names: {', '.join(commands)}")
        for name in rest or list(commands):
            print(status(name, commands[name], docs))
        return 0
    if what == "publish":
        if len(rest) != 2 or rest[0] not in commands:
            raise SystemExit(f"publish NAME DIR: NAME one of {', '.join(commands)}")
        publish(rest[0], commands[rest[0]], rest[1], docs)
        return 0
    cli, work, do_publish, names, only = "graftlab-cli", os.path.expanduser("~/GraftLab/findings"), True, [], None
    i = 0
    while i < len(rest):
        if rest[i] in ("--cli", "--work", "--only-seed") and i + 1 < len(rest):
            if rest[i] == "--cli":
                cli = os.path.abspath(rest[i + 1]) if os.sep in rest[i + 1] else rest[i + 1]
            elif rest[i] == "--only-seed":
                if not re.fullmatch(r"[0-9]+", rest[i + 1]):
                    raise SystemExit(f"--only-seed needs a seed number, got {rest[i + 1]!r}")
                only = rest[i + 1]
            else:
                work = rest[i + 1]
            i += 2
        elif rest[i] == "--no-publish":
            do_publish, i = False, i + 1
        elif rest[i] in commands:
            names.append(rest[i])
            i += 1
        else:
            raise SystemExit(f"unknown NAME or option {rest[i]!r}; the names: {', '.join(commands)}")
    if shutil.which(cli) is None:
        raise SystemExit(f"graftlab-cli not found: {cli!r} is " + ("not an executable file" if os.sep in cli else "not on PATH")
                         + "; build it (make build) and pass --cli build/app/graftlab-cli, or install the package")
    os.makedirs(work, exist_ok=True)
    for name in names or list(commands):
        args = shlex.split(commands[name])
        args[0] = cli
        if only is not None:
            if args[1] != "table":
                raise SystemExit(f"{name}: --only-seed makes a seed of a table; {name} is a {args[1]}")
            args += ["--only-seed", only]
        else:
            for f in gather_parts(name, commands[name], work, docs):
                print(f"{name}: seed taken from {os.path.join(parts_dir(docs, name), f)}", flush=True)
        log = os.path.join(work, name + ".log")
        print(f"{name}: {' '.join(args)}  (log: {log})", flush=True)
        with open(log, "a", encoding="utf-8") as f:
            child = subprocess.Popen(args, cwd=work, stdout=f, stderr=subprocess.STDOUT)
            try:
                rc = child.wait()
            except KeyboardInterrupt:  # Ctrl+C reached the table too: it stops with a checkpoint; wait for it
                rc = child.wait()
                print(f"{name}: stopped (Ctrl+C); run the same again to continue. Its log: {log}", file=sys.stderr)
                return 130
        if rc != 0:
            print(f"{name}: exit status {rc}; its log: {log}. Run the same again to continue.", file=sys.stderr)
            return rc
        if do_publish and only is not None:
            publish_part(name, commands[name], work, only, docs)
        elif do_publish:
            publish(name, commands[name], os.path.join(work, option(args, "--out")), docs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
