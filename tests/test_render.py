"""Instance rendering: the original's pixels in compat mode, seeded patches,
degenerate weight variants, names and PNG encoding.

``_original_point_render`` below is a plain NumPy transcription of the
original FractalDB point renderer (SPEC 1.2-1.3): a Python loop, lists,
``np.delete`` and ``np.uint16``.  It is slow and obviously faithful; the
fast renderer must give exactly its pixels.
"""

from __future__ import annotations

import io
import platform

import numpy as np
import pytest
from PIL import Image

import published

from fractaldb.encode import encode_png
from fractaldb.ifs.system import IFS
from fractaldb.families.fractal.imagefolder import create_renderer, render_blocks
from fractaldb.ifs.render import CPURenderer, RenderConfig, flip, image_name
from fractaldb.ifs.weights import parse_weights

#: Diverges: x and y triple each step, overflow to inf, then ``inf * 0`` is NaN,
#: so the original's NaN trimming runs (SPEC 1.3).
DIVERGING = [[3.0, 0.0, 0.0, 3.0, 1.0, 1.0, 0.5], [3.0, 0.0, 0.0, 3.0, -1.0, 0.5, 0.5]]

PAD = 6


def _original_point_render(rows, factors, size, points, pad=PAD):
    """The original renderer in point mode, gray, before the flip types.

    Returns the ``(size, size)`` uint8 raster after the original's
    ``np.flipud`` (image y grows downwards).
    """
    rows = [list(map(float, r)) for r in rows]
    funcs = [[r[k] * float(factors[k]) for k in range(6)] for r in rows]
    select, acc = [], 0.0
    for r in rows:  # ``self.temp_proba += proba``
        acc += r[6]
        select.append(acc)
    rand = np.random.RandomState(100).random_sample(points)  # np.random.seed(100); random(iteration)
    xs, ys = [0.0], [0.0]
    prev_x = prev_y = next_x = next_y = 0.0
    with np.errstate(all="ignore"):
        for i in range(points - 1):
            for j in range(len(select)):
                if rand[i] <= select[j]:
                    a, b, c, d, e, f = funcs[j]
                    next_x = prev_x * a + prev_y * b + e
                    next_y = prev_x * c + prev_y * d + f
                    break
            xs.append(next_x)
            ys.append(next_y)
            prev_x, prev_y = next_x, next_y
        xs, ys = np.array(xs), np.array(ys)
        if np.any(np.isnan(xs)):
            nan_index = np.where(np.isnan(xs))
            extend = np.array(range(nan_index[0][0] - 100, nan_index[0][0]))
            delete_row = np.append(extend, nan_index)
            xs = np.delete(xs, delete_row, axis=0)
            ys = np.delete(ys, delete_row, axis=0)
        if np.any(np.isnan(ys)):
            nan_index = np.where(np.isnan(ys))
            extend = np.array(range(nan_index[0][0] - 100, nan_index[0][0]))
            delete_row = np.append(extend, nan_index)
            xs = np.delete(xs, delete_row, axis=0)
            ys = np.delete(ys, delete_row, axis=0)
        if np.min(xs) < 0.0:
            xs -= np.min(xs)
        if np.min(ys) < 0.0:
            ys -= np.min(ys)
        xmax, xmin = np.max(xs), np.min(xs)
        ymax, ymin = np.max(ys), np.min(ys)
        fx = xs / (xmax - xmin) * float(size - 2 * pad) + float(pad)
        fy = ys / (ymax - ymin) * float(size - 2 * pad) + float(pad)
        # NaN/inf -> uint16 is undefined in C; on x86-64 NumPy gives 0 (the
        # published data were made there; the FractalDB-1k a x 1.8 trap hits it).
        px, py = np.uint16(fx), np.uint16(fy)
    assert px.max() < size and py.max() < size  # else the original raises IndexError
    image = np.zeros((size, size), dtype=np.uint8)
    image[py, px] = 127
    return np.flipud(image)


