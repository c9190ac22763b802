"""Official mode against the ORIGINAL VisualAtom script, pixel for pixel.

Runs ``render_VisualAtom.py`` (masora1030/CVPR2023-FDSL-on-VisualAtom, checked out OUTSIDE this
repository, with a Python that has ``noise`` and Pillow) with make_VisualAtom.sh's flags for a
sample of its worker threads, then renders the same classes with ``compat: official`` and
compares every image (decoded RGB arrays)::

    python benchmarks/visualatom_originals.py \\
        --original /work/originals/visualatom/visual_atomic_renderer \\
        --python /work/originals/venv/bin/python --threads-sample 0,7,19 --instances 4

Nothing of the original is imported or copied: it runs as a subprocess.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from fractaldb.families.visualatom import model as M

#: make_VisualAtom.sh's flags (besides the thread split and the instance count).
FLAGS = ["--vertex_num_min=200", "--vertex_num_max=1000", "--perlin_min=0", "--line_num_min=1",
         "--line_num_max=200", "--line_width=0.1", "--radius_min=10", "--oval_rate=2", "--start_pos=512",
         "--nami_1_min=0", "--nami_2_min=0", "--nami_1_max=20", "--nami_2_max=20", "--start_class=0"]


def run_original(original: Path, python: str, out: Path, thread: int, threads: int, classes: int,
                 instances: int) -> float:
    t0 = time.process_time()
    start = time.perf_counter()
    subprocess.run([python, "render_VisualAtom.py", f"--save_root={out}", f"--numof_thread={threads}",
                    f"--thread_num={thread}", f"--numof_classes={classes}", f"--numof_instances={instances}", *FLAGS],
                   cwd=original, check=True, stdout=subprocess.DEVNULL)
    del t0
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, required=True, help="folder holding render_VisualAtom.py")
    ap.add_argument("--python", default=sys.executable, help="a Python with noise and Pillow")
    ap.add_argument("--threads", type=int, default=20)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--threads-sample", default="0,7,19")
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    sample = [int(t) for t in args.threads_sample.split(",")]
    per = args.classes // args.threads
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda t: run_original(args.original, args.python, root, t, args.threads, args.classes,
                                                 args.instances), sample))
        made = max(sample) * per + per
        classes = M.official_classes(made, args.classes, args.threads, args.instances, M.ClassRanges(), workers=2)
        renderer = M.VisualAtomRenderer(M.VisualAtomRenderConfig(compat="official", channels=3))
        B = M.block_size(args.instances)
        equal = total = images = 0
        for t in sample:
            for k in range(t * per, (t + 1) * per):
                cls = classes[k]
                ours = [img for b in range(args.instances // B)
                        for img in renderer.render_many([M.Item(cls, block=b, count=B)])]
                same = True
                for i, img in enumerate(ours):
                    path = root / f"{k:05d}" / f"vertex_{cls.vertices:04d}_instance_{i:04d}.png"
                    theirs = np.asarray(Image.open(path).convert("RGB"))
                    same &= bool(np.array_equal(theirs, img))
                    images += 1
                equal += same
                total += 1
        print(f"{equal}/{total} classes equal ({images} images; threads {sample} of {args.threads}, "
              f"{args.instances} instances per class, {args.classes} classes)")
        return 0 if equal == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
