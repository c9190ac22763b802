"""What a family is: the interface every family package implements.

A **family** is a kind of formula-driven image (FractalDB fractals, Perlin
noise, ...).  Its package owns everything family-specific -- settings, class
search, renderers, sample names, papers, random-stream purposes, small test
settings, transfer-study arms -- and registers through the
``fractaldb.families`` entry-point group (:mod:`fractaldb.families`).  The rest
of fractaldb -- plan, shards, dataset, loaders, preview, export, card, CLI,
training -- only talks to these two objects and never names a family:

* :class:`Family` -- the family itself (one instance, from the registry): its
  metadata, its settings type, the class search, and :meth:`Family.bind`;
* :class:`BoundFamily` -- a family bound to one dataset's settings and classes
  (``family.bind(settings, classes)``): keys, metadata, layout and rendering of
  its samples, with no arguments threaded through every call.

The vocabulary:

* a family's **section**: its settings in a preset (``fractal:``, ``perlin:``),
  declared by its :attr:`Family.settings` dataclass -- types, defaults, allowed
  values and help texts all come from its fields (:func:`setting`);
* **classes**: what :meth:`Family.find_classes` searches (or loads) and the
  manifest stores (:meth:`BoundFamily.class_docs` / :meth:`Family.classes_from_docs`),
  an opaque, indexable sequence for everyone else;
* a **block**: what one render produces, ``images_per_block`` images of one
  class; each class has ``blocks_per_class`` blocks.  A sample is
  ``(label, family, class, block, offset)`` (:class:`fractaldb.plan.Sample`);
* a **renderer**: CPU (:class:`HostRenderer`) or GPU (:class:`CUDARendererBase`),
  one protocol (:class:`Renderer`), the same images;
* a **label kind** (:mod:`fractaldb.labels`): what a sample carries besides its
  class (nothing, the labels of every class it shows, a segmentation mask).
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Protocol

from ..errors import ConfigError
from ..schema import Setting, coerce, setting, settings_of  # noqa: F401 - re-exported: families build with them

__all__ = ["Family", "BoundFamily", "Renderer", "RenderedBlock", "setting", "Setting", "settings_of",
           "build_settings", "one_image_blocks", "InstanceImages", "HostRenderer", "CUDARendererBase", "StudyArm", "cpu_only",
           "VIEW_SAMPLING"]

#: How training samples a family whose blocks are views of one object
#: (:attr:`BoundFamily.block_views`; :mod:`fractaldb.data.views`): every stored view
#: (``all``), or one random view per ``class`` or per ``instance`` (block) each epoch.
VIEW_SAMPLING = ("all", "class", "instance")


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
    ``--quick`` study (besides scratch and the primary arm).  ``contrast`` asks protocol
    v2 for a direct paired interval of the primary arm against this arm.
    """

    preset: str
    overrides: tuple
    description: str
    primary: bool = False
    scaled: Any = None
    quick: bool = False
    contrast: bool = False


@dataclass
class RenderedBlock:
    """The images of one block that a shard needs.

    ``images[i]`` is the image at ``offsets[i]`` of the block (``(H, W, C)``
    uint8; valid until the next block is requested).  ``meta`` is merged into
    each sample's metadata; ``record`` is a note for the manifest (a degenerate
    variant, say) or None.  ``masks[i]`` (families whose label kind is ``mask``)
    is the segmentation mask of ``images[i]``: ``(H, W)`` uint8, the family's class
    index + 1 where a class is drawn, 0 elsewhere.
    """

    klass: int
    block: int
    offsets: list
    images: Any
    meta: dict = dataclasses.field(default_factory=dict)
    record: dict | None = None
    masks: Any = None


def one_image_blocks(jobs, images):
    """:meth:`BoundFamily.render_blocks` of a family whose blocks are one image: ``images``
    holds one image per ``(class, block, offsets)`` job, in order."""
    for (k, b, offsets), img in zip(jobs, images):
        yield RenderedBlock(k, b, list(offsets), [img] * len(offsets))


class InstanceImages:
    """A :class:`BoundFamily` mixin for the common layout: a block is one instance
    (``settings.instances`` blocks per class) and holds one image."""

    @property
    def blocks_per_class(self) -> int:
        return self.settings.instances

    @property
    def images_per_block(self) -> int:
        return 1


