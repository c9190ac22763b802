"""Official mode against the published RCDB and SegRCDB scripts, pixel for pixel.

Runs the originals (outside this repository: a checkout of
masora1030/CVPR2022-Pretrained-ViT-PyTorch and of dahlian00/SegRCDB, with a Python that has
``noise`` 1.2.2 and Pillow) on a sample, then renders the same images with
``compat: official`` and compares the decoded pixels (images, and SegRCDB's masks).

    python benchmarks/compare_rcdb_originals.py --rcdb ORIG/cvpr2022 --segrcdb ORIG/segrcdb \
        --python ORIG/venv/bin/python --work /tmp/cmp

Sample: RCDB with the published T = 10, worker 0 made for ``--classes`` classes x
``--instances`` instances (the first classes of its stream; every class after the first is
reached by walking the stream), and SegRCDB's class table plus worker 0's first ``--images``
images at T = 40 (M1), then the last of them again alone (the others skipped).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fractaldb.families import get_family
from fractaldb.schema import defaults


def _family(name, **kw):
    fam = get_family(name)
    d = defaults(fam.settings)
    d.update(kw)
    s = fam.configure(d, 1)
    return fam.bind(s, fam.find_classes(s, 1))


def rcdb(args, out: Path) -> tuple:
    # The script makes classes [0, C/T) for worker 0; C = T * classes keeps its stream and stops early.
    t = 10
    subprocess.run([args.python, "make_rcdb.py", "--save_root", str(out), "--numof_thread", str(t), "--thread_num", "0",
                    "--numof_classes", str(t * args.classes), "--numof_instances", str(args.instances)],
                   cwd=Path(args.rcdb) / "rcdb_render", check=True, capture_output=True)
    bound = _family("rcdb", classes=t * args.classes, instances=args.instances, compat="official", workers=t)
    r = bound.renderer()
    equal = total = 0
    for k in range(args.classes):
        rb = next(iter(bound.render_blocks(r, [(k, 0, list(range(args.instances)))])))
        for i, img in zip(rb.offsets, rb.images):
            orig = np.asarray(Image.open(out / "image" / f"{k:05d}" / f"{k:05d}_{i:04d}.png").convert("RGB"))
            equal += bool(np.array_equal(np.repeat(img, 3, axis=2), orig))
            total += 1
    return equal, total


def segrcdb(args, out: Path) -> tuple:
    t, n = 40, 40 * args.images
    root = Path(args.segrcdb)
    subprocess.run([args.python, "SegRCDB_params.py", "--save_root", str(out), "--line_width", "0.1"], cwd=root,
                   check=True, capture_output=True)
    subprocess.run([args.python, "SegRCDB_render.py", "--save_root", str(out), "--numof_thread", str(t),
                    "--thread_num", "0", "--numof_classes", "254", "--numof_images", str(n), "--mode", "M1"],
                   cwd=root, check=True, capture_output=True)
    bound = _family("segrcdb", images=n, workers=t, compat="official")
    rb = next(iter(bound.render_blocks(bound.renderer(), [(0, 0, list(range(args.images)))])))
    equal = total = 0
    for i, img in zip(rb.offsets, rb.images):
        orig = np.asarray(Image.open(out / "image" / f"{i:06d}.png").convert("RGB"))
        mask = np.asarray(Image.open(out / "mask" / f"{i:06d}.png"))
        equal += bool(np.array_equal(np.repeat(img, 3, axis=2), orig) and np.array_equal(rb.masks[i], mask))
        total += 1
    # the last image alone: the images before it only consume the stream (skipped, not drawn)
    last = args.images - 1
    rb = next(iter(bound.render_blocks(bound.renderer(), [(0, 0, [last])])))
    img = next(iter(rb.images))
    orig = np.asarray(Image.open(out / "image" / f"{last:06d}.png").convert("RGB"))
    mask = np.asarray(Image.open(out / "mask" / f"{last:06d}.png"))
    equal += bool(np.array_equal(np.repeat(img, 3, axis=2), orig) and np.array_equal(rb.masks[0], mask))
    return equal, total + 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rcdb", required=True, help="checkout of masora1030/CVPR2022-Pretrained-ViT-PyTorch")
    ap.add_argument("--segrcdb", required=True, help="checkout of dahlian00/SegRCDB")
    ap.add_argument("--python", default=sys.executable, help="a Python with noise 1.2.2 and Pillow")
    ap.add_argument("--work", required=True, help="a scratch folder for the originals' output")
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--images", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(args.work)
    e, n = rcdb(args, work / "rcdb")
    print(f"RCDB official vs make_rcdb.py (T = 10, worker 0): {e}/{n} images equal")
    e2, n2 = segrcdb(args, work / "segrcdb")
    print(f"SegRCDB official vs SegRCDB_params.py + SegRCDB_render.py (T = 40, worker 0, M1): {e2}/{n2} "
          "images and masks equal")
    return 0 if (e, e2) == (n, n2) else 1


if __name__ == "__main__":
    sys.exit(main())
