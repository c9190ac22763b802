"""Pinned bytes: the shards of a few datasets, as fractaldb 0.1.0.dev0 wrote them.

Restructuring the package must not move a byte.  Each case generates a small
dataset with today's code and compares every shard's sha256 with the value
recorded before the family interface was introduced (:data:`PINNED`, written
with the ``png1`` encoder, the only one then: generated here with
``encoder=png1``), and with the value of the default ``png2`` encoder
(:data:`PINNED_PNG2`, recorded when it was introduced; its images decode to
the same pixels, tests/test_encode.py).  ``tests/data/v0.1.0.dev0``
holds two datasets written by that version (flat preset keys, ``family:
fractal+perlin``): they must still verify, regenerate from their manifest
alone and export.
"""

from __future__ import annotations

import pytest

from fractaldb.config import resolve
from fractaldb.dataset import generate

#: (preset, --set overrides) of each pinned case.
CASES = {
    "tiny": ("tiny", []),
    "perlin-tiny": ("perlin-tiny", []),
    "mixed": ("fractal+perlin", ["categories=2", "perlin_classes=3", "perlin_instances=5", "image_size=48",
                                 "points=3000", "patches=2", "flips=2", "weights=none", "shard_size=16",
                                 "name=mixed"]),
    "fdb1k-2": ("fractaldb-1k", ["categories=2"]),
}

#: sha256 of every shard, recorded with fractaldb 0.1.0.dev0 (commit aa91ca5).
PINNED = {
    "tiny": {
        "tiny-000000.tar": "2b07ea7576a153c147d18513f6626f5de7466c36db84882d8c6eb7dd1e80f8bc",
        "tiny-000001.tar": "1df1e2217966f2f0a034f885a5b7c1a6f8b8f53f44882dd680c3a21b08f117be",
        "tiny-000002.tar": "393a6595eed004a0e6201a2a1c026330207cd77f7bc92164bf0bad888f81ebd7"
    },
    "perlin-tiny": {
        "perlin-tiny-000000.tar": "4f9b130fddc6f2182a5eb7ea92f39a5be4160cbf22cad6d6f970d62a8e87f60b",
        "perlin-tiny-000001.tar": "6aa5e6f06cda5852e83c1b6528d95a00b4854fc3e9eb780c10c9720398046cf3",
        "perlin-tiny-000002.tar": "49982cbab7e101e59fd66122917ba8669e908e55103b3e4c42db39f43b9008b9"
    },
    "mixed": {
        "mixed-000000.tar": "efc2d4d6b077773c773b33fe81c584bc96dba1a188889858f9ef47fb2cc65ff9",
        "mixed-000001.tar": "83cb0fa8f996ac8cd78403f7aea591054b701548c82027439b7ed16a9f25d670"
    },
    "fdb1k-2": {
        "fractaldb-1k-000000.tar": "6f6034a31cb227910bd76d9985d40c38460821618196f16c5f667827435ead19",
        "fractaldb-1k-000001.tar": "9d5a6842fbe345bb19f46af1840c3ac9517898ca0feb7d625f9706f24191d447"
    }
}


#: sha256 of every shard with the default ``png2`` encoder (recorded with its introduction).
PINNED_PNG2 = {
    "fdb1k-2": {
        "fractaldb-1k-000000.tar": "bf2017a4837e3edbf1ac84411dbe50674e8657968519ce0a69d862f76019ae91",
        "fractaldb-1k-000001.tar": "f637e6c4270b6c1a77a25540505424ab244af48340430da5c3765b18b6e333ef"
    },
    "mixed": {
        "mixed-000000.tar": "680285ec96fc1404fe864e95dddc4b787018fb645bd8ab6fdcdda08702c31efb",
        "mixed-000001.tar": "053b40a0481efd276eca1e0304193f96a3da35e96bcfa052645b974c858aa824"
    },
    "perlin-tiny": {
        "perlin-tiny-000000.tar": "4f9b130fddc6f2182a5eb7ea92f39a5be4160cbf22cad6d6f970d62a8e87f60b",
        "perlin-tiny-000001.tar": "6aa5e6f06cda5852e83c1b6528d95a00b4854fc3e9eb780c10c9720398046cf3",
        "perlin-tiny-000002.tar": "49982cbab7e101e59fd66122917ba8669e908e55103b3e4c42db39f43b9008b9"
    },
    "tiny": {
        "tiny-000000.tar": "0ac0c39204c3bc8e51b834e180bc243cf01bf284d620f8e5fc8e9c5003336be5",
        "tiny-000001.tar": "1ee94b27042ef029b0df1a69f8fdaa7213f8a02d6f51fea0d3da925f6f383e5e",
        "tiny-000002.tar": "af75fa1f3f4f4fc374d3fe92f8cd22ec925c679a0624417b3581f2eefc8c7c01"
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pinned_shards(case, tmp_path):
    """The bytes of fractaldb 0.1.0.dev0, with the encoder it had (png1)."""
    preset, sets = CASES[case]
    manifest = generate(resolve(preset, sets + ["encoder=png1"]), str(tmp_path / case), workers=2)
    assert manifest["config"]["encoder"] == "png1"
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED[case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_pinned_shards_default_encoder(case, tmp_path):
    """The bytes of the default encoder (png2), which the manifest records."""
    preset, sets = CASES[case]
    manifest = generate(resolve(preset, sets), str(tmp_path / case), workers=2)
    assert manifest["config"]["encoder"] == "png2"
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED_PNG2[case]
