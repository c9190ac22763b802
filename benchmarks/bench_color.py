"""Colour-fractal and multi-fractal rendering: an old checkout against this one, alternated in one run.

Two worker processes, each with one checkout first on ``PYTHONPATH`` and one
thread (``NUMBA_NUM_THREADS=1``, BLAS threads 1): A, the old kernels (by default
the branch point of the fidelity change, extracted from git into a temporary
folder), and B, this checkout.  Each worker resolves the two presets at their
published size (``color-fractal-1k``, ``multi-fractal-1k``: 1000 classes, 224²,
100k points), warms up (compiles and caches the kernels, draws a few images) and
then, for each round, renders the next ``--images`` samples of the first shard
in plan order -- the same samples in A and B -- timed with the process CPU clock.
The order of A and B alternates from round to round, so a drift of the machine's
speed hits both alike; the medians of images per CPU-second and their ratio B/A
are printed.  Rendering only (no encoding, no tar): the kernels and their Python
glue.  A renders with the old bounds rule (``centre``), B with the original's
(``cells``): the same work.

    python benchmarks/bench_color.py --rounds 7 --images 40
    python benchmarks/bench_color.py --a /path/to/old/checkout --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The branch point of the fidelity change: the kernels before it.
BASE = "3c6e248"
CASES = {"colorfractal": "color-fractal-1k", "multifractal": "multi-fractal-1k"}
SINGLE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "MKL_NUM_THREADS": "1"}


# --------------------------------------------------------------------------------------
# Worker: one checkout, one thread; reads "FAMILY START COUNT" lines, answers JSON.
# --------------------------------------------------------------------------------------

def _worker() -> None:
    from fractaldb.config import resolve
    from fractaldb.dataset import Dataset

    setups = {}
    for fam, preset in CASES.items():
        ds = Dataset.from_config(resolve(preset))
        part = ds.part(fam)
        renderer = part.renderer()
        samples = [(s.klass, s.block) for s in ds.plan.shard_samples(0) if s.family == fam]
        items = part.family.items(part.classes, samples)
        for item in items[-4:]:  # warm-up: compile (or load) the kernels, fill the buffers
            renderer.render(*item)
        setups[fam] = (renderer, items)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        fam, start, count = line.split()
        renderer, items = setups[fam]
        todo = items[int(start):int(start) + int(count)]
        t0 = time.process_time()
        for item in todo:
            renderer.render(*item)
        dt = time.process_time() - t0
        print(json.dumps({"images": len(todo), "cpu_s": dt}), flush=True)


class _Checkout:
    """A worker process running this file with ``tree`` first on PYTHONPATH."""

    def __init__(self, tree: Path):
        env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], cwd=str(tree),
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        if not ready:
            raise SystemExit(f"the worker in {tree} did not start")
        self.tree = tree

    def rate(self, family: str, start: int, count: int) -> float:
        self.proc.stdin.write(f"{family} {start} {count}\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        return out["images"] / out["cpu_s"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _extract(commit: str, into: Path) -> Path:
    """The tree of ``commit`` (this repository's history) under ``into``."""
    archive = into / "tree.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", commit], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--a", help=f"the old checkout (default: commit {BASE} of this repository, extracted)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--images", type=int, default=40, help="images per family per round")
    args = ap.parse_args()
    if args.worker:
        _worker()
        return
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(args.a).resolve() if args.a else _extract(BASE, Path(tmp))
        a, b = _Checkout(old), _Checkout(REPO)
        rates = {fam: {"A": [], "B": []} for fam in CASES}
        try:
            for r in range(args.rounds):
                order = [("A", a), ("B", b)] if r % 2 == 0 else [("B", b), ("A", a)]
                for fam in CASES:
                    for name, worker in order:
                        rates[fam][name].append(worker.rate(fam, r * args.images, args.images))
                print(f"round {r}: " + "; ".join(f"{fam} A {rates[fam]['A'][-1]:.1f} B {rates[fam]['B'][-1]:.1f}"
                                                 for fam in CASES), flush=True)
        finally:
            a.close()
            b.close()
    print(f"\none thread, images per CPU-second (render only, {args.images} images per round, "
          f"{args.rounds} rounds; A = {args.a or BASE}, B = this checkout)")
    for fam in CASES:
        ma, mb = statistics.median(rates[fam]["A"]), statistics.median(rates[fam]["B"])
        print(f"{fam}: A median {ma:.1f}, B median {mb:.1f}; ratio B/A = {mb / ma:.2f} "
              f"({1e3 / ma:.2f} -> {1e3 / mb:.2f} CPU-ms per image)")


if __name__ == "__main__":
    main()
