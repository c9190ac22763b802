"""3-D fractal benchmark: a slice of mv-fractaldb-1k into shards, the per-image
cost split, and the extrapolated time of the whole MV-FractalDB-1k.

1. End to end: ``generate`` of the preset's first ``--classes`` categories on
   ``--workers`` threads (warm-up excluded; median of ``--repeat`` runs).
2. Per image, on one thread (medians over ``--blocks`` blocks): the cloud
   (chaos game + normalisation, one per block, divided by the views), the
   projection of one view, PNG encoding, and packing into a tar (with the
   ``.cls``/``.json`` members).
3. The category search of ``--search-classes`` categories, scaled to the
   preset's count, plus the render rate of 1. -> the whole preset.

    python benchmarks/bench_fractal3d.py --classes 2 --workers 2 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time

import numpy as np

from fractaldb import config
from fractaldb.dataset import generate
from fractaldb.encode import encode_png
from fractaldb.families import get_family
from fractaldb.families.fractal3d import kernels as K
from fractaldb.families.fractal3d.model import Fractal3DRenderer, search_classes
from fractaldb.shards import meta_bytes, tar_bytes


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mv-fractaldb-1k")
    ap.add_argument("--classes", type=int, default=2, help="categories in the end-to-end slice (default 2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blocks", type=int, default=40, help="blocks timed in the cost split")
    ap.add_argument("--search-classes", type=int, default=50, help="categories of the timed search (scaled up)")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    full = config.resolve(args.preset)
    fam = get_family("fractal3d")
    settings = config.family_settings(full, "fractal3d")
    layout = fam.bind(settings, ())
    total = settings.categories * layout.blocks_per_class * layout.images_per_block

    # 1. end to end
    cfg = config.first_classes(full, args.classes)
    with tempfile.TemporaryDirectory() as tmp:
        generate(config.first_classes(config.resolve(args.preset, ["shard_size=24"]), 1), os.path.join(tmp, "w"),
                 workers=args.workers)  # warm-up: compiles every kernel (and fills numba's cache)
        walls = []
        for r in range(args.repeat):
            out = os.path.join(tmp, f"run{r}")
            t = time.perf_counter()
            manifest = generate(cfg, out, workers=args.workers)
            walls.append(time.perf_counter() - t)
            shutil.rmtree(out)
    n = manifest["plan"]["samples"]
    wall = statistics.median(walls)
    rate = n / wall
    print(f"end to end: {n} images of {args.preset} (first {args.classes} categories, search included), "
          f"{manifest['plan']['shards']} shards, workers={args.workers}: median {wall:.2f} s -> {rate:.0f} images/s")

    # 2. cost split, one thread
    classes = search_classes(settings.search_config(args.workers).__class__(
        categories=2, seed=settings.seed, variance=settings.variance, points=settings.points,
        compat=settings.compat, workers=1))
    r = Fractal3DRenderer(settings.render_config())
    views = settings.n_views
    jobs = [(k % 2, k // 2) for k in range(args.blocks)]
    clouds = []
    t_cloud = []
    keys = r.keys(jobs)  # derived for all blocks of a shard at once, as render_blocks does
    for j, (k, i) in enumerate(jobs):
        t = time.perf_counter()
        pts = r.cloud(classes[k], k, i, keys[0][j])
        cams = r.cameras(k, i, None, keys[1][j])
        t_cloud.append(time.perf_counter() - t)
        clouds.append((pts.astype(np.float32), cams))
    img = np.zeros((settings.image_size, settings.image_size), dtype=np.uint8)
    t_proj, t_enc, pngs = [], [], []
    for pts32, cams in clouds:
        for cam in cams:
            t = time.perf_counter()
            img[:] = 0
            K.project_points(pts32, cam, img)
            t_proj.append(time.perf_counter() - t)
            t = time.perf_counter()
            pngs.append(encode_png(img))
            t_enc.append(time.perf_counter() - t)
    members = []
    for j, data in enumerate(pngs):
        key = f"t00000-i{j // views:05d}-v{j % views:03d}"
        members += [(f"{key}.cls", b"0"), (f"{key}.json", meta_bytes({"key": key, "label": 0})), (f"{key}.png", data)]
    t_pack = _median_time(lambda: tar_bytes(members), 5) / len(pngs)
    cloud_s = statistics.median(t_cloud) / views
    proj_s, enc_s = statistics.median(t_proj), statistics.median(t_enc)
    per = cloud_s + proj_s + enc_s + t_pack
    print(f"per image, one thread (median over {len(pngs)} images): cloud + cameras {cloud_s * 1e6:.0f} us "
          f"(1/{views} of a block's {statistics.median(t_cloud) * 1e3:.2f} ms), projection {proj_s * 1e6:.0f} us, "
          f"PNG {enc_s * 1e6:.0f} us ({statistics.median(len(p) for p in pngs)} B), pack {t_pack * 1e6:.0f} us "
          f"= {per * 1e6:.0f} us -> {1 / per:.0f} images/s/thread")

    # 3. search and extrapolation
    t = time.perf_counter()
    search_classes(settings.search_config(args.workers).__class__(
        categories=args.search_classes, seed=settings.seed, variance=settings.variance, points=settings.points,
        compat=settings.compat, workers=args.workers))
    search_s = (time.perf_counter() - t) * settings.categories / args.search_classes
    render_s = total / rate
    print(f"extrapolated {args.preset} ({total} images): search ~{search_s:.0f} s ({args.search_classes} categories "
          f"timed) + render {render_s / 60:.1f} min = {(search_s + render_s) / 60:.1f} min on {args.workers} workers")


if __name__ == "__main__":
    main()
