"""Category-search benchmark: the official sampler, FractalDB-1k from seed 1.

Times ``fractaldb.families.fractal.search`` for ``--categories`` (default 1000, the published
set: 42,655 candidates) after a warm-up that compiles the kernels, and the
original loop's approach (benchmarks/original_reference.py) on a few
candidates in the same run, extrapolated to the same candidate count.

    python benchmarks/bench_search.py --categories 1000 --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import time

import numpy as np

from fractaldb.ifs.system import to_csv_bytes
from fractaldb.families.fractal.search import SearchConfig, search

import original_reference


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sampler", default="official")
    ap.add_argument("--reference-candidates", type=int, default=5)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    search(SearchConfig(sampler=args.sampler, categories=2, workers=args.workers))  # warm-up / JIT
    walls = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        res = search(SearchConfig(sampler=args.sampler, categories=args.categories, workers=args.workers))
        walls.append(time.perf_counter() - t)
    wall = statistics.median(walls)
    digest = hashlib.sha256(b"".join(to_csv_bytes(c) for c in res.categories)).hexdigest()[:16]
    print(f"fractaldb {args.sampler} search: {args.categories} categories, {res.candidates_tried} candidates, "
          f"median {wall:.1f} s wall ({wall / res.candidates_tried * 1e3:.2f} ms per candidate), "
          f"workers={args.workers}, sha256(all csv)={digest}")

    rs = np.random.RandomState(1)
    times = []
    for _ in range(args.reference_candidates):
        t = time.process_time()
        original_reference.search_candidate(rs)
        times.append(time.process_time() - t)
    per = statistics.median(times)
    ref_total = per * res.candidates_tried
    print(f"reference (original approach): median {per:.3f} s per candidate -> {ref_total / 3600:.2f} h "
          f"for {res.candidates_tried} candidates (one core)")
    print(f"ratio: {ref_total / wall:.0f}x faster wall-clock")


if __name__ == "__main__":
    main()
