"""``wids``: ``wids-index.json``, the shard list ``wids.ShardListDataset`` reads (the training
shards; a ``val_fraction`` split's in ``wids-index-val.json``)."""

from __future__ import annotations

import json

from ..config import shard_splits
from ..keys import WIDS_INDEX, WIDS_VAL_INDEX
from ..manifest import dumps
from .registry import Index, register_index


def wids_doc(manifest: dict, split: str = "train") -> dict:
    """The wids index of one split's shards (every shard without a ``val_fraction``)."""
    return {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": manifest["name"],
            "shardlist": [{"url": e["name"], "nsamples": e["samples"], "filesize": e["bytes"]}
                          for e in shard_splits(manifest)[split]]}


@register_index
class WidsIndex(Index):
    name = "wids"
    help = f"wids ({WIDS_INDEX}; {WIDS_VAL_INDEX} for a val_fraction split)"
    files = (WIDS_INDEX,)
    at_generate = True

    def _files(self) -> dict:
        """``{file: split}``: the training index, and the validation split's when there is one."""
        return {WIDS_INDEX: "train", **({WIDS_VAL_INDEX: "val"} if "val" in shard_splits(self.manifest) else {})}

    def write(self):
        for name, split in self._files().items():
            self.put(name, dumps(wids_doc(self.manifest, split)))

    def check(self):
        problems = []
        for name, split in self._files().items():
            if not self.store.exists(name):
                problems.append(self.missing(name))
                continue
            try:
                doc = json.loads(self.store.read(name, max_bytes=1 << 28))
                ok = [(s["url"], s["nsamples"], s["filesize"]) for s in doc["shardlist"]] == \
                     [(e["name"], e["samples"], e["bytes"]) for e in shard_splits(self.manifest)[split]]
            except Exception:  # noqa: BLE001 - unreadable or malformed: it does not match
                ok = False
            if not ok:
                problems.append(self.mismatch(name))
        return problems
