"""The 3-D fractal family (MV-FractalDB, ExFractalDB, 3-D OFDB): 3-D IFS
categories kept by the variance gate, instances from the 145-row weight table,
each instance's 10,000-step point cloud rendered as white splats from several
viewpoints.

Modules: :mod:`.model` (categories, search, clouds, views, the CPU renderer),
:mod:`.render_cuda` (its GPU twin), :mod:`.kernels` and :mod:`.kernels_cuda`
(numba kernels).  This module is the family's face to the
rest of fractaldb (:class:`Fractal3DFamily`); docs/fractal3d.md has the details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...encode import FORMATS
from ...citations import FRACTALDB, Paper
from ..base import BoundFamily, Family, RenderedBlock, setting
from .model import (COMPATS, DEGENERATE, NEAR, PURPOSES, VIEWS, Fractal3DClass, Fractal3DRenderConfig, Fractal3DRenderer,
                    Fractal3DSearchConfig, degenerate_record, search_classes)
from . import study

__all__ = ["Fractal3DFamily", "Fractal3DSettings", "Fractal3DBound", "sample_key", "image_name"]


def sample_key(category: int, instance: int, view: int) -> str:
    """``t00042-i00003-v011``: 3-D category 42, instance (weight row) 3, view 11."""
    return f"t{category:05d}-i{instance:05d}-v{view:03d}"


def image_name(category: int, instance: int, view: int) -> str:
    """The original renderer's name: ``000042_00003_011`` (category ``%06d``)."""
    return f"{category:06d}_{instance:05d}_{view:03d}"


@dataclass(frozen=True, kw_only=True)
class Fractal3DSettings:
    """The ``fractal3d:`` section of a preset, plus the dataset seed."""

    categories: int = setting(1000, "3-D fractal categories to search.", "an integer > 0", lambda v: v > 0)
    variance: float = setting(0.05, "Variance gate of the search: every axis's variance must exceed it.",
                              "a number >= 0", lambda v: v >= 0)
    points: int = setting(10000, "Chaos-game length (the original's point_num; points - 1 points are made).",
                          "an integer in 3..10000000", lambda v: 3 <= v <= 10_000_000)
    instances: int = setting(145, "Instances per category: the first rows of the 145-row weight table "
                             "(1 = 3-D OFDB's row 0, a x 0.4).", "an integer in 1..145", lambda v: 1 <= v <= 145)
    views: str = setting("mv", "Viewpoints: mv (MV-FractalDB: 12 azimuths + jitter) or random (uniform on the "
                         "sphere, our ExFractalDB choice).", " | ".join(VIEWS), lambda v: v in VIEWS)
    n_views: int = setting(12, "Views per instance (images per block).", "an integer in 1..1000",
                           lambda v: 1 <= v <= 1000)
    jitter: float = setting(math.pi, "Half-width of the mv azimuth jitter, in DEGREES (the original's pi degrees).",
                            "a number in 0..180", lambda v: 0 <= v <= 180)
    image_size: int = setting(224, "Image side in pixels.", "an integer in 8..8192", lambda v: 8 <= v <= 8192)
    compat: str = setting("modern", "official keeps the original's traps (NaN checked on y only, centroid over "
                          "points, the typo row of the weight table); modern fixes them.",
                          " | ".join(COMPATS), lambda v: v in COMPATS)
    degenerate: str = setting("replace", "A diverging instance (its cloud turns NaN), modern mode: replace it (the "
                              "weight factor pulled towards 1, as 2-D degenerate variants, until the cloud passes "
                              "the variance gate) or record it and keep its blank images (official mode always "
                              "does).", choices=DEGENERATE)
    near: float = setting(NEAR, "Near clipping plane of the camera (distance 4): 1 (the published renderer) or 0.1 "
                          "(the earlier one).", "a number in (0, 4)", lambda v: 0 < v < 4)
    point_size: int = setting(1, "GL point size in pixels: 1 (the published renderer) or 3 (the earlier one).",
                              "an odd integer in 1..9", lambda v: v % 2 == 1 and 1 <= v <= 9)
    image_format: str = setting("png", "Stored image format.", " | ".join(FORMATS), lambda v: v in FORMATS)
    seed: int

    def search_config(self, workers: int = 1) -> Fractal3DSearchConfig:
        return Fractal3DSearchConfig(categories=self.categories, seed=self.seed, variance=self.variance,
                                     points=self.points, compat=self.compat, workers=workers)

    def render_config(self) -> Fractal3DRenderConfig:
        return Fractal3DRenderConfig(size=self.image_size, points=self.points, compat=self.compat, views=self.views,
                                     n_views=self.n_views, jitter=self.jitter, instances=self.instances,
                                     seed=self.seed, degenerate=self.degenerate, near=float(self.near),
                                     point_size=self.point_size, variance=float(self.variance))


MV_FRACTALDB = Paper("mv-fractaldb", "inproceedings", (
    ("title", "MV-FractalDB: Formula-driven Supervised Learning for Multi-view Image Recognition"),
    ("author", "Yamada, Ryosuke and Takahashi, Ryo and Suzuki, Ryota and Nakamura, Akio and Yoshiyasu, Yusuke "
               "and Sagawa, Ryusuke and Kataoka, Hirokatsu"),
    ("booktitle", "IEEE/RSJ International Conference on Intelligent Robots and Systems (IROS)"), ("year", "2021")))
