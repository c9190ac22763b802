"""End-to-end ``generate`` benchmark: a slice of FractalDB-1k into WebDataset shards.

Runs the ``fractaldb-1k`` preset (official sampler and renderer settings,
362x362, 200 000 points, patch gray, weights 0.4, 10 draws x 4 flips,
1000-sample shards) restricted to ``--categories`` categories, after a
warm-up that compiles every kernel.  Reports images per wall- and per
CPU-second (medians over ``--repeat`` runs) and extrapolates the full
1000-category, 1M-image dataset (plus the measured 1000-category search).

    python benchmarks/bench_generate.py --categories 8 --workers 2 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time

from fractaldb import config
from fractaldb.dataset import generate
from fractaldb.search import search


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--preset", default="fractaldb-1k")
    ap.add_argument("--skip-search", action="store_true", help="do not time the full 1000-category search")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    full = config.resolve(args.preset)
    cfg = config.resolve(args.preset, [f"categories={args.categories}"])
    with tempfile.TemporaryDirectory() as tmp:
        generate(config.resolve(args.preset, ["categories=1", "shard_size=40"]), os.path.join(tmp, "warm"),
                 workers=args.workers)
        walls, cpus = [], []
        for r in range(args.repeat):
            out = os.path.join(tmp, f"run{r}")
            w0, c0 = time.perf_counter(), time.process_time()
            manifest = generate(cfg, out, workers=args.workers)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            shutil.rmtree(out)
    n = manifest["plan"]["samples"]
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"generate {args.preset} slice: {args.categories} categories, {n} images, {manifest['plan']['shards']} shards, "
          f"workers={args.workers}: median {wall:.2f} s wall, {cpu:.2f} s CPU -> {n / wall:.0f} images/wall-s, "
          f"{n / cpu:.0f} images/CPU-s")
    total_images = full["categories"] * 25 * 40
    search_s = 0.0
    if not args.skip_search:
        t = time.perf_counter()
        search(config.search_config(full, args.workers))
        search_s = time.perf_counter() - t
    est = search_s + total_images / (n / wall)
    print(f"extrapolated full {args.preset} ({total_images} images): search {search_s:.0f} s + render "
          f"{total_images / (n / wall) / 60:.1f} min = {est / 60:.1f} min on {args.workers} workers")


if __name__ == "__main__":
    main()
