"""``wids``: ``wids-index.json``, the shard list ``wids.ShardListDataset`` reads."""

from __future__ import annotations

import json

from ..keys import WIDS_INDEX
from ..manifest import dumps
from .registry import Index, register_index


def wids_doc(manifest: dict) -> dict:
    return {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": manifest["name"],
            "shardlist": [{"url": e["name"], "nsamples": e["samples"], "filesize": e["bytes"]}
                          for e in manifest["shards"]]}


@register_index
class WidsIndex(Index):
    name = "wids"
    help = f"wids ({WIDS_INDEX})"
    files = (WIDS_INDEX,)
    at_generate = True

    def write(self):
        self.put(WIDS_INDEX, dumps(wids_doc(self.manifest)))

    def check(self):
        if not self.store.exists(WIDS_INDEX):
            return [self.missing(WIDS_INDEX)]
        try:
            doc = json.loads(self.store.read(WIDS_INDEX, max_bytes=1 << 28))
            ok = [(s["url"], s["nsamples"], s["filesize"]) for s in doc["shardlist"]] == \
                 [(e["name"], e["samples"], e["bytes"]) for e in self.manifest["shards"]]
        except Exception:  # noqa: BLE001 - unreadable or malformed: it does not match
            ok = False
        return [] if ok else [self.mismatch(WIDS_INDEX)]
