"""Dataset cards: the ``README.md`` (Hugging Face dataset-card format) and the
contact sheet that ``generate`` writes beside the shards.

The card is a pure function of the manifest (and, for the sheet, of the classes
it lists): the same config and seed give the same bytes, so two runs of
``generate`` on different machines write identical folders.  The card and its
sheet are *derived* files, like ``wids-index.json``: they are not listed in
the manifest, ``verify`` leaves them alone (a publisher may edit the card), and
``fractaldb index DIR --for hf`` writes them again from the manifest (also for
datasets made before cards existed).

The YAML header is what the Hub and ``datasets.load_dataset(DIR)`` read:
``configs``/``data_files`` point the ``webdataset`` builder at the shards, and
``dataset_info.features`` names the image column and the label column, a
``ClassLabel`` whose names are the classes' names (:func:`class_names`).

Everything the card quotes from a manifest is checked or escaped: the dataset name must be
a dataset name (:func:`fractaldb.safety.dataset_name_ok`: what ``data_files`` and the
loaders' examples quote), text outside code is escaped for Markdown and HTML (:func:`md`),
and text inside code blocks (the config with its description, the command) sits in a fence
longer than any run of backticks in it (:func:`fence`), so nothing in a manifest can close
a block or put HTML in the card; the YAML header is written by ``yaml.safe_dump``.
"""

from __future__ import annotations

import re
import shlex

import numpy as np
import yaml

from . import config as fconfig
from .encode import FORMAT_NOTES, encode_image
from .errors import InputError
from .families import get_family, legacy_default_family
from .keys import CARD, CARD_SHEET, LABEL_EXT
from .labels import CLASS, dataset_kind
from .safety import dataset_name_ok
from .sheet import rgb, tile

__all__ = ["card_text", "reproduce_command", "class_names", "contact_sheet_png", "write_card", "is_card", "md", "fence",
           "citations",
           "SHEET_CLASSES", "SHEET_PER_CLASS", "sheet_picks"]

#: The contact sheet shows the first classes (in label order), a few images each.
SHEET_CLASSES = 8
SHEET_PER_CLASS = 4
#: Longest side of one image on the sheet (larger images are subsampled).
SHEET_THUMB = 128

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md(text) -> str:
    """``text`` for Markdown outside code: HTML's ``& < >`` as entities, Markdown's
    punctuation backslash-escaped, lines joined (nothing in it can start a block)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def fence(body: str, lang: str = "") -> str:
    """``body`` as a fenced code block whose fence is longer than any run of backticks in
    it (CommonMark: nothing inside can close it, and nothing inside is read as HTML)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}"


def _size_category(n: int) -> str:
    """The Hub's size bucket of ``n`` samples."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
                        (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "n>1T" if n >= 10 ** 12 else "1B<n<10B" if n < 10 ** 10 else "10B<n<100B" if n < 10 ** 11 else "100B<n<1T"


def _family_of(entry: dict, default: list) -> str:
    """The family an entry of a manifest's ``categories`` (or a sample's metadata) names;
    entries written by fractaldb 0.1 name none: they are the legacy default family's."""
    if "family" in entry:
        return entry["family"]
    if not default:
        default.append(legacy_default_family())
    return default[0]


def class_names(manifest: dict) -> list:
    """One name per label: ``<family>-<class number>`` (a family with category ids, as
    FractalDB's CSVs have, uses them), unique and in label order."""
    names, default = [], []
    for c in sorted(manifest["categories"], key=lambda c: c["label"]):
        family = _family_of(c, default)
        number = c.get("id", c.get("class", c.get("category")))
        names.append(f"{family}-{number if isinstance(number, int) else len(names):05d}")
    seen: dict = {}
    for i, n in enumerate(names):  # never two classes with one name
        if n in seen:
            names[i] = f"{n}-label{i}"
        seen[n] = i
    return names


def _families(manifest: dict) -> list:
    cfg = manifest["config"]
    if "families" in cfg:
        return list(cfg["families"])
    default: list = []
    return sorted({_family_of(c, default) for c in manifest["categories"]})


def _image_exts(manifest: dict) -> list:
    """The image member extensions of the dataset's samples."""
    cfg = manifest["config"]
    exts = []
    for fam in _families(manifest):
        section = cfg.get(fam) if isinstance(cfg.get(fam), dict) else cfg
        ext = section.get("image_format", "png") if isinstance(section, dict) else "png"
        if ext not in exts:
            exts.append(ext)
    return exts


