"""Where the time of one image goes: each part of render -> encode -> pack, old way and new way.

One thread, FractalDB-1k settings (362x362, 200 000 points, patch gray,
weights 0.4, 10 draws x 4 flips, official mode), on the first ``--categories``
categories of the official search, ``--weights`` weight rows each.  Every part
runs on the same blocks; old and new variants of a part alternate within each
round, ``--rounds`` rounds, and the medians of CPU time per image
(``time.thread_time``: what this thread ran, whatever else the machine does)
are printed with their ratio.  JIT compilation happens before the first round.

    python benchmarks/bench_parts.py --categories 2 --weights 3 --rounds 5

Parts (per image: a block's cost is divided by its 40 images, a draw's by 4):
``points`` select + chaos game + NaN trim + rescale; ``count_filled``;
``raster`` old: zero + draw_patches per draw, new: patch_owners per block +
draw_owned per draw; ``flips`` old: 4 copies per draw, new: views; ``encode``
old: png1 of the copies, new: png2 of the views; ``pack`` old: the tar
writer of 0.2 (field-by-field headers), new: today's (keys, metadata JSON and
tar headers of 3 members per image, the shard's sha256 included).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import time

import numpy as np

from fractaldb.encode import _deflate, encode_png, encode_png2
from fractaldb.ifs import kernels as K
from fractaldb.families.fractal import sample_key
from fractaldb.ifs.render import CPURenderer, RenderConfig, flip
from fractaldb.families.fractal.search import SearchConfig, search
from fractaldb.seeds import stream_key
from fractaldb.shards import _PADS, _ustar_header, _ustar_header_slow, meta_bytes


def tar_with(header, members) -> bytes:
    parts = []
    for name, data in members:
        parts.append(header(name, len(data)))
        parts.append(data)
        parts.append(_PADS[-len(data) % 512])
    body = b"".join(parts)
    return body + b"\0" * (1024 + (-(len(body) + 1024) % 10240))


def pack(header, encoded, keys):
    members = []
    for (cid, w, d, t), data in zip(keys, encoded):
        key = sample_key(cid, w, d, t)
        meta = {"key": key, "family": "fractal", "label": cid, "category": cid, "weight": w, "draw": d, "flip": t,
                "seed": 1, "compat": "official", "factors": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]}
        members.append((f"{key}.cls", str(cid).encode("ascii")))
        members.append((f"{key}.json", meta_bytes(meta)))
        members.append((f"{key}.png", data))
    tar = tar_with(header, members)
    return hashlib.sha256(tar).hexdigest()


class Clock:
    """CPU seconds of this thread per named part."""

    def __init__(self):
        self.spent = {}

    def __call__(self, name, fn, *args):
        t = time.thread_time()
        out = fn(*args)
        self.spent[name] = self.spent.get(name, 0.0) + time.thread_time() - t
        return out


def one_round(r: CPURenderer, cats, weights, clock: Clock):
    cfg = r.cfg
    images = 0
    for cid, ifs in enumerate(cats):
        for w in weights:
            factors = r.table[w]
            key = stream_key(cfg.seed, "render-points", cid, w)
            m = clock("points", r._points, ifs.weighted(factors), ifs.cumulative(), key)
            clock("count_filled (old)", K.count_filled, r.px, r.py, m, cfg.size, cfg.size, r.bits)
            # old: per draw zero + sequential paste, 4 flip copies, png1 of the copies
            raster = np.zeros((cfg.size, cfg.size, 1), np.uint8)
            out = np.empty((4, cfg.size, cfg.size, 1), np.uint8)
            old_png, new_png, keys = [], [], []
            for d in range(cfg.draws):
                mk = stream_key(cfg.seed, "render-patches", cid, w, d)
                clock("raster (old)", lambda: (raster.fill(0), K.draw_patches(r.px, r.py, m, r.colors, mk, raster)))

                def copies():
                    for t in range(cfg.flips):
                        out[t] = flip(raster, t)
                clock("flips (old)", copies)
                for t in range(cfg.flips):
                    old_png.append(clock("encode png1 (old)", encode_png, out[t]))
                    keys.append((cid, w, d, t))
            # new: owners once, per draw only the owned pixels, flips as views, png2 of the views
            rasters = np.zeros((cfg.draws, cfg.size, cfg.size, 1), np.uint8)
            owned, uniq = clock("raster (new)", K.patch_owners, r.px, r.py, m, r.grids,
                                r.own_pix, r.own_shift, r.own_slot, r.own_uniq, r.pos_slot)
            for d in range(cfg.draws):
                mk = stream_key(cfg.seed, "render-patches", cid, w, d)
                clock("raster (new)", K.draw_owned, r.own_pix, r.own_shift, r.own_slot, owned, r.own_uniq, uniq,
                      r.colors, mk, r.masks, rasters[d])
                views = clock("flips (new)", lambda: [flip(rasters[d], t) for t in range(cfg.flips)])
                for v in views:
                    new_png.append(clock("encode png2 (new)", encode_png2, v))
            # floor of png2: ISA-L's deflate of its 1-bit rows alone
            for d in range(cfg.draws):
                for t in range(cfg.flips):
                    v = flip(rasters[d], t)
                    rows = np.zeros((cfg.size, 1 + (cfg.size + 7) // 8), np.uint8)
                    rows[:, 1:] = np.packbits(v[:, :, 0] != 0, axis=1)
                    clock("floor: deflate 1-bit rows", _deflate.compress, rows, 1)
            # floor of the raster: the one scatter of the block's points into the position grid
            clock("floor: point scatter", K._latest_at, r.px, r.py, m, r.grids[0])
            clock("pack (old)", pack, _ustar_header_slow, old_png, keys)
            clock("pack (new)", pack, _ustar_header, new_png, keys)
            images += cfg.draws * cfg.flips
    return images


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", type=int, default=2)
    ap.add_argument("--weights", type=int, default=3, help="weight rows per category (spread over the table)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scaling", action="store_true", help="only encode+pack on 1 and 2 threads")
    args = ap.parse_args()
    if args.scaling:
        return scaling(args.rounds)
    cfg = RenderConfig(compat="official", degenerate="keep")
    cats = search(SearchConfig(categories=args.categories, workers=1)).categories
    weights = [int(w) for w in np.linspace(0, len(cfg.weight_table()) - 1, args.weights)]
    r = CPURenderer(cfg)
    r._owner_scratch()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    one_round(r, cats[:1], weights[:1], Clock())  # JIT and warm-up
    rounds = []
    for _ in range(args.rounds):
        clock = Clock()
        n = one_round(r, cats, weights, clock)
        rounds.append({k: v / n * 1e6 for k, v in clock.spent.items()})
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"{n} images per round, {args.rounds} rounds; median CPU us per image (min-max over rounds)")
    for k, v in med.items():
        vals = [r[k] for r in rounds]
        print(f"  {k:22s} {v:8.1f}   ({min(vals):.1f}-{max(vals):.1f})")
    old = med["points"] + med["count_filled (old)"] + med["raster (old)"] + med["flips (old)"] \
        + med["encode png1 (old)"] + med["pack (old)"]
    new = med["points"] + med["raster (new)"] + med["flips (new)"] + med["encode png2 (new)"] + med["pack (new)"]
    print(f"  render only: old {med['points'] + med['count_filled (old)'] + med['raster (old)'] + med['flips (old)']:.1f}"
          f", new {med['points'] + med['raster (new)'] + med['flips (new)']:.1f}")
    print(f"  raster ratio old/new {med['raster (old)'] / med['raster (new)']:.2f}, encode {med['encode png1 (old)'] / med['encode png2 (new)']:.2f}"
          f", pack {med['pack (old)'] / med['pack (new)']:.2f}")
    print(f"  total: old {old:.1f} us, new {new:.1f} us per image -> ratio {old / new:.2f}; "
          f"encode+pack new {med['encode png2 (new)'] + med['pack (new)'] + med['flips (new)']:.1f} us "
          f"= {1e6 / (med['encode png2 (new)'] + med['pack (new)'] + med['flips (new)']):.0f} images/s per core")




def scaling(rounds: int, blocks: int = 6):
    """Encode+pack alone from pre-rendered rasters: images/s per core and on 2 threads."""
    import concurrent.futures as cf

    cfg = RenderConfig(compat="official", degenerate="keep")
    cats = search(SearchConfig(categories=2, workers=1)).categories
    r = CPURenderer(cfg)
    rasters, keys = [], []
    for i in range(blocks):
        cid, w = i % 2, (5 * i) % len(cfg.weight_table())
        block = next(r.render_views([(cid, cats[cid], w)]))
        base = np.ascontiguousarray(block.images[1])  # flip 1 is the raster as drawn
        for d in range(cfg.draws):
            rasters.append(base.copy() if d == 0 else np.ascontiguousarray(block.images[d * cfg.flips + 1]))
            keys.append((cid, w, d))

    def work(part):
        t = time.thread_time()
        encoded, names = [], []
        for (cid, w, d), raster in part:
            for f in range(cfg.flips):
                encoded.append(encode_png2(flip(raster, f)))
                names.append((cid, w, d, f))
        pack(_ustar_header, encoded, names)
        return time.thread_time() - t, len(encoded)

    items = list(zip(keys, rasters))
    work(items[:2])
    with cf.ThreadPoolExecutor(2) as pool:
        for threads in (1, 2, 1, 2) * rounds:
            w0 = time.perf_counter()
            if threads == 1:
                results = [work(items)]
            else:
                results = list(pool.map(work, [items[0::2], items[1::2]]))
            wall = time.perf_counter() - w0
            cpu = sum(c for c, _ in results)
            n = sum(k for _, k in results)
            print(f"  encode+pack, {threads} thread(s): {n / cpu:7.0f} images per CPU-s, {n / wall:7.0f} images/s wall "
                  f"(load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