def _original_flips(base):
    """Flip types 0..3 of the original: as is, flipud, fliplr, both."""
    return [base, np.flipud(base), np.fliplr(base), np.flipud(np.fliplr(base))]


# --------------------------------------------------------------------------- official point mode


@pytest.mark.parametrize("name", ["00000", "00001", "00002"])
def test_official_point_mode_is_the_original_renderer(name):
    rows = published.rows(name)
    size, points = 64, 3000
    cfg = RenderConfig(mode="point", compat="official", size=size, points=points, weights="0.4", flips=4)
    renderer = CPURenderer(cfg)
    ifs = IFS.from_rows(rows)
    table = parse_weights("0.4")
    assert cfg.images_per_block == 4
    for w in range(len(table)):  # all 25 weights, a x 1.8 (the diverging trap) included
        block = renderer.render_block(int(name), ifs, w)
        assert block.images.shape == (4, size, size, 1)
        assert block.record is None  # official mode keeps every variant
        base = _original_point_render(rows, table[w], size, points)
        for t, expected in enumerate(_original_flips(base)):
            np.testing.assert_array_equal(block.images[t, :, :, 0], expected, err_msg=f"{name} w{w} flip{t}")


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the original's uint16 cast of NaN is x86-64 behaviour")
def test_official_point_mode_full_settings_nan_cast():
    """Category 00000 at the real settings (362², 200 000 points), weights a x 0.2..1.8.

    With a x 1.8 the system diverges; after NaN trimming the x span overflows
    to inf and the extreme point becomes NaN, which the original's uint16
    cast draws at x = 0 on x86-64.  Official mode must reproduce that pixel.
    """
    size, points = 362, 200_000
    cfg = RenderConfig(mode="point", compat="official", size=size, points=points, weights="0.4", flips=1)
    renderer = CPURenderer(cfg)
    table = parse_weights("0.4")
    for w in range(5):
        block = renderer.render_block(0, IFS.from_rows(published.rows("00000")), w)
        expected = _original_point_render(published.rows("00000"), table[w], size, points)
        np.testing.assert_array_equal(block.images[0, :, :, 0], expected, err_msg=f"00000 w{w}")


@pytest.mark.parametrize("weights, w", [("0.1", 0), ("0.1", 24), ("0.25", 13), ("none", 0), ("0.5,1.5", 3)])
def test_official_point_mode_other_weight_tables(weights, w):
    size, points = 48, 2000
    cfg = RenderConfig(mode="point", compat="official", size=size, points=points, weights=weights, flips=4)
    block = CPURenderer(cfg).render_block(1, IFS.from_rows(published.rows("00001")), w)
    base = _original_point_render(published.rows("00001"), parse_weights(weights)[w], size, points)
    for t, expected in enumerate(_original_flips(base)):
        np.testing.assert_array_equal(block.images[t, :, :, 0], expected)


def test_official_point_mode_nan_trimming_matches_original():
    size, points = 64, 3000
    cfg = RenderConfig(mode="point", compat="official", size=size, points=points, weights="none", flips=1)
    block = CPURenderer(cfg).render_block(0, IFS.from_rows(DIVERGING), 0)
    expected = _original_point_render(DIVERGING, np.ones(6), size, points)
    np.testing.assert_array_equal(block.images[0, :, :, 0], expected)
    assert expected.any()


def test_official_point_mode_odd_pad_and_size():
    size, points, pad = 50, 1500, 3
    cfg = RenderConfig(mode="point", compat="official", size=size, points=points, pad=pad, weights="0.4", flips=2)
    renderer = CPURenderer(cfg)
    for w in (2, 7, 20):
        block = renderer.render_block(2, IFS.from_rows(published.rows("00002")), w)
        base = _original_point_render(published.rows("00002"), parse_weights("0.4")[w], size, points, pad=pad)
        np.testing.assert_array_equal(block.images[0, :, :, 0], base)
        np.testing.assert_array_equal(block.images[1, :, :, 0], np.flipud(base))


