"""Render only: FractalDB-1k blocks (362x362, 200k points, patch gray, 10 draws x 4 flips) into
images ready to encode, images per CPU-second of one thread, JIT and warm-up excluded.

Uses only the CPU renderer API that every release has (``render_many``), and
``render_views`` (what shards are packed from: flips as views) where the
checkout has it, so ``benchmarks/ab.py`` can run it from this path against an
older checkout:

    python benchmarks/ab.py --a /work/old-speed --b . --rounds 5 \\
        --cmd-a "python $PWD/benchmarks/bench_render_only.py" --cmd-b "python $PWD/benchmarks/bench_render_only.py" \\
        --metric "([0-9.]+) images/CPU-s"
"""

from __future__ import annotations

import argparse
import statistics
import time

from fractaldb.ifs.render import CPURenderer, RenderConfig
from fractaldb.families.fractal.search import SearchConfig, search


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=2)
    ap.add_argument("--weights", type=int, default=6, help="weight rows per category")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg = RenderConfig(compat="official", degenerate="keep")
    cats = search(SearchConfig(categories=args.categories, workers=1)).categories
    rows = len(cfg.weight_table())
    jobs = [(c, cats[c], (w * 7) % rows) for c in range(args.categories) for w in range(args.weights)]
    r = CPURenderer(cfg)
    render = getattr(r, "render_views", r.render_many)
    for block in render(jobs[:1]):  # JIT and warm-up
        pass
    rates = []
    for _ in range(args.repeat):
        t = time.thread_time()
        n = sum(len(block.images) for block in render(jobs))
        rates.append(n / (time.thread_time() - t))
    print(f"render only ({render.__name__}), {n} images: median {statistics.median(rates):.0f} images/CPU-s")


if __name__ == "__main__":
    main()