def cpu_only(family: str) -> ConfigError:
    """The error of ``--device cuda`` for a family without a GPU twin."""
    return ConfigError(f"the {family} family renders on the CPU only; use --device cpu")


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


class HostRenderer:
    """What every CPU renderer shares: its "device" is host memory, so
    ``render_many_device`` returns a NumPy array and :meth:`to_torch` wraps it."""

    device = "cpu"

    @staticmethod
    def to_torch(images):
        """Host images as a ``torch.Tensor`` sharing their memory (no copy)."""
        import torch

        return torch.from_numpy(images)


class CUDARendererBase:
    """What every GPU renderer shares, mirroring :class:`HostRenderer`: the start-up
    checks (numba-cuda, a usable GPU, ``max_batch``), the family's CUDA kernels module
    imported only then (kernels compile on their first launch), and the hand-off of
    device images to PyTorch without a copy.

    A subclass names its kernels module in :attr:`kernels` (relative to its own module,
    e.g. ``".kernels_cuda"``) and calls ``super().__init__(cfg, max_batch)`` first.

    Raises:
        ConfigError: without numba-cuda or a usable GPU, or a bad ``max_batch``
            (:func:`fractaldb.gpu.gpu_start`).
    """

    device = "cuda"
    #: The family's CUDA kernels, a module name relative to the subclass's module.
    kernels: ClassVar[str] = ".kernels_cuda"

    def __init__(self, cfg, max_batch: int):
        from ..gpu import gpu_start

        self._cuda = gpu_start(max_batch)
        self._k = importlib.import_module(self.kernels, type(self).__module__.rpartition(".")[0])
        self.cfg = cfg
        self.max_batch = max_batch

    @staticmethod
    def to_torch(images):
        """Device images as a CUDA ``torch.Tensor`` without a copy (:func:`fractaldb.gpu.to_torch`)."""
        from ..gpu import to_torch

        return to_torch(images)