def test_flip_types():
    raster = np.arange(12, dtype=np.uint8).reshape(3, 4)
    base = np.flipud(raster)
    for t, expected in enumerate(_original_flips(base)):
        np.testing.assert_array_equal(flip(raster, t), expected)


# --------------------------------------------------------------------------- patch mode

_PATCH = dict(mode="patch", size=64, points=2000, patches=3, flips=4)


@pytest.mark.parametrize("compat", ["official", "modern"])
def test_patch_mode_is_seeded(compat):
    ifs = IFS.from_rows(published.rows("00002"))
    a = CPURenderer(RenderConfig(compat=compat, seed=5, **_PATCH)).render_block(2, ifs, 2)
    b = CPURenderer(RenderConfig(compat=compat, seed=5, **_PATCH)).render_block(2, ifs, 2)
    c = CPURenderer(RenderConfig(compat=compat, seed=6, **_PATCH)).render_block(2, ifs, 2)
    assert a.images.shape == (12, 64, 64, 1)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    # The patch draws of one weight differ from each other.
    assert not np.array_equal(a.images[0], a.images[4])
    assert not np.array_equal(a.images[4], a.images[8])


def test_patch_mode_flips_and_values():
    cfg = RenderConfig(seed=1, **_PATCH)
    block = CPURenderer(cfg).render_block(1, IFS.from_rows(published.rows("00001")), 10)
    assert set(np.unique(block.images).tolist()) == {0, 127}
    for d in range(cfg.patches):
        imgs = block.images[d * 4:(d + 1) * 4, :, :, 0]
        np.testing.assert_array_equal(imgs[1], np.flipud(imgs[0]))
        np.testing.assert_array_equal(imgs[2], np.fliplr(imgs[0]))
        np.testing.assert_array_equal(imgs[3], np.flipud(np.fliplr(imgs[0])))
    names = list(block.names(cfg.flips))
    assert names[0] == "00001_10_count_0_flip0"
    assert names[-1] == "00001_10_count_2_flip3"
    assert len(names) == 12 and len(set(names)) == 12


def test_patch_cells_lie_next_to_their_points():
    # Point i pastes a 3x3 block with its top-left cell at (x + 1, y + 1):
    # every patch pixel is 1..3 rows and columns past some point pixel.
    ifs = IFS.from_rows(published.rows("00002"))
    kw = dict(size=64, points=2000, flips=2, seed=9)
    point = CPURenderer(RenderConfig(mode="point", **kw)).render_block(2, ifs, 2)
    patch = CPURenderer(RenderConfig(mode="patch", patches=1, **kw)).render_block(2, ifs, 2)
    assert point.fill == patch.fill  # same points, same point-raster fill
    pts = point.images[1, :, :, 0] > 0  # flip type 1 is the raster as drawn
    cells = patch.images[1, :, :, 0] > 0
    reach = np.zeros_like(pts)
    for r in (1, 2, 3):
        for c in (1, 2, 3):
            reach[r:, c:] |= pts[:-r, :-c]
    assert cells.any()
    assert not np.any(cells & ~reach)
    # Nothing lands in the first row or column: patches start one cell past the point.
    assert not cells[0].any() and not cells[:, 0].any()


def test_color_mode_gives_three_channels():
    ifs = IFS.from_rows(published.rows("00001"))
    for mode in ("point", "patch"):
        cfg = RenderConfig(mode=mode, color="color", size=48, points=1500, patches=1, flips=2, seed=3)
        assert cfg.channels == 3
        block = CPURenderer(cfg).render_block(1, ifs, 2)
        assert block.images.shape == (2, 48, 48, 3)
        img = block.images[0]
        assert img.any()
        # Colours, not gray: some pixel has unequal channels.
        assert np.any(img[..., 0] != img[..., 1]) or np.any(img[..., 1] != img[..., 2])
        np.testing.assert_array_equal(block.images[1], img[::-1])


# --------------------------------------------------------------------------- degenerate variants

