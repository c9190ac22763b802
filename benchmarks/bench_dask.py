"""Executor overhead: the same slice with ``--executor local`` and with Dask.

A slice of ``fractaldb-1k`` (original settings, ``--categories`` categories,
1000-image shards) is generated with the local thread pool and with an
embedded Dask ``LocalCluster`` of 1 and 2 single-threaded worker processes,
``workers`` threads / processes each.  Cluster start-up and the first kernel
load are excluded (a warm-up run of each executor).  The local and Dask runs
alternate (local first on even repeats, Dask first on odd ones) so that a
drift of the machine's speed hits both alike; reported are the medians and
the median of the paired time ratios.  Every run's manifest must be
identical (same bytes whatever the executor).

    python benchmarks/bench_dask.py --categories 16 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

from fractaldb import config
from fractaldb.dataset import generate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    cfg = config.resolve("fractaldb-1k", [f"categories={args.categories}"])
    warm = config.resolve("fractaldb-1k", ["categories=1", "shard_size=40"])
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"{args.categories} categories, {args.repeat} paired repeats")
    manifests = set()
    overheads = {}
    with tempfile.TemporaryDirectory() as tmp:
        def once(label, **kw):
            out = os.path.join(tmp, f"{label}-{len(os.listdir(tmp))}")
            t = time.perf_counter()
            m = generate(cfg, out, **kw)
            wall = time.perf_counter() - t
            manifests.add(open(os.path.join(out, "manifest.json"), "rb").read())
            return wall, m["plan"]

        for w in (1, 2):
            with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None, silence_logs=50) as cluster, Client(cluster):
                kinds = {"local": dict(workers=w, executor="local"),
                         "dask": dict(workers=w, executor="dask", scheduler=cluster.scheduler_address)}
                for label, kw in kinds.items():
                    generate(warm, os.path.join(tmp, f"warm-{label}-{w}"), **kw)
                walls = {"local": [], "dask": []}
                for r in range(args.repeat):
                    for label in (("local", "dask") if r % 2 == 0 else ("dask", "local")):
                        wall, plan = once(f"{label}-{w}", **kinds[label])
                        walls[label].append(wall)
                for label in ("local", "dask"):
                    wall = statistics.median(walls[label])
                    print(f"{label:>6} w={w}: {plan['shards']} shards, median {wall:.2f} s "
                          f"(runs {', '.join(f'{x:.2f}' for x in walls[label])}) -> "
                          f"{plan['shards'] / wall:.2f} shards/s, {plan['samples'] / wall:.0f} images/s")
                ratios = [d / loc for d, loc in zip(walls["dask"], walls["local"])]
                overheads[w] = statistics.median(ratios) - 1
    for w, over in overheads.items():
        print(f"dask overhead with {w} worker(s): {over:+.1%} time vs local (median of paired runs)")
    print(f"identical manifests across all runs: {len(manifests) == 1}")


if __name__ == "__main__":
    main()
