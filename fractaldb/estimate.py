"""Size and time of a job, measured on a few images before it starts.

``generate`` and ``render`` print one line before a long job::

    estimate: 1,000,000 images, about 14.1 GB (PNG, lossless), about 11 min with 2 workers (measured on 16 images here)

The numbers come from rendering and encoding a few of the job's own images on
this machine (the first block of each family's first class, after a warm-up
that compiles the kernels), scaled by the job's image count and divided by the
workers: the bar's ETA then follows the real rate.  Tar headers and each
sample's small members are counted in the size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .encode import FORMAT_NOTES, encode_image

__all__ = ["Estimate", "estimate_dataset", "estimate_blocks", "worth_telling", "probe_parts", "probe_blocks",
           "segment_images", "LONG_S", "LARGE_BYTES", "ROUNDS", "PROBE_S"]

#: Jobs longer or larger than this get the estimate line.
LONG_S = 60.0
LARGE_BYTES = 1e9
#: Places (row, block) measured per family: classes differ in cost and size (Perlin classes'
#: JPEGs from 4 to 41 kB), so many; a family of large blocks gets fewer (:data:`PROBE_IMAGES`).
PROBE = 64
#: At most about this many images in a probe round of whole blocks.
PROBE_IMAGES = 640


def _tar_member(n: int) -> int:
    """Bytes of an ``n``-byte tar member: a 512-byte header, the data padded to 512 bytes."""
    return 512 + -(-n // 512) * 512


#: A sample's ``.cls`` (a few digits) and ``.json`` (~200 bytes) members.
_CLS_AND_JSON = _tar_member(8) + _tar_member(300)
#: A shard's size is a multiple of this (tar's record; :func:`fractaldb.shards.tar_bytes`).
_RECORD = 10240


@dataclass(frozen=True)
class Estimate:
    images: int
    bytes: float
    seconds: float | None  #: None where not measured (e.g. a GPU render)
    probed: int
    workers: int
    formats: tuple = ()  #: the stored image formats (``png``, ``jpg``, ...), said beside the size
    search_seconds: float | None = None  #: the class search, when it is still to run (measured on a few classes)
    search_probed: int = 0  #: classes the search time was measured on

    def line(self) -> str:
        size = f"about {self.bytes / 1e9:.1f} GB" if self.bytes >= 1e8 else f"about {self.bytes / 1e6:.0f} MB"
        if self.formats:
            size += f" ({'; '.join(FORMAT_NOTES.get(f, f) for f in self.formats)})"
        text = f"estimate: {self.images:,} images, {size}"
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        if self.seconds is not None and self.search_seconds is not None:
            text += (f", about {_duration(self.seconds + self.search_seconds)} with {workers} (class search "
                     f"{_duration(self.search_seconds)}, shards {_duration(self.seconds)})")
        elif self.seconds is not None:
            text += f", about {_duration(self.seconds)} with {workers}"
        elif self.search_seconds is not None:
            text += f", class search about {_duration(self.search_seconds)}"
        measured = f"{self.probed} images" + (f" and {self.search_probed} classes" if self.search_probed else "")
        return text + f" (measured on {measured} here)"

    @property
    def total_seconds(self) -> float | None:
        parts = [x for x in (self.seconds, self.search_seconds) if x is not None]
        return sum(parts) if parts else None


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def worth_telling(est: Estimate) -> bool:
    return (est.total_seconds is not None and est.total_seconds >= LONG_S) or est.bytes >= LARGE_BYTES


#: Timed rounds of a probe (after one warm-up): this many, or fewer (at least one) once they
#: add up to :data:`PROBE_S`; a thorough probe (a large job) goes on until both hold (at most
#: :data:`MAX_ROUNDS`).  Their median is taken, so a burst of load on a shared machine moves the
#: estimate less.
ROUNDS = 3
PROBE_S = 0.5
MAX_ROUNDS = 25


def _probe(render, fmt: str, extra_bytes: int, encoder: str = "png1", channels: int | None = None,
           thorough: bool = False, member=lambda n: n) -> tuple:
    """``(seconds per image, bytes per sample, images)`` of ``render(r)`` (round ``r``'s list of
    ``(image, bytes of the sample's other members made with it)``), each image encoded as
    the job will encode it (``encoder``, the dataset's ``channels``) and stored (``member``:
    the bytes an ``n``-byte file takes, e.g. in a tar), the bytes averaged over every timed
    round's images and the time per image the median of the timed rounds
    (:data:`ROUNDS`, ``r`` = 1, 2, ...) after a warm-up round (``r`` = 0: it compiles and
    allocates, and a renderer that keeps its place in a stream finds it for round 1)."""
    for img, _ in render(0):
        encode_image(img, fmt, encoder=encoder, channels=channels)
    times, sizes = [], []

    def more() -> bool:
        if not times:
            return True
        if thorough:
            return len(times) < MAX_ROUNDS and (len(times) < ROUNDS or sum(times) < PROBE_S)
        return len(times) < ROUNDS and sum(times) < PROBE_S

    while more():
        start = time.perf_counter()
        images = render(len(times) + 1)
        sizes += [member(len(encode_image(img, fmt, encoder=encoder, channels=channels))) + others
                  for img, others in images]
        times.append(time.perf_counter() - start)
    n = max(len(images), 1)
    return sorted(times)[len(times) // 2] / n, sum(sizes) / max(len(sizes), 1) + extra_bytes, len(images)


def _parallel(workers: int) -> int:
    """How many images render at once: the workers, at most one per core."""
    import os

    return max(1, min(workers, os.cpu_count() or 1))


#: Blocks of at most this many images are probed whole (a part of one would carry the block's
#: shared work on fewer images).
WHOLE_BLOCK = 64

#: Jobs of at least this many images get a thorough probe (:func:`_probe`).
THOROUGH_IMAGES = 10_000


def probe_blocks(rows: int, blocks: int, per_block: int) -> list:
    """``[(row, block, images)]`` a probe renders of a part with ``rows`` rows of ``blocks``
    blocks of ``per_block`` images: :data:`PROBE` picks spread over the rows (classes differ
    in cost and size) and over the blocks of a row (later blocks may cost more: an official
    stream is reached by skipping ahead), each pick a whole block where blocks are small (a
    block's images share work: one orbit, flips, views), else a share of :data:`PROBE` images."""
    rows, blocks = max(rows, 1), max(blocks, 1)
    whole = per_block <= WHOLE_BLOCK
    m = max(1, min(PROBE, PROBE_IMAGES // per_block)) if whole else PROBE
    picks = list(dict.fromkeys((j * rows // m if rows >= m else j % rows, j * blocks // m) for j in range(m)))
    n = per_block if whole else min(per_block, -(-m // len(picks)))
    return [(k, b, n) for k, b in picks]


def probe_parts(ds, thorough: bool = False) -> dict:
    """``{family: (seconds per image, bytes per sample, images probed)}`` of a dataset, each
    measured on the blocks of :func:`probe_blocks`, rendered on the CPU and encoded with the
    dataset's encoder."""
    encoder = ds.config["encoder"]
    channels = max((ds.part(name).channels for name in ds.parts), default=1)
    out = {}
    for seg in ds.plan.segments:
        if seg.family in out:
            continue
        p = ds.part(seg.family)
        picks = probe_blocks(p.rows, p.blocks_per_class, p.images_per_block)
        renderer = ds.renderers("cpu")[seg.family]

        def render(r, p=p, renderer=renderer, picks=picks):
            # round r takes the block r after each pick, as a shard takes a class's blocks in turn
            jobs = [(k, (b + r) % p.blocks_per_class, list(range(n))) for k, b, n in picks]
            return [(im.copy(), _label_bytes(ds.label_kind, p, rb, i)) for rb in p.render_blocks(renderer, jobs)
                    for i, im in enumerate(rb.images)]

        out[seg.family] = _probe(render, p.image_format, _CLS_AND_JSON, encoder, channels, thorough, _tar_member)
    return out


def _label_bytes(kind, part, rb, i) -> int:
    """Bytes of the label kind's members of the ``i``-th sample of block ``rb`` (a mask PNG,
    a list of labels; none for a plain label), made as the shard writer makes them."""
    if kind.member is None:
        return 0
    local = part.sample_labels(rb.klass, rb.block, rb.offsets[i])
    mask = None if rb.masks is None else rb.masks[i].copy()
    return sum(_tar_member(len(data)) for _, data in kind.members("probe", 0, None if local is None else list(local),
                                                               mask))


def segment_images(ds, seg) -> int:
    """Images of one plan segment."""
    p = ds.part(seg.family)
    return seg.classes * p.blocks_per_class * p.images_per_block


def estimate_dataset(ds, workers: int, device: str = "cpu", scale: dict | None = None,
                     search_seconds: float | None = None, search_probed: int = 0) -> Estimate:
    """Size and time of generating :class:`~fractaldb.dataset.Dataset` ``ds``.

    ``scale``: ``{family: factor}`` by which each family's image count is multiplied
    (the full dataset's classes over those of ``ds``, a cut of it measured before the
    search); ``search_seconds``: the class search still to run, said beside."""
    counts = {id(seg): round(segment_images(ds, seg) * (scale or {}).get(seg.family, 1)) for seg in ds.plan.segments}
    probes = probe_parts(ds, thorough=sum(counts.values()) >= THOROUGH_IMAGES)
    total_s, total_b, images, formats = 0.0, 0.0, 0, []
    for seg in ds.plan.segments:
        p = ds.part(seg.family)
        if p.image_format not in formats:
            formats.append(p.image_format)
        n = counts[id(seg)]
        per_s, per_b, _ = probes[seg.family]
        total_s += per_s * n
        total_b += per_b * n
        images += n
    if images:  # full shards and a last one, each ending in two zero blocks, padded to tar's record
        per_sample, size = total_b / images, max(int(ds.config.get("shard_size") or images), 1)
        full, last = divmod(images, size)
        total_b = sum(k * -(-(n * per_sample + 1024) // _RECORD) * _RECORD for k, n in ((full, size), (1, last)) if n)
        total_s += total_b * _pack_seconds_per_byte()
    seconds = None if device != "cpu" else total_s / _parallel(workers)
    return Estimate(images, total_b, seconds, sum(k for _, _, k in probes.values()), workers, tuple(formats),
                    search_seconds, search_probed)


def _pack_seconds_per_byte() -> float:
    """Seconds per byte of what every shard's bytes go through after encoding, measured here:
    joined into one tar (a copy), hashed (sha256) and handed to the file (a copy); the median
    of three rounds over 4 MB after a warm-up (about 15 ms in all)."""
    import hashlib

    chunk = bytes(range(256)) * 1024
    chunks = [chunk] * 16
    times = []
    for _ in range(4):  # the first round touches fresh memory: a warm-up
        start = time.perf_counter()
        data = b"".join(chunks)
        hashlib.sha256(data).digest()
        bytearray(data)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[1] / (len(chunk) * len(chunks))


def estimate_blocks(render_block, n_images: int, fmt: str, workers: int) -> Estimate:
    """Size and time of an ImageFolder render: ``render_block()`` renders one block (a list
    of images) of the job; each image is one file."""
    per_s, per_b, k = _probe(lambda r: [(img, 0) for img in render_block()], fmt, 0)
    return Estimate(n_images, per_b * n_images, per_s * n_images / max(workers, 1), k, workers, (fmt,))