class Family(ABC):
    """The interface of a family package: one instance per family, found through the
    ``fractaldb.families`` entry-point group (:mod:`fractaldb.families`).

    Class attributes are the family's metadata; a family must set :attr:`name`,
    :attr:`summary`, :attr:`settings` and :attr:`bound`, and implement the abstract
    methods.  Everything else has a default.
    """

    # -- identity and metadata ---------------------------------------------------
    #: Registry name and preset section (``fractal``, ``perlin``, ...): an identifier.
    name: ClassVar[str] = ""
    #: One line for ``fractaldb presets``, docs and the card.
    summary: ClassVar[str] = ""
    #: The dataset card's "what it is" sentence (default: :attr:`summary`).
    description: ClassVar[str] = ""
    #: The papers to cite for it, in order (:class:`fractaldb.citations.Paper`).
    papers: ClassVar[tuple] = ()
    #: Its random streams, ``{purpose name: code}`` (:func:`fractaldb.seeds.declare_purposes`,
    #: called where the family defines them; the registry checks them again).
    purposes: ClassVar[dict] = {}
    #: Settings small enough for a test to run every command on the family in seconds
    #: (a section: ``{key: value}``); the test suite and the out-of-tree checks use them.
    small: ClassVar[dict] = {}
    #: The arms this family adds to the transfer study: ``{arm name: StudyArm}``.
    study_arms: ClassVar[dict] = {}
    #: What a sample carries besides its class (:mod:`fractaldb.labels`): ``class``,
    #: ``multi-hot`` (the labels of every class the image shows) or ``mask``.
    label_kind: ClassVar[str] = "class"
    #: The family of presets and manifests that name none (fractaldb 0.1): at most one.
    legacy_default: ClassVar[bool] = False
    #: Old flat preset keys (fractaldb 0.1) -> section key.
    legacy_keys: ClassVar[dict] = {}
    #: ``(preset, settings key)`` when the family makes datasets from a category folder
    #: (``fractaldb search`` output): the hint of a command given such a folder names them.
    category_folder: ClassVar[tuple | None] = None
    #: Names ``fractaldb`` re-exports at its top level: ``{name: "module:attribute"}``.
    exports: ClassVar[dict] = {}

    # -- settings ------------------------------------------------------------------
    #: Frozen dataclass of the family's settings: one field per section key (made
    #: with :func:`setting`) plus a required ``seed`` (the dataset seed).
    settings: ClassVar[type] = None
    #: The section key holding the number of classes (``--classes`` cuts it).
    count_key: ClassVar[str] = "classes"
    #: The types of settings and render configs this family's renderers accept
    #: (``fractaldb.create_renderer(cfg)`` finds the family by them).
    config_types: ClassVar[tuple] = ()
    #: Section keys added after datasets were made with the family, each with the value
    #: a manifest written before the key existed meant (``{key: value}``).  A new key's
    #: default may be a new behaviour (new bytes); :meth:`fractaldb.dataset.Dataset.from_manifest`
    #: fills these into a section that lacks them, so an old dataset still regenerates
    #: byte for byte (as a config without ``encoder`` means ``png1``).
    absent_means: ClassVar[dict] = {}

    # -- rendering -----------------------------------------------------------------
    #: The CPU renderer class (built from the render config).
    cpu_renderer: ClassVar[type] = None
    #: The GPU twin as ``"module.Class"`` (relative to the family's package, or
    #: absolute), imported only for ``device="cuda"`` (importing fractaldb never
    #: imports numba.cuda); None: CPU only.
    cuda_renderer: ClassVar[str | None] = None
    #: The :class:`BoundFamily` subclass :meth:`bind` builds.
    bound: ClassVar[type] = None

    @property
    def multi_label(self) -> bool:
        """True when a sample can show several classes (label kind ``multi-hot``)."""
        return self.label_kind == "multi-hot"

    # -- configuration ----------------------------------------------------------------
    def configure(self, section: dict, seed: int):
        """The family's settings from a resolved section (cross-key checks included)."""
        return build_settings(self.settings, section, seed, f"{self.name} settings")

    # -- classes ---------------------------------------------------------------------
    @abstractmethod
    def find_classes(self, settings, workers: int, progress=None):
        """Search (or load) the classes of ``settings``; returns an indexable sequence.
        ``progress(accepted, tried)`` follows a long search."""

    @abstractmethod
    def classes_from_docs(self, docs: list):
        """The classes from the manifest's entries (inverse of :meth:`BoundFamily.class_docs`)."""

    def bind(self, settings, classes) -> "BoundFamily":
        """This family bound to one dataset's ``settings`` and ``classes``."""
        return self.bound(self, settings, classes)

    # -- samples -----------------------------------------------------------------------
    @abstractmethod
    def export_path(self, meta: dict, ext: str) -> str:
        """Where ``export`` puts a sample in an ImageFolder, from its ``.json``
        metadata alone (``class_folder/file.ext``; the original's names where there is one)."""

    # -- rendering ---------------------------------------------------------------------
    def render_config(self, settings):
        """The renderers' config: ``settings.render_config()``; a render config as is."""
        return settings.render_config() if isinstance(settings, self.settings) else settings

    def device_note(self, settings, device: str) -> str | None:
        """One line ``generate`` says (a ``note:`` on the command line) before rendering
        ``settings`` on ``device``, when the family has something the user should know
        (its GPU path slower than the CPU's, say); None (the default) says nothing."""
        return None

    def create_renderer(self, settings, device: str = "cpu", **options) -> Renderer:
        """A renderer for ``device`` (``cpu`` or ``cuda``) of ``settings`` (or a render
        config): one per thread.  ``options`` go to the GPU renderer (``max_batch``).

        Raises:
            ConfigError: ``cuda`` for a family without a GPU twin, or without a usable GPU.
        """
        rc = self.render_config(settings)
        if device == "cuda":
            if self.cuda_renderer is None:
                raise cpu_only(self.name)
            module, _, name = self.cuda_renderer.rpartition(".")
            return getattr(importlib.import_module(module, type(self).__module__), name)(rc, **options)
        return self.cpu_renderer(rc)

    # -- command line ------------------------------------------------------------------
    def commands(self) -> list:
        """The family's own ``click`` commands, added to ``fractaldb`` (none by default)."""
        return []

    def params_preview(self):
        """A module offering ``fractaldb preview --params`` for class-parameter files
        (``render_options(f)``, a click decorator, and ``params_sheet(params, per_category,
        limit, **options)``), or None.  At most one family offers it."""
        return None


