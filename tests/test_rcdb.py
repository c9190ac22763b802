"""The RCDB and SegRCDB families against the slow references written from FDSL.md
(tests/rcdb_reference.py): official mode equals the published scripts' stream (CPython's own
``random``, the noise law, Pillow's lines), modern mode does not depend on the worker count,
the presets' cuts read back in webdataset / wids / Hugging Face datasets, bad settings fail
in one line."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

import rcdb_reference as R
from fractaldb.families import get_family
from fractaldb.schema import defaults
from tinyset import run_cli


def _settings(name, **kw):
    fam = get_family(name)
    d = defaults(fam.settings)
    d.update(kw)
    return fam, fam.configure(d, kw.pop("seed", 1) if "seed" in kw else 1)


def test_reference_noise_law_matches_the_spec_vectors():
    for u, want in [(0.5, 0.699999988079071), (1234.567, 0.27858659625053406), (3.25, -0.05859375),
                    (511.75, -0.5619140863418579), (42.0, 0.0), (9999.999, 0.0003906250058207661)]:
        assert R.pnoise1(u) == want


def test_rcdb_official_equals_the_reference_stream():
    """Small images, two workers: every class's instances 0 and 2, fast path == reference."""
    p = dict(vertex_num=30, image_size=96, start_pos=40)
    fam, s = _settings("rcdb", classes=4, instances=3, compat="official", workers=2, **p)
    classes = fam.find_classes(s, 1)
    ref = {(k, i): (doc, img) for w in range(2) for k, i, doc, img in R.rcdb_official(4, 3, 2, w, p)}
    assert [(c.vertices, c.orbits, c.noise, c.line_width) for c in classes] == \
        [tuple(ref[(k, 0)][0][x] for x in ("V", "K", "c", "lam")) for k in range(4)]
    bound = fam.bind(s, classes)
    r = bound.renderer()
    for k in range(4):
        rb = next(iter(bound.render_blocks(r, [(k, 0, [0, 2])])))
        for o, img in zip(rb.offsets, rb.images):
            assert np.array_equal(img[:, :, 0], ref[(k, o)][1][:, :, 0]), (k, o)
            assert (ref[(k, o)][1] == ref[(k, o)][1][:, :, :1]).all()  # the original's RGB is gray


def test_rcdb_official_spec_vectors():
    """FDSL 3.5: class 0 of the published script (T = 10), instances 0 and 1 at 512 px."""
    fam, s = _settings("rcdb", classes=10, instances=2, compat="official", workers=10)
    bound = fam.bind(s, fam.find_classes(s, 1))
    c0 = bound.classes[0]
    assert (c0.vertices, c0.orbits, c0.noise, c0.line_width) == (14, 196, 0.2524272875508373, 0.011791870367106105)
    rb = next(iter(bound.render_blocks(bound.renderer(), [(0, 0, [0, 1])])))
    got = [(R.digest(np.repeat(img, 3, axis=2)), int((img != 255).sum())) for img in rb.images]
    assert got == [("204d262a0ba02df5", 30535), ("33fca56be05d158f", 21638)]