EXFRACTALDB = Paper("exfractaldb", "inproceedings", (
    ("title", "Replacing Labeled Real-image Datasets with Auto-generated Contours"),
    ("author", "Kataoka, Hirokatsu and Hayamizu, Ryo and Yamada, Ryosuke and Nakashima, Kodai and "
               "Takashima, Sora and Zhang, Xinyu and Martinez-Noriega, Edgar Josafat and Inoue, Nakamasa "
               "and Yokota, Rio"),
    ("booktitle", "IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)"), ("year", "2022")))
OFDB = Paper("ofdb", "inproceedings", (
    ("title", "Pre-training Vision Transformers with Very Limited Synthesized Images"),
    ("author", "Nakamura, Ryo and Kataoka, Hirokatsu and Takashima, Sora and Noriega, Edgar Josafat Martinez "
               "and Yokota, Rio and Inoue, Nakamasa"),
    ("booktitle", "IEEE/CVF International Conference on Computer Vision (ICCV)"), ("year", "2023")))


class Fractal3DBound(BoundFamily):
    """3-D FractalDB bound to a dataset: a block is one (category, instance) cloud, its
    ``n_views`` views (offset = view)."""

    settings: Fractal3DSettings
    block_views = True  # a block is one instance's cloud seen from n_views cameras

    def sample_position(self, meta):
        return meta.get("category"), meta.get("instance"), meta.get("view")

    @property
    def blocks_per_class(self) -> int:
        return self.settings.instances

    @property
    def images_per_block(self) -> int:
        return self.settings.n_views

    @property
    def channels(self) -> int:
        return 1

    def class_docs(self) -> list:
        return [{"id": j, **c.to_dict()} for j, c in enumerate(self.classes)]

    def sample_key(self, klass, block, offset):
        return sample_key(klass, block, offset)

    def sample_meta(self, klass, block, offset):
        cfg = self.settings
        return {"category": klass, "instance": block, "view": offset, "views": cfg.views, "seed": cfg.seed,
                "compat": cfg.compat}

    def render_blocks(self, renderer, jobs):
        jobs = list(jobs)
        if not jobs:
            return
        cloud_keys, view_keys = renderer.keys([(k, i) for k, i, _ in jobs])  # one derivation for all
        for j, (k, i, offsets) in enumerate(jobs):
            offsets = list(offsets)
            images, nan, replaced = renderer.render(self.classes[k], k, i, views=offsets,
                                                    keys=(cloud_keys[j], view_keys[j]))
            # The original drops a cloud with a NaN in y (and keeps NaN in x or z); we keep
            # every block -- replaced in modern mode, else blank (NaN points are not drawn) --
            # and record it.
            record = degenerate_record(self.name, k, i, nan, replaced) if nan else None
            yield RenderedBlock(k, i, offsets, list(images), {}, record)

    def render_device(self, renderer, blocks):
        return [(list(range(len(blocks))),
                 renderer.render_many_device([(self.classes[k], k, i) for k, i in blocks]))]

    def preview_images(self, per_class, limit):
        renderer = Fractal3DRenderer(self.settings.render_config())
        out = []
        for k, c in enumerate(self.classes[:limit]):
            views = list(range(min(per_class, self.settings.n_views)))
            out += [img.copy() for img in renderer.render(c, k, 0, views=views)[0]]
        return out


class Fractal3DFamily(Family):
    name = "fractal3d"
    summary = "3-D FractalDB (MV-FractalDB / ExFractalDB / 3-D OFDB): 3-D IFS clouds x weight rows x views"
    description = ("3-D FractalDB (MV-FractalDB / ExFractalDB / 3-D OFDB): each class is a 3-D IFS point cloud, "
                   "its images are projections of it from several views")
    papers = (MV_FRACTALDB, EXFRACTALDB, OFDB, FRACTALDB)
    purposes = PURPOSES
    small = {"categories": 2, "points": 1000, "instances": 2, "n_views": 3, "image_size": 32}
    study_arms = study.ARMS
    settings = Fractal3DSettings
    count_key = "categories"
    config_types = (Fractal3DSettings, Fractal3DRenderConfig)
    cpu_renderer = Fractal3DRenderer
    cuda_renderer = ".render_cuda.Fractal3DCUDARenderer"
    bound = Fractal3DBound
    # fractaldb before 0.3 kept a diverging instance's blank images (and recorded them)
    absent_means = {"degenerate": "record"}

    def find_classes(self, settings: Fractal3DSettings, workers: int, progress=None) -> list:
        return search_classes(settings.search_config(workers), progress=progress)

    def classes_from_docs(self, docs) -> list:
        return [Fractal3DClass(d["maps"]) for d in docs]

    def export_path(self, meta, ext):
        k = meta["category"]
        return f"{k:06d}/{image_name(k, meta['instance'], meta['view'])}.{ext}"
