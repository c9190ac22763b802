"""The shard source: a ``fractaldb generate`` output (or shard URLs) read with webdataset.

:func:`open_shards` loads and validates a dataset's manifest **once** (and checks
each local shard's size); :func:`shard_dataset` and the training sources take
what it returns, so nothing opens the same manifest twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset

from ..dataset import Dataset, load_manifest
from ..encode import FORMATS
from ..errors import ConfigError, InputError
from ..inputs import ImageError, check_label, open_image
from ..keys import LABEL_EXT, SHARD_SUFFIX
from ..labels import CLASS, MASK, MULTI_HOT
from ..storage import Store
from .stages import Epoch, batched, capped, consumer_rng, handled, shuffled
from .views import sampled, view_sampler

__all__ = ["Shards", "open_shards", "shard_urls", "multi_label_classes", "shard_dataset", "shard_loader",
           "ShardStream", "to_tensor", "multi_hot", "resized"]


@dataclass(frozen=True)
class Shards:
    """What a stream needs of a shard source, read once.

    Attributes:
        urls: the shard URLs, in the manifest's order.
        dataset: the :class:`~fractaldb.dataset.Dataset` its manifest describes, or None
            for shard URLs given directly.
        manifest: the validated manifest, or None.
    """

    urls: list
    dataset: Dataset | None = None
    manifest: dict | None = None

    @property
    def label_kind(self):
        return CLASS if self.dataset is None else self.dataset.label_kind

    @property
    def num_classes(self) -> int | None:
        return None if self.dataset is None else self.dataset.n_classes


def open_shards(source) -> Shards:
    """A dataset folder/URL (its manifest validated, each local shard's size checked), a
    shard URL or pattern, a list of URLs, or a :class:`Shards` (returned as it is)."""
    if isinstance(source, Shards):
        return source
    if isinstance(source, (list, tuple)):
        return Shards(list(source))
    source = str(source)
    if source.endswith(SHARD_SUFFIX) or "{" in source:
        return Shards([source])
    store = Store(source)
    manifest = load_manifest(store)
    if store.local:  # a cheap check where it is cheap: each shard's size against the manifest
        for e in manifest["shards"]:
            size = store.check_regular(e["name"])
            if size != e["bytes"]:
                raise InputError(f"{store.path(e['name'])}: {size} bytes, the manifest says {e['bytes']}; "
                                 f"run 'fractaldb verify {source}' and regenerate what it names")
    urls = [store.path(e["name"]) if store.local else f"{source.rstrip('/')}/{e['name']}"
            for e in manifest["shards"]]
    return Shards(urls, Dataset.from_manifest(manifest), manifest)


def shard_urls(source) -> list:
    """Shard URLs of a dataset folder/URL (via its manifest), or ``source`` as given."""
    return open_shards(source).urls


def multi_label_classes(source) -> int | None:
    """The number of classes of the dataset folder/URL ``source`` when it holds a
    multi-label family (its loaders yield multi-hot vectors of that length), else None."""
    shards = open_shards(source)
    return shards.num_classes if shards.label_kind is MULTI_HOT else None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> ``uint8`` tensor ``(3, H, W)`` (gray is repeated to 3 channels)."""
    arr = np.asarray(img.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def multi_hot(labels, num_classes: int) -> torch.Tensor:
    """``float32 (num_classes,)``: 1 at each of ``labels``, 0 elsewhere."""
    out = torch.zeros(num_classes, dtype=torch.float32)
    out[list(labels)] = 1.0
    return out


def target(value):
    """A label kind's target as the loaders yield it: an int, or a tensor of its array."""
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def _decode(sample: dict, transform, kind=CLASS, num_classes: int | None = None):
    where = f"{sample.get('__url__', 'a shard')}: sample {sample.get('__key__')}"
    ext = next((e for e in FORMATS if e in sample), None)
    if ext is None or LABEL_EXT not in sample:
        raise InputError(f"{where} has no image or no .cls member; the shard is damaged, regenerate it")
    fix = "the shard is damaged, regenerate it"
    try:  # the one validated reader path: the image's size bounded before it is decoded
        img = open_image(sample[ext], where, fix=fix)
    except ImageError as exc:
        raise InputError(f"{where} cannot be decoded ({exc.reason}); {fix}") from None
    raw = sample[LABEL_EXT]
    try:  # a decimal label among the dataset's classes
        label = check_label(raw.encode() if isinstance(raw, str) else raw, num_classes or 2**31, where, fix)
    except InputError:
        among = f" 0..{num_classes - 1}" if num_classes else ""
        raise InputError(f"{where} cannot be decoded (its .{LABEL_EXT} is not a label{among}); {fix}") from None
    return (transform or to_tensor)(img), target(kind.decode(sample, label, num_classes, where))


def _closing_streams(sources):
    """webdataset's opened shards (dicts with a ``stream``), each stream closed when the next is
    asked for (the reader is done with it then) or when the iteration ends or is abandoned."""
    stream = None
    try:
        for source in sources:
            if stream is not None:
                stream.close()
            stream = source.get("stream")
            yield source
    finally:
        if stream is not None:
            stream.close()


def _handler(handler):
    """The error handler for ``handler=``: ``"raise"`` (a damaged shard or sample is one
    :class:`~fractaldb.errors.InputError` naming it), ``"warn"`` (warn and skip it, like
    ``webdataset.warn_and_continue``), or any webdataset handler."""
    if callable(handler):
        return handler
    if handler not in ("raise", "warn"):
        raise ConfigError(f"handler must be 'raise', 'warn' or a webdataset handler, got {handler!r}")

    def handle(exn):
        if isinstance(exn, InputError):
            message = str(exn)
        else:
            urls = [a for a in getattr(exn, "args", ()) if isinstance(a, str) and SHARD_SUFFIX in a]
            where = urls[-1] if urls else "a shard"
            why = exn.args[0] if exn.args and isinstance(exn.args[0], str) else str(exn)
            message = (f"{where} is not a readable shard ({type(exn).__name__}: {why[:120]}); "
                       "run 'fractaldb verify' on the dataset and regenerate what it names")
        if handler == "raise":
            raise InputError(message) from None
        import warnings

        warnings.warn(f"skipped: {message}", stacklevel=2)
        return True

    return handle


def _collate(samples):
    """webdataset's default collation: tensors stacked, numbers as an array; images of
    different sizes are one :class:`~fractaldb.errors.InputError` saying what to do."""
    from webdataset.filters import default_collation_fn

    shapes = sorted({tuple(s[0].shape) for s in samples if isinstance(s[0], torch.Tensor)})
    if len(shapes) > 1:
        raise InputError(f"a batch holds images of different sizes ({' and '.join(map(str, shapes[:2]))}); pass "
                         "resize=N (or a transform that makes one size) to batch them")
    return default_collation_fn(samples)


def _sizes(dataset) -> dict:
    """``{family: image side}`` of a dataset's families that say one."""
    if dataset is None:
        return {}
    return {name: p.settings.image_size for name, p in dataset.parts.items()
            if isinstance(getattr(p.settings, "image_size", None), int)}


def resized(size: int):
    """The default transform at one image side: bilinear resize to ``size`` x ``size``, then
    :func:`to_tensor`."""
    def transform(img):
        return to_tensor(img if img.size == (size, size) else img.resize((size, size), Image.BILINEAR))

    return transform


def _transform(shards: Shards, transform, resize, batch_size):
    """The transform a stream uses: ``transform``, or the default (resized to ``resize`` when
    given).  A dataset whose families have different image sizes, batched with the default
    transform and no ``resize``, is refused in one line (a batch needs one size)."""
    if resize is not None:
        if transform is not None:
            raise ConfigError("give resize= or transform=, not both (resize in your transform instead)")
        if isinstance(resize, bool) or not isinstance(resize, int) or resize <= 0:
            raise ConfigError(f"resize must be a positive integer (the image side), got {resize!r}")
        if shards.label_kind is MASK:
            raise ConfigError("resize= would move the images away from their masks; pass a transform instead")
        return resized(resize)
    sizes = _sizes(shards.dataset)
    if transform is None and batch_size and len(set(sizes.values())) > 1:
        said = ", ".join(f"{n} {v}x{v}" for n, v in sizes.items())
        raise ConfigError(f"this dataset mixes image sizes ({said}) and a batch needs one: pass resize=N "
                          "(e.g. resize=" f"{max(sizes.values())}) or a transform")
    return transform


class ShardStream(IterableDataset):
    """``(image, target)`` samples (or batches) of a shard source: the source stage
    below, then the shared stages (:mod:`fractaldb.data.stages`).  Built by
    :func:`shard_dataset`; call :meth:`set_epoch` each epoch."""

    def __init__(self, shards: Shards, *, resampled, epoch_size, shuffle, seed, transform, batch_size,
                 num_classes, handler, views="all", resize=None):
        super().__init__()
        self.shards = shards
        self.resampled, self.shuffle, self.seed = resampled, shuffle, seed
        self.transform, self.batch_size = _transform(shards, transform, resize, batch_size), batch_size
        self.kind = shards.label_kind
        if num_classes is not None and self.kind is CLASS:  # told a length: multi-hot vectors
            self.kind = MULTI_HOT
        self.num_classes = shards.num_classes if num_classes is None else num_classes
        self.on_error = _handler(handler)
        self.views = view_sampler(shards.dataset, views, seed)  # None: every view
        # epoch_size counts the items that leave the stream: batches when batching here
        self.cap = None if not epoch_size else (math.ceil(epoch_size / batch_size) if batch_size else epoch_size)
        self.epoch = Epoch()

    def set_epoch(self, epoch: int) -> None:
        self.epoch.value = int(epoch)

    def source(self):
        """This rank's and worker's raw samples (webdataset dicts) of one pass."""
        import webdataset as wds

        urls = self.shards.urls
        if self.resampled:
            shards = self._resampled(urls)
        else:
            shards = wds.split_by_worker(wds.split_by_node(iter(wds.SimpleShardList(urls))))
        # webdataset's tarfile_to_samples, with each shard's file closed once it is read (it leaves
        # them to the garbage collector: a ResourceWarning per shard).
        from webdataset import tariterators as tars

        opened = _closing_streams(tars.url_opener(shards, handler=self.on_error))
        return tars.group_by_keys(tars.tar_file_expander(opened, handler=self.on_error), handler=self.on_error)

    def _resampled(self, urls):
        """Shards drawn with replacement, seeded per (seed, epoch, rank, worker).

        Our own stage rather than ``webdataset.ResampledShards``: that one seeds from
        its own iteration counter, which restarts in every DataLoader worker and
        ignores :meth:`set_epoch`.
        """
        rng = consumer_rng(self.seed, "loader-shards", self.epoch.value)
        while True:
            yield {"url": urls[rng.randrange(len(urls))]}

    def _one_pass(self):
        items = self.source()
        if self.views is not None:  # this epoch's views only, dropped before decoding
            items = sampled(items, self.views, self.epoch.value, self.on_error)
        if self.shuffle:
            items = shuffled(items, self.shuffle, consumer_rng(self.seed, "loader-shuffle", self.epoch.value))
        items = handled(items, lambda s: _decode(s, self.transform, self.kind, self.num_classes), self.on_error)
        return batched(items, self.batch_size, _collate) if self.batch_size else items

    def __iter__(self):
        return capped(self._one_pass, self.cap)


def shard_dataset(source, *, resampled: bool = True, epoch_size: int | None = None, shuffle: int = 1000,
                  seed: int = 0, transform=None, batch_size: int | None = None, num_classes: int | None = None,
                  handler="raise", views: str = "all", resize: int | None = None) -> ShardStream:
    """A stream of ``(image, target)`` over the shards of ``source``.

    Args:
        source: dataset folder or URL (reads ``manifest.json``), a shard URL
            pattern (``data/tiny-{000000..000002}.tar``), a list of URLs, or what
            :func:`open_shards` returned.
        resampled: draw shards with replacement (training; infinite unless
            ``epoch_size``) or visit each exactly once (split by node, then worker).
        epoch_size: samples per worker per epoch.
        shuffle: sample shuffle buffer (0 to disable); seeded per (seed, epoch, rank, worker).
        seed: stream seed.
        transform: callable on a PIL image (default: ``uint8`` tensor).
        batch_size: collate into batches inside the stream (use with
            ``DataLoader(batch_size=None)``).
        num_classes: for shard URLs of a multi-label dataset, the length of the multi-hot
            label vectors (from ``.labels.json``); a dataset folder's manifest says it.
        handler: what a damaged shard or sample does: ``"raise"`` (one
            :class:`~fractaldb.errors.InputError` naming it), ``"warn"`` (a warning,
            then it is skipped) or a webdataset handler such as
            ``webdataset.ignore_and_continue``.
        views: ``all`` (every stored view), or for a dataset of multi-view images (3-D
            fractals) one random view per ``class`` or per ``instance`` each epoch
            (:mod:`fractaldb.data.views`; needs the dataset folder or URL).
        resize: the image side every image is resized to (bilinear) by the default
            transform: needed to batch a dataset whose families have different image
            sizes (without it such a dataset is refused in one line; mixed datasets made
            today share one size unless a preset sets otherwise).

    Returns:
        A :class:`ShardStream` (an ``IterableDataset`` with ``set_epoch``).  Targets follow
        the dataset's label kind (:mod:`fractaldb.labels`): ``int`` labels, multi-hot
        ``float32`` vectors, or ``uint8 (H, W)`` segmentation masks.
    """
    return ShardStream(open_shards(source), resampled=resampled, epoch_size=epoch_size, shuffle=shuffle, seed=seed,
                       transform=transform, batch_size=batch_size, num_classes=num_classes, handler=handler,
                       views=views, resize=resize)


def shard_loader(source, batch_size: int, num_workers: int = 2, **kwargs):
    """A ``DataLoader`` over :func:`shard_dataset` (batching done in the stream)."""
    ds = shard_dataset(source, batch_size=batch_size, **kwargs)
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers, persistent_workers=False)
