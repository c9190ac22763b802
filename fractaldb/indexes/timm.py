"""``timm``: ``_info.json``, the split sizes timm's ``wds/`` reader takes."""

from __future__ import annotations

import json

from ..keys import TIMM_INFO
from ..manifest import dumps
from .registry import Index, register_index


@register_index
class TimmIndex(Index):
    name = "timm"
    help = f"timm's wds/ reader ({TIMM_INFO})"
    files = (TIMM_INFO,)
    at_generate = True

    def write(self):
        m = self.manifest
        names = [e["name"] for e in m["shards"]]
        self.put(TIMM_INFO, dumps({
            "name": m["name"], "num_classes": m["plan"]["classes"],
            "splits": {"train": {"name": "train", "num_samples": m["plan"]["samples"],
                                 "filenames": names, "shard_lengths": [e["samples"] for e in m["shards"]]}},
        }))

    def check(self):
        m, shards = self.manifest, self.manifest["shards"]
        if not self.store.exists(TIMM_INFO):
            return [self.missing(TIMM_INFO)]
        try:
            doc = json.loads(self.store.read(TIMM_INFO, max_bytes=1 << 28))
            split = doc["splits"]["train"]
            ok = (split["filenames"] == [e["name"] for e in shards]
                  and split["shard_lengths"] == [e["samples"] for e in shards]
                  and split["num_samples"] == m["plan"]["samples"] and doc["num_classes"] == m["plan"]["classes"])
        except Exception:  # noqa: BLE001 - unreadable or malformed: it does not match
            ok = False
        return [] if ok else [self.mismatch(TIMM_INFO)]
