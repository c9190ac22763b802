"""Official-search benchmark towards FractalDB-21k / OFDB-21k: speed and memory over a slice.

The official search is sequential (one MT19937 stream from seed 1): category
1,000 cannot be found without replaying every candidate before it.  This runs
the search from the start to ``--categories`` (default 1,200) after a warm-up
that compiles the kernels, records when each milestone category was accepted,
and reports candidates/s and accepted categories/s overall and on the slice
``--slice-from .. --categories`` (default 1,000 .. 1,200), then extrapolates
21,000 categories at the observed rates.  Memory: the resident set size at
each milestone (the search keeps the accepted categories, never the rejected
candidates: it must grow by O(categories), about a kilobyte each, not by
O(candidates)).

    python benchmarks/bench_search21k.py --categories 1200 --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time

from fractaldb.ifs.system import to_csv_bytes
from fractaldb.families.fractal.search import SearchConfig, search


def rss_mib() -> float:
    """Resident set size of this process, MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=1200)
    ap.add_argument("--slice-from", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", type=int, default=21_000)
    ap.add_argument("--milestones", default="100,200,500,1000")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    search(SearchConfig(categories=2, workers=args.workers))  # warm-up / JIT
    marks = sorted({int(m) for m in args.milestones.split(",")} | {args.slice_from, args.categories})
    seen = {}  # milestone -> (wall s, candidates tried, rss MiB, cpu s), at the first batch that reached it
    start, cpu0 = time.perf_counter(), time.process_time()

    def progress(accepted, tried):
        now = time.perf_counter() - start
        for m in marks:
            if accepted >= m and m not in seen:
                seen[m] = (now, tried, rss_mib(), time.process_time() - cpu0)

    rss0 = rss_mib()
    res = search(SearchConfig(categories=args.categories, workers=args.workers), progress=progress)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    # the exact candidate index of each milestone (progress reports per batch)
    exact = {m: res.candidate_ids[m - 1] + 1 for m in marks}
    print(f"official search, seed 1, workers={args.workers}: {args.categories} categories from "
          f"{res.candidates_tried} candidates in {wall:.1f} s wall, {cpu:.1f} s CPU (all threads; "
          f"{cpu / res.candidates_tried * 1e3:.2f} CPU-ms per candidate); rss before {rss0:.0f} MiB")
    print("| first N categories | candidates | wall s | CPU s | candidates/s | categories/s | rss MiB |")
    print("|---|---|---|---|---|---|---|")
    for m in marks:
        t, _, rss, c = seen[m]
        print(f"| {m:,} | {exact[m]:,} | {t:.1f} | {c:.1f} | {exact[m] / t:,.0f} | {m / t:.1f} | {rss:.0f} |")
    t0, t1 = seen[args.slice_from][0], seen[args.categories][0]
    c0, c1 = exact[args.slice_from], exact[args.categories]
    n = args.categories - args.slice_from
    slice_cands = (c1 - c0) / (t1 - t0)
    slice_cats = n / (t1 - t0)
    print(f"slice {args.slice_from:,}..{args.categories:,}: {c1 - c0:,} candidates in {t1 - t0:.1f} s = "
          f"{slice_cands:,.0f} candidates/s, {slice_cats:.1f} categories/s "
          f"(acceptance {n / (c1 - c0):.2%})")
    overall = args.categories / wall
    print(f"extrapolated {args.target:,} categories: {args.target / overall / 60:.1f} min at the overall rate, "
          f"{args.target / slice_cats / 60:.1f} min at the slice rate "
          f"(~{args.target / res.acceptance_rate:,.0f} candidates at {res.acceptance_rate:.2%} acceptance); "
          f"{args.target / res.acceptance_rate * cpu / res.candidates_tried / 3600:.2f} CPU-hours")
    r0, r1 = seen[marks[0]][2], seen[args.categories][2]
    per_cat = (r1 - r0) * 2**20 / max(args.categories - marks[0], 1)
    per_cand = (r1 - r0) * 2**20 / max(exact[args.categories] - exact[marks[0]], 1)
    print(f"memory: rss {r0:.0f} -> {r1:.0f} MiB from {marks[0]:,} to {args.categories:,} categories "
          f"({per_cat:,.0f} B per category, {per_cand:,.1f} B per candidate)")
    if args.categories >= 1000:
        first = hashlib.sha256(b"".join(to_csv_bytes(c) for c in res.categories[:1000])).hexdigest()[:16]
        print(f"sha256(first 1000 csv)={first} (benchmarks/bench_search.py --categories 1000 prints the same)")


if __name__ == "__main__":
    main()
