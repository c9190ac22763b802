"""A family from outside fractaldb, as a third-party package would write one (tests/test_plugin.py).

``stripes``: each class is a stripe pattern (an angle and a period); an image shows
one class's stripes in a random rectangle on black, and its segmentation mask marks
the stripe pixels with the class (label kind ``mask``).  It registers through the
``fractaldb.families`` entry point of its own distribution metadata
(``stripes_family-0.1.dist-info``) and touches no file of fractaldb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fractaldb.families.base import BoundFamily, Family, HostRenderer, RenderedBlock, StudyArm
from fractaldb.schema import setting
from fractaldb.seeds import declare_purposes, generator

#: Its random streams: no numbers given, so the codes derive from the names (fractaldb.seeds.derived_code).
PURPOSES = declare_purposes("stripes", {"stripes-classes": None, "stripes-instance": None})


@dataclass(frozen=True, kw_only=True)
class StripesSettings:
    classes: int = setting(4, "Stripe classes.", "an integer in 1..254", lambda v: 1 <= v <= 254)
    instances: int = setting(3, "Images per class.", "an integer > 0", lambda v: v > 0)
    image_size: int = setting(32, "Image side in pixels.", "an integer in 8..1024", lambda v: 8 <= v <= 1024)
    image_format: str = setting("png", "Stored image format.", choices=("png",))
    seed: int

    def render_config(self):
        return self


@dataclass(frozen=True)
class Stripe:
    angle: float
    period: float


def find_stripes(seed: int, n: int) -> list:
    rng = generator(seed, "stripes-classes")
    return [Stripe(float(a), float(p)) for a, p in zip(rng.uniform(0, math.pi, n), rng.uniform(3, 9, n))]


class StripesRenderer(HostRenderer):
    """Items ``(stripe, class index, instance)`` -> ``(image (S, S, 1), mask (S, S))``."""

    def __init__(self, cfg: StripesSettings):
        self.cfg = cfg

    def render(self, stripe: Stripe, klass: int, instance: int):
        s = self.cfg.image_size
        rng = generator(self.cfg.seed, "stripes-instance", klass, instance)
        y0, x0 = rng.integers(0, s // 2, 2)
        y1, x1 = rng.integers(s // 2 + 1, s + 1, 2)
        yy, xx = np.mgrid[0:s, 0:s]
        u = xx * math.cos(stripe.angle) + yy * math.sin(stripe.angle) + rng.uniform(0, stripe.period)
        on = ((u // (stripe.period / 2)) % 2 == 0) & (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
        image = np.where(on, 200, 0).astype(np.uint8)[:, :, None]
        return image, np.where(on, klass + 1, 0).astype(np.uint8)

    def render_many(self, items):
        for item in items:
            yield self.render(*item)[0]

    def render_many_device(self, items, out=None):
        return np.stack([self.render(*item)[0] for item in items])


class StripesBound(BoundFamily):
    @property
    def blocks_per_class(self):
        return self.settings.instances

    @property
    def images_per_block(self):
        return 1

    @property
    def channels(self):
        return 1

    def class_docs(self):
        return [{"class": j, "angle": c.angle, "period": c.period} for j, c in enumerate(self.classes)]

    def sample_key(self, klass, block, offset):
        return f"s{klass:03d}-i{block:04d}"

    def sample_meta(self, klass, block, offset):
        return {"class": klass, "instance": block, "seed": self.settings.seed}

    def render_blocks(self, renderer, jobs):
        for k, b, offsets in jobs:
            image, mask = renderer.render(self.classes[k], k, b)
            yield RenderedBlock(k, b, list(offsets), [image] * len(offsets), masks=[mask] * len(offsets))

    def render_device(self, renderer, blocks):
        return [(list(range(len(blocks))), renderer.render_many_device([(self.classes[k], k, b) for k, b in blocks]))]

    def preview_images(self, per_class, limit):
        r = self.renderer()
        return [r.render(c, k, i)[0] for k, c in enumerate(self.classes[:limit]) for i in range(per_class)]


class StripesFamily(Family):
    name = "stripes"
    summary = "stripe patterns with segmentation masks (an out-of-tree test family)"
    description = "striped rectangles: each class an angle and a period, masks mark the stripes"
    purposes = PURPOSES
    small = {"classes": 3, "instances": 2, "image_size": 24}
    study_arms = {"stripes": StudyArm("stripes.yaml", (), "stripes (tests only)")}
    label_kind = "mask"
    settings = StripesSettings
    count_key = "classes"
    config_types = (StripesSettings,)
    cpu_renderer = StripesRenderer
    bound = StripesBound

    def find_classes(self, settings, workers, progress=None):
        return find_stripes(settings.seed, settings.classes)

    def classes_from_docs(self, docs):
        return [Stripe(d["angle"], d["period"]) for d in docs]

    def export_path(self, meta, ext):
        return f"stripes/s{meta['class']:03d}-i{meta['instance']:04d}.{ext}"
