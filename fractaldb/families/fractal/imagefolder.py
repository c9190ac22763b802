"""ImageFolder output with the original names (``fractaldb render``).

``OUT/<cat>/<cat>_<ww>_count_<k>_flip<t>.png``: the layout existing training
scripts (torchvision's ``ImageFolder``) read.  The folder is assembled under
a hidden name beside ``OUT`` (``.OUT.partial``) and renamed into place at the
end, so an interrupted run never leaves a half-written dataset at ``OUT``; the
hidden folder records the finished blocks, and ``--resume`` continues it.  A
``render.json`` beside the class folders records the settings and any
degenerate weight variants (ImageFolder ignores plain files at the top).

The hidden folder is written through the safe-write layer (:mod:`fractaldb.storage`):
every image and record file whole, under a random temporary name, never through a
link (a class folder that is a link is refused), the log of finished blocks appended
without following links; its records are read bounded.  It is fractaldb's only when it
holds its run record (``.render-run.json``): ``--resume`` and ``--overwrite`` refuse (and
never delete) a folder of that name that a user made.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from dataclasses import asdict
from pathlib import Path

from ...encode import DEFLATE, encode_image
from ...keys import RENDER_SUMMARY
from ...errors import ConfigError, InputError, OutputError
from ...gpu import check_device
from ...inputs import parse_json, read_file
from ...signals import worker_pool
from ...storage import Store, append_line, check_output_dir, replace_dir
from ...ifs.render import CPURenderer, RenderConfig

__all__ = ["write_imagefolder", "render_blocks", "create_renderer"]


#: Beside ``OUT`` while a render is in progress: ``.OUT.partial/`` (kept when interrupted,
#: for ``--resume``), holding the class folders, ``RUN`` (the settings) and ``DONE`` (one
#: JSON line per finished (category, weight) block).
PARTIAL = ".{name}.partial"
RUN, DONE = ".render-run.json", ".render-done.jsonl"
#: The run record's format: what marks a hidden folder as a partial render fractaldb made.
RUN_FORMAT = "fractaldb-imagefolder-v1"
#: Largest run record or log of finished blocks read (21k categories x 25 weights is ~50 MB).
MAX_RECORD_BYTES = 1 << 30


def partial_dir(out) -> Path:
    out = Path(out)
    return out.with_name(PARTIAL.format(name=out.name))


def write_imagefolder(ids, systems, cfg: RenderConfig, out, workers: int = 1, overwrite: bool = False,
                      image_format: str = "png", progress=None, device: str = "cpu", resume: bool = False,
                      on_start=None) -> dict:
    """Render ``systems`` into an ImageFolder at ``out``; returns the summary.

    The folder is assembled in ``.OUT.partial/`` beside ``out`` and renamed into place at
    the end.  Each finished (category, weight) block is recorded there; an interrupted
    render leaves that folder behind, and ``resume`` continues it (the same categories
    and settings only), rendering just the blocks not recorded.

    Args:
        ids: category numbers (names and seeds).
        systems: one :class:`~fractaldb.ifs.system.IFS` per category.
        cfg: render settings.
        out: destination folder (must not exist, or be empty, unless ``overwrite``).
        workers: render/encode threads.
        overwrite: replace an existing non-empty ``out`` (and discard an interrupted render).
        image_format: ``png`` (default), ``jpg`` or ``webp``.
        progress: optional ``progress(n_images)`` callback.
        device: render device, ``cpu`` or ``cuda`` (the files are the same).
        resume: continue the interrupted render of ``out``.
        on_start: optional ``on_start(kept_images)``, called before rendering.
    """
    out = Path(out)
    check_output_dir(out, overwrite)
    part = partial_dir(out)
    run = {"format": RUN_FORMAT, "render": asdict(cfg), "image_format": image_format,
           "ids": list(map(int, ids)), "systems": [ifs.rows().tolist() for ifs in systems]}
    done = _open_partial(part, out, run, resume, overwrite)
    store = _start_partial(part, run, ids)

    def consume(block):
        folder = f"{block.category:05d}"
        for name, img in zip(block.names(cfg.flips), block.images):
            store.write(f"{folder}/{name}.{image_format}", encode_image(img, image_format))
        return block.category, block.weight, block.images.shape[0], block.record

    kept = sum(rec["images"] for rec in done.values())
    if on_start is not None:
        on_start(kept)
    total = kept
    for cid, w, n, record in render_blocks(systems, cfg, workers=workers, category_ids=ids, consume=consume,
                                           device=device, skip=set(done)):
        done[(cid, w)] = {"category": cid, "weight": w, "images": n, "record": record}
        append_line(part / DONE, json.dumps(done[(cid, w)]))
        total += n
        if progress is not None:
            progress(n)
    records = [done[k]["record"] for k in sorted(done) if done[k]["record"] is not None]
    summary = {
        "format": "fractaldb-imagefolder-v1",
        "render": asdict(cfg),
        "image_format": image_format,
        "deflate": DEFLATE if image_format == "png" else None,
        "categories": len(ids),
        "images": total,
        "degenerate_variants": records,
    }
    _finish_partial(store, part, out, summary)
    return summary


def _ours(part: Path) -> dict | None:
    """The run record of the partial render in ``part`` ({} for an empty folder), or None when
    the folder is not one fractaldb made (no readable run record of ours)."""
    if not any(part.iterdir()):
        return {}
    record = part / RUN
    if record.is_symlink() or not record.is_file():
        return None
    try:
        run = parse_json(read_file(record, str(record), MAX_RECORD_BYTES), str(record), dict,
                         max_bytes=MAX_RECORD_BYTES)
    except InputError:
        return None
    return run if run.get("format") == RUN_FORMAT else None


def _open_partial(part: Path, out: Path, run: dict, resume: bool, overwrite: bool) -> dict:
    """The blocks an interrupted render in ``part`` finished (``resume``), or {} after clearing
    it (``overwrite``); refuses a link, a file, a folder fractaldb did not make, or a partial
    render of other settings."""
    from ...storage import remove_tree

    done: dict = {}
    if part.is_symlink() or (os.path.lexists(part) and not part.is_dir()):
        raise OutputError(f"{part} is not a folder fractaldb made (a link or a file); remove it or choose "
                          "another --out")
    if not part.exists():
        return done
    before = _ours(part)
    if before is None:
        raise OutputError(f"{part} is not a partial render fractaldb made (it has no {RUN} of ours); fractaldb "
                          "will neither resume nor delete it: move it away, or choose another --out")
    if resume:
        if before and before != run:
            raise ConfigError(f"{part} holds an interrupted render of other categories or settings; run the "
                              f"same command as before with --resume, or pass --overwrite to start over")
        log = part / DONE
        if log.is_symlink() or (os.path.lexists(log) and not log.is_file()):
            raise OutputError(f"{log} is a symbolic link or not a file: not a record fractaldb made; remove it, or "
                              "pass --overwrite to start over")
        if os.path.lexists(log):
            text = read_file(log, str(log), MAX_RECORD_BYTES).decode("utf-8", "replace")
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                    key = (rec["category"], rec["weight"])
                    if all(isinstance(k, int) and not isinstance(k, bool) for k in key) and \
                            isinstance(rec.get("images"), int):
                        done[key] = rec
                except (ValueError, KeyError, TypeError, RecursionError):
                    continue  # a line cut by the interrupt: that block is made again
    elif overwrite:
        remove_tree(part, "discarding the interrupted render")
    else:
        raise OutputError(f"{part} holds an interrupted render of {out}; add --resume to continue it, or "
                          "--overwrite to start over")
    return done


def _start_partial(part: Path, run: dict, ids) -> Store:
    """``part`` with its run record and one real folder per category (a link or a file at a
    category's name is refused); the store every file of the render is written through."""
    try:
        part.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {part}: {exc.strerror or exc}; choose a writable --out") from None
    store = Store(str(part))
    store.write(RUN, (json.dumps(run) + "\n").encode())
    for cid in ids:
        folder = part / f"{cid:05d}"
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            raise OutputError(f"{folder} is a symbolic link or a file, not a folder fractaldb made; fractaldb "
                              f"writes only inside {part}: remove it")
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write {part}: {exc.strerror or exc}; choose a writable --out") from None
    return store


def _finish_partial(store: Store, part: Path, out: Path, summary: dict) -> None:
    """The summary written, the progress records removed, ``part`` renamed to ``out`` (replacing it)."""
    store.write(RENDER_SUMMARY, (json.dumps(summary, indent=1) + "\n").encode())
    store.remove(RUN)
    store.remove(DONE)
    try:
        replace_dir(part, out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None


def create_renderer(cfg: RenderConfig, device: str = "cpu"):
    """The fractal renderer for ``device``: ``cpu`` (:class:`CPURenderer`) or ``cuda``
    (:class:`~fractaldb.ifs.render_cuda.CUDARenderer`, the same blocks;
    :class:`ConfigError` without a usable GPU)."""
    check_device(device)
    if device == "cuda":
        # Imported here: importing fractaldb never imports numba.cuda.
        from ...ifs.render_cuda import CUDARenderer

        return CUDARenderer(cfg)
    return CPURenderer(cfg)


def render_blocks(categories, cfg: RenderConfig, workers: int = 1, category_ids=None, consume=None,
                  device: str = "cpu", skip=()):
    """Render every (category, weight) block on ``workers`` threads.

    Args:
        categories: sequence of :class:`~fractaldb.ifs.system.IFS`.
        cfg: render settings.
        workers: threads; each has its own renderer.
        category_ids: category numbers (default ``0..len-1``), used in names and seeds.
        consume: ``consume(block)`` called on the worker thread right after
            the block is rendered (encode and write there, in parallel).
        device: ``cpu`` or ``cuda`` (same images; see docs/gpu.md).
        skip: ``(category id, weight)`` blocks not to render (already made).

    Yields:
        The result of ``consume(block)`` (or the block), in (category, weight) order.
    """
    if category_ids is None:
        category_ids = range(len(categories))
    jobs = [(cid, ifs, w) for cid, ifs in zip(category_ids, categories) for w in range(len(cfg.weight_table()))
            if (cid, w) not in skip]
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
