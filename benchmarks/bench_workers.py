"""Workers: 1 worker against N processes and N threads, alternated in one run.

A slice of a preset (default ``fractaldb-1k``, its first ``--classes`` classes,
searched once before the rounds) is generated into shards with each mode in
every round, the order rotating from round to round so a drift of the machine's
speed hits every mode alike; a warm-up run per mode comes first (kernels
compiled, caches filled).  Reported per mode: median wall seconds, images per
second, the **parent's** CPU per image (``time.process_time`` of this process:
with processes it schedules and records only), the workers' CPU per image (the
children's CPU from ``os.times``), and the speed-ups against 1 worker.

The parent's CPU per image bounds how far processes scale: with ``W`` workers
that each spend ``w`` CPU-seconds per image and a parent that spends ``p``,
the run makes at most ``min(W / w, 1 / p)`` images per second, a speed-up of
``min(W, w / p)``; the modelled speed-ups at 16 and 64 workers are printed.
The load average before and after is printed with the numbers (a shared machine
makes every figure slower; compare the ratios of one run).

    python benchmarks/bench_workers.py --classes 4 --workers 2 --rounds 5
    python benchmarks/bench_workers.py --preset mv-fractaldb-1k --classes 2 --workers 2 --rounds 3
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


def _run(ds, out: str, workers: int, executor: str) -> tuple:
    t0, c0, k0 = time.perf_counter(), time.process_time(), os.times()
    labels = []
    generate(None, out, workers=workers, executor=executor, dataset=ds, card=False, on_workers=labels.append)
    k1 = os.times()
    children = (k1.children_user - k0.children_user) + (k1.children_system - k0.children_system)
    return time.perf_counter() - t0, time.process_time() - c0, children, labels[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fractaldb-1k")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="key=value preset overrides")
    ap.add_argument("--classes", type=int, default=4, help="the slice: the preset's first K classes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="1,processes,threads",
                    help="comma-separated: 1 (one worker), processes, threads")
    args = ap.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    cfg = config.first_classes(config.resolve(args.preset, args.overrides), args.classes)
    ds = Dataset.from_config(cfg, args.workers)
    n = ds.plan.n_samples
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    spec = {"1": (1, "local"), "processes": (args.workers, "processes"), "threads": (args.workers, "threads")}
    results = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for m in modes:  # warm-up: kernels, caches, the first fork
            _run(ds, os.path.join(tmp, "warm"), *spec[m])
            shutil.rmtree(os.path.join(tmp, "warm"))
        for r in range(args.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                out = os.path.join(tmp, f"{m}{r}")
                results[m].append(_run(ds, out, *spec[m]))
                shutil.rmtree(out)
    print(f"# {args.preset}, first {args.classes} classes: {n} images in {ds.plan.n_shards} shards, "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.2f} at the end")
    wall = {}
    for m in modes:
        runs = results[m]
        wall[m] = statistics.median(r[0] for r in runs)
        parent = statistics.median(r[1] for r in runs) / n * 1e6
        kids = statistics.median(r[2] for r in runs) / n * 1e6
        print(f"{m:>9} ({runs[0][3]}): median {wall[m]:.2f} s wall (runs {', '.join(f'{r[0]:.2f}' for r in runs)}) "
              f"-> {n / wall[m]:.0f} images/s; parent {parent:.1f} CPU-us/image, workers {kids:.1f} CPU-us/image")
        if m == "processes" and parent > 0:
            per_image = kids or parent
            print(f"  modelled speed-up min(W, workers/parent) = min(W, {per_image / parent:.0f}): "
                  f"{min(16, per_image / parent):.1f}x at 16 workers, {min(64, per_image / parent):.1f}x at 64")
    if "1" in wall:
        for m in modes:
            if m != "1":
                print(f"speed-up {m} vs 1 worker: {wall['1'] / wall[m]:.2f}x")


if __name__ == "__main__":
    main()
