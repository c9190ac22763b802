"""GPU against CPU for any preset, through the family interface: parity, render only, end to end.

Works for every family with a CUDA renderer (the fractal families have their own, more detailed
``bench_cuda.py``): the preset's first ``--classes`` classes, JIT compilation and a warm-up
excluded, medians of ``--repeat`` runs.

1. parity: the first ``--check`` blocks rendered on the GPU (``BoundFamily.render_device``,
   copied back) and on the CPU (``render_blocks``) must be identical; exit 1 otherwise.
2. GPU render only: every block of the slice through ``render_device``, timed to
   ``cuda.synchronize()`` (images left in device memory; host-side work such as an official
   replay's CPython stream is part of the time, as it is in ``generate``).
3. CPU render only: images per CPU-second of ``render_blocks`` on the CPU renderer
   (``time.process_time``: a renderer that replays with threads inside counts them all).
4. ``generate --device cuda`` and ``--device cpu`` on ``--workers`` workers into a temporary
   folder: images/s, and both must write the same manifest (same shard bytes).

    python benchmarks/bench_gpu_family.py --preset visualatom-1k --classes 4 --repeat 3
    python benchmarks/bench_gpu_family.py --preset rcdb-1k --classes 8 --set rcdb.compat=official
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

from bench_cuda import require_gpu, timed_generate
from fractaldb import config
from fractaldb.dataset import Dataset
from fractaldb.parallel import default_workers


def host(images):
    return images.copy_to_host() if hasattr(images, "copy_to_host") else np.asarray(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="key=value overrides")
    ap.add_argument("--classes", type=int, default=4, help="the slice: the preset's first K classes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--check", type=int, default=4, help="blocks compared GPU vs CPU before timing")
    ap.add_argument("--cpu-blocks", type=int, default=4, help="blocks timed on one CPU thread (3)")
    ap.add_argument("--skip-generate", action="store_true", help="skip the end-to-end runs (4)")
    args = ap.parse_args()
    require_gpu()
    from numba import cuda

    cfg = config.first_classes(config.resolve(args.preset, args.overrides), args.classes)
    ds = Dataset.from_config(cfg, args.workers)
    dev = getattr(cuda.get_current_device(), "name", "?")
    dev = dev.decode() if isinstance(dev, bytes) else dev
    print(f"# GPU {dev}; CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.workers} workers; python {platform.python_version()}")
    print(f"# {args.preset} {' '.join(args.overrides)}: first {args.classes} classes, "
          f"{ds.plan.n_samples} images, median of {args.repeat}")
    failed = False
    gpu_rates = {}
    for name in ds.parts:
        part = ds.part(name)
        blocks = [(k, b) for k in range(part.n_classes) for b in range(part.blocks_per_class)]
        ipb = part.images_per_block
        gpu, cpu = part.renderer("cuda"), part.renderer("cpu")
        part.render_device(gpu, blocks[:1])  # JIT and warm-up
        cuda.synchronize()
        list(part.render_blocks(cpu, [(k, b, list(range(ipb))) for k, b in blocks[:1]]))

        check = blocks[: args.check]
        got = np.concatenate([host(images) for _, images in part.render_device(gpu, check)])
        want = np.stack([np.array(img).reshape(got.shape[1:]) for rb in
                         part.render_blocks(cpu, [(k, b, list(range(ipb))) for k, b in check])
                         for img in rb.images])
        same = got.shape == want.shape and np.array_equal(got, want)
        print(f"{name} parity: {len(check)} blocks ({len(want)} images {want.shape[1:]}) GPU == CPU: {same}")
        if not same:
            failed = True
            continue

        def gpu_render():
            out = part.render_device(gpu, blocks)
            cuda.synchronize()
            return out

        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = gpu_render()
            times.append(time.perf_counter() - t0)
            del out
        n = len(blocks) * ipb
        t = statistics.median(times)
        gpu_rates[name] = n / t
        print(f"{name} 2. GPU render only: {n} images, median {t:.3f} s -> {n / t:.0f} images/s")

        cpu_jobs = [(k, b, list(range(ipb))) for k, b in blocks[: args.cpu_blocks]]
        cts = []
        for _ in range(args.repeat):
            t0 = time.process_time()
            for rb in part.render_blocks(cpu, cpu_jobs):
                pass
            cts.append(time.process_time() - t0)
        m = len(cpu_jobs) * ipb
        c = statistics.median(cts)
        print(f"{name} 3. CPU render only: {m} images, median {c:.3f} CPU-s -> {m / c:.0f} images/CPU-s "
              f"(GPU render = {gpu_rates[name] / (m / c):.1f} CPU cores)")
    if failed:
        print("MISMATCH: GPU and CPU images differ")
        sys.exit(1)
    if args.skip_generate:
        return
    with tempfile.TemporaryDirectory() as tmp:
        from fractaldb.dataset import generate

        for device in ("cuda", "cpu"):  # warm-up on the slice itself (official RCDB needs whole worker groups)
            generate(cfg, os.path.join(tmp, f"warm-{device}"), workers=args.workers, device=device, card=False)
        tg, gm, ghow = timed_generate(cfg, tmp, "gpu", args.workers, "cuda", args.repeat)
        tc, cm, chow = timed_generate(cfg, tmp, "cpu", args.workers, "cpu", args.repeat)
        n = gm["plan"]["samples"]
        same = [e["sha256"] for e in gm["shards"]] == [e["sha256"] for e in cm["shards"]]
        print(f"4. generate --device cuda ({ghow}): median {tg:.2f} s -> {n / tg:.0f} images/s")
        print(f"4. generate --device cpu ({chow}): median {tc:.2f} s -> {n / tc:.0f} images/s; "
              f"same shards: {same}; ratio GPU/CPU end to end {tc / tg:.2f}x")
        if not same:
            print("MISMATCH: GPU and CPU shards differ")
            sys.exit(1)


if __name__ == "__main__":
    main()
