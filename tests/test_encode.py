"""The png2 encoder: palette PNGs for few gray levels, the same pixels as png1.

* its row kernels (fractaldb/kernels/png.py) against slow NumPy twins, for
  every width modulo 8, both row orders and both column orders;
* ``encode_png2`` against ``encode_png`` decoded by Pillow as RGB and as L
  (and by torchvision), for images of 1..256 levels, flipped views and odd
  shapes;
* whole datasets of every family (and the fractal family's colour and point
  modes) written with ``encoder=png1`` and ``encoder=png2``: every member but
  the images byte-identical, every image the same pixels in RGB and L.
"""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import yaml
from PIL import Image

from fractaldb.config import resolve
from fractaldb.dataset import generate
from fractaldb.encode import DEFAULT_ENCODER, ENCODERS, encode_image, encode_png, encode_png2
from fractaldb.errors import ConfigError
from fractaldb.kernels import png as P
from test_families import SMALL


# --------------------------------------------------------------------------- slow twins


def ref_rows(img: np.ndarray, depth: int, lut: np.ndarray) -> np.ndarray:
    """PNG rows of ``lut[img]`` at ``depth`` bits per pixel, written pixel by pixel."""
    h, w = img.shape
    per = 8 // depth
    rows = np.zeros((h, 1 + (w + per - 1) // per), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            rows[y, 1 + x // per] |= int(lut[img[y, x]]) << (8 - depth - (x % per) * depth)
    return rows


def oriented(img, flip_rows, flip_cols):
    img = img[::-1] if flip_rows else img
    return img[:, ::-1] if flip_cols else img


FLIPS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("w", [1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 363])
@pytest.mark.parametrize("flip_rows,flip_cols", FLIPS)
def test_bit_rows_match_reference(w, flip_rows, flip_cols):
    rs = np.random.RandomState(w)
    for h in (1, 2, 5, 19):
        img = (rs.rand(h, w) < 0.4).astype(np.uint8) * 200
        assert P.bilevel(img.reshape(-1)) == (200 if img.any() else 0)
        bits = np.zeros((h * w + 7) // 8 + 1, dtype=np.uint8)
        bits[:-1] = np.packbits(img.reshape(-1), bitorder="little" if flip_cols else "big")
        rows = np.full((h, 1 + (w + 7) // 8), 0xAA, dtype=np.uint8)
        P.bit_rows(bits, h, w, flip_rows, flip_cols, rows)
        lut = np.zeros(256, dtype=np.uint8)
        lut[200] = 1
        np.testing.assert_array_equal(rows, ref_rows(oriented(img, flip_rows, flip_cols), 1, lut))


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5, 16])
@pytest.mark.parametrize("flip_rows,flip_cols", FLIPS)
def test_indexed_rows_and_levels_match_reference(levels, flip_rows, flip_cols):
    rs = np.random.RandomState(levels)
    for h, w in ((1, 1), (3, 5), (7, 13), (20, 33)):
        values = np.sort(rs.choice(256, levels, replace=False)).astype(np.uint8)
        img = rs.choice(values, (h, w)).astype(np.uint8)
        lut = np.zeros(256, dtype=np.uint8)
        palette = np.zeros(16, dtype=np.uint8)
        n = P.gray_levels(img, 16, lut, palette)
        present = np.unique(img)
        assert n == len(present)
        np.testing.assert_array_equal(palette[:n], present)
        assert all(lut[v] == i for i, v in enumerate(present))
        for depth in (1, 2, 4):
            if n > 1 << depth:
                continue
            per = 8 // depth
            rows = np.full((h, 1 + (w + per - 1) // per), 0x55, dtype=np.uint8)
            P.indexed_rows(img, flip_rows, flip_cols, lut, depth, rows)
            np.testing.assert_array_equal(rows, ref_rows(oriented(img, flip_rows, flip_cols), depth, lut))


def test_levels_stop_past_the_limit_and_bilevel_refuses_a_third_value():
    img = np.arange(40, dtype=np.uint8).reshape(5, 8)
    assert P.gray_levels(img, 16, np.zeros(256, np.uint8), np.zeros(16, np.uint8)) == -1
    img = np.where(np.eye(6, dtype=bool), 90, 0).astype(np.uint8)
    assert P.bilevel(img.reshape(-1)) == 90
    img[2, 3] = 89
    assert P.bilevel(img.reshape(-1)) == -1
    img[2, 3] = 180
    assert P.bilevel(img.reshape(-1)) == -1


# --------------------------------------------------------------------------- decoded pixels


def decoded(data: bytes, mode: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert(mode))


def _images():
    rs = np.random.RandomState(7)
    shapes = [(1, 1), (1, 9), (3, 5), (8, 8), (17, 9), (64, 64), (45, 362)]
    value_sets = [[0], [0, 127], [127], [5, 200], [0, 1, 2], [0, 50, 100, 255], list(range(16)),
                  list(range(0, 256, 15))[:16], list(range(17)), list(range(256))]
    for shape in shapes:
        for values in value_sets:
            yield rs.choice(values, shape).astype(np.uint8)


def _views(img):
    yield img
    yield img[::-1]
    yield img[:, ::-1]
    yield img[::-1, ::-1]
    yield img[:, :, None]
    yield img[::-1, ::-1, None]
    yield img[::2]  # not contiguous: copied
    yield img.T


def test_png2_decodes_to_png1_pixels_in_rgb_and_l():
    for img in _images():
        for view in _views(img):
            old = encode_png(np.ascontiguousarray(view))
            new = encode_png2(view)
            for mode in ("RGB", "L"):
                np.testing.assert_array_equal(decoded(new, mode), decoded(old, mode))
            levels = len(np.unique(view))
            with Image.open(io.BytesIO(new)) as im:
                assert im.mode == ("P" if levels <= 16 else "L")
            if levels > 16:
                assert new == old  # png1's very bytes


def test_png2_is_smaller_and_bit_depth_follows_the_levels():
    rs = np.random.RandomState(3)
    for levels, depth in ((1, 1), (2, 1), (3, 2), (4, 2), (5, 4), (16, 4)):
        values = rs.choice(256, levels, replace=False)
        img = rs.choice(values, (64, 64)).astype(np.uint8)
        data = encode_png2(img)
        assert data[24] == depth and data[25] == 3  # IHDR bit depth, colour type 3 (indexed)
        assert len(data) < len(encode_png(img))


def test_png2_leaves_rgb_images_to_png1():
    rs = np.random.RandomState(4)
    for img in (rs.randint(0, 256, (9, 7, 3)).astype(np.uint8), np.zeros((5, 5, 3), np.uint8),
                np.full((4, 6, 3), 127, np.uint8)):
        assert encode_png2(img) == encode_png(img)
        assert encode_png2(img[::-1]) == encode_png(np.ascontiguousarray(img[::-1]))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io's decoders, deprecated for torchcodec
def test_png2_with_torchvision_decoder():
    io_ = pytest.importorskip("torchvision.io")
    import torch

    rs = np.random.RandomState(5)
    for values in ([0, 127], [0, 1, 2], list(range(16))):
        img = rs.choice(values, (33, 41)).astype(np.uint8)
        for mode in (io_.ImageReadMode.RGB, io_.ImageReadMode.GRAY):
            old = io_.decode_png(torch.frombuffer(bytearray(encode_png(img)), dtype=torch.uint8), mode)
            new = io_.decode_png(torch.frombuffer(bytearray(encode_png2(img)), dtype=torch.uint8), mode)
            assert torch.equal(old, new)


def test_encoder_names():
    assert ENCODERS == ("png1", "png2", "png3") and DEFAULT_ENCODER == "png3"
    img = np.zeros((4, 4), np.uint8)
    assert encode_image(img) == encode_png(img)  # the library call keeps png1 unless asked
    assert encode_image(img, encoder="png2") == encode_png2(img)
    assert encode_image(img, encoder="png3") == encode_png(img)
    with pytest.raises(ConfigError, match="encoder"):
        resolve("tiny", ["encoder=png4"])
    assert resolve("tiny")["encoder"] == "png3"
    assert resolve("tiny", ["encoder=png1"])["encoder"] == "png1"


def test_png3_stores_a_colour_dataset_in_one_mode():
    """png3 with the dataset's channels = 3: a gray image becomes RGB (its level in each
    channel), in PNG and in JPEG; png1/png2 store it as rendered; an RGB image is unchanged."""
    import io

    from PIL import Image

    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert encode_image(gray, encoder="png3", channels=3) == encode_png(rgb)
    assert encode_image(gray[:, :, None], encoder="png3", channels=3) == encode_png(rgb)
    assert encode_image(gray, encoder="png3", channels=1) == encode_png(gray)
    assert encode_image(gray, encoder="png1", channels=3) == encode_png(gray)
    assert encode_image(rgb, encoder="png3", channels=3) == encode_png(rgb)
    for fmt in ("jpg", "webp"):
        assert Image.open(io.BytesIO(encode_image(gray, fmt, encoder="png3", channels=3))).mode == "RGB"
    assert Image.open(io.BytesIO(encode_image(gray, "jpg", encoder="png2", channels=3))).mode == "L"


# --------------------------------------------------------------------------- whole datasets


def _members(path):
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]


def _section(family):
    sec = dict(SMALL[family])
    sec["image_format"] = "png"
    return sec


DATASETS = {f: {f: _section(f)} for f in SMALL}
DATASETS["fractal-color"] = {"fractal": {**_section("fractal"), "color": "color"}}
DATASETS["fractal-point"] = {"fractal": {**_section("fractal"), "mode": "point", "patches": 1}}
DATASETS["fractal-official"] = {"fractal": {**_section("fractal"), "compat": "official", "sampler": "official",
                                            "image_size": 48, "points": 5000, "flips": 4}}


@pytest.mark.parametrize("case", sorted(DATASETS))
def test_every_family_png2_dataset_has_png1_pixels(case, tmp_path):
    doc = {"name": "e", "seed": 5, "shard_size": 7, "families": list(DATASETS[case]), **DATASETS[case]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    old = generate(resolve(str(path), ["encoder=png1"]), str(tmp_path / "png1"), workers=2)
    new = generate(resolve(str(path), ["encoder=png2"]), str(tmp_path / "png2"), workers=2)
    assert new["config"]["encoder"] == "png2" and old["config"]["encoder"] == "png1"
    images = 0
    for a, b in zip(old["shards"], new["shards"]):
        ma, mb = _members(tmp_path / "png1" / a["name"]), _members(tmp_path / "png2" / b["name"])
        assert [n for n, _ in ma] == [n for n, _ in mb]
        for (name, da), (_, db) in zip(ma, mb):
            if not name.endswith(".png"):
                assert da == db, name
                continue
            images += not name.endswith(".mask.png")  # a mask family's masks: same pixels, not counted
            for mode in ("RGB", "L"):
                np.testing.assert_array_equal(decoded(db, mode), decoded(da, mode), err_msg=name)
    assert images == new["plan"]["samples"]
    assert json.dumps(new["categories"]) == json.dumps(old["categories"])