def _label_kind(manifest: dict):
    try:
        return dataset_kind(get_family(f).label_kind for f in _families(manifest))
    except Exception:  # noqa: BLE001 - an unknown family: the manifest loader reports it elsewhere
        return CLASS


def citations(families) -> list:
    """The papers (:class:`fractaldb.citations.Paper`) of ``families`` (names), each once, in order."""
    out: dict = {}
    for f in families:
        for paper in get_family(f).papers:
            out.setdefault(paper.key, paper)
    return list(out.values())


def reproduce_command(cfg: dict) -> str | None:
    """``fractaldb generate --preset NAME [--set KEY=VALUE ...] --out DIR`` that resolves to
    exactly ``cfg`` (a function of the config alone, checked by resolving it), or None when
    no built-in preset does (a preset file of one's own: the card then shows the config)."""
    try:
        name = next((p for p in fconfig.list_presets() if fconfig.load_preset(p).get("name", p) == cfg.get("name")),
                    None)
        if name is None:
            return None
        base = fconfig.resolve(name)
        sets = []
        if cfg.get("families") != base["families"]:
            sets.append(("families", cfg["families"]))
            base = fconfig.resolve(name, sets)
        flat, want = fconfig.flat_keys(base), fconfig.flat_keys(cfg)
        if set(flat) != set(want):
            return None
        sets += [(k, v) for k, v in want.items() if flat[k] != v]
        if fconfig.resolve(name, sets) != cfg:
            return None
    except Exception:  # noqa: BLE001 - any doubt: show the config instead
        return None

    def arg(k, v):
        text = yaml.safe_dump(v, default_flow_style=True, width=1000).strip()
        text = text[:-4].rstrip() if text.endswith("\n...") else text
        return f"--set {shlex.quote(f'{k}={text}')}"

    return " ".join(["fractaldb generate --preset", shlex.quote(name)] + [arg(k, v) for k, v in sets]
                    + ["--out DIR"])


def card_header(manifest: dict) -> dict:
    """The YAML header as a mapping (the Hub's dataset-card metadata)."""
    names = class_names(manifest)
    name = manifest["name"]
    plan = manifest["plan"]
    features = [{"name": ext, "dtype": "image"} for ext in _image_exts(manifest)]
    labels = {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}}
    features.append({"name": LABEL_EXT, "dtype": labels})
    kind = _label_kind(manifest)
    features += kind.card_features(labels)
    return {
        "license": "mit",
        "pretty_name": name,
        "task_categories": [kind.task],
        "size_categories": [_size_category(plan["samples"])],
        "tags": ["fractaldb", "formula-driven-supervised-learning", "synthetic", "webdataset"]
                + [f"fractaldb-{f}" for f in _families(manifest)],
        "configs": [{"config_name": "default", "data_files": _data_files(manifest)}],
        "dataset_info": {
            "config_name": "default",
            "features": features,
            "splits": [{"name": _HF_SPLIT[split], "num_examples": sum(e["samples"] for e in shards),
                        "num_bytes": sum(e["bytes"] for e in shards)}
                       for split, shards in fconfig.shard_splits(manifest).items()],
        },
    }


#: Our split names -> the Hugging Face Hub's.
_HF_SPLIT = {"train": "train", "val": "validation"}


def _data_files(manifest: dict) -> list:
    """The card's ``data_files``: every shard in ``train`` (a glob), or with a ``val_fraction``
    each split's shards by name."""
    splits = fconfig.shard_splits(manifest)
    if "val" not in splits:
        return [{"split": "train", "path": f"{manifest['name']}-*.tar"}]
    return [{"split": _HF_SPLIT[split], "path": [e["name"] for e in shards]} for split, shards in splits.items()]


def card_text(manifest: dict) -> str:
    """The whole ``README.md``: YAML header and body (deterministic)."""
    header = yaml.safe_dump(card_header(manifest), sort_keys=False, allow_unicode=False, width=1000)
    facts = _Facts(manifest)
    body = "".join(part(facts) for part in (_intro, _contents, _made, _load, _verify, _licence))
    return f"---\n{header}---\n{body}"


