"""GPU render benchmark: CUDARenderer against CPURenderer, measured in the same run.

Settings: the original's recommended ones (362x362, 200 000 points, 3x3 gray
patches, weights 0.4, 10 patch draws, 4 flips: 1000 images per category);
categories from the official search (seed 1: the published FractalDB-1k).
JIT compilation and a warm-up are excluded; every figure is the median of
``--repeat`` runs.  Four measurements:

1. GPU render only: ``CUDARenderer.render_blocks_device`` into a preallocated
   device array (the images stay in GPU memory), timed to ``cuda.synchronize()``.
2. CPU render only: ``render_blocks`` on ``--workers`` threads into host memory.
3. End to end into WebDataset shards, GPU: render on the GPU, copy each batch
   to the host, encode PNG on ``--workers`` CPU threads (fractaldb.encode),
   write tar shards (fractaldb.shards.tar_bytes) to a temporary folder.  The
   GPU renders the next batch while the CPU encodes the current one.
4. The same end to end with the CPU renderer (render and encode on the same
   ``--workers`` threads).

Before timing, the first ``--check`` blocks are rendered both ways and must
be identical (images, fill, factors, degenerate record); the script exits 1
otherwise.  Without an NVIDIA GPU it refuses to run (exit 2).

    python benchmarks/bench_cuda.py --categories 8 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fractaldb.encode import encode_png
from fractaldb.render import CPURenderer, RenderConfig, render_blocks
from fractaldb.search import SearchConfig, default_workers, search
from fractaldb.shards import tar_bytes


def require_gpu() -> None:
    """Exit 2 with one line unless a real NVIDIA GPU is usable."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("error: NUMBA_ENABLE_CUDASIM=1 selects numba's CUDA simulator, which is not a GPU; "
              "unset it to benchmark", file=sys.stderr)
        sys.exit(2)
    from fractaldb.render_cuda import NO_GPU, cuda_available

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


def sample_key(block, k: int, flips: int) -> str:
    return f"c{block.category:05d}-w{block.weight:02d}-k{block.draws[k // flips]}-f{k % flips}"


class ShardWriter:
    """Groups encoded samples into ``shard-%06d.tar`` files of ``size`` samples."""

    def __init__(self, folder: str, size: int):
        self.folder, self.size = folder, size
        self.members, self.count, self.index, self.bytes = [], 0, 0, 0

    def add(self, key: str, png: bytes, label: int) -> None:
        self.members += [(f"{key}.png", png), (f"{key}.cls", str(label).encode())]
        self.count += 1
        if self.count == self.size:
            self.flush()

    def flush(self) -> None:
        if not self.members:
            return
        data = tar_bytes(self.members)
        with open(os.path.join(self.folder, f"shard-{self.index:06d}.tar"), "wb") as f:
            f.write(data)
        self.bytes += len(data)
        self.members, self.count, self.index = [], 0, self.index + 1


def encode_block(block, images, flips: int, pool) -> list:
    """``[(key, png, label)]`` of one block, PNG-encoded on ``pool``."""
    pngs = pool.map(encode_png, [images[k] for k in range(images.shape[0])])
    return [(sample_key(block, k, flips), png, block.category) for k, png in enumerate(pngs)]


def gpu_end_to_end(renderer, jobs, cfg, folder: str, workers: int, batch: int, shard_size: int) -> int:
    """GPU render -> host -> PNG on ``workers`` threads -> tar shards.  Returns bytes written."""
    from numba import cuda

    done = queue.Queue(maxsize=2)  # the GPU stays at most two batches ahead

    def produce():
        try:
            for start in range(0, len(jobs), batch):
                dev, blocks = renderer.render_blocks_device(jobs[start:start + batch], with_blocks=True)
                host = dev.copy_to_host()
                done.put((host, blocks))
            done.put(None)
        except BaseException as exc:  # surface errors in the main thread
            done.put(exc)

    writer = ShardWriter(folder, shard_size)
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    with ThreadPoolExecutor(workers) as pool:
        while (item := done.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            host, blocks = item
            offset = 0
            for block in blocks:
                k = block.images.shape[0]
                for key, png, label in encode_block(block, host[offset:offset + k], cfg.flips, pool):
                    writer.add(key, png, label)
                offset += k
    thread.join()
    cuda.synchronize()
    writer.flush()
    return writer.bytes


def cpu_end_to_end(cats, ids, cfg, folder: str, workers: int, shard_size: int) -> int:
    """CPU render and PNG encode on ``workers`` threads -> tar shards.  Returns bytes written."""
    writer = ShardWriter(folder, shard_size)

    def consume(block):  # runs on the worker thread that rendered the block
        return [(sample_key(block, k, cfg.flips), encode_png(block.images[k]), block.category)
                for k in range(block.images.shape[0])]

    for samples in render_blocks(cats, cfg, workers=workers, category_ids=ids, consume=consume):
        for key, png, label in samples:  # in (category, weight) order, as the GPU path
            writer.add(key, png, label)
    writer.flush()
    return writer.bytes


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
    ap.add_argument("--skip-cpu", action="store_true", help="skip the CPU measurements (2 and 4)")
    args = ap.parse_args()
    require_gpu()

    from numba import cuda

    from fractaldb.render_cuda import CUDARenderer

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
          f"({gpu.nan_fallbacks} host NaN fallbacks so far)")
    out = None  # free the device images before the end-to-end runs

    cpu_rate = None
    if not args.skip_cpu:
        t = median_time(lambda: [None for _ in render_blocks(cats[1:], cfg, workers=args.workers, category_ids=ids,
                                                               consume=lambda b: None)], args.repeat)
        cpu_rate = n_images / t
        print(f"2. CPU render only ({args.workers} threads, host memory): median {t:.3f} s -> "
              f"{cpu_rate:.0f} images/s")

    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10**6))

        def gpu_e2e():
            d = os.path.join(tmp, f"gpu{next(runs)}")
            os.makedirs(d)
            gpu_e2e.bytes = gpu_end_to_end(gpu, jobs, cfg, d, args.workers, args.batch, args.shard_size)

        t = median_time(gpu_e2e, args.repeat)
        gpu_e2e_rate = n_images / t
        print(f"3. GPU end to end into shards (PNG on {args.workers} CPU threads): median {t:.3f} s -> "
              f"{gpu_e2e_rate:.0f} images/s, {gpu_e2e.bytes / 1e6:.1f} MB per run")
        if not args.skip_cpu:
            def cpu_e2e():
                d = os.path.join(tmp, f"cpu{next(runs)}")
                os.makedirs(d)
                cpu_e2e.bytes = cpu_end_to_end(cats[1:], ids, cfg, d, args.workers, args.shard_size)

            t = median_time(cpu_e2e, args.repeat)
            cpu_e2e_rate = n_images / t
            print(f"4. CPU end to end into shards ({args.workers} threads): median {t:.3f} s -> "
                  f"{cpu_e2e_rate:.0f} images/s, {cpu_e2e.bytes / 1e6:.1f} MB per run")
            print(f"ratio GPU/CPU: render only {gpu_rate / cpu_rate:.1f}x, "
                  f"end to end {gpu_e2e_rate / cpu_e2e_rate:.1f}x")


if __name__ == "__main__":
    main()
