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

__all__ = ["Estimate", "estimate_dataset", "estimate_blocks", "worth_telling", "probe_parts", "segment_images",
           "LONG_S", "LARGE_BYTES", "ROUNDS", "PROBE_S"]

#: Jobs longer or larger than this get the estimate line.
LONG_S = 60.0
LARGE_BYTES = 1e9
#: Images measured per family.
PROBE = 8
#: Per tar member: a 512-byte header and, on average, half a block of padding.
_MEMBER = 512 + 256


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


#: Timed rounds of a probe (after one warm-up): at least this many, and more until they add up
#: to :data:`PROBE_S` (at most :data:`MAX_ROUNDS`); their median is taken, so a burst of load on
#: a shared machine moves the estimate less.
ROUNDS = 3
PROBE_S = 0.5
MAX_ROUNDS = 25


def _probe(render, fmt: str, extra_bytes: int, encoder: str = "png1", channels: int | None = None,
           thorough: bool = False) -> tuple:
    """``(seconds per image, bytes per sample, images)`` of ``render()`` (a list of images),
    each image encoded as the job will encode it (``encoder``, the dataset's ``channels``):
    the median of :data:`ROUNDS` timed rounds after a first call (which compiles and allocates);
    ``thorough`` (a large job): more rounds, until they add up to :data:`PROBE_S` seconds."""
    render()
    times, sizes = [], []
    while len(times) < ROUNDS or (thorough and sum(times) < PROBE_S and len(times) < MAX_ROUNDS):
        start = time.perf_counter()
        images = render()
        sizes = [len(encode_image(img, fmt, encoder=encoder, channels=channels)) for img in images]
        times.append(time.perf_counter() - start)
    n = max(len(images), 1)
    return sorted(times)[len(times) // 2] / n, sum(sizes) / n + extra_bytes, len(images)


def _parallel(workers: int) -> int:
    """How many images render at once: the workers, at most one per core."""
    import os

    return max(1, min(workers, os.cpu_count() or 1))


#: Jobs of at least this many images get a thorough probe (:func:`_probe`).
THOROUGH_IMAGES = 10_000


def probe_parts(ds, thorough: bool = False) -> dict:
    """``{family: (seconds per image, bytes per sample, images probed)}`` of a dataset, each
    measured on the first blocks of its first class (a few images), rendered on the CPU and
    encoded with the dataset's encoder."""
    encoder = ds.config["encoder"]
    channels = max((ds.part(name).channels for name in ds.parts), default=1)
    out = {}
    for seg in ds.plan.segments:
        if seg.family in out:
            continue
        p = ds.part(seg.family)
        per_block = p.images_per_block
        jobs, need, b = [], PROBE, 0
        while need > 0 and b < p.blocks_per_class:
            jobs.append((0, b, list(range(min(need, per_block)))))
            need, b = need - min(need, per_block), b + 1
        renderer = ds.renderers("cpu")[seg.family]

        def render(p=p, renderer=renderer, jobs=jobs):
            return [im.copy() for rb in p.render_blocks(renderer, jobs)
                    for im in rb.images]

        # .cls (a few digits) and .json (~200 bytes) beside each image: three members a sample
        out[seg.family] = _probe(render, p.image_format, 3 * _MEMBER + 200, encoder, channels, thorough)
    return out


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
    seconds = None if device != "cpu" else total_s / _parallel(workers)
    return Estimate(images, total_b, seconds, sum(k for _, _, k in probes.values()), workers, tuple(formats),
                    search_seconds, search_probed)


def estimate_blocks(render_block, n_images: int, fmt: str, workers: int) -> Estimate:
    """Size and time of an ImageFolder render: ``render_block()`` renders one block (a list
    of images) of the job; each image is one file."""
    per_s, per_b, k = _probe(render_block, fmt, 0)
    return Estimate(n_images, per_b * n_images, per_s * n_images / max(workers, 1), k, workers, (fmt,))
