"""The replay of CPython's stream: ``fill_words`` (MT19937 words) and ``replay_draws``
(the noise of one instance's orbits), per word and per value.

``fill_words`` fills a VisualAtom-sized block (``4 V`` words, ``V = --vertices``) ``--repeat``
times inside one compiled loop; ``replay_draws`` fills ``P`` ``(K, 2, V)`` for ``K = --orbits``.
Medians of ``--rounds`` timings after a warm-up (JIT excluded).  It uses only APIs that older
checkouts have too, so ``benchmarks/ab.py`` can compare two trees:

    python benchmarks/ab.py --a /path/to/old --b . --rounds 5 \\
        --cmd-a "python benchmarks/bench_replay.py" --cmd-b "python benchmarks/bench_replay.py" \\
        --metric "replay_draws ([0-9.]+) ns/value"
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import njit

from fractaldb.contours.orbits import replay_draws
from fractaldb.contours.pyrandom import seed_state
from fractaldb.kernels.mt19937 import fill_words


@njit
def _fill_many(st, words, n):
    for _ in range(n):
        fill_words(st, words)


def _median(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vertices", type=int, default=800)
    ap.add_argument("--orbits", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    st = seed_state(2023)
    words = np.empty(4 * args.vertices, dtype=np.uint32)
    _fill_many(st, words, 2)
    t = _median(lambda: _fill_many(st, words, args.repeat), args.rounds)
    print(f"fill_words {t / args.repeat / words.size * 1e9:.3f} ns/word ({words.size} words a call)")
    P = np.empty((args.orbits, 2, args.vertices))
    grays = np.empty(args.orbits, dtype=np.int32)
    replay_draws(st, 0, 255, False, P, grays)
    reps = max(1, args.repeat // 40)

    def replay():
        for _ in range(reps):
            replay_draws(st, 0, 255, False, P, grays)

    t = _median(replay, args.rounds)
    print(f"replay_draws {t / reps / P.size * 1e9:.3f} ns/value (K={args.orbits}, V={args.vertices})")


if __name__ == "__main__":
    main()
