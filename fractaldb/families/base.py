"""What a family is: the interface every family package implements.

A **family** is a kind of formula-driven image (FractalDB fractals, Perlin
noise, ...).  Its package owns everything family-specific; the rest of
fractaldb -- plan, shards, dataset, loaders, preview, export, CLI, training --
only ever talks to a :class:`Family` object from the registry
(:mod:`fractaldb.families`) and never names one.

The vocabulary the generic layers use:

* a family's **section**: its settings in a preset (``fractal:``, ``perlin:``),
  declared by its :attr:`Family.settings` dataclass -- types, defaults,
  allowed values and help texts all come from that dataclass's fields;
* **classes**: what :meth:`Family.find_classes` searches (or loads) and the
  manifest stores (:meth:`Family.class_docs` / :meth:`Family.classes_from_docs`),
  an opaque, indexable sequence for everyone else;
* a **block**: what one render produces, ``images_per_block`` images of one
  class; each class has ``blocks_per_class`` blocks.  A sample is
  ``(label, family, class, block, offset)``;
* a **renderer** (:meth:`Family.create_renderer`): CPU or GPU, one protocol
  (:class:`Renderer`), the same images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

from ..errors import ConfigError
from ..safety import check_bound

__all__ = ["Family", "Renderer", "RenderedBlock", "setting", "Setting", "settings_of", "build_settings",
           "one_image_blocks", "HostRenderer", "StudyArm"]


def setting(default, help: str, allowed: str, check=None, kind=None):
    """A dataclass field of a family's settings: its default, help text, the
    allowed values in words, and a ``check(value) -> bool``.

    ``kind`` is the YAML type a preset gives (``int``, ``float``, ``str``,
    ``bool`` or ``"range"`` for a ``[low, high]`` pair); by default the
    default value's type.
    """
    meta = {"help": help, "allowed": allowed, "check": check, "kind": kind or type(default)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Setting:
    """One key of a section, as :func:`settings_of` lists it."""

    name: str
    kind: Any
    default: Any
    help: str
    allowed: str
    check: Any


def settings_of(cls) -> dict:
    """``{key: Setting}`` of a settings dataclass, in declaration order."""
    out = {}
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = Setting(f.name, f.metadata["kind"], default, f.metadata["help"], f.metadata["allowed"],
                              f.metadata["check"])
    return out


def coerce(setting: Setting, value, where: str):
    """``value`` checked and converted to the setting's kind, or :class:`ConfigError`."""
    key, kind, allowed = where, setting.kind, setting.allowed
    bad = ConfigError(f"{key} must be {allowed}, got {value!r}")
    if kind == "range":
        if not (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
            raise bad
        value = list(value)
    elif kind is bool:
        if not isinstance(value, bool):
            raise bad
    else:
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # weights: 0.4 written without quotes
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad
    if setting.check is not None and not setting.check(value):
        raise bad
    check_bound(setting.name, value, key)  # every count and size is bounded by memory
    return value


def build_settings(cls, section: dict, seed: int, where: str):
    """The settings dataclass ``cls`` from a resolved ``section`` (every key present)."""
    try:
        return cls(seed=seed, **section)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class StudyArm:
    """One arm of the transfer study (``fractaldb experiment transfer``) that a family
    contributes: pretraining data made from ``preset`` with ``overrides`` (``--set``
    strings).  Arms are about 32 classes rendered at 64 px (see docs/training.md).

    ``primary`` marks the arm the study's primary claims are about (FractalDB);
    ``scaled(classes)``, where given, is the same arm with ``classes`` classes and
    the same number of images (the scaling study).  ``quick`` puts the arm in the
    ``--quick`` study (besides scratch and the primary arm).
    """

    preset: str
    overrides: tuple
    description: str
    primary: bool = False
    scaled: Any = None
    quick: bool = False


@dataclass
class RenderedBlock:
    """The images of one block that a shard needs.

    ``images[i]`` is the image at ``offsets[i]`` of the block (``(H, W, C)``
    uint8; valid until the next block is requested).  ``meta`` is merged into
    each sample's metadata; ``record`` is a note for the manifest (a degenerate
    variant, say) or None.
    """

    klass: int
    block: int
    offsets: list
    images: Any
    meta: dict = dataclasses.field(default_factory=dict)
    record: dict | None = None


def one_image_blocks(jobs, images):
    """:meth:`Family.render_blocks` of a family whose blocks are one image: ``images``
    holds one image per ``(class, block, offsets)`` job, in order."""
    for (k, b, offsets), img in zip(jobs, images):
        yield RenderedBlock(k, b, list(offsets), [img] * len(offsets))


class HostRenderer:
    """What every CPU renderer shares: its "device" is host memory, so
    ``render_many_device`` returns a NumPy array and :meth:`to_torch` wraps it."""

    device = "cpu"

    @staticmethod
    def to_torch(images):
        """Host images as a ``torch.Tensor`` sharing their memory (no copy)."""
        import torch

        return torch.from_numpy(images)


class Renderer(Protocol):
    """The protocol of every family's renderers, CPU and GPU alike.

    ``jobs`` are the family's own (see its renderer); the CPU twin's "device"
    is host memory, so code written against the protocol runs on both.
    """

    device: str  #: ``"cpu"`` or ``"cuda"``

    def render_many(self, jobs) -> Iterator:
        """Host images, job after job, each valid until the next is requested."""

    def render_many_device(self, jobs, out=None):
        """Every job's images in one array on the device (NumPy on the CPU)."""

    def to_torch(self, images):
        """``render_many_device``'s array as a ``torch.Tensor`` on its device (no copy)."""


class Family:
    """The interface of a family package (one instance per family, registered
    with :func:`fractaldb.families.register_family`)."""

    #: Registry name and preset section (``fractal``, ``perlin``, ...).
    name: str = ""
    #: One line for ``fractaldb presets`` and docs.
    summary: str = ""
    #: Frozen dataclass of the family's settings: one field per section key
    #: (made with :func:`setting`) plus ``seed`` (the dataset seed).
    settings: type = None
    #: The section key holding the number of classes (``--classes`` cuts it).
    count_key: str = "classes"
    #: Old flat preset keys (fractaldb 0.1) -> section key.
    legacy_keys: dict = {}
    #: True when a sample can show several classes (:meth:`sample_labels`).  A
    #: dataset holding such a family gives every sample a ``<key>.labels.json``
    #: member (its labels, a JSON list) besides the ``.cls`` primary label, and
    #: the loaders yield multi-hot vectors; datasets of single-label families
    #: only are written exactly as before.
    multi_label: bool = False
    #: The arms this family adds to the transfer study: ``{arm name: StudyArm}``.
    study_arms: dict = {}

    # -- configuration -----------------------------------------------------
    def configure(self, section: dict, seed: int):
        """The family's settings from a resolved section (cross-key checks included)."""
        return build_settings(self.settings, section, seed, f"{self.name} settings")

    def image_format(self, cfg) -> str:
        """The stored image format (``png``, ``jpg``, ``webp``)."""
        return cfg.image_format

    # -- classes -----------------------------------------------------------
    def find_classes(self, cfg, workers: int, progress=None):
        """Search (or load) the classes; returns an indexable sequence."""
        raise NotImplementedError

    def class_docs(self, classes) -> list:
        """Each class as a JSON-able dict (the manifest's entries, without the label)."""
        raise NotImplementedError

    def classes_from_docs(self, docs: list):
        """Inverse of :meth:`class_docs`."""
        raise NotImplementedError

    # -- layout ------------------------------------------------------------
    def blocks_per_class(self, cfg) -> int:
        raise NotImplementedError

    def images_per_block(self, cfg) -> int:
        raise NotImplementedError

    # -- samples -----------------------------------------------------------
    def sample_key(self, cfg, classes, klass: int, block: int, offset: int) -> str:
        """The WebDataset key (no dots) of a sample."""
        raise NotImplementedError

    def sample_meta(self, cfg, classes, klass: int, block: int, offset: int) -> dict:
        """What made the sample (its ``.json`` member), besides ``key``, ``family``,
        ``label`` and the block's own ``meta``."""
        raise NotImplementedError

    def sample_labels(self, cfg, classes, klass: int, block: int, offset: int):
        """The family's classes (indices into ``classes``) a sample shows, sorted,
        ``klass`` among them; None for single-label families (only ``klass``)."""
        return None

    def export_path(self, meta: dict, ext: str) -> str:
        """Where ``export`` puts a sample in an ImageFolder, from its ``.json``
        metadata (``class_folder/file.ext``; the original's names where there is one)."""
        raise NotImplementedError

    # -- rendering ---------------------------------------------------------
    #: The CPU renderer class (built from the render config).
    cpu_renderer: type = None
    #: The GPU twin as ``"module.Class"`` relative to the family's package (``".render_cuda.CUDARenderer"``),
    #: imported only for ``device="cuda"`` (importing fractaldb never imports numba.cuda); None: CPU only.
    cuda_renderer: str | None = None

    def render_config(self, cfg):
        """The renderers' config: ``cfg.render_config()`` of the family's settings; a render config as is."""
        return cfg.render_config() if isinstance(cfg, self.settings) else cfg

    def create_renderer(self, cfg, device: str = "cpu", **options) -> Renderer:
        """A renderer for ``device`` (``cpu`` or ``cuda``): one per thread.

        Raises:
            ConfigError: ``cuda`` for a family without a GPU twin, or without a usable GPU.
        """
        rc = self.render_config(cfg)
        if device == "cuda":
            if self.cuda_renderer is None:
                raise ConfigError(f"the {self.name} family renders on the CPU only; use --device cpu")
            import importlib

            module, _, name = self.cuda_renderer.rpartition(".")
            return getattr(importlib.import_module(module, type(self).__module__), name)(rc, **options)
        return self.cpu_renderer(rc)

    def render_blocks(self, renderer, cfg, classes, jobs) -> Iterator[RenderedBlock]:
        """Render ``(class, block, offsets)`` jobs; yields one :class:`RenderedBlock` per job, in order."""
        raise NotImplementedError

    def render_device(self, renderer, cfg, classes, blocks):
        """Every image of the ``(class, block)`` pairs, block after block, in one
        array on the renderer's device (``render_many_device``)."""
        raise NotImplementedError

    def preview_images(self, cfg, classes, per_class: int, limit: int) -> list:
        """A few host images per class for a contact sheet (``per_class`` each, first ``limit`` classes)."""
        raise NotImplementedError

    # -- command line --------------------------------------------------------
    def commands(self) -> list:
        """The family's own ``click`` commands, added to ``fractaldb`` (none by default)."""
        return []

    def params_preview(self):
        """A module offering ``fractaldb preview --params`` for class-parameter files
        (``render_options(f)``, a click decorator, and ``params_sheet(params, per_category,
        limit, **options)``), or None.  At most one family offers it."""
        return None