# Category 00000 with a x 1.8 (weight 04) diverges; its point raster is nearly
# empty (SPEC 9).  At 128 px / 20 000 points it fills about 0.4 %.
_DEGEN = dict(mode="point", size=128, points=20_000, flips=1, compat="modern", min_fill=0.01)


def test_degenerate_variant_is_replaced():
    ifs = IFS.from_rows(published.rows("00000"))
    block = CPURenderer(RenderConfig(degenerate="replace", **_DEGEN)).render_block(0, ifs, 4)
    rec = block.record
    assert rec is not None
    assert rec["category"] == 0 and rec["weight"] == 4 and rec["action"] == "replace"
    assert rec["factors"] == [1.8, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert rec["fill"] < 0.01
    assert rec["replaced_fill"] >= 0.01
    assert block.fill == rec["replaced_fill"]
    assert block.factors.tolist() == rec["replaced_by"]
    assert 1.0 <= rec["replaced_by"][0] < 1.8  # pulled towards 1, not past it
    assert rec["replaced_by"][1:] == [1.0] * 5
    assert (block.images[0] > 0).mean() >= 0.01


def test_degenerate_variant_is_recorded_only():
    ifs = IFS.from_rows(published.rows("00000"))
    keep = CPURenderer(RenderConfig(degenerate="keep", **_DEGEN)).render_block(0, ifs, 4)
    rec_block = CPURenderer(RenderConfig(degenerate="record", **_DEGEN)).render_block(0, ifs, 4)
    rec = rec_block.record
    assert rec is not None and rec["action"] == "record"
    assert "replaced_by" not in rec
    assert rec["fill"] < 0.01
    np.testing.assert_array_equal(rec_block.images, keep.images)  # same pixels as 'keep'
    assert keep.record is None
    assert keep.fill == rec["fill"]
    assert keep.factors.tolist() == [1.8, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_healthy_variant_and_official_mode_are_not_touched():
    ifs = IFS.from_rows(published.rows("00000"))
    healthy = CPURenderer(RenderConfig(degenerate="replace", **_DEGEN)).render_block(0, ifs, 2)
    assert healthy.record is None and healthy.fill >= 0.01
    official_cfg = RenderConfig(**{**_DEGEN, "compat": "official"}, degenerate="replace")
    official = CPURenderer(official_cfg).render_block(0, ifs, 4)
    assert official.record is None
    assert official.fill < 0.01


@pytest.mark.parametrize("compat", ["official", "modern"])
@pytest.mark.parametrize("mode", ["point", "patch"])
@pytest.mark.parametrize(
    "rows, weight",
    [
        ([[0, 0, 0, 0, 0, 0, 1.0]], 0),  # every point is (0, 0)
        ([[0, 0, 0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0, 0, 0.5]], 4),
        ([[1e200, 0, 0, 1e200, 1, 1, 1.0]], 0),  # overflows at the 2nd step: NaN within 100 points
        ([[1.0, 0, 0, 1.0, 0, 0, 1.0]], 2),  # identity map: all points equal
        ([[1e308, 0, 0, 0.5, 0, 0, 1.0]], 4),  # a x 1.8 overflows: an inf coefficient
        ([[0.5, 0, 0, 0.5, 1e308, -1e308, 0.5], [0.5, 0, 0, 0.5, -1e308, 1e308, 0.5]], 20),
        ([[-1.5, 0.3, 0.2, 1.9, 0.0, 1.0, 1.0]], 0),
    ],
)
def test_degenerate_systems_give_a_defined_image(rows, weight, mode, compat):
    cfg = RenderConfig(mode=mode, compat=compat, size=32, points=500, patches=1, flips=2, seed=1)
    renderer = CPURenderer(cfg)
    ifs = IFS.from_rows(rows)
    with np.errstate(all="ignore"):
        a = renderer.render_block(3, ifs, weight)
        b = renderer.render_block(3, ifs, weight)
    assert a.images.shape == (2, 32, 32, 1)
    assert a.images.dtype == np.uint8
    assert set(np.unique(a.images).tolist()) <= {0, 127}
    assert 0.0 <= a.fill <= 1.0
    np.testing.assert_array_equal(a.images, b.images)  # defined: the same every time


@pytest.mark.parametrize("compat, corner", [("modern", PAD), ("official", 0)])
def test_degenerate_point_all_equal(compat, corner):
    # All points equal: span 0.  Modern mode defines the pad corner; official
    # mode follows the original's 0 / 0 -> NaN -> uint16 (0 on x86-64).
    cfg = RenderConfig(mode="point", compat=compat, size=32, points=100, weights="none", flips=1,
                       degenerate="keep")
    block = CPURenderer(cfg).render_block(0, IFS.from_rows([[0, 0, 0, 0, 0, 0, 1.0]]), 0)
    img = block.images[0, :, :, 0]
    assert np.count_nonzero(img) == 1
    assert img[32 - 1 - corner, corner] == 127  # after the original's flipud
    assert block.fill == 1 / 32**2


# --------------------------------------------------------------------------- names, blocks


def test_image_name():
    assert image_name(0, 3, 7, 2) == "00000_03_count_7_flip2"
    assert image_name(123, 24, 9, 3) == "00123_24_count_9_flip3"
    assert image_name(99999, 0, 0, 0) == "99999_00_count_0_flip0"


def test_render_blocks_order_and_worker_independence():
    cats = [IFS.from_rows(published.rows("00001")), IFS.from_rows(published.rows("00002"))]
    cfg = RenderConfig(mode="patch", size=32, points=800, patches=2, flips=2, seed=4, weights="0.1,1.5")
    one = list(render_blocks(cats, cfg, workers=1, category_ids=[5, 9]))
    two = list(render_blocks(cats, cfg, workers=2, category_ids=[5, 9]))
    # Two factors -> 1 + 6 * 2 = 13 weights per category, in (category, weight) order.
    assert [(b.category, b.weight) for b in one] == [(c, w) for c in (5, 9) for w in range(13)]
    assert [(b.category, b.weight) for b in two] == [(b.category, b.weight) for b in one]
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x.images, y.images)


def test_modern_block_is_reproducible_alone():
    # A block rendered on its own equals the same block inside a full run.
    cats = [IFS.from_rows(published.rows("00001")), IFS.from_rows(published.rows("00002"))]
    cfg = RenderConfig(mode="patch", size=32, points=800, patches=2, flips=1, seed=4)
    blocks = list(render_blocks(cats, cfg, workers=1))
    alone = CPURenderer(cfg).render_block(1, cats[1], 17)
    np.testing.assert_array_equal(blocks[25 + 17].images, alone.images)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(mode="dots"), "unknown mode"),
        (dict(color="red"), "unknown color"),
        (dict(compat="v2"), "unknown compat"),
        (dict(degenerate="drop"), "unknown degenerate policy"),
        (dict(size=10), "size 10 is too small for pad 6"),
        (dict(size=-5), "too small for pad"),
        (dict(points=1), "points must be >= 2"),
        (dict(patches=0), "patches must be >= 1"),
        (dict(flips=5), "flips must be 1..4"),
        (dict(flips=0), "flips must be 1..4"),
        (dict(pad=-1), "pad must be >= 0"),
        (dict(size=64.0), "size must be an integer"),
        (dict(weights="0.9"), "weight step must be in (0, 0.5]"),
        (dict(min_fill=1.0), "min_fill"),
    ],
)
def test_render_config_rejects_bad_values(kwargs, fragment):
    from fractaldb.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        RenderConfig(**kwargs)
    assert fragment in str(info.value)