class _Facts:
    """What the card's sections say of one manifest, worked out once."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        self.name, self.plan = manifest["name"], manifest["plan"]
        if not dataset_name_ok(self.name):  # quoted in code, paths and data_files below
            raise InputError(f"the manifest's name {str(self.name)[:60]!r} is not a dataset name (letters, digits, "
                             "- and _); the manifest was edited, regenerate the dataset")
        try:
            self.cfg = fconfig.resolve(manifest["config"])  # a 0.1 (flat) config in today's sectioned form
        except Exception:  # noqa: BLE001 - show it as it is
            self.cfg = manifest["config"]
        self.families = _families(manifest)
        self.img = _image_exts(manifest)[0]
        self.names = class_names(manifest)
        self.n_shards = len(manifest["shards"])


def _split_sentence(manifest: dict) -> str:
    """With a ``val_fraction``: which shards are the validation split (else nothing)."""
    val = fconfig.shard_splits(manifest).get("val")
    if not val:
        return ""
    n = sum(e["samples"] for e in val)
    names = val[0]["name"] if len(val) == 1 else f"{val[0]['name']} to {val[-1]['name']}"
    return (f" The last {len(val)} shard{'s' if len(val) > 1 else ''} ({md(names)}, {n:,} images) are the "
            f"`validation` split (`val_fraction` {manifest['config']['val_fraction']}), the rest `train`.")


def _intro(f: _Facts) -> str:
    size_mb = sum(e["bytes"] for e in f.manifest["shards"]) / 1e6
    formats = "; ".join(FORMAT_NOTES.get(e, e) for e in _image_exts(f.manifest))
    what = "\n".join(f"- **{n}**: {get_family(n).description or get_family(n).summary}." for n in f.families)
    plan = f.plan
    return f"""
# {md(f.name)}

Formula-driven pretraining images made by fractaldb: no
photographs, no people, no licences of third-party images, every image a function of a formula and a
seed. {plan['samples']:,} images of {plan['classes']:,} classes in {f.n_shards} WebDataset shards
({size_mb:,.1f} MB; images as {formats}).{_split_sentence(f.manifest)}

{what}

![The first classes, a row of images each]({CARD_SHEET})

*The first {min(SHEET_CLASSES, plan['classes'])} classes (label order), a row of up to {SHEET_PER_CLASS} images each.*
"""


def _contents(f: _Facts) -> str:
    note = _label_kind(f.manifest).card_note()
    multi = f"\n{note}\n" if note else ""
    shown = ", ".join(md(n) for n in f.names[:5]) + (", ..." if len(f.names) > 5 else "")
    return f"""
## Contents

| file | what |
|---|---|
| `{f.name}-000000.tar` ... | WebDataset shards; each sample is `<key>.{f.img}` (the image), `<key>.cls` (the label, decimal text), `<key>.json` (what made it: family, class, seed, draw, ...) |
| `manifest.json` | the exact configuration, every class's parameters (`categories`, by label), every shard's size and sha256 |
| `wids-index.json`, `_info.json` | shard indexes for `wids` and timm |
| `{CARD_SHEET}` | the contact sheet above |
{multi}
Labels are `0..{f.plan['classes'] - 1}`; their names ({shown}) are in the header's `ClassLabel`
and the parameters that define each class are `manifest.json`'s `categories` entry with the same
`label`.
"""


def _made(f: _Facts) -> str:
    cfg = f.cfg
    config_yaml = yaml.safe_dump(cfg, sort_keys=True, width=1000).rstrip()
    made_with = ", ".join(f"{md(k)} {md(v)}" for k, v in sorted(f.manifest.get("versions", {}).items()))
    command = reproduce_command(cfg) if "families" in cfg else None
    invoked = (f"The command that makes it (`DIR`: any new folder):\n\n{fence(command, 'bash')}\n\n"
               if command else "")
    return f"""
## How it was made

Seed **{cfg.get('seed')}**. {invoked}The full resolved configuration (as `fractaldb presets show`
prints it; save it as `config.yaml` and run `fractaldb generate --preset config.yaml --out DIR` to
make the same bytes):

{fence(config_yaml, 'yaml')}

Versions: {made_with}.
"""


def _load(f: _Facts) -> str:
    name, img = f.name, f.img
    return f"""
## Load it

```python
# Hugging Face datasets (reads this card's header: images and named labels)
from datasets import load_dataset
ds = load_dataset("path/to/{name}", split="train")       # or the Hub repository id
ds.features["cls"].int2str(ds[0]["cls"])                  # the class name
image = ds[0]["{img}"].convert("RGB")                       # few-gray-level images are palette PNGs: convert

# webdataset
import webdataset as wds
it = wds.WebDataset("path/to/{name}/{name}-{{000000..{f.n_shards - 1:06d}}}.tar").decode("pil").to_tuple("{img}", "cls")

# wids (random access)
import wids
ds = wids.ShardListDataset("path/to/{name}/wids-index.json")
image = ds[0][".{img}"].convert("RGB")

# fractaldb's own loader (PyTorch, DDP-aware)
from fractaldb.data import shard_loader
loader = shard_loader("path/to/{name}", batch_size=256, num_workers=8)
```

