"""``timm``: ``_info.json``, the split sizes timm's ``wds/`` reader takes (``train``, and ``val``
with a ``val_fraction``)."""

from __future__ import annotations

import json

from ..config import shard_splits
from ..keys import TIMM_INFO
from ..manifest import dumps
from .registry import Index, register_index


@register_index
class TimmIndex(Index):
    name = "timm"
    help = f"timm's wds/ reader ({TIMM_INFO})"
    files = (TIMM_INFO,)
    at_generate = True

    def doc(self) -> dict:
        m = self.manifest
        return {"name": m["name"], "num_classes": m["plan"]["classes"],
                "splits": {split: {"name": split, "num_samples": sum(e["samples"] for e in shards),
                                   "filenames": [e["name"] for e in shards],
                                   "shard_lengths": [e["samples"] for e in shards]}
                           for split, shards in shard_splits(m).items()}}

    def write(self):
        self.put(TIMM_INFO, dumps(self.doc()))

    def check(self):
        if not self.store.exists(TIMM_INFO):
            return [self.missing(TIMM_INFO)]
        try:
            doc = json.loads(self.store.read(TIMM_INFO, max_bytes=1 << 28))
            want = self.doc()
            ok = doc["num_classes"] == want["num_classes"] and set(doc["splits"]) == set(want["splits"]) and all(
                {k: doc["splits"][s][k] for k in ("filenames", "shard_lengths", "num_samples")}
                == {k: want["splits"][s][k] for k in ("filenames", "shard_lengths", "num_samples")}
                for s in want["splits"])
        except Exception:  # noqa: BLE001 - unreadable or malformed: it does not match
            ok = False
        return [] if ok else [self.mismatch(TIMM_INFO)]