def test_create_renderer_unknown_device():
    from fractaldb.errors import ConfigError

    with pytest.raises(ConfigError, match="device 'tpu'"):
        create_renderer(RenderConfig(size=32, points=100), device="tpu")


# --------------------------------------------------------------------------- PNG


def _decode(data):
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.mode, np.array(im)


def test_encode_png_gray_round_trip():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(37, 53), dtype=np.uint8)
    data = encode_png(img)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    mode, back = _decode(data)
    assert mode == "L"
    np.testing.assert_array_equal(back, img)
    # (H, W, 1) is the same image, and encoding is byte-deterministic.
    assert encode_png(img[:, :, None]) == data
    assert encode_png(img.copy()) == data


def test_encode_png_rgb_round_trip():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(20, 31, 3), dtype=np.uint8)
    data = encode_png(img)
    mode, back = _decode(data)
    assert mode == "RGB"
    np.testing.assert_array_equal(back, img)
    assert encode_png(img) == data


def test_encode_png_of_a_render():
    block = CPURenderer(RenderConfig(size=48, points=1000, patches=1, flips=2, seed=2)).render_block(
        2, IFS.from_rows(published.rows("00002")), 2)
    for img in block.images:
        mode, back = _decode(encode_png(img))
        np.testing.assert_array_equal(back, img[:, :, 0])
        # Converted to RGB (torchvision's loader does) it is the original's gray 127.
        with Image.open(io.BytesIO(encode_png(img))) as im:
            rgb = np.array(im.convert("RGB"))
        np.testing.assert_array_equal(rgb, np.repeat(img, 3, axis=2))


