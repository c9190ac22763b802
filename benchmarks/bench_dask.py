"""Executor overhead: the same slice with ``--executor local`` and with Dask.

A slice of ``fractaldb-1k`` (original settings, ``--categories`` categories,
1000-image shards) is generated with the local thread pool and with an
embedded Dask ``LocalCluster`` of 1 and 2 single-threaded worker processes.
Cluster start-up and the workers' first kernel load are excluded (a warm-up
run on each cluster); medians over ``--repeat`` runs; every run's manifest
must be identical (same bytes whatever the executor).

    python benchmarks/bench_dask.py --categories 4 --repeat 3
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
    ap.add_argument("--categories", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    cfg = config.resolve("fractaldb-1k", [f"categories={args.categories}"])
    warm = config.resolve("fractaldb-1k", ["categories=1", "shard_size=40"])
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    results, manifests = {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        def timed(label, **kw):
            generate(warm, os.path.join(tmp, f"warm-{label}"), **kw)
            walls = []
            for r in range(args.repeat):
                out = os.path.join(tmp, f"{label}-{r}")
                t = time.perf_counter()
                m = generate(cfg, out, **kw)
                walls.append(time.perf_counter() - t)
                manifests.add(open(os.path.join(out, "manifest.json"), "rb").read())
            wall = statistics.median(walls)
            results[label] = (m["plan"]["shards"] / wall, m["plan"]["samples"] / wall)
            print(f"{label:>14}: {m['plan']['shards']} shards, median {wall:.2f} s -> "
                  f"{results[label][0]:.2f} shards/s, {results[label][1]:.0f} images/s")

        for w in (1, 2):
            timed(f"local w={w}", workers=w, executor="local")
        for w in (1, 2):
            with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None, silence_logs=50) as cluster, Client(cluster):
                timed(f"dask w={w}", workers=w, executor="dask", scheduler=cluster.scheduler_address)
    for w in (1, 2):
        over = results[f"local w={w}"][0] / results[f"dask w={w}"][0] - 1
        print(f"dask overhead with {w} worker(s): {over:+.1%} time vs local")
    print(f"identical manifests across all runs: {len(manifests) == 1}")


if __name__ == "__main__":
    main()
