"""What the one validated image reader costs (issue 27): ``fractaldb.inputs.open_image`` against
a bare ``PIL.Image.open(...).load()`` on the same encoded images, the loaders' hot path.

Both decode the same PNG bytes held in memory; A and B alternate round by round (A first on
even rounds) so a drift of the machine's speed hits both; the first round of each is a
warm-up and is not counted; each round decodes every image ``--per-round`` times.  Reports
the median microseconds per image of each, and the ratio B/A.

    python benchmarks/bench_inputs.py --sides 64 224 --formats png jpg --rounds 15 --per-round 100
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from PIL import Image

from fractaldb.inputs import open_image


def bare(data: bytes):
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def checked(data: bytes):
    return open_image(data, "bench")


def encoded(side: int, fmt: str = "png", n: int = 8) -> list:
    """``n`` images of ``side`` x ``side``: gray fractal-like speckle on black, as the shards hold."""
    rng = np.random.default_rng(side)
    out = []
    for _ in range(n):
        img = np.zeros((side, side), np.uint8)
        img[rng.integers(0, side, side * 4), rng.integers(0, side, side * 4)] = 127
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG" if fmt == "png" else "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", type=int, nargs="+", default=[64, 224])
    ap.add_argument("--formats", nargs="+", default=["png", "jpg"], choices=["png", "jpg"])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--per-round", type=int, default=400)
    args = ap.parse_args()
    for fmt, side in [(f, s) for f in args.formats for s in args.sides]:
        images = encoded(side, fmt)
        times = {"A": [], "B": []}
        for r in range(args.rounds + 1):
            pair = [("A", bare), ("B", checked)]
            for name, fn in pair if r % 2 == 0 else pair[::-1]:
                t = time.perf_counter()
                for _ in range(args.per_round):
                    for d in images:
                        fn(d)
                if r:  # round 0: warm-up
                    times[name].append((time.perf_counter() - t) / (args.per_round * len(images)) * 1e6)
        a, b = statistics.median(times["A"]), statistics.median(times["B"])
        print(f"{side}x{side} {fmt.upper()}: A (PIL open+load) {a:.1f} us/image, B (inputs.open_image) {b:.1f} us/image, "
              f"ratio B/A = {b / a:.3f}")


if __name__ == "__main__":
    main()
