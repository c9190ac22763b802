"""The orbit tracer alone: ``fractaldb.contours.orbits.trace_orbits`` on VisualAtom instances.

For ``--classes`` classes (official mode, class ``t`` = thread ``t``'s first class of a
``--classes``-thread split, as ``bench_contour.py`` takes them), the first instance's noise is
replayed once, then its trace into a 512x512 gray image is timed ``--repeat`` times after a
warm-up (JIT excluded); medians per class, and their geometric mean.  It uses only APIs that
older checkouts have too, so ``benchmarks/ab.py`` can compare two trees:

    python benchmarks/ab.py --a /path/to/old --b . --rounds 5 \\
        --cmd-a "python benchmarks/bench_trace.py" --cmd-b "python benchmarks/bench_trace.py" \\
        --metric "geometric mean ([0-9.]+) ms"
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from fractaldb.contours import orbits as O
from fractaldb.families.visualatom import model as M
from fractaldb.kernels.mt19937 import skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    r = M.VisualAtomRenderer(M.VisualAtomRenderConfig(compat="official", channels=1))
    noidx = np.zeros((0, 0), dtype=np.int32)
    medians = []
    for t in range(args.classes):
        cls = M._walk_worker(t, t, 1, 20, M.ClassRanges())[0]
        P, grays, xs, ys = r._scratch(cls)
        st = M.state_array(cls.state)
        skip(st, np.int64(cls.offsets[0]))
        O.replay_draws(st, 0, 255, False, P, grays)
        cy, cx = cls.centres[0]
        args_ = (P, grays, M.trig(cls.vertices, cls.wave1, cls.wave2), cx, cy, float(cls.radius), cls.oval_x,
                 cls.oval_y, cls.noise, cls.line_width, 1.0, True, True)
        img = np.zeros((512, 512), dtype=np.uint8)
        O.trace_orbits(*args_, img, noidx, 0, xs, ys)  # warm-up (and JIT)
        times = []
        for _ in range(args.repeat):
            img[:] = 0
            t0 = time.perf_counter()
            O.trace_orbits(*args_, img, noidx, 0, xs, ys)
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
        print(f"class {t}: V={cls.vertices} K={cls.orbits}: trace median {medians[-1] * 1e3:.3f} ms")
    geo = math.exp(sum(math.log(m) for m in medians) / len(medians))
    print(f"geometric mean {geo * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
