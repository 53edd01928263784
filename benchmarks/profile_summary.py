#!/usr/bin/env python3
"""Ops of a Chrome trace (graftlab-cli bench --profile FILE) by self time: where a training step goes.

    python3 benchmarks/profile_summary.py trace.json [--top 25]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    text = open(a.trace).read().strip()
    if not text.endswith("]"):
        text = text.rstrip(",\n") + "]"
    events = [e for e in json.loads(text) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    self_time = collections.Counter()
    calls = collections.Counter()
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                self_time[stack[-1]["name"]] -= e["dur"]
            self_time[e["name"]] += e["dur"]
            calls[e["name"]] += 1
            stack.append(e)
    total = sum(self_time.values())
    print(f"{'op':<48} {'self ms':>10} {'share':>7} {'calls':>8}")
    for name, us in self_time.most_common(a.top):
        print(f"{name[:48]:<48} {us / 1000:10.1f} {100 * us / total:6.1f}% {calls[name]:8d}")
    print(f"{'all ops':<48} {total / 1000:10.1f}")


if __name__ == "__main__":
    main()
