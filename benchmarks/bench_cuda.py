"""GPU render benchmark: CUDARenderer against CPURenderer, measured in the same run.

Settings: the original's recommended ones (362x362, 200 000 points, 3x3 gray
patches, weights 0.4, 10 patch draws, 4 flips: 1000 images per category);
categories from the official search (seed 1: the published FractalDB-1k).
JIT compilation and a warm-up are excluded; every figure is the median of
``--repeat`` runs.  Four measurements:

1. GPU render only: ``CUDARenderer.render_blocks_device`` into a preallocated
   device array (the images stay in GPU memory), timed to ``cuda.synchronize()``.
2. CPU render only: ``render_blocks`` on ``--workers`` threads into host memory.
3. End to end into shards, GPU: ``fractaldb generate --device cuda`` on a
   ``fractaldb-1k`` slice of ``--categories`` categories, to a temporary
   folder, once per ``--executors`` entry: ``local`` (the default: this process
   renders groups of ``--group`` shards per launch into shared memory while
   ``--workers`` worker processes encode and pack, fractaldb.executors) and
   ``threads`` (each of ``--workers`` threads renders its shard's blocks and
   encodes them: the path before issue 24).
4. The same ``generate`` with ``--device cpu``; both runs must write the
   same manifest (same bytes).
5. On-the-fly into PyTorch: :class:`fractaldb.data.GPUFractalStream` batches
   of 256 as CUDA tensors (no host copy), timed to ``torch.cuda.synchronize()``
   (skipped without a CUDA build of PyTorch).

Before timing, the first ``--check`` blocks are rendered both ways and must
be identical (images, fill, factors, degenerate record); the script exits 1
otherwise.  Without an NVIDIA GPU it refuses to run (exit 2).

    python benchmarks/bench_cuda.py --categories 8 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

from fractaldb.families.fractal.imagefolder import render_blocks
from fractaldb.ifs.render import CPURenderer, RenderConfig
from fractaldb.families.fractal.search import SearchConfig, search
from fractaldb.parallel import default_workers


def require_gpu() -> None:
    """Exit 2 with one line unless a real NVIDIA GPU is usable."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("error: NUMBA_ENABLE_CUDASIM=1 selects numba's CUDA simulator, which is not a GPU; "
              "unset it to benchmark", file=sys.stderr)
        sys.exit(2)
    from fractaldb.gpu import NO_GPU, cuda_available

    if not cuda_available():
        print(f"error: {NO_GPU}", file=sys.stderr)
        sys.exit(2)


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def same_block(a, b) -> bool:
    return (np.array_equal(a.images, b.images) and a.fill == b.fill and np.array_equal(a.factors, b.factors)
            and a.record == b.record and list(a.draws) == list(b.draws))


