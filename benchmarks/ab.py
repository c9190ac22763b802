"""A/B: the same benchmark from two checkouts, alternated, in one run.

Each round runs command A (with checkout A first on ``PYTHONPATH``) and then
command B (checkout B), or B then A on odd rounds, so a drift of this VM's
speed hits both equally; the metric is parsed from each run's output by a
regular expression (its first group), and the medians and their ratio B/A are
reported.  Warm-up and JIT time stay inside each benchmark, which already
excludes them.

    python benchmarks/ab.py --a /path/to/old-checkout --b . --rounds 5 \\
        --cmd-a "python benchmarks/bench_render.py --categories 2 --repeat 1 --workers 1 --reference-images 1" \\
        --cmd-b "python benchmarks/bench_render.py --categories 2 --repeat 1 --workers 1 --reference-images 1" \\
        --metric "workers=1: .* ([0-9.]+) images/CPU-s"
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys


def run(tree: str, cmd: str, metric: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    argv = [sys.executable if a == "python" else a for a in shlex.split(cmd)]
    out = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{cmd} in {tree} failed:\n{out.stderr[-2000:]}")
    found = re.search(metric, out.stdout)
    if not found:
        raise SystemExit(f"metric {metric!r} not found in the output of {cmd} in {tree}:\n{out.stdout[-2000:]}")
    return float(found.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="checkout A (the reference, e.g. the previous commit)")
    ap.add_argument("--b", required=True, help="checkout B (the change)")
    ap.add_argument("--cmd-a", required=True, help="command run in A (python = this interpreter)")
    ap.add_argument("--cmd-b", required=True, help="command run in B")
    ap.add_argument("--metric", required=True, help="regex whose first group is the number to compare (higher is better)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    a, b = [], []
    for r in range(args.rounds):
        order = [("A", args.a, args.cmd_a, a), ("B", args.b, args.cmd_b, b)]
        for name, tree, cmd, sink in (order if r % 2 == 0 else order[::-1]):
            sink.append(run(tree, cmd, args.metric))
            print(f"round {r} {name}: {sink[-1]:g}", flush=True)
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"A median {ma:g} (runs {', '.join(f'{x:g}' for x in a)})")
    print(f"B median {mb:g} (runs {', '.join(f'{x:g}' for x in b)})")
    print(f"ratio B/A = {mb / ma:.3f}")


if __name__ == "__main__":
    main()
