"""``dali``: one ``<shard stem>.idx`` per shard in the format of DALI's ``wds2idx``
(``v1.2 <samples>``, then per sample ``ext data_offset size member_name`` for each
member, space separated), for ``fn.readers.webdataset(index_paths=...)``."""

from __future__ import annotations

from ..keys import SHARD_SUFFIX
from .registry import Index, register_index
from .tar import samples_of, split_name, tar_members

__all__ = ["dali_index", "dali_name"]


def dali_index(data: bytes) -> bytes:
    """DALI's ``wds2idx`` index (format ``v1.2``) of one shard."""
    members, _ = tar_members(data)
    groups = [(k, g) for k, g in samples_of(members) if k and not k.endswith("/")]
    lines = [f"v1.2 {len(groups)}"]
    for _, group in groups:
        lines.append(" ".join(f"{split_name(name)[1]} {data_off} {size} {name}" for name, _, data_off, size in group))
    return ("\n".join(lines) + "\n").encode()


def dali_name(shard: str) -> str:
    """``name-000003.tar`` -> ``name-000003.idx`` (what ``wds2idx`` names it)."""
    return shard[: -len(SHARD_SUFFIX)] + ".idx" if shard.endswith(SHARD_SUFFIX) else shard + ".idx"


@register_index
class DaliIndex(Index):
    name = "dali"
    help = "NVIDIA DALI (wds2idx .idx per shard)"
    reads_shards = True

    def add_shard(self, tar_id, name, data):
        self.put(dali_name(name), dali_index(data))
