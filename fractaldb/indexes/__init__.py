"""Index files other readers need beside the shards (``fractaldb index DIR --for ...``).

One module per format, each registered in :mod:`.registry` (a new index is one new
module): ``wids`` (``wids-index.json``), ``timm`` (``_info.json``), ``hf`` (the dataset
card), which ``generate`` writes at the end of every run, and ``energon`` and ``dali``
(they read every shard), written when asked.  Every index is a function of the shards'
bytes and the manifest: the same dataset gives the same index files.  None is listed in
the manifest; each can be written again at any time.
"""

from __future__ import annotations

import hashlib

from ..errors import InputError
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
    if not store.exists():
        raise InputError(f"{out} does not exist; pass the folder 'fractaldb generate' wrote")
    manifest = load_manifest(store)
    ds = Dataset.from_manifest(manifest)
    writers = [cls(store, manifest, ds) for cls in kinds]
    readers_of_shards = [w for w in writers if w.reads_shards]
    if readers_of_shards:
        for tar_id, e in enumerate(manifest["shards"]):
            if not store.exists(e["name"]):
                raise InputError(f"{e['name']} is missing; run 'fractaldb verify {out}', then index again")
            size = store.check_regular(e["name"])  # never a FIFO; the size before reading
            data = store.read(e["name"], max_bytes=e["bytes"]) if size == e["bytes"] else b""
            if size != e["bytes"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
                raise InputError(f"{e['name']} does not match the manifest; run 'fractaldb verify {out}', "
                                 "then index again")
            for w in readers_of_shards:
                w.add_shard(tar_id, e["name"], data)
            if progress is not None:
                progress(e["samples"])
    return [name for w in writers for name in w.finish()]