# --------------------------------------------------------------------------- last-writer raster, views


@pytest.mark.parametrize("cfg", [
    RenderConfig(mode="patch", size=48, points=3000, patches=3, flips=4, seed=2),
    RenderConfig(mode="patch", color="color", size=40, points=2500, patches=2, flips=3, seed=3),
    pytest.param(RenderConfig(mode="patch", size=362, points=200000, patches=2, flips=4, compat="official",
                              degenerate="keep"), marks=pytest.mark.slow),
    RenderConfig(mode="point", size=48, points=3000, flips=4, seed=2),
    RenderConfig(mode="patch", size=40, points=3000, patches=1, flips=2, seed=5),  # one draw: pasted in order
    RenderConfig(mode="patch", size=1030, points=4000, patches=2, flips=2, seed=6),  # past LAST_WRITER_MAX_SIZE
], ids=["patch-gray", "patch-color", "official-362", "point", "one-draw", "large"])
def test_block_is_the_sequential_overwrite_of_its_points(cfg):
    """Each draw of a block equals tests/reference.py's point-by-point patch paste of
    the block's points (zero background), in every flip; render_views gives the same
    images as views of one raster per draw."""
    import reference as ref
    from fractaldb.seeds import stream_key

    ifs = IFS.from_rows(published.rows("00001"))
    r = CPURenderer(cfg)
    for weight, draws in ((0, None), (7, [1, 0]) if cfg.draws > 1 else (7, [0])):
        block = r.render_block(4, ifs, weight, draws=draws)
        want_draws = list(range(cfg.draws)) if draws is None else draws
        m = r._points(ifs.weighted(block.factors), ifs.cumulative(), stream_key(cfg.seed, "render-points", 4, weight))
        px, py = r.px[:m].astype(np.int64), r.py[:m].astype(np.int64)
        zero = np.zeros((cfg.size, cfg.size, cfg.channels), np.uint8)
        for k, d in enumerate(want_draws):
            if cfg.mode == "patch":
                want = ref.draw_patches(px, py, r.colors, stream_key(cfg.seed, "render-patches", 4, weight, d), zero)
            else:
                want = ref.draw_points(px, py, r.colors, zero)
            for t in range(cfg.flips):
                np.testing.assert_array_equal(block.images[k * cfg.flips + t], flip(want, t))
        kept = block.images.copy()
        view = next(r.render_views([(4, ifs, weight, draws)]))
        assert len(view.images) == len(kept)
        for a, b in zip(view.images, kept):
            assert not a.flags.owndata  # a view, no copy
            np.testing.assert_array_equal(a, b)
        assert view.fill is None or view.fill == block.fill
        assert np.array_equal(view.factors, block.factors) and view.record == block.record
