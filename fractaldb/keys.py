"""Names, in one place: tar members, shard files, index files.

Sample keys are each family's (``Family.sample_key``); a key has no dots
(WebDataset splits member names at the first dot).
"""

from __future__ import annotations

__all__ = ["shard_name", "MANIFEST", "WIDS_INDEX", "WIDS_VAL_INDEX", "TIMM_INFO", "PROGRESS_DIR", "LABEL_EXT", "META_EXT",
           "CATEGORIES_SUMMARY", "LOCK", "RENDER_SUMMARY", "SHARD_SUFFIX", "CLASSES_INDEX", "CARD", "CARD_SHEET"]

#: Member extensions besides the image.
LABEL_EXT = "cls"
META_EXT = "json"
#: Files written beside the shards.
MANIFEST = "manifest.json"
WIDS_INDEX = "wids-index.json"
#: The validation split's wids index (a dataset with ``val_fraction``).
WIDS_VAL_INDEX = "wids-index-val.json"
TIMM_INFO = "_info.json"
#: The dataset card (Hugging Face format) and its contact sheet (fractaldb.card).
CARD = "README.md"
CARD_SHEET = "contact-sheet.png"
#: Written beside the category CSVs by ``fractaldb search``, and beside the class
#: folders of a ``fractaldb render`` ImageFolder.
CATEGORIES_SUMMARY = "categories.json"
RENDER_SUMMARY = "render.json"
#: Written beside the class folders by ``fractaldb export``: folder -> label.
CLASSES_INDEX = "classes.json"
#: Shard file suffix.
SHARD_SUFFIX = ".tar"
#: Hidden folder recording finished shards while a run is in progress (removed at the end).
PROGRESS_DIR = ".fractaldb-progress"
#: Held in an output folder while a run writes it (one writer at a time).
LOCK = ".fractaldb-lock"


def shard_name(name: str, index: int) -> str:
    """``<name>-000003.tar``."""
    return f"{name}-{index:06d}{SHARD_SUFFIX}"
