"""End-to-end render benchmark: render + PNG encode + write, ImageFolder output.

Settings: the original's recommended ones (362x362, 200 000 points, 3x3 gray
patches, weights 0.4, 10 patch draws, 4 flips: 1000 images per category).
JIT compilation and one warm-up category are excluded.  Each configuration
runs ``--repeat`` times; medians are reported.  The reference is the
original renderer's approach (benchmarks/original_reference.py), measured in
the same run on a few images.

    python benchmarks/bench_render.py --categories 4 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time


from fractaldb.families.fractal.imagefolder import write_imagefolder
from fractaldb.ifs.render import RenderConfig
from fractaldb.families.fractal.search import SearchConfig, search

import original_reference


def measure(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=4, help="categories per timed run (1000 images each)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reference-images", type=int, default=2, help="patch draws of the reference renderer (4 images each)")
    ap.add_argument("--compat", default="official", choices=["official", "modern"])
    args = ap.parse_args()

    cats = search(SearchConfig(categories=args.categories + 1, workers=2)).categories
    cfg = RenderConfig(compat=args.compat, degenerate="keep" if args.compat == "official" else "replace")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"# settings: size {cfg.size}, points {cfg.points}, {cfg.mode} {cfg.color}, weights {cfg.weights}, "
          f"patches {cfg.patches}, flips {cfg.flips}, compat {cfg.compat}")
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: compiles (or loads) every kernel used below.
        write_imagefolder([0], cats[:1], cfg, os.path.join(tmp, "warm"), workers=max(args.workers))
        n_images = args.categories * 25 * cfg.images_per_block
        results = {}
        for workers in args.workers:
            walls, cpus = [], []
            for r in range(args.repeat):
                out = os.path.join(tmp, f"w{workers}-{r}")
                wall, cpu = measure(lambda: write_imagefolder(list(range(1, args.categories + 1)), cats[1:], cfg,
                                                              out, workers=workers))
                walls.append(wall)
                cpus.append(cpu)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            results[workers] = (n_images / wall, n_images / cpu)
            print(f"fractaldb workers={workers}: {n_images} images, median wall {wall:.2f} s, cpu {cpu:.2f} s -> "
                  f"{n_images / wall:.0f} images/wall-s, {n_images / cpu:.0f} images/CPU-s")

    ref = cats[1]
    times = []
    for k in range(args.reference_images):
        wall, cpu = measure(lambda: original_reference.render_patch_images(ref.maps, ref.probs,
                                                                           rng=__import__("random").Random(k)))
        times.append(cpu / 4)  # 4 flips per draw
    ref_rate = 1.0 / statistics.median(times)
    print(f"reference (original approach): median {statistics.median(times):.2f} CPU-s per image -> "
          f"{ref_rate:.2f} images/CPU-s")
    best_cpu = max(r[1] for r in results.values())
    print(f"ratio: fractaldb {best_cpu:.0f} / reference {ref_rate:.2f} = {best_cpu / ref_rate:.0f}x per CPU-second")


if __name__ == "__main__":
    main()
