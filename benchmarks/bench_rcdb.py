"""RCDB: official mode against the published make_rcdb.py, images per CPU-second.

    python benchmarks/bench_rcdb.py --rcdb ORIG/cvpr2022 --python ORIG/venv/bin/python --work /tmp/bench

Both make the same images (worker 0 of T = 10, its first ``--classes`` classes x
``--instances`` instances, PNG written to disk by both).  Rounds alternate original / ours;
the first round of each is a warm-up (imports, numba compilation) and is excluded; the
medians of the rest are reported.  The original's CPU time is its process's (user + sys, from ``RUSAGE_CHILDREN``); ours is
this process's ``time.process_time()`` around the render, the PNG encode (the datasets'
default encoder) and the write; the PNG encode's share is printed too.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fractaldb.encode import DEFAULT_ENCODER, encode_image
from fractaldb.families import get_family
from fractaldb.schema import defaults


#: Our PNG-encode CPU seconds per round.
ENCODE: list = []


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def original(args, out: Path) -> float:
    t0 = _child_cpu()
    subprocess.run([args.python, "make_rcdb.py", "--save_root", str(out), "--numof_thread", "10", "--thread_num", "0",
                    "--numof_classes", str(10 * args.classes), "--numof_instances", str(args.instances)],
                   cwd=Path(args.rcdb) / "rcdb_render", check=True, capture_output=True)
    return _child_cpu() - t0


def ours(args, out: Path) -> float:
    fam = get_family("rcdb")
    d = defaults(fam.settings)
    d.update(classes=10 * args.classes, instances=args.instances, compat="official", workers=10)
    s = fam.configure(d, 1)
    t0 = time.process_time()
    enc = 0.0
    bound = fam.bind(s, fam.find_classes(s, 1))
    r = bound.renderer()
    out.mkdir(parents=True, exist_ok=True)
    for k in range(args.classes):
        rb = next(iter(bound.render_blocks(r, [(k, 0, list(range(args.instances)))])))
        for i, img in zip(rb.offsets, rb.images):
            t1 = time.process_time()
            data = encode_image(img, "png", encoder=DEFAULT_ENCODER)
            enc += time.process_time() - t1
            (out / f"{k:05d}_{i:04d}.png").write_bytes(data)
    ENCODE.append(enc)
    return time.process_time() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rcdb", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--work", required=True)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args(argv)
    n = args.classes * args.instances
    a, b = [], []
    for rnd in range(args.rounds):
        a.append(original(args, Path(args.work) / f"orig{rnd}"))
        b.append(ours(args, Path(args.work) / f"ours{rnd}"))
    a, b = a[1:], b[1:]
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{n} images per round, {len(a)} measured rounds (warm-up excluded)")
    print(f"original make_rcdb.py: median {ma:.3f} CPU-s = {n / ma:.1f} images per CPU-second")
    print(f"fractaldb official:    median {mb:.3f} CPU-s = {n / mb:.1f} images per CPU-second")
    me = statistics.median(ENCODE[1:])
    print(f"  of which PNG encode: median {me:.3f} CPU-s ({100 * me / mb:.0f} %)")
    print(f"ratio: {ma / mb:.1f}x (render alone, without our encode: {ma / (mb - me):.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
