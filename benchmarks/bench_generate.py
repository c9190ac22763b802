"""End-to-end ``generate`` benchmark: a slice of a preset into WebDataset shards.

Runs a preset (default ``fractaldb-1k``: official sampler and renderer
settings, 362x362, 200 000 points, patch gray, weights 0.4, 10 draws x 4
flips, 1000-sample shards) restricted by ``--set`` overrides to a slice,
after a warm-up that compiles every kernel.  Reports images per wall- and per
CPU-second (medians over ``--repeat`` runs) and extrapolates the full preset
(plus its measured class search unless ``--skip-search``).

    python benchmarks/bench_generate.py --preset fractaldb-1k --classes 8 --workers 2 --repeat 3
    python benchmarks/bench_generate.py --preset perlin-1k --classes 20 --set perlin.instances=100
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
from fractaldb.dataset import Dataset, generate
from fractaldb.families import get_family


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fractaldb-1k")
    ap.add_argument("--set", dest="overrides", action="append", default=None,
                    help="key=value overrides of the preset (e.g. fractal.points=100000)")
    ap.add_argument("--classes", type=int, default=8, help="the slice: the preset's first K classes (default 8)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-search", action="store_true", help="do not time the full preset's class search")
    args = ap.parse_args()
    overrides = args.overrides or []
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    full = config.resolve(args.preset)
    cfg = config.first_classes(config.resolve(args.preset, overrides), args.classes)
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: compile every kernel the slice uses, on a tiny version of it.
        generate(config.first_classes(config.resolve(args.preset, overrides + ["shard_size=40"]), 1),
                 os.path.join(tmp, "warm"), workers=args.workers)
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
    print(f"generate {args.preset} slice (first {args.classes} classes {' '.join(overrides)}): {n} images, {manifest['plan']['shards']} shards, "
          f"workers={args.workers}: median {wall:.2f} s wall, {cpu:.2f} s CPU -> {n / wall:.0f} images/wall-s, "
          f"{n / cpu:.0f} images/CPU-s")
    full_ds_plan = None
    search_s = 0.0
    if not args.skip_search:
        t = time.perf_counter()
        full_ds_plan = Dataset.from_config(full, args.workers).plan
        search_s = time.perf_counter() - t
    total = full_ds_plan.n_samples if full_ds_plan else None
    if total is None:  # the plan without the search: every family's classes x blocks x images
        total = 0
        for name in config.families(full):
            fam, settings = get_family(name), config.family_settings(full, name)
            layout = fam.bind(settings, ())
            total += full[name][fam.count_key] * layout.blocks_per_class * layout.images_per_block
    render_s = total / (n / wall)
    print(f"extrapolated full {args.preset} ({total} images): class search {search_s:.0f} s + render "
          f"{render_s / 60:.1f} min = {(search_s + render_s) / 60:.1f} min on {args.workers} workers")


if __name__ == "__main__":
    main()
