"""Contour families against their original scripts, per CPU-second (alternating rounds, medians).

Each round makes the same images twice: the ORIGINAL script (checked out outside the repository,
run as a subprocess by a Python with ``noise`` and Pillow; its CPU time from ``RUSAGE_CHILDREN``,
interpreter start included) and ours in this process (official mode, the same classes and images:
render + PNG encode, the original's RGB and our default 1-channel gray; ``time.process_time``).
Round ``r`` uses thread ``r``'s first class (``--numof_thread`` = ``--numof_classes`` = rounds), so
every round is another class.  The first round of ours is a warm-up (JIT) and is dropped.
Each round also times our PNG encode alone on the round's images (encoded again after the timed
run): the original's time over it is the ceiling of any renderer's ratio with that encoder.
The per-image figures above include each side's fixed cost (for the original, the interpreter's
start and imports: about 0.07 CPU-s, a third of a cheap RCDB class's 20 images), so each round
also runs the original for one image, and reports marginal costs: the original's
``(CPU(N images) - CPU(1 image)) / (N - 1)`` against ours after its first image.

    python benchmarks/bench_contour.py --family visualatom \\
        --original /work/originals/visualatom/visual_atomic_renderer \\
        --python /work/originals/venv/bin/python --rounds 6 --instances 20

    python benchmarks/bench_contour.py --family rcdb \\
        --original /work/originals/cvpr2022/rcdb_render \\
        --python /work/originals/venv/bin/python --rounds 6 --instances 20

Families: ``visualatom``, ``rcdb`` (more are added by their packages' authors as arms of ``ARMS``).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def original_visualatom(args, thread: int, out: Path, instances: int) -> float:
    """CPU-s of render_VisualAtom.py making ``instances`` images of thread ``thread``'s class."""
    from visualatom_originals import FLAGS

    before = _children_cpu()
    subprocess.run([args.python, "render_VisualAtom.py", f"--save_root={out}", f"--numof_thread={args.rounds}",
                    f"--thread_num={thread}", f"--numof_classes={args.rounds}",
                    f"--numof_instances={instances}", *FLAGS],
                   cwd=args.original, check=True, stdout=subprocess.DEVNULL)
    return _children_cpu() - before


def timed_arm(make_images) -> tuple:
    """Render + encode every image ``make_images()`` yields (its set-up runs inside the timing):
    ``(CPU-s per image, CPU-s per image after the first, CPU-s per image of the encode alone)``.

    Each image is dropped after its encode, as ``generate`` drops it. The copy kept for the
    encode-alone pass is made with the clock stopped: keeping every image inside the timing
    made each new image land on fresh pages, 0.15-0.3 ms of page faults per 512x512 image on
    this VM that ``generate`` does not pay (it holds one block at a time)."""
    import numpy as np

    from fractaldb.encode import encode_image

    kept = []
    spent = first = 0.0
    t = time.process_time()
    for img in make_images():
        img = np.ascontiguousarray(img)
        encode_image(img)
        spent += time.process_time() - t
        if not kept:
            first = spent
        kept.append(img.copy())  # for the encode-alone pass, off the clock
        del img
        t = time.process_time()
    t2 = time.process_time()
    for img in kept:  # the encode alone, on the same images
        encode_image(img)
    n = len(kept)
    return spent / n, (spent - first) / (n - 1), (time.process_time() - t2) / n


def _arm(make_images) -> dict:
    """``timed_arm`` for RGB then gray (``make_images(channels)``), keyed as ``main`` reads them."""
    out = {}
    for channels in (3, 1):
        out[channels], out[("marginal", channels)], out[("encode", channels)] = timed_arm(
            lambda: make_images(channels))
    return out