timm reads the shards directly (`--dataset wds/{name} --data-dir path/to/{name}` with `_info.json`);
torchvision's `ImageFolder` reads the folder `fractaldb export path/to/{name} --out imagefolder` writes.
Megatron-Energon and NVIDIA DALI need their own indexes: `fractaldb index path/to/{name} --for energon`
(or `--for dali`).
"""


def _verify(f: _Facts) -> str:
    name = f.name
    return f"""
## Verify and regenerate

```bash
fractaldb verify path/to/{name}                           # re-hash every shard against the manifest
fractaldb regenerate path/to/{name} --shard 0             # rebuild one shard, bit for bit
fractaldb generate --from-manifest path/to/{name}/manifest.json --out copy   # rebuild all of it
```

The bytes depend only on the configuration, the seed and the versions above, not on the machine, the
worker count or the device.
"""


def _licence(f: _Facts) -> str:
    bib = "\n\n".join(p.bibtex() for p in citations(f.families))
    return f"""
## Licence and citation

The images are generated data, released under the MIT licence (the generator's). If you use them,
please cite the papers that introduced the data:

{fence(bib, 'bibtex')}
"""


def _thumb(img: np.ndarray) -> np.ndarray:
    img = rgb(img)
    step = -(-max(img.shape[:2]) // SHEET_THUMB)
    return np.ascontiguousarray(img[::step, ::step])


def sheet_picks(blocks: int, per_block: int, n: int = None) -> list:
    """The ``(block, offset)`` samples of one class's row of the contact sheet, in order:
    ``n`` (:data:`SHEET_PER_CLASS`) samples showing what the class holds -- the first image
    of ``n`` blocks spread evenly over the class (different instances or weight draws, not
    the flips or views of one); a class with fewer blocks gives images spread evenly over
    its blocks' images (a fractal block's offsets are draw-major: far apart is another draw)."""
    n = SHEET_PER_CLASS if n is None else n
    if blocks >= n:
        return [(i * blocks // n, 0) for i in range(n)]
    total = blocks * per_block
    m = min(n, total)
    return [divmod(i * total // m, per_block) for i in range(m)]


def contact_sheet_png(ds) -> bytes:
    """PNG of the first :data:`SHEET_CLASSES` classes of a :class:`fractaldb.dataset.Dataset`,
    a row per class of :data:`SHEET_PER_CLASS` of its samples (:func:`sheet_picks`: spread over
    the class, the images the shards hold), rendered on the CPU: the same classes give the
    same bytes."""
    rows = []
    room = SHEET_CLASSES
    for seg in ds.plan.segments:
        if room <= 0:
            break
        p = ds.part(seg.family)
        per_block = p.images_per_block
        blocks = p.blocks_per_class
        picks = sheet_picks(blocks, per_block)
        offsets: dict = {}
        for b, o in picks:
            offsets.setdefault(b, []).append(o)
        jobs = [(k, b, sorted(offs)) for k in range(min(room, seg.classes)) for b, offs in sorted(offsets.items())]
        renderer = ds.renderers("cpu")[seg.family]
        thumbs = {}
        for rb in p.render_blocks(renderer, jobs):
            thumbs.update({(rb.klass, rb.block, o): _thumb(im) for o, im in zip(rb.offsets, rb.images)})
        rows += [[thumbs[(k, b, o)] for b, o in picks] for k in range(min(room, seg.classes))]
        room -= min(room, seg.classes)
    return encode_image(tile(rows), "png")


def is_card(data: bytes) -> bool:
    """Whether ``data`` (the start of a ``README.md``) is a card fractaldb wrote: YAML front
    matter whose ``tags`` begin with ``fractaldb`` (a publisher's edits below it keep it one)."""
    if not data.startswith(b"---\n"):
        return False
    end = data.find(b"\n---\n", 3)
    head = data[:end] if end >= 0 else b""
    return b"\ntags:\n- fractaldb\n" in head


def write_card(store, manifest: dict, ds) -> list:
    """Write ``README.md`` and the contact sheet into ``store``; returns the names written."""
    store.write(CARD_SHEET, contact_sheet_png(ds))
    store.write(CARD, card_text(manifest).encode())
    return [CARD, CARD_SHEET]

