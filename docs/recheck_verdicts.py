#!/usr/bin/env python3
"""Re-checks the verdicts of the 3-seed tables in docs/ with Welch's t-test at 5 % (two-sided) and Holm's
correction over each table's comparisons: the test `graftlab-cli table` applies where rows do not share seeds.
These tables were made before the table kept per-seed results, so the paired test it now applies (seed s sets both
rows' randomness) cannot be redone from them; Welch's test from the published mean, sd and n is what can.
Usage: python3 docs/recheck_verdicts.py docs/table1-xlarge-mae-3seeds.csv ... > docs/verdicts-rechecked.md"""
import csv, math, sys

def betacf(a, b, x):
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h

def ibeta(a, b, x):
    if x <= 0: return 0.0
    if x >= 1: return 1.0
    lf = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2): return math.exp(lf) * betacf(a, b, x) / a
    return 1.0 - math.exp(lf) * betacf(b, a, 1 - x) / b

def t_p(t, df):  # two-sided
    return ibeta(df / 2, 0.5, df / (df + t * t))

def welch(m1, s1, n1, m2, s2, n2):
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    se = math.sqrt(v1 + v2)
    diff = m1 - m2
    if se == 0: return diff, 0.0, float("inf"), (0.0 if diff else 1.0)
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1)) if v1 + v2 > 0 else n1 + n2 - 2
    return diff, se, df, t_p(diff / se, df)

def holm(ps, alpha=0.05):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out = [False] * len(ps)
    for k, i in enumerate(order):
        if ps[i] > alpha / (len(ps) - k): break
        out[i] = True
    return out

LABEL = {"linear": "Linear", "fewshot": "1%", "knn": "k-NN", "finetune": "Fine-tuning"}

def main(files):
    print("# The 3-seed tables' verdicts, re-checked with Welch's t-test\n")
    print("Made by `python3 docs/recheck_verdicts.py " + " ".join(files) + "`. Each table's comparisons: every method "
          "against each baseline and every pair of methods, on every protocol it has; Welch's two-sided t-test at 5 % "
          "from the published mean, sample sd and n = 3 (the per-seed values of these tables were not kept, so the paired "
          "test the table now applies cannot be redone); † = also significant after Holm's correction over the table's "
          "comparisons. The old rule, \"beyond twice the standard error\", is shown beside it.\n")
    for f in files:
        rows = list(csv.DictReader(open(f)))
        comps = []
        methods = [r for r in rows if r["baseline"] == "0"]
        bases = [r for r in rows if r["baseline"] == "1"]
        for p in LABEL:
            have = lambda r: r.get(p, "") not in ("", None)
            pairs = [(m, b) for m in methods for b in bases] + [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
            for a, b in pairs:
                if not (have(a) and have(b)): continue
                n1, n2 = int(a["seeds"]), int(b["seeds"])
                d, se, df, pv = welch(float(a[p]), float(a[p + "_sd"]), n1, float(b[p]), float(b[p + "_sd"]), n2)
                if d < 0: a, b, d = b, a, -d
                comps.append((p, a["recipe"], b["recipe"], d, se, df, pv))
        h = holm([c[6] for c in comps])
        print(f"## {f.split('/')[-1]} ({len(comps)} comparisons)\n")
        print("| Protocol | Higher | Lower | Difference ± se (points) | Welch df | p | at 5 % | > 2 se (old rule) |")
        print("|---|---|---|---:|---:|---:|---|---|")
        for (p, a, b, d, se, df, pv), hv in zip(comps, h):
            verdict = ("yes" + (" †" if hv else "")) if pv < 0.05 else "no"
            old = "yes" if d > 2 * se else "no"
            print(f"| {LABEL[p]} | {a} | {b} | +{d:.2f} ± {se:.2f} | {df:.1f} | {pv:.3f} | {verdict} | {old} |")
        print()

if __name__ == "__main__":
    main(sys.argv[1:])
