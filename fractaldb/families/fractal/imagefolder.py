"""ImageFolder output with the original names (``fractaldb render``).

``OUT/<cat>/<cat>_<ww>_count_<k>_flip<t>.png``: the layout existing training
scripts (torchvision's ``ImageFolder``) read.  The folder is assembled under
a temporary name beside ``OUT`` and renamed into place at the end, so an
interrupted run never leaves a half-written dataset behind.  A
``render.json`` beside the class folders records the settings and any
degenerate weight variants (ImageFolder ignores plain files at the top).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import asdict
from pathlib import Path

from ...encode import DEFLATE, encode_image
from ...keys import RENDER_SUMMARY
from ...signals import worker_pool
from ...storage import staged_dir
from ...errors import ConfigError
from .render import CPURenderer, RenderConfig

__all__ = ["write_imagefolder", "render_blocks", "create_renderer"]


def write_imagefolder(ids, systems, cfg: RenderConfig, out, workers: int = 1, overwrite: bool = False,
                      image_format: str = "png", progress=None, device: str = "cpu") -> dict:
    """Render ``systems`` into an ImageFolder at ``out``; returns the summary.

    Args:
        ids: category numbers (names and seeds).
        systems: one :class:`~fractaldb.families.fractal.ifs.IFS` per category.
        cfg: render settings.
        out: destination folder (must not exist, or be empty, unless ``overwrite``).
        workers: render/encode threads.
        overwrite: replace an existing non-empty ``out``.
        image_format: ``png`` (default), ``jpg`` or ``webp``.
        progress: optional ``progress(n_images)`` callback.
        device: render device, ``cpu`` or ``cuda`` (the files are the same).
    """
    out = Path(out)
    records = []
    with staged_dir(out, overwrite) as tmp:
        for cid in ids:
            (tmp / f"{cid:05d}").mkdir()

        def consume(block):
            folder = tmp / f"{block.category:05d}"
            for name, img in zip(block.names(cfg.flips), block.images):
                (folder / f"{name}.{image_format}").write_bytes(encode_image(img, image_format))
            return block.images.shape[0], block.record

        total = 0
        for n, record in render_blocks(systems, cfg, workers=workers, category_ids=ids, consume=consume,
                                         device=device):
            total += n
            if record is not None:
                records.append(record)
            if progress is not None:
                progress(n)
        summary = {
            "format": "fractaldb-imagefolder-v1",
            "render": asdict(cfg),
            "image_format": image_format,
            "deflate": DEFLATE if image_format == "png" else None,
            "categories": len(ids),
            "images": total,
            "degenerate_variants": records,
        }
        (tmp / RENDER_SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def create_renderer(cfg: RenderConfig, device: str = "cpu"):
    """The fractal renderer for ``device``: ``cpu`` (:class:`CPURenderer`) or ``cuda``
    (:class:`~fractaldb.families.fractal.render_cuda.CUDARenderer`, the same blocks;
    :class:`ConfigError` without a usable GPU)."""
    if device == "cuda":
        # Imported here: importing fractaldb never imports numba.cuda.
        from .render_cuda import CUDARenderer

        return CUDARenderer(cfg)
    if device != "cpu":
        raise ConfigError(f"unknown device {device!r}; choose cpu or cuda")
    return CPURenderer(cfg)


def render_blocks(categories, cfg: RenderConfig, workers: int = 1, category_ids=None, consume=None,
                  device: str = "cpu"):
    """Render every (category, weight) block on ``workers`` threads.

    Args:
        categories: sequence of :class:`~fractaldb.families.fractal.ifs.IFS`.
        cfg: render settings.
        workers: threads; each has its own renderer.
        category_ids: category numbers (default ``0..len-1``), used in names and seeds.
        consume: ``consume(block)`` called on the worker thread right after
            the block is rendered (encode and write there, in parallel).
        device: ``cpu`` or ``cuda`` (same images; see docs/gpu.md).

    Yields:
        The result of ``consume(block)`` (or the block), in (category, weight) order.
    """
    if category_ids is None:
        category_ids = range(len(categories))
    jobs = [(cid, ifs, w) for cid, ifs in zip(category_ids, categories) for w in range(len(cfg.weight_table()))]
    if device == "cuda":
        yield from _render_blocks_gpu(jobs, cfg, workers, consume)
        return
    local = threading.local()

    def run(job):
        if not hasattr(local, "renderer"):
            local.renderer = create_renderer(cfg, device)
        block = local.renderer.render_block(*job)
        return consume(block) if consume is not None else block

    if workers <= 1:
        for job in jobs:
            yield run(job)
        return
    with worker_pool(workers) as pool:  # Ctrl-C: queued blocks cancelled, running ones abandoned
        # Bounded look-ahead keeps memory flat on long runs.
        window = 4 * workers
        futures = [pool.submit(run, j) for j in jobs[:window]]
        nxt = window
        for i in range(len(jobs)):
            result = futures[i].result()
            futures[i] = None
            if nxt < len(jobs):
                futures.append(pool.submit(run, jobs[nxt]))
                nxt += 1
            yield result


def _render_blocks_gpu(jobs, cfg: RenderConfig, workers: int, consume):
    """:func:`render_blocks` on the GPU: one renderer launches many blocks at a
    time from this thread; ``consume`` (encoding, writing) runs on ``workers``
    threads meanwhile."""
    renderer = create_renderer(cfg, "cuda")
    window = 4 * max(workers, 1)
    pending = deque()
    with worker_pool(max(workers, 1)) as pool:
        for block in renderer.render_many(jobs):
            block.images = block.images.copy()  # the launch's host buffer is reused
            pending.append(pool.submit(consume, block) if consume is not None else block)
            while len(pending) > window:
                head = pending.popleft()
                yield head.result() if consume is not None else head
        while pending:
            head = pending.popleft()
            yield head.result() if consume is not None else head
