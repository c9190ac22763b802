"""Names, in one place: sample keys, tar members, shard files, index files.

A sample key has no dots (WebDataset splits member names at the first dot):
``c00042-w03-k7-f2`` is fractal category 42, weight row 3, patch draw 7,
flip 2; ``p00042-i000123`` is Perlin class 42, instance 123.
"""

from __future__ import annotations

__all__ = ["sample_key", "perlin_key", "shard_name", "MANIFEST", "WIDS_INDEX", "TIMM_INFO", "PROGRESS_DIR", "LABEL_EXT", "META_EXT"]

#: Member extensions besides the image (``png``/``jpg``/``webp``).
LABEL_EXT = "cls"
META_EXT = "json"
#: Files written beside the shards.
MANIFEST = "manifest.json"
WIDS_INDEX = "wids-index.json"
TIMM_INFO = "_info.json"
#: Hidden folder recording finished shards while a run is in progress (removed at the end).
PROGRESS_DIR = ".fractaldb-progress"


def sample_key(category: int, weight: int, draw: int, flip: int) -> str:
    """``c00042-w03-k7-f2``."""
    return f"c{category:05d}-w{weight:02d}-k{draw}-f{flip}"


def perlin_key(klass: int, instance: int) -> str:
    """``p00042-i000123``: Perlin class 42 (of the Perlin family), instance 123."""
    return f"p{klass:05d}-i{instance:06d}"


def shard_name(name: str, index: int) -> str:
    """``<name>-000003.tar``."""
    return f"{name}-{index:06d}.tar"