class BoundFamily(ABC):
    """A family bound to one dataset's settings and classes (:meth:`Family.bind`).

    Everything generic code asks about the family's samples goes through this object:
    the plan's layout, keys and metadata, rendering on the CPU or GPU, previews.

    Attributes:
        family: the :class:`Family`.
        settings: its settings (the family's ``settings`` dataclass).
        classes: its classes (what ``find_classes`` returned).
    """

    def __init__(self, family: Family, settings, classes):
        self.family = family
        self.settings = settings
        self.classes = classes

    @property
    def name(self) -> str:
        return self.family.name

    def __repr__(self) -> str:
        return f"<{self.name} bound to {len(self.classes)} classes>"

    # -- layout ----------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Labels this family contributes to the dataset."""
        return len(self.classes)

    @property
    def rows(self) -> int:
        """Rows of the plan (class index ``klass`` of a sample): the classes, unless a
        family's images are not made class by class (then often one row)."""
        return self.n_classes

    @property
    @abstractmethod
    def blocks_per_class(self) -> int:
        """Blocks per row of the plan (a function of the settings alone: the config's
        memory checks ask a family bound to no classes)."""

    @property
    @abstractmethod
    def images_per_block(self) -> int:
        """Images one render produces (a function of the settings alone)."""

    @property
    @abstractmethod
    def channels(self) -> int:
        """Channels of the rendered images (1 gray, 3 colour)."""

    @property
    def image_format(self) -> str:
        """The stored image format (``png``, ``jpg``, ``webp``)."""
        return self.settings.image_format

    #: True when a block's images are views of one object (one instance seen from
    #: ``images_per_block`` cameras, as 3-D fractals): a training-time view sampler
    #: (:mod:`fractaldb.data.views`) may then take one of them per epoch.  The family
    #: also says where a sample sits (:meth:`sample_position`).
    block_views: ClassVar[bool] = False

    def sample_position(self, meta: dict):
        """``(class, block, offset)`` of a sample from its ``.json`` metadata (the inverse of
        :meth:`sample_meta`; ``meta`` is read from a shard and checked by the caller), for a
        family with :attr:`block_views`; None where the family cannot tell."""
        return None

    @abstractmethod
    def class_docs(self) -> list:
        """Each class as a JSON-able dict (the manifest's entries, without the label)."""

    # -- samples -----------------------------------------------------------------------
    @abstractmethod
    def sample_key(self, klass: int, block: int, offset: int) -> str:
        """The WebDataset key (no dots) of a sample."""

    @abstractmethod
    def sample_meta(self, klass: int, block: int, offset: int) -> dict:
        """What made the sample (its ``.json`` member), besides ``key``, ``family``,
        ``label`` and the block's own ``meta``."""

    def sample_labels(self, klass: int, block: int, offset: int):
        """The family's classes (indices into ``classes``) a sample shows, sorted, or
        None when that is only ``klass`` (label kind ``multi-hot``)."""
        return None

    def primary(self, klass: int, block: int, offset: int) -> int:
        """The class index of the sample's ``.cls`` label: ``klass`` (a family whose
        images are not made class by class names one of the classes it shows)."""
        return klass

    # -- rendering ---------------------------------------------------------------------
    def renderer(self, device: str = "cpu", **options) -> Renderer:
        """A renderer of these settings for ``device`` (:meth:`Family.create_renderer`)."""
        return self.family.create_renderer(self.settings, device, **options)

    @abstractmethod
    def render_blocks(self, renderer, jobs) -> Iterator[RenderedBlock]:
        """Render ``(class, block, offsets)`` jobs; yields one :class:`RenderedBlock` per
        job, in order, holding the images at those offsets (host memory)."""

    @abstractmethod
    def render_device(self, renderer, blocks) -> list:
        """Every image of the ``(class, block)`` pairs on the renderer's device.

        Returns:
            ``[(positions, images), ...]``: ``images`` (``render_many_device``'s array,
            ``(n, H, W, C)``) holds, block after block, the ``images_per_block`` images of
            the blocks at ``positions`` (indices into ``blocks``).  A family that renders
            every block in one launch returns one pair; one that needs several launches
            (Perlin: one per channel count) returns one pair per launch.
        """

    @abstractmethod
    def preview_images(self, per_class: int, limit: int) -> list:
        """A few host images per class for a contact sheet (``per_class`` each, the first
        ``limit`` classes; each family chooses which)."""
