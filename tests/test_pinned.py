"""Pinned bytes: the shards of a few datasets, as fractaldb 0.1.0.dev0 wrote them.

Restructuring the package must not move a byte.  Each case generates a small
dataset with today's code and compares every shard's sha256 with the value
recorded before the family interface was introduced (:data:`PINNED`, written
with the ``png1`` encoder, the only one then: generated here with
``encoder=png1``), with the value of the ``png2`` encoder (:data:`PINNED_PNG2`,
recorded when it was introduced, the default until ``png3``; its images decode to
the same pixels, tests/test_encode.py), and with the default ``png3`` encoder
(:data:`PINNED_PNG3`: a gray dataset's ``png1`` bytes, a dataset with colour in
one mode).  ``tests/data/v0.1.0.dev0``
holds two datasets written by that version (flat preset keys, ``family:
fractal+perlin``): they must still verify, regenerate from their manifest
alone and export.
"""

from __future__ import annotations

import json
from pathlib import Path

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


#: sha256 of every shard with the ``png2`` encoder (recorded with its introduction; the default then).
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
def test_pinned_shards_png2(case, tmp_path):
    """The bytes of the png2 encoder (the default of fractaldb 0.3), which the manifest records."""
    preset, sets = CASES[case]
    manifest = generate(resolve(preset, sets + ["encoder=png2"]), str(tmp_path / case), workers=2)
    assert manifest["config"]["encoder"] == "png2"
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED_PNG2[case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_pinned_shards_default_encoder(case, tmp_path):
    """The bytes of the default encoder (png3), which the manifest records: a gray dataset's
    shards are png1's, a dataset with colour stores its gray images as RGB."""
    preset, sets = CASES[case]
    manifest = generate(resolve(preset, sets), str(tmp_path / case), workers=2)
    assert manifest["config"]["encoder"] == "png3"
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED_PNG3[case]

#: sha256 of every shard with the default ``png3`` encoder (recorded with its introduction):
#: the gray cases are png1's bytes; Perlin's gray classes and the mixed case's fractals are RGB.
PINNED_PNG3 = {
    "fdb1k-2": PINNED["fdb1k-2"],
    "tiny": PINNED["tiny"],
    "perlin-tiny": {
        "perlin-tiny-000000.tar": "5f20a7b062c4481dd3d26e8d3b664078f40ddac1f36fbd4eed176fb3650c2a91",
        "perlin-tiny-000001.tar": "fe550da8e7d21d9ae05ae4261bf22168297945a5fbd5df2ca6dc90604619312f",
        "perlin-tiny-000002.tar": "3b0eb59504dd7481003288f9cfd64b689b88d00bcb405cd13ffbe74f5add206a"
    },
    "mixed": {
        "mixed-000000.tar": "d6d8adf70bb6dd6b323ae2f99372f8d0dd7275b155f72e315f63aa60aceb53d4",
        "mixed-000001.tar": "5b4b862f8a5bc23d6f07371234495872e89e4b544f4d1aa96d40039e66594f4b"
    },
}


# --------------------------------------------------------------------------------------------
# Datasets written before the fidelity change (issue 26) regenerate byte for byte.
# --------------------------------------------------------------------------------------------

#: Manifests written at commit 3c6e248 (fractaldb 0.2.0.dev0), before the colour patch raster
#: took the original's bounds rule and modern 3-D mode replaced diverging instances: a
#: colour-fractal cut (its sections lack ``bounds``), a multi-fractal cut (unchanged bytes: the
#: speed-ups of its kernels keep every bit) and a 3-D cut holding two diverging instances
#: (it lacks ``degenerate``).  The shards are not stored: their sha256 in the manifest is the pin.
BEFORE_FIDELITY = Path(__file__).parent / "data" / "before-fidelity"


@pytest.mark.slow
@pytest.mark.parametrize("family", ["colorfractal", "multifractal", "fractal3d"])
def test_datasets_written_before_the_fidelity_change_rebuild_byte_for_byte(family, tmp_path):
    from fractaldb.dataset import Dataset
    from fractaldb.families import get_family
    from fractaldb.rebuild import rebuild

    source = BEFORE_FIDELITY / family / "manifest.json"
    old = json.loads(source.read_text())
    assert set(get_family(family).absent_means) - set(old["config"][family]) == set(get_family(family).absent_means)
    new = rebuild(str(source), str(tmp_path / family), workers=2)  # raises unless every shard hashes the same
    assert [e["sha256"] for e in new["shards"]] == [e["sha256"] for e in old["shards"]]
    # the rebuilt manifest names what the absent keys meant, so it no longer depends on them
    assert {k: new["config"][family][k] for k in get_family(family).absent_means} == get_family(family).absent_means
    # and today's defaults make other bytes where the family changed them
    today = generate(resolve(Dataset.from_manifest(old).config, [f"{family}.{k}={_default(family, k)}"
                                                              for k in get_family(family).absent_means]),
                     str(tmp_path / "today"), workers=2)
    changed = [a["sha256"] != b["sha256"] for a, b in zip(today["shards"], old["shards"])]
    assert any(changed) == bool(get_family(family).absent_means)


def _default(family: str, key: str):
    from fractaldb.config import section_keys

    return section_keys(family)[key].default


def test_absent_means_fills_only_the_keys_a_manifest_lacks():
    """The generic mechanism (``Family.absent_means``, applied by ``Dataset.from_manifest``): a
    section without the key gets what that meant; a key that is there is kept; an old config
    without ``encoder`` still means png1; a family cannot declare a key it does not have."""
    from fractaldb.dataset import Dataset, manifest_config
    from fractaldb.errors import ConfigError
    from fractaldb.families import get_family, register_family

    old = json.loads((BEFORE_FIDELITY / "colorfractal" / "manifest.json").read_text())
    assert manifest_config(old["config"])["colorfractal"]["bounds"] == "centre"
    assert Dataset.from_manifest(old).part("colorfractal").settings.bounds == "centre"
    given = {**old["config"], "colorfractal": {**old["config"]["colorfractal"], "bounds": "cells"}}
    assert manifest_config(given)["colorfractal"]["bounds"] == "cells"
    assert manifest_config({k: v for k, v in old["config"].items() if k != "encoder"})["encoder"] == "png1"
    assert manifest_config(old["config"])["encoder"] == old["config"]["encoder"]
    assert resolve(dict(old["config"]))["colorfractal"]["bounds"] == "cells"  # a preset gets today's default

    class Careless(type(get_family("colorfractal"))):
        name = "careless_colour"
        purposes = {}
        absent_means = {"no_such_key": 1}

    with pytest.raises(ConfigError, match="absent_means names keys that are not its settings"):
        register_family(Careless())


#: sha256 of every shard of the variants' presets as the fidelity change (issue 26) made them:
#: the colour patch raster with the original's bounds rule and PNG storage, 3-D instances that
#: diverge replaced, ExFractalDB at 125 instances x 8 views, the earlier MV renderer (with the
#: png2 encoder, the default then).
FIDELITY_CASES = {
    "color-fractal-tiny": ("color-fractal-tiny", ["encoder=png2"]),
    "multi-fractal-tiny": ("multi-fractal-tiny", ["encoder=png2"]),
    "fractal3d-tiny": ("fractal3d-tiny", ["encoder=png2"]),
    "exfractaldb-1k-1": ("exfractaldb-1k", ["fractal3d.categories=1", "encoder=png2"]),
    "mv-512-1": ("mv-fractaldb-1k-512", ["fractal3d.categories=1", "fractal3d.instances=2", "encoder=png2"]),
}
PINNED_FIDELITY = {
    "color-fractal-tiny": {
        "color-fractal-tiny-000000.tar": "aa25511ec5146cb26b41df459e006c222b7b29ffa9774ee2c9db9f2d7fea46f9",
        "color-fractal-tiny-000001.tar": "57fd33d5282b5b694b56484c7fa0965a4ebb32cc060088d9ad9605f048bca0c3",
    },
    "multi-fractal-tiny": {
        "multi-fractal-tiny-000000.tar": "5d79dc50d31f2678ab24df7a12f53d213a4db7b8fee31cbbd8c2020d94cf497a",
        "multi-fractal-tiny-000001.tar": "119755ba4821704130dc55325de32c1e6aac8d6a092ad832f0ebe8c9d260542b",
    },
    "fractal3d-tiny": {
        "fractal3d-tiny-000000.tar": "7ab91407d8afb343f4fd699abbe3dad0f38dce651ec5086c8434da846b7656c0",
        "fractal3d-tiny-000001.tar": "d5b9422670a7c69b725f91d615497e3278243dbcad51fe7a6732b63d2ae97f6c",
        "fractal3d-tiny-000002.tar": "fb0bdc932f97c7ace5cb73c4ee56670c6d10c5c237318b9673a755191df9b71f",
    },
    "exfractaldb-1k-1": {
        "exfractaldb-1k-000000.tar": "b9d6e0677b558aaa87d77582ee2cca90dea7d73cdc6e7ae1bf88375f802d1396",
    },
    "mv-512-1": {
        "mv-fractaldb-1k-512-000000.tar": "2da39fb0f60339af53d266fd8ff5fe81a709625f256f056030fd54232c009dfb",
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FIDELITY_CASES))
def test_pinned_variant_shards(case, tmp_path):
    preset, sets = FIDELITY_CASES[case]
    manifest = generate(resolve(preset, sets), str(tmp_path / case), workers=2)
    assert {e["name"]: e["sha256"] for e in manifest["shards"]} == PINNED_FIDELITY[case]
