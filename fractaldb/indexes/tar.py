"""Reading a shard's tar layout: what the byte-offset indexes (Energon, DALI) are made of.

Member names are quoted by those indexes (DALI's ``.idx`` lines are space separated), so
every one must be a plain ``<key>.<ext>`` (:func:`fractaldb.manifest.member_name_ok`)."""

from __future__ import annotations

import io
import tarfile

from ..errors import InputError
from ..manifest import member_name_ok

__all__ = ["tar_members", "split_name", "samples_of", "image_ext"]


def tar_members(data: bytes) -> tuple:
    """``([(name, header_offset, data_offset, size), ...], end)`` of a shard's regular files,
    in archive order; ``end`` is the offset just past the last member (its padding included)."""
    out = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                if m.isreg():
                    if not member_name_ok(m.name):
                        raise InputError(f"a shard holds a member named {m.name[:60]!r}, not a fractaldb sample "
                                         "member; regenerate the dataset from a manifest you trust")
                    out.append((m.name, m.offset, m.offset_data, m.size))
            end = tar.offset
    except tarfile.TarError as exc:
        raise InputError(f"a shard is not a valid tar file ({exc}); run 'fractaldb verify' on the dataset") from None
    return out, end


def split_name(name: str) -> tuple:
    """``(key, ext)`` at the first dot of the base name (as every WebDataset reader splits)."""
    slash = name.rfind("/") + 1
    dot = name.find(".", slash)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1:])


def samples_of(members) -> list:
    """Consecutive members with one key, grouped: ``[(key, [member, ...]), ...]``."""
    groups = []
    for m in members:
        key, _ = split_name(m[0])
        if groups and groups[-1][0] == key:
            groups[-1][1].append(m)
        else:
            groups.append((key, [m]))
    return groups


def image_ext(name: str, data: bytes) -> str:
    """The image member extension of a shard's samples."""
    from ..encode import FORMATS

    for member, *_ in tar_members(data)[0]:
        ext = split_name(member)[1]
        if ext in FORMATS:
            return ext
    raise InputError(f"{name} holds no image; run 'fractaldb verify' on the dataset")