def ours_visualatom(args, thread: int) -> dict:
    """CPU-s per image of official mode for the same class: render + PNG, RGB and gray."""
    from fractaldb.families.visualatom import model as M

    def images(channels):
        cls = M._walk_worker(thread, thread, 1, args.instances, M.ClassRanges())[0]
        r = M.VisualAtomRenderer(M.VisualAtomRenderConfig(compat="official", channels=channels))
        B = M.block_size(args.instances)
        for b in range(args.instances // B):
            yield from r.render_many([M.Item(cls, block=b, count=B)])

    return _arm(images)


def original_rcdb(args, thread: int, out: Path, instances: int) -> float:
    """CPU-s of rcdb_render/make_rcdb.py (script flags) making ``instances`` images of thread
    ``thread``'s first class."""
    before = _children_cpu()
    subprocess.run([args.python, "make_rcdb.py", f"--save_root={out}", f"--numof_thread={args.rounds}",
                    f"--thread_num={thread}", f"--numof_classes={args.rounds}",
                    f"--numof_instances={instances}"],
                   cwd=args.original, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _children_cpu() - before


def ours_rcdb(args, thread: int) -> dict:
    """CPU-s per image of official mode for the same class: render + PNG, RGB and gray."""
    import numpy as np

    from fractaldb.families import get_family
    from fractaldb.families.rcdb.model import RCDBRenderer
    from fractaldb.schema import defaults

    fam = get_family("rcdb")
    d = defaults(fam.settings)
    d.update(classes=args.rounds, instances=args.instances, compat="official", workers=args.rounds)

    def images(channels):
        for img in RCDBRenderer(fam.configure(d, 1)).official(thread, range(args.instances)):
            yield np.repeat(img, 3, axis=2) if channels == 3 else img

    return _arm(images)


ARMS = {"visualatom": (original_visualatom, ours_visualatom), "rcdb": (original_rcdb, ours_rcdb)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", choices=sorted(ARMS), required=True)
    ap.add_argument("--original", type=Path, required=True, help="folder holding the original script")
    ap.add_argument("--python", default=sys.executable, help="a Python with noise and Pillow")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--instances", type=int, default=20)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    original, ours = ARMS[args.family]
    ours(args, 0)  # warm-up: JIT compilation (and the disk cache)
    rows, marg = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # alternating: original, ours, same class
            whole = original(args, r, Path(tmp) / f"r{r}", args.instances)
            one = original(args, r, Path(tmp) / f"s{r}", 1)
            o = whole / args.instances
            om = max(whole - one, 0.0) / (args.instances - 1)  # the interpreter's start and imports cancel
            m = ours(args, r)
            rows.append((o, m[3], m[1], m[("encode", 3)], m[("encode", 1)]))
            marg.append((om, m[("marginal", 3)], m[("marginal", 1)]))
            print(f"round {r}: original {o * 1e3:8.1f} ms/image  ours RGB {m[3] * 1e3:6.2f} ms ({o / m[3]:5.1f}x)  "
                  f"gray {m[1] * 1e3:6.2f} ms ({o / m[1]:5.1f}x); encode alone RGB {m[('encode', 3)] * 1e3:.2f} ms, "
                  f"gray {m[('encode', 1)] * 1e3:.2f} ms; marginal: original {om * 1e3:.1f} ms, "
                  f"ours gray {m[('marginal', 1)] * 1e3:.2f} ms ({om / m[('marginal', 1)]:5.1f}x)", flush=True)
    med = [statistics.median(c) for c in zip(*rows)]
    ratios = [statistics.median(row[0] / row[i] for row in rows) for i in (1, 2, 3, 4)]
    print(f"median CPU-s/image: original {med[0]:.4f}, ours RGB {med[1]:.5f}, gray {med[2]:.5f}; "
          f"median per-round ratio: RGB {ratios[0]:.1f}x, gray {ratios[1]:.1f}x")
    print(f"encode alone: RGB {med[3]:.5f}, gray {med[4]:.5f} CPU-s/image; ceiling of any renderer with this "
          f"encoder (original / encode alone, median per round): RGB {ratios[2]:.1f}x, gray {ratios[3]:.1f}x")
    mr = [statistics.median(row[0] / row[i] for row in marg) for i in (1, 2)]
    print(f"marginal cost per image (the original: (CPU of {args.instances} images - CPU of 1) / "
          f"{args.instances - 1}, without its interpreter's start; ours: after the first image), median per-round "
          f"ratio: RGB {mr[0]:.1f}x, gray {mr[1]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
