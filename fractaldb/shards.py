"""One WebDataset shard: render its samples, encode them, pack a tar.

A shard is a pure function of (config, categories, shard index): the tar
headers are fixed (mtime 0, uid/gid 0, fixed owner names, mode 0o444,
ustar), members come in plan order, and each sample is three members:
``<key>.cls`` (ASCII label), ``<key>.json`` (what made it) and the image.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict

import numpy as np

from .encode import encode_image
from .keys import LABEL_EXT, META_EXT, sample_key
from .plan import Plan
from .render import RenderConfig

__all__ = ["build_shard", "tar_bytes", "TAR_OWNER"]

TAR_OWNER = "fractaldb"


def tar_bytes(members) -> bytes:
    """A deterministic ustar archive of ``(name, bytes)`` pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = TAR_OWNER
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_shard(plan: Plan, index: int, systems, category_ids, cfg: RenderConfig, renderer,
                image_format: str = "png", family: str = "fractal"):
    """Render and pack shard ``index``.

    Args:
        plan: the dataset plan.
        index: shard number.
        systems: the :class:`~fractaldb.ifs.IFS` of every category (by label).
        category_ids: category numbers (names and seeds), by label.
        cfg: render settings.
        renderer: a renderer from :func:`fractaldb.render.create_renderer`
            (owned by the calling thread).
        image_format: ``png``, ``jpg`` or ``webp``.

    Returns:
        ``(tar bytes, number of samples, degenerate-variant records)``.
    """
    samples = plan.shard_samples(index)
    # One chaos game per (category, weight) block, only the draws we need.
    wanted = defaultdict(set)
    for s in samples:
        wanted[s.block].add(s.draw)
    images = {}
    records = []
    factors = {}
    for (label, weight) in sorted(wanted):
        draws = sorted(wanted[(label, weight)])
        block = renderer.render_block(category_ids[label], systems[label], weight, draws=draws)
        factors[(label, weight)] = [float(f) for f in block.factors]
        if block.record is not None:
            records.append(block.record)
        for k, d in enumerate(draws):
            for t in range(cfg.flips):
                images[(label, weight, d, t)] = block.images[k * cfg.flips + t]
    members = []
    for s in samples:
        cid = int(category_ids[s.category])
        key = sample_key(cid, s.weight, s.draw, s.flip)
        meta = {
            "key": key, "family": family, "label": s.category, "category": cid,
            "weight": s.weight, "factors": factors[s.block], "draw": s.draw, "flip": s.flip,
            "seed": cfg.seed, "compat": cfg.compat,
        }
        img = images[(s.category, s.weight, s.draw, s.flip)]
        members.append((f"{key}.{LABEL_EXT}", str(s.category).encode("ascii")))
        members.append((f"{key}.{META_EXT}", json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()))
        members.append((f"{key}.{image_format}", encode_image(np.ascontiguousarray(img), image_format)))
    return tar_bytes(members), len(samples), records