def _splitmix(key, i):
    m = (1 << 64) - 1
    z = (key + (i + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def _below(key, i, n):
    return ((_splitmix(key, i) >> 32) * n) >> 32


def _u(key, i):
    return (_splitmix(key, i) >> 11) / 9007199254740992.0


def test_rcdb_modern_equals_a_keyed_reference():
    """Modern mode written out plainly: the documented counter layout, Pillow lines."""
    from PIL import ImageDraw

    from fractaldb.families.rcdb.model import instance_key

    fam, s = _settings("rcdb", classes=2, instances=2, image_size=64, start_pos=20, vertex_num=20)
    bound = fam.bind(s, fam.find_classes(s, 1))
    r = bound.renderer()
    for k, i in [(0, 0), (1, 1)]:
        c = bound.classes[k]
        key = int(instance_key(1, k, i))
        q = _splitmix(key, 1 << 40)  # the placement sub-key
        ox, oy = 1 + _u(q, 0), 1 + _u(q, 1)
        r0 = _below(q, 2, 101)
        cy = (64 + _below(q, 3, 41) - 20) / 2
        cx = (64 + _below(q, 4, 41) - 20) / 2
        im = Image.new("L", (64, 64), 255)
        draw = ImageDraw.Draw(im)
        v, kk = c.vertices, c.orbits
        step = (math.pi * 2) / v
        xs = [math.cos(step * j) * r0 * ox for j in range(v)]
        ys = [math.sin(step * j) * r0 * oy for j in range(v)]
        for o in range(kk):
            g = _below(key, 2 * kk * v + o, 256)
            nx = [R.pnoise1(_u(key, 2 * o * v + j) * 10000.0) * c.noise * 2 - c.noise for j in range(v)]
            ny = [R.pnoise1(_u(key, (2 * o + 1) * v + j) * 10000.0) * c.noise * 2 - c.noise for j in range(v)]
            for j in range(v):
                xs[j] -= math.cos(step * j) * (nx[j] - c.line_width)
                ys[j] -= math.sin(step * j) * (ny[j] - c.line_width)
            for j in range(v):
                n = (j + 1) % v
                R.draw_edge(draw, xs[j] + cx, ys[j] + cy, xs[n] + cx, ys[n] + cy, g)
        rb = next(iter(bound.render_blocks(r, [(k, i, [0])])))
        assert np.array_equal(next(iter(rb.images))[:, :, 0], np.asarray(im)), (k, i)


def test_segrcdb_official_table_and_images_equal_the_reference():
    fam, s = _settings("segrcdb", compat="official", images=80, workers=40)
    table = fam.find_classes(s, 1)
    ref = R.segrcdb_table(254)
    assert [list(row) for row in table] == [[t[x] for x in ("V", "K", "c", "lam", "r0", "ox", "oy")] for t in ref]
    bound = fam.bind(s, table)
    rb = next(iter(bound.render_blocks(bound.renderer(), [(0, 0, [0])])))
    img = next(iter(rb.images))
    # FDSL 4.3's vector: worker 0's first image (T = 40, M1), and 30 classes in its mask
    assert R.digest(np.repeat(img, 3, axis=2)) == "99a2b2b61a22d1b6"
    assert R.digest(rb.masks[0]) == "48cd66923b482e20" and len(np.unique(rb.masks[0])) == 31


def test_segrcdb_official_small_images_equal_the_reference():
    p = dict(polygons=4, image_size=64, start_pos=40, vertex_num=40, radius_max=10, line_num_max=6, classes=5)
    fam, s = _settings("segrcdb", compat="official", images=6, workers=2, **p)
    table = fam.find_classes(s, 1)
    ref_table = R.segrcdb_table(5, dict(vertex_num=40, radius_max=10, line_num_max=6))
    bound = fam.bind(s, table)
    want = {n: (im, m) for n, im, m in R.segrcdb_official(6, 2, 1, ref_table, 4, 64, 40)}
    rb = next(iter(bound.render_blocks(bound.renderer(), [(0, 1, [0, 2])])))
    for o, img in zip(rb.offsets, rb.images):
        im, m = want[3 + o]
        assert np.array_equal(img[:, :, 0], im[:, :, 0]) and np.array_equal(rb.masks[o], m)


def _digests(ds):
    return [s["sha256"] for s in json.loads((ds / "manifest.json").read_text())["shards"]]


@pytest.mark.parametrize("preset", ["rcdb-tiny", "segrcdb-tiny"])
def test_modern_bytes_do_not_depend_on_the_worker_count(preset, tmp_path):
    args = ["--set", "shard_size=4", "--classes", "2"]
    assert run_cli(["generate", "--preset", preset, "--out", tmp_path / "a", "--workers", "1", *args])[0] == 0
    assert run_cli(["generate", "--preset", preset, "--out", tmp_path / "b", "--workers", "2", *args])[0] == 0
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


@pytest.mark.parametrize("argv, words", [
    (["rcdb.compat=official", "rcdb.workers=3", "rcdb.radius_span=100", "rcdb.line_num_span=199"],
     "workers (3) to divide classes"),
    (["rcdb.image_size=15"], "image_size"),
    (["rcdb.vertex_num=2"], "vertex_num"),
    (["rcdb.workers=0"], "workers"),
    (["rcdb.compat=official", "rcdb.classes=10"], "spans are fixed"),  # rcdb-tiny's spans are scaled
])
def test_bad_rcdb_settings_fail_in_one_line(argv, words, tmp_path):
    code, _, err = run_cli(["generate", "--preset", "rcdb-tiny", "--out", tmp_path / "x",
                            *[a for s in argv for a in ("--set", s)]])
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and words in err
    assert not (tmp_path / "x").exists()


def test_bad_segrcdb_settings_fail_in_one_line(tmp_path):
    for sets, words in [(["segrcdb.compat=official", "segrcdb.workers=5"], "divide images"),
                        (["segrcdb.classes=255"], "classes"), (["segrcdb.polygons=0"], "polygons"), (["segrcdb.line_num=9", "segrcdb.line_num_max=3"],
                                                               "range")]:
        code, _, err = run_cli(["generate", "--preset", "segrcdb-tiny", "--out", tmp_path / "x",
                                *[a for s in sets for a in ("--set", s)]])
        assert code == 2 and err.startswith("error:") and words in err, err


@pytest.mark.parametrize("preset", ["rcdb-1k", "rcdb-21k", "rcdb-tiny", "segrcdb-1k", "segrcdb-tiny"])
def test_preset_cut_generates_verifies_and_reads_back(preset, tmp_path, monkeypatch):
    """``--classes 2`` (small images, few samples), then webdataset, wids and HF datasets."""
    import warnings

    import webdataset as wds
    import wids

    fam = preset.split("-")[0]
    size = [f"{fam}.image_size=32", f"{fam}.start_pos=12", f"{fam}.vertex_num=20"]
    size += ["rcdb.instances=2"] if fam == "rcdb" else ["segrcdb.images=3", "segrcdb.polygons=2"]
    ds = tmp_path / "ds"
    code, _, err = run_cli(["generate", "--preset", preset, "--classes", "2", "--out", ds, "--set", "shard_size=2",
                            *[a for s in size for a in ("--set", s)]])
    assert code == 0, err
    assert run_cli(["verify", ds])[0] == 0
    manifest = json.loads((ds / "manifest.json").read_text())
    n = manifest["plan"]["samples"]
    urls = [str(ds / s["name"]) for s in manifest["shards"]]
    mask = fam == "segrcdb"
    got = list(wds.WebDataset(urls, shardshuffle=False))
    assert len(got) == n and all(Image.open(io.BytesIO(s["png"])).size == (32, 32) for s in got)
    if mask:
        assert all(np.asarray(Image.open(io.BytesIO(s["mask.png"]))).max() <= 2 for s in got)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = wids.ShardListDataset(str(ds / "wids-index.json"), cache_dir=str(tmp_path / "cache"))
        assert len(w) == n and all(".png" in w[i] for i in range(n))
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    h = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train",
                              cache_dir=str(tmp_path / "hf-cache"))
    assert h.num_rows == n and ("mask.png" in h.column_names) == mask


def test_rcdb_block_replay_equals_the_contour_replay():
    """``replay_orbits`` (words tempered per orbit) == ``contours.orbits.replay_draws``, state included."""
    from fractaldb.contours import orbits as O
    from fractaldb.contours.pyrandom import seed_state
    from fractaldb.families.rcdb import kernels as RK

    a, b = seed_state(7), seed_state(7)
    P1, P2 = np.empty((30, 2, 13)), np.empty((30, 2, 13))
    g1, g2 = np.empty(30, np.int32), np.empty(30, np.int32)
    for _ in range(3):  # across twists
        O.replay_draws(a, 0, 256, False, P1, g1)
        RK.replay_orbits(b, 256, P2, g2, np.empty(52, np.uint32))
        assert np.array_equal(P1, P2) and np.array_equal(g1, g2) and np.array_equal(a, b)


def test_segrcdb_modern_equals_a_keyed_reference():
    """Modern SegRCDB written out plainly (documented sub-keys and layout, Pillow lines, mask first)."""
    from PIL import ImageDraw

    from fractaldb.seeds import stream_key

    fam, s = _settings("segrcdb", classes=5, images=2, polygons=3, image_size=48, start_pos=30, vertex_num=30,
                       radius_max=8, line_num_max=6)
    table = fam.find_classes(s, 1)
    bound = fam.bind(s, table)
    rb = next(iter(bound.render_blocks(bound.renderer(), [(0, 1, [0])])))
    img, mask = next(iter(rb.images)), rb.masks[0]
    key = int(stream_key(1, "segrcdb-image", 1))
    im, mk = Image.new("L", (48, 48), 0), Image.new("L", (48, 48), 0)
    draw, mdraw = ImageDraw.Draw(im), ImageDraw.Draw(mk)
    for p in range(3):
        pk = _splitmix(key, (1 << 20) + p)
        cid = 1 + _below(pk, 0, 5)
        cy, cx = (48 + _below(pk, 1, 61) - 30) / 2, (48 + _below(pk, 2, 61) - 30) / 2
        ok = _splitmix(pk, 1 << 40)
        v, kk, c, lam, r0, ox, oy = table[cid - 1]
        v, kk = int(v), int(kk)
        step = (math.pi * 2) / v
        xs = [math.cos(step * j) * r0 * ox + cx for j in range(v)]
        ys = [math.sin(step * j) * r0 * oy + cy for j in range(v)]
        for o in range(kk):
            g = 1 + _below(ok, 2 * kk * v + o, 255)
            nx = [R.pnoise1(_u(ok, 2 * o * v + j) * 10000.0) * c * 2 - c for j in range(v)]
            ny = [R.pnoise1(_u(ok, (2 * o + 1) * v + j) * 10000.0) * c * 2 - c for j in range(v)]
            for j in range(v):
                xs[j] -= math.cos(step * j) * (nx[j] - lam)
                ys[j] -= math.sin(step * j) * (ny[j] - lam)
            for j in range(v):
                n = (j + 1) % v
                R.draw_edge(mdraw, xs[j], ys[j], xs[n], ys[n], cid)
                R.draw_edge(draw, xs[j], ys[j], xs[n], ys[n], g)
    assert np.array_equal(img[:, :, 0], np.asarray(im)) and np.array_equal(mask, np.asarray(mk))
    assert mask.any()


@pytest.mark.parametrize("name", ["rcdb", "segrcdb"])
def test_device_note_on_the_gpu_only(name):
    """Both families say the GPU adds little (host-built instances) for cuda, nothing for the CPU."""
    fam = get_family(name)
    settings = fam.configure(dict(fam.small), 1)
    note = fam.device_note(settings, "cuda")
    assert note.startswith(f"{name}: the GPU adds little") and "--device cpu" in note
    assert fam.device_note(settings, "cpu") is None
