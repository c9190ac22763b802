"""What ``generate`` will make and what it will cost, said before any long phase.

:func:`forecast` cuts the config to a few classes per family
(:data:`PROBE_CLASSES`), searches those (timed, after a search of one class per
family that compiles and warms up, when the full search is larger), renders and encodes a few images of
them with the dataset's own encoder (:func:`fractaldb.estimate.probe_parts`),
and scales both to the full dataset: the class search by its class count, the
shards by their image count over the workers.  ``generate`` prints the line
before the search starts; ``generate --dry-run`` prints the plan with it and
writes nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from . import config as fconfig
from .dataset import Dataset
from .estimate import Estimate, estimate_dataset, segment_images
from .families import get_family

__all__ = ["Forecast", "forecast", "PROBE_CLASSES"]

#: Classes per family searched to measure the search.
PROBE_CLASSES = 64


@dataclass(frozen=True)
class Forecast:
    config: dict
    estimate: Estimate
    classes: dict  #: family -> classes
    images: dict  #: family -> images
    shards: int
    #: the searched dataset when the probe was the whole dataset (``generate`` reuses it), else None
    dataset: Dataset | None

    def plan_lines(self) -> list:
        cfg = self.config
        lines = [f"plan: {sum(self.images.values()):,} images of {sum(self.classes.values()):,} classes in "
                 f"{self.shards:,} shards of {cfg['shard_size']:,} ({cfg['name']}-NNNNNN.tar), "
                 f"encoder {cfg['encoder']}, seed {cfg['seed']}"]
        for name in cfg["families"]:
            sec = cfg[name]
            size = sec.get("image_size")
            lines.append(f"  {name}: {self.classes[name]:,} classes, {self.images[name]:,} images"
                         + (f", {size}x{size}" if size else "") + f", {sec.get('image_format', 'png')}")
        return lines


def _search(cfg, workers, progress=None):
    start = time.perf_counter()
    ds = Dataset.from_config(cfg, workers, progress=progress)
    return ds, time.perf_counter() - start


def forecast(cfg, workers: int, device: str = "cpu", search_progress=None) -> Forecast:
    """The plan, size and time of generating ``cfg`` (see the module's text).

    ``search_progress`` (:meth:`Dataset.from_config`'s ``progress``) follows the search
    when the probe is the whole dataset (every family within :data:`PROBE_CLASSES`)."""
    cfg = fconfig.resolve(cfg)
    probe_cfg, _ = fconfig.classes_per_family(cfg, PROBE_CLASSES)
    whole = all(probe_cfg[n][get_family(n).count_key] == cfg[n][get_family(n).count_key] for n in cfg["families"])
    if not whole:  # compile and warm up on one class a family, then time the probe's search
        _search(fconfig.classes_per_family(cfg, 1)[0], workers)
    probe, search_s = _search(probe_cfg, workers, search_progress if whole else None)
    full = {n: cfg[n][get_family(n).count_key] for n in cfg["families"]}
    have = {n: probe.part(n).n_classes for n in full}
    # a family's images grow with its classes when its plan has a row per class; one whose
    # images are counted on their own (a fixed image count over all classes: one row) keeps its count
    scale = {n: full[n] / max(have[n], 1) if probe.part(n).rows == have[n] else 1.0 for n in full}
    searched = sum(have.values())
    est = estimate_dataset(probe, workers, device, scale=scale,
                           search_seconds=None if whole else search_s * sum(full.values()) / max(searched, 1),
                           search_probed=0 if whole else searched)
    images = {seg.family: round(segment_images(probe, seg) * scale[seg.family]) for seg in probe.plan.segments}
    shards = math.ceil(sum(images.values()) / cfg["shard_size"])
    return Forecast(cfg, est, full, images, shards, probe if whole else None)