def timed_generate(cfg: dict, tmp: str, label: str, workers: int, device: str, repeat: int,
                   executor: str = "local") -> tuple:
    """Median wall time of ``generate(cfg)`` on ``device``, its manifest and what ran it."""
    import shutil

    from fractaldb.dataset import generate

    times, result = [], {}
    for r in range(repeat):
        out = os.path.join(tmp, f"{label}{r}")
        labels = []
        t0 = time.perf_counter()
        result["m"] = generate(cfg, out, workers=workers, device=device, executor=executor, on_workers=labels.append)
        times.append(time.perf_counter() - t0)
        result["how"] = labels[0]
        shutil.rmtree(out)  # not timed; the next run writes as much again
    return statistics.median(times), result["m"], result["how"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=8, help="categories per timed run (1000 images each)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=default_workers(), help="CPU threads (render or encode)")
    ap.add_argument("--batch", type=int, default=256, help="(category, weight) blocks per GPU launch")
    ap.add_argument("--check", type=int, default=8, help="blocks compared GPU vs CPU before timing")
    ap.add_argument("--shard-size", type=int, default=1000, help="samples per shard")
    ap.add_argument("--compat", default="modern", choices=["official", "modern"])
    ap.add_argument("--mode", default="patch", choices=["patch", "point"])
    ap.add_argument("--color", default="gray", choices=["gray", "color"])
    ap.add_argument("--window", type=int, default=4096, help="images per launch of the GPU stream (5)")
    ap.add_argument("--skip-cpu", action="store_true", help="skip the CPU measurements (2 and 4)")
    ap.add_argument("--executors", default="local,threads",
                    help="comma-separated executors of measurement 3 (local: the GPU pipeline; threads)")
    ap.add_argument("--group", type=int, default=None, help="shards per GPU launch of the pipeline")
    ap.add_argument("--skip-stream", action="store_true", help="skip the GPU stream (5)")
    args = ap.parse_args()
    require_gpu()

    from numba import cuda

    from fractaldb.ifs.render_cuda import CUDARenderer

    cfg = RenderConfig(mode=args.mode, color=args.color, compat=args.compat, seed=1,
                       degenerate="keep" if args.compat == "official" else "replace")
    n_cats = args.categories + 1  # category 0 is the warm-up
    cats = search(SearchConfig(categories=n_cats, workers=args.workers)).categories
    ids = list(range(1, n_cats))
    jobs = [(c, cats[c], w) for c in ids for w in range(len(cfg.weight_table()))]
    n_images = len(jobs) * cfg.images_per_block
    dev_name = getattr(cuda.get_current_device(), "name", "?")
    dev_name = dev_name.decode() if isinstance(dev_name, bytes) else dev_name
    print(f"# GPU {dev_name}; CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.workers} worker threads; python {platform.python_version()}")
    print(f"# settings: size {cfg.size}, points {cfg.points}, {cfg.mode} {cfg.color}, weights {cfg.weights}, "
          f"patches {cfg.patches}, flips {cfg.flips}, compat {cfg.compat}; {args.categories} categories = "
          f"{n_images} images per run, GPU batch {args.batch} blocks, median of {args.repeat}")

    gpu = CUDARenderer(cfg, max_batch=args.batch)
    cpu = CPURenderer(cfg)
    # Warm-up: JIT-compiles every kernel used below (category 0 only).
    warm = [(0, cats[0], w) for w in range(len(cfg.weight_table()))]
    gpu.render_blocks_device(warm)
    cuda.synchronize()
    cpu.render_block(0, cats[0], 0)

    bad = 0
    for job in jobs[: args.check]:
        if not same_block(gpu.render_block(*job), cpu.render_block(*job)):
            bad += 1
            print(f"MISMATCH: category {job[0]} weight {job[2]}: GPU and CPU blocks differ")
    print(f"parity: {min(args.check, len(jobs)) - bad}/{min(args.check, len(jobs))} blocks identical "
          f"(GPU vs CPU: images, fill, factors, record)")
    if bad:
        sys.exit(1)

    out = cuda.device_array((n_images, cfg.size, cfg.size, cfg.channels), dtype=np.uint8)

    def gpu_render():
        gpu.render_blocks_device(jobs, out=out)
        cuda.synchronize()

    t = median_time(gpu_render, args.repeat)
    gpu_rate = n_images / t
    print(f"1. GPU render only (device memory): median {t:.3f} s -> {gpu_rate:.0f} images/s "
          f"({gpu.nan_trimmed} NaN-trimmed chaos games so far)")
    out = None  # free the device images before the end-to-end runs

    cpu_rate = None
    if not args.skip_cpu:
        t = median_time(lambda: [None for _ in render_blocks(cats[1:], cfg, workers=args.workers, category_ids=ids,
                                                               consume=lambda b: None)], args.repeat)
        cpu_rate = n_images / t
        print(f"2. CPU render only ({args.workers} threads, host memory): median {t:.3f} s -> "
              f"{cpu_rate:.0f} images/s")

    from fractaldb import config
    from fractaldb.dataset import generate

    from fractaldb.ifs.system import write_csv

    with tempfile.TemporaryDirectory() as tmp:
        # The categories searched above, as a category folder: the timed runs do not search.
        os.makedirs(os.path.join(tmp, "categories"))
        for c in ids:
            write_csv(cats[c], os.path.join(tmp, "categories", f"{c:05d}.csv"))
        slice_cfg = config.resolve("fractaldb-1k", [
            f"category_dir={os.path.join(tmp, 'categories')}", f"categories={args.categories}",
            f"shard_size={args.shard_size}", f"compat={args.compat}", f"mode={args.mode}", f"color={args.color}",
            f"degenerate={cfg.degenerate}"])
        warm_cfg = {**slice_cfg, "categories": 1, "shard_size": 40}
        from fractaldb.dataset import Dataset

        slice_ds = Dataset.from_config(slice_cfg)  # for the stream (5), loaded while the folder exists
        for device in ("cuda", "cpu"):
            generate(warm_cfg, os.path.join(tmp, f"warm-{device}"), workers=args.workers, device=device)
        if args.group is not None:
            from fractaldb import executors

            executors.GPU_GROUP = args.group
        gpu_e2e_rate, gm = None, None
        for ex in [e.strip() for e in args.executors.split(",") if e.strip()]:
            t, m, how = timed_generate(slice_cfg, tmp, f"gpu-{ex}", args.workers, "cuda", args.repeat, ex)
            n = m["plan"]["samples"]
            size = sum(e["bytes"] for e in m["shards"])
            print(f"3. generate --device cuda --executor {ex} ({how}): median {t:.3f} s -> "
                  f"{n / t:.0f} images/s, {size / 1e6:.1f} MB of shards; same manifest as before: "
                  f"{gm is None or m == gm}")
            if gm is not None and m != gm:
                sys.exit(1)
            gpu_e2e_rate = gpu_e2e_rate or n / t
            gm = m
        if not args.skip_cpu:
            t, cm, how = timed_generate(slice_cfg, tmp, "cpu", args.workers, "cpu", args.repeat)
            cpu_e2e_rate = n / t
            print(f"4. generate --device cpu ({how}): median {t:.3f} s -> {cpu_e2e_rate:.0f} images/s; "
                  f"same manifest as the GPU run: {cm == gm}")
            if cm != gm:
                sys.exit(1)
            print(f"ratio GPU/CPU: render only {gpu_rate / cpu_rate:.1f}x, end to end {gpu_e2e_rate / cpu_e2e_rate:.1f}x")

    if args.skip_stream:
        return
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        print("5. GPU stream: skipped (needs a CUDA build of PyTorch)")
        return
    from fractaldb.data import GPUFractalStream

    stream = GPUFractalStream(dataset=slice_ds, batch_size=256, window=args.window, max_batch=args.batch)
    next(iter(stream))  # warm-up

    def epoch():
        for images, labels in stream:
            pass
        torch.cuda.synchronize()

    t = median_time(epoch, args.repeat)
    steps = len(stream) // 256
    print(f"5. GPUFractalStream into torch (batches of 256, window {args.window}, CUDA tensors): "
          f"median {t:.3f} s -> "
          f"{steps * 256 / t:.0f} images/s")


if __name__ == "__main__":
    main()
