"""What kind of fractaldb folder is this?  For hints when a command gets the wrong kind.

fractaldb writes three kinds of folder, and each command reads one of them:

- a **shard dataset** (``generate``: ``manifest.json`` beside WebDataset shards), read
  by ``verify``, ``regenerate``, ``export``, ``index``, ``preview DIR`` and the loaders;
- a **category folder** (``search``: ``00000.csv ...`` and ``categories.json``), read
  by ``render --params``, ``preview --params`` and ``fractal.category_dir``;
- an **ImageFolder** (``render``: ``render.json``; ``export``: ``classes.json``),
  read by ``preview DIR`` and torchvision.

:func:`wrong_folder_hint` turns "this is not what I need" into the command that
makes sense for what the folder is.
"""

from __future__ import annotations

from pathlib import Path

from .keys import CATEGORIES_SUMMARY, CLASSES_INDEX, MANIFEST, RENDER_SUMMARY

__all__ = ["folder_kind", "wrong_folder_hint", "SHARDS", "CATEGORIES", "IMAGEFOLDER", "PRESET"]

SHARDS = "shard dataset"
CATEGORIES = "category folder"
IMAGEFOLDER = "ImageFolder"
PRESET = "preset"


def folder_kind(path) -> str | None:
    """:data:`SHARDS`, :data:`CATEGORIES`, :data:`IMAGEFOLDER`, or None (empty, missing,
    remote or something else).  Looks only at a few file names, never reads them."""
    try:
        p = Path(path)
        if "://" in str(path) or not p.is_dir():
            return None
        if (p / MANIFEST).is_file():
            return SHARDS
        if (p / RENDER_SUMMARY).is_file() or (p / CLASSES_INDEX).is_file():
            return IMAGEFOLDER
        if (p / CATEGORIES_SUMMARY).is_file() or any(c.suffix == ".csv" for c in p.iterdir()):
            return CATEGORIES
    except OSError:
        return None
    return None


def wrong_folder_hint(path, wanted: str, reader=None) -> str | None:
    """One sentence for a command that needs a ``wanted`` folder and got ``path``, when
    ``path`` is recognisably another kind; None otherwise (then the caller's own message).

    ``reader``: a callable giving ``(preset, "section.key")`` of the family that makes datasets
    from a category folder (:func:`fractaldb.families.category_reader`, passed by callers above
    the registry), or None; asked only when ``path`` is a category folder.
    """
    kind = folder_kind(path)
    if kind is None or kind == wanted:
        return None
    preset, key = (reader() if kind == CATEGORIES and reader is not None else None) or ("PRESET", "FAMILY.KEY")
    what = {
        SHARDS: f"{path} is a shard dataset ('fractaldb generate' output), not a {wanted}",
        CATEGORIES: f"{path} is a category folder ('fractaldb search' output), not a {wanted}",
        IMAGEFOLDER: f"{path} is an ImageFolder ('fractaldb render' or 'export' output), not a {wanted}",
    }[kind]
    fix = {
        (SHARDS, CATEGORIES): f"its classes are in {path}/{MANIFEST}; look at it with 'fractaldb preview {path} "
                              f"--out sheet.png' or unpack it with 'fractaldb export {path} --out DIR'",
        (SHARDS, IMAGEFOLDER): f"unpack it with 'fractaldb export {path} --out DIR'",
        (CATEGORIES, SHARDS): f"make a dataset from it with 'fractaldb generate --preset {preset} "
                              f"--set {key}={path} --out DIR', or render it with "
                              f"'fractaldb render --params {path} --out DIR'",
        (CATEGORIES, IMAGEFOLDER): f"render it with 'fractaldb render --params {path} --out DIR'",
        (IMAGEFOLDER, SHARDS): "ImageFolders have no manifest to check; 'fractaldb generate' makes a dataset "
                               "that verify, regenerate, export and index work on",
        (IMAGEFOLDER, CATEGORIES): "pass the category folder it was rendered from ('fractaldb search' output)",
        (SHARDS, PRESET): f"rebuild it with 'fractaldb generate --from-manifest {path} --out DIR'",
        (CATEGORIES, PRESET): f"use its categories with '--preset {preset} --set {key}={path}'",
        (IMAGEFOLDER, PRESET): "give a preset name ('fractaldb presets list') or a YAML file",
    }[(kind, wanted)]
    return f"{what}; {fix}"
