"""Index files other readers need beside the shards (``fractaldb index DIR --for ...``).

One module per format, each registered in :mod:`.registry` (a new index is one new
module): ``wids`` (``wids-index.json``), ``timm`` (``_info.json``), ``hf`` (the dataset
card), which ``generate`` writes at the end of every run, and ``energon`` and ``dali``
(they read every shard), written when asked.  Every index is a function of the shards'
bytes and the manifest: the same dataset gives the same index files.  None is listed in
the manifest; each can be written again at any time.

Indexes are written only where a dataset may be written (a local folder or an object store:
an ``http(s)://`` or ``hf://`` dataset is read, never written) and only after every writer's
:meth:`~.registry.Index.preflight` passed (the card never replaces a hand-written
``README.md``); shards are read through :func:`fractaldb.manifest.read_shard` (size first,
then sha256), their member names checked (:mod:`.tar`).
"""

from __future__ import annotations

from ..errors import InputError
from ..manifest import read_shard
from ..storage import Store
from .dali import dali_index
from .energon import ENERGON_DIR, energon_tar_index
from .registry import get_index, indexes, reader_names, register_index
from .tar import tar_members

__all__ = ["READERS", "write_indexes", "tar_members", "dali_index", "energon_tar_index", "ENERGON_DIR",
           "register_index", "indexes", "reader_names"]


def __getattr__(name):
    if name == "READERS":  # the readers 'fractaldb index --for' knows (every registered index)
        return reader_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_indexes(out: str, readers, progress=None) -> list:
    """Write the index files of ``readers`` (names of :func:`indexes`) beside ``out``'s shards.

    The shards are checked against the manifest's sha256 first (an index of
    damaged shards would point readers at the wrong bytes).  Returns the names
    written.  ``progress(n_samples)`` follows the shards read.
    """
    from ..dataset import Dataset, load_manifest

    kinds = [get_index(r) for r in dict.fromkeys(readers)]
    store = Store(out)
    store.require_writable()  # an http(s) or hf dataset is read, never written: before any work
    if not store.exists():
        raise InputError(f"{out} does not exist; pass the folder 'fractaldb generate' wrote")
    manifest = load_manifest(store)
    ds = Dataset.from_manifest(manifest)
    writers = [cls(store, manifest, ds, asked=True) for cls in kinds]
    for w in writers:
        w.preflight()  # e.g. a hand-written README.md: refused before anything is written
    readers_of_shards = [w for w in writers if w.reads_shards]
    if readers_of_shards:
        for tar_id, e in enumerate(manifest["shards"]):
            if not store.exists(e["name"]):
                raise InputError(f"{e['name']} is missing; run 'fractaldb verify {out}', then index again")
            try:
                data = read_shard(store, e)  # never a FIFO; the size before reading, then the sha256
            except InputError:
                raise InputError(f"{e['name']} does not match the manifest; run 'fractaldb verify {out}', "
                                 "then index again") from None
            for w in readers_of_shards:
                w.add_shard(tar_id, e["name"], data)
            if progress is not None:
                progress(e["samples"])
    return [name for w in writers for name in w.finish()]  # written only now, every shard read and checked
