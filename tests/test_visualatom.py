"""The VisualAtom family against a slow reference written from the spec (tests/visualatom_reference.py):
the published script's test vectors (FDSL.md §2.6), official mode image for image, modern mode's
geometry and its independence from the worker count, settings refused in one line."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import yaml

from fractaldb.contours import orbits as O
from fractaldb.errors import ConfigError
from fractaldb.families import get_family
from fractaldb.families.visualatom import model as M
from fractaldb.schema import settings_of
from tinyset import assert_one_line_error, run_cli

import visualatom_reference as REF

FAMILY = get_family("visualatom")
#: make_VisualAtom.sh's ranges (VisualAtom-1k).
VA1K = M.ClassRanges()


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()[:16]


def test_published_class_vectors():
    """§2.6: class 0 (worker 0, seed 1) and class 50 (worker 1, seed 2) of VisualAtom-1k, T = 20."""
    c0 = M._walk_worker(0, 0, 1, 1000, VA1K)[0]
    assert (c0.vertices, c0.orbits, c0.noise, c0.line_width, c0.radius, c0.wave1, c0.wave2, c0.oval_x, c0.oval_y) == (
        337, 146, 3.3897349477489307, 0.07637746189766141, 26, 3, 15, 1.7609624449125756, 1.4722452435761166)
    assert c0.centres[0] == (388.5, 214.5)
    c50 = M._walk_worker(1, 50, 1, 1000, VA1K)[0]
    assert (c50.vertices, c50.orbits, c50.radius, c50.wave1, c50.wave2) == (257, 24, 57, 9, 8)
    assert (round(c50.noise, 6), round(c50.line_width, 5), round(c50.oval_x, 6), round(c50.oval_y, 6)) == (
        0.339488, 0.08355, 1.605944, 1.606802)
    assert c50.centres[0] == (162.0, 441.0)
    r = M.VisualAtomRenderer(M.VisualAtomRenderConfig(compat="official", channels=3))
    images = list(r.render_many([M.Item(c0, block=0, count=2)]))
    assert [_digest(i) for i in images] == ["575156ca6934188f", "6f1da4ebc77a694e"]
    assert [int(i.any(axis=2).sum()) for i in images] == [135778, 139703]


SMALL_R = {"vertices": (5, 30), "orbits": (1, 7), "perlin_min": 0, "line_width": 0.1, "radius_min": 3, "oval_rate": 2,
           "waves": (0, 6), "start_pos": 20, "image_size": 40}


def _ranges(r=SMALL_R) -> M.ClassRanges:
    return M.ClassRanges(r["vertices"], r["orbits"], float(r["perlin_min"]), r["line_width"], r["radius_min"],
                         float(r["oval_rate"]), r["waves"], r["start_pos"], r["image_size"])


@pytest.mark.parametrize("threads,classes,instances", [(2, 5, 4), (1, 3, 6), (3, 6, 1)])
def test_official_equals_reference(threads, classes, instances):
    """Every image of the script's run (4 classes per thread split, the remainder never made)."""
    want = {(k, i): (p, c, img) for t in range(threads)
            for k, i, p, c, img in REF.worker_run(t, threads, classes, instances, SMALL_R)}
    made = threads * (classes // threads)
    got = M.official_classes(made, classes, threads, instances, _ranges(), workers=2)
    r = M.VisualAtomRenderer(M.VisualAtomRenderConfig(size=40, compat="official", start_pos=20, channels=3))
    B = M.block_size(instances)
    for k, cls in enumerate(got):
        p = want[(k, 0)][0]
        assert (cls.vertices, cls.orbits, cls.noise, cls.line_width, cls.radius, cls.wave1, cls.wave2, cls.oval_x,
                cls.oval_y) == tuple(p[n] for n in ("vertices", "orbits", "noise", "line_width", "radius", "wave1",
                                                    "wave2", "oval_x", "oval_y"))
        for b in range(instances // B):  # each block alone, from its stored position
            for o, img in enumerate(r.render_many([M.Item(cls, block=b, count=B)])):
                assert np.array_equal(img, want[(k, b * B + o)][2]), (k, b, o)
    assert any(want[key][2].any() for key in want)


def test_official_class_round_trips_through_the_manifest_doc():
    cls = M.official_classes(2, 2, 1, 4, _ranges())[1]
    assert M.VisualAtomClass.from_dict(json.loads(json.dumps(cls.to_dict()))) == cls
    with pytest.raises(ConfigError):
        M.VisualAtomClass.from_dict({**cls.to_dict(), "state": "abc"})


def test_modern_geometry_equals_reference():
    classes = M.modern_classes(7, 4, _ranges())
    r = M.VisualAtomRenderer(M.VisualAtomRenderConfig(size=40, start_pos=20))
    for k, cls in enumerate(classes):
        for i in range(3):
            key = M.instance_key(7, k, i)
            P, grays = np.empty((cls.orbits, 2, cls.vertices)), np.empty(cls.orbits, dtype=np.int32)
            O.keyed_draws(key, 0, 255, False, P, grays)
            img = next(r.render_many([M.Item(cls, key=key)]))
            n = 2 * cls.orbits * cls.vertices + cls.orbits
            cy, cx = (M.K.keyed_centre(key, n + a, 40, 20) for a in (0, 1))
            assert cy * 2 == int(cy * 2) and -20 <= cy * 2 - 40 <= 20
            want = REF.modern_instance(P, grays, cls.to_dict(), cy, cx, 40)
            assert np.array_equal(img[:, :, 0], want)


def test_modern_classes_keep_the_distributions():
    cs = M.modern_classes(1, 300, VA1K)
    assert all(200 <= c.vertices <= 1000 and 1 <= c.orbits <= 200 and 0 <= c.noise < 4 and 0 <= c.line_width < 0.1
               and 10 <= c.radius <= 60 and 1 <= c.oval_x < 2 and (c.wave1 != c.wave2 or c.wave1 == 0) for c in cs)
    assert M.modern_classes(1, 3, VA1K) == cs[:3]  # class j does not depend on the class count


def _preset(tmp_path, **section) -> str:
    doc = {"name": "va", "seed": 5, "shard_size": 4, "families": ["visualatom"],
           "visualatom": {**FAMILY.small, **section}}
    p = tmp_path / f"p{len(list(tmp_path.iterdir()))}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return str(p)


@pytest.mark.parametrize("compat", ["modern", "official"])
def test_same_bytes_on_any_worker_count(compat, tmp_path):
    preset = _preset(tmp_path, compat=compat, classes=3, instances=4, threads=1)
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"ds{workers}"
        code, _, err = run_cli(["generate", "--preset", preset, "--out", out, "--workers", workers])
        assert code == 0, err
        digests.append([s["sha256"] for s in json.loads((out / "manifest.json").read_text())["shards"]])
    assert digests[0] == digests[1]


@pytest.mark.parametrize("key,value,words", [
    ("vertices", [2, 10], "3 <= low"), ("orbits", [0, 5], "1 <= low"), ("waves", [4, 4], "low < high"),
    ("image_size", 8, "16..4096"), ("threads", 0, "1..100000"), ("compat", "exact", "modern | official"),
    ("radius_min", -1, "0..10000")])
def test_out_of_range_refused_in_one_line(key, value, words, tmp_path):
    code, _, err = run_cli(["generate", "--preset", _preset(tmp_path, **{key: value}), "--out", tmp_path / "x"])
    assert_one_line_error(code, err, words)
    assert not (tmp_path / "x").exists()


def test_official_with_another_thread_count_says_so(tmp_path):
    code, _, err = run_cli(["generate", "--preset", _preset(tmp_path, compat="official", classes=2, threads=2,
                                                              instances=1), "--out", tmp_path / "x"])
    assert code == 0 and "not the published 20" in err


def test_official_refusals(tmp_path):
    code, _, err = run_cli(["generate", "--preset", _preset(tmp_path, compat="official", classes=3, threads=2),
                            "--out", tmp_path / "x"])
    assert_one_line_error(code, err, "makes only classes 0..1")
    code, _, err = run_cli(["generate", "--preset", _preset(tmp_path, compat="official", perlin_grad="fixed"),
                            "--out", tmp_path / "y"])
    assert_one_line_error(code, err, "perlin_grad=fixed")


def test_official_classes_need_their_block_positions():
    defaults = {k: v.default for k, v in settings_of(FAMILY.settings).items()}
    with pytest.warns(UserWarning, match="not the published 20"):
        settings = FAMILY.configure({**defaults, **FAMILY.small, "compat": "official", "threads": 1,
                                     "instances": 20}, 1)
    classes = FAMILY.find_classes(settings, 1)
    FAMILY.bind(settings, classes)  # 20 instances: 2 blocks of 10
    bad = [M.VisualAtomClass(**{**classes[0].to_dict(), "offsets": (0,), "centres": ((1.0, 2.0),)}), classes[1]]
    with pytest.raises(ConfigError, match="block positions"):
        FAMILY.bind(settings, bad)
    with pytest.raises(ConfigError, match="stored state"):
        FAMILY.bind(settings, M.modern_classes(1, 2, _ranges()))


def _table_rows(rows) -> list:
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "visualatom-1k-classes.csv"
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    return [table[k] for k in rows]


def test_published_class_table_holds_the_vectors():
    """docs/visualatom-1k-classes.csv: the dry-run replay of VisualAtom-1k (T = 20); §2.6's classes."""
    c0, c50 = _table_rows([0, 50])
    assert (c0["vertices"], c0["orbits"], c0["noise"], c0["centre_y"], c0["centre_x"]) == (
        "337", "146", "3.3897349477489307", "388.5", "214.5")
    assert (c50["vertices"], c50["orbits"], c50["radius"], c50["wave1"], c50["wave2"], c50["thread"]) == (
        "257", "24", "57", "9", "8", "1")


@pytest.mark.slow
def test_published_class_table_is_the_replay():
    """Threads 0 and 19 (100 classes x 1000 instances walked) against the shipped table."""
    for t in (0, 19):
        got = M._walk_worker(t, 50 * t, 50, 1000, VA1K)
        for k, (row, c) in enumerate(zip(_table_rows(range(50 * t, 50 * t + 50)), got)):
            assert [int(row[n]) for n in ("vertices", "orbits", "radius", "wave1", "wave2")] == [
                c.vertices, c.orbits, c.radius, c.wave1, c.wave2]
            assert [float(row[n]) for n in ("noise", "line_width", "oval_x", "oval_y", "centre_y", "centre_x")] == [
                c.noise, c.line_width, c.oval_x, c.oval_y, *c.centres[0]]


def test_generate_on_the_gpu_says_official_mode_is_slow_there(tmp_path, monkeypatch):
    """The family's device note reaches ``generate``'s log (a ``note:`` line on the command line)
    once the GPU check passes, before any rendering; modern mode and the CPU say nothing."""
    import logging

    from fractaldb import config, dataset
    from fractaldb.errors import FractalDBError

    said = []

    class Keep(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    handler = Keep()
    logging.getLogger("fractaldb").addHandler(handler)
    monkeypatch.setattr(dataset, "check_device", lambda *a, **k: None)  # as if a GPU were there
    try:
        for compat in ("official", "modern"):
            cfg = config.resolve(_preset(tmp_path, compat=compat, classes=2, threads=1, instances=2))
            try:  # without a GPU the renderer cannot start; with one the tiny job runs
                dataset.generate(cfg, str(tmp_path / compat), workers=1, device="cuda")
            except FractalDBError:
                pass
        dataset.generate(config.resolve(_preset(tmp_path, compat="official", classes=2, threads=1, instances=2)),
                         str(tmp_path / "cpu"), workers=1)
    finally:
        logging.getLogger("fractaldb").removeHandler(handler)
    notes = [m for m in said if "slow on the GPU" in m]
    assert len(notes) == 1 and "--device cpu" in notes[0], said
