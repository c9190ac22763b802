"""The 1p-frac family: the sigma-factor base system, the perturbation search with
its fill gate, and the images, against slow references written from the
original (SUPER-TADORY/1p-frac) and tests/reference.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

import reference as ref
from fractaldb.config import family_settings, resolve
from fractaldb.errors import ConfigError
from fractaldb.families import get_family
from fractaldb.ifs.policy import official_uniforms
from fractaldb.families.onepfrac import OnePFracSettings
from fractaldb.families.onepfrac.model import (base_system, class_fill, render_seed, search_classes, sigma_system,
                                               singular_values)
from fractaldb.seeds import generator, stream_key
from tinyset import assert_one_line_error, run_cli


def small(**kw) -> OnePFracSettings:
    return OnePFracSettings(**{"classes": 4, "image_size": 48, "points": 3000, "seed": 1, **kw})


def reference_sigma_system(rng, n, beta):
    """The original ``sample_system(n, beta=beta)`` in its matrix form: ``U = R(theta) @ diag(signs)``,
    ``A = (U * s) @ V``, singular values by the plain sequential rule, ``p = |det| / sum``."""
    base = np.sign(rng.random((2 * n, 2, 1)) - 0.5) * np.eye(2)
    angle = rng.uniform(-np.pi, np.pi, 2 * n)
    rmat = np.array([[[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]] for t in angle])
    uv = rmat @ base
    sigma = rng.uniform(*beta)
    s = np.empty((n, 2))
    p, q = sigma, sigma - 3 * n + 3
    for i in range(n - 1):
        s1 = rng.uniform(max(0, q / 3), min(1, p))
        q, p = q - s1, p - s1
        s2 = rng.uniform(max(0, q / 2), min(s1, p / 2))
        q, p = q - 2 * s2 + 3, p - 2 * s2
        s[i] = s1, s2
    s2 = rng.uniform(max(0, (p - 1) / 2), p / 3)
    s[-1] = p - 2 * s2, s2
    m = np.empty((n, 2, 3))
    m[:, :, :2] = uv[:n] * s[:, None, :] @ uv[n:]
    m[:, :, 2] = rng.uniform(-1, 1, (n, 2))
    det = np.array([abs(np.linalg.det(a)) for a in m[:, :, :2]])
    rows = np.stack([m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2]]).T
    return np.concatenate([rows, (det / det.sum())[:, None]], axis=1), sigma


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_sigma_system_is_the_original_draw(n):
    for seed in range(20):
        beta = ((5 + n) / 2 - 0.4, (5 + n) / 2 + 0.4) if n > 1 else (0.5, 2.5)
        rows, sigma = sigma_system(np.random.default_rng(seed), n, beta)
        want, want_sigma = reference_sigma_system(np.random.default_rng(seed), n, beta)
        assert sigma == want_sigma
        assert np.array_equal(rows, want)
        # the maps are contractive with sum(s1 + 2 s2) = sigma
        sv = np.linalg.svd(rows[:, :4].reshape(n, 2, 2), compute_uv=False)
        assert np.all(sv <= 1 + 1e-12) and abs((sv[:, 0] + 2 * sv[:, 1]).sum() - sigma) < 1e-9
        assert abs(rows[:, 6].sum() - 1) < 1e-12


def test_singular_values_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 7))
        sigma = rng.uniform(0.01, 3 * n - 0.01)
        s = singular_values(rng, n, sigma)
        assert np.all(s >= -1e-12) and np.all(s <= 1 + 1e-12) and np.all(s[:, 0] >= s[:, 1] - 1e-12)
        assert abs((s[:, 0] + 2 * s[:, 1]).sum() - sigma) < 1e-9


def test_base_system_depends_on_the_seed_only():
    a = base_system(1, 2, 3.5, 0.1)
    assert a == base_system(1, 2, 3.5, 0.1) and a != base_system(2, 2, 3.5, 0.1)
    assert a.n_maps == 2
    rows, sigma = sigma_system(generator(1, "onepfrac-base"), 2, (3.4, 3.6))
    assert np.array_equal(a.rows(), rows) and 3.4 <= sigma <= 3.6


def reference_image(cfg, rows, c):
    """Class ``c``'s image the plain way: the seed-100 stream, the original loop,
    trim, rescale, patches, flip top<->bottom."""
    cum = ref.cumulative(rows[:, 6])
    xs, ys = ref.chaos_game(rows, cum, official_uniforms(cfg.points), cfg.points)
    xs, ys = ref.trim_nan(xs, ys)
    px, py = ref.rescale(xs, ys, cfg.image_size, cfg.image_size, 6)
    key = stream_key(render_seed(cfg.seed), "render-patches", c, 0, 0)
    img = ref.draw_patches(px, py, np.full((1, 1), 127, np.uint8), key,
                           np.zeros((cfg.image_size, cfg.image_size, 1), np.uint8))
    return img[::-1]


def test_classes_and_images_match_the_reference():
    # a gate that rejects some draws, so redraws are exercised
    cfg = small(classes=3, fill_rate=0.12, delta=0.2)
    classes = search_classes(cfg, workers=2)
    assert [p.index for p in classes] == [0, 1, 2]
    assert any(p.attempts > 1 for p in classes)
    base = base_system(cfg.seed, cfg.maps, cfg.sigma, cfg.sigma_margin)
    fam = get_family("onepfrac")
    renderer = fam.create_renderer(cfg)
    for p in classes:
        rng = generator(cfg.seed, "onepfrac-factors", p.index)
        for attempt in range(1, p.attempts + 1):
            factors = rng.uniform(1 - cfg.delta, 1 + cfg.delta, (cfg.maps, 6))
            rows = np.concatenate([base.maps * factors, base.probs[:, None]], axis=1)
            img = reference_image(cfg, rows, p.index)
            fill = np.count_nonzero(img > 1) / img.size
            # the gate: strictly above fill_rate, else redraw
            assert (fill > cfg.fill_rate) == (attempt == p.attempts)
        assert np.array_equal(p.factors, factors) and np.array_equal(p.ifs.rows(), rows)
        assert np.all(np.abs(p.factors - 1) <= cfg.delta)
        assert p.fill == class_fill(img)
        (block,) = fam.bind(cfg, classes).render_blocks(renderer, [(p.index, 0, [0])])
        assert np.array_equal(block.images[0], img)


def test_search_is_independent_of_workers_and_class_count():
    cfg = small(classes=6)
    one = search_classes(cfg, workers=1)
    two = search_classes(cfg, workers=2)
    fewer = search_classes(small(classes=3), workers=2)
    assert [p.to_dict() for p in one] == [p.to_dict() for p in two]
    assert [p.to_dict() for p in fewer] == [p.to_dict() for p in one[:3]]


def test_delta_scales_the_factors_around_one_base():
    got = {}
    for delta in (0.05, 0.2):
        cfg = family_settings(resolve("1p-frac-tiny", [f"onepfrac.delta={delta}", "onepfrac.classes=4"]),
                              "onepfrac")
        assert cfg.delta == delta
        got[delta] = search_classes(cfg, workers=2)
        assert all(np.all(np.abs(p.factors - 1) <= delta) for p in got[delta])
    # the base system is the same: rows / factors give it back
    b05 = got[0.05][0].ifs.maps / got[0.05][0].factors
    b20 = got[0.2][0].ifs.maps / got[0.2][0].factors
    assert np.allclose(b05, b20, rtol=1e-12, atol=0)


def test_presets():
    paper = family_settings(resolve("1p-frac"), "onepfrac")
    assert (paper.classes, paper.delta, paper.sigma, paper.sigma_margin, paper.maps) == (1000, 0.1, 3.5, 0.1, 2)
    assert (paper.fill_rate, paper.image_size, paper.points) == (0.05, 512, 100_000)
    rc = paper.render_config()
    assert (rc.compat, rc.mode, rc.color, rc.pad, rc.patches, rc.flips) == ("official", "patch", "gray", 6, 1, 1)
    assert rc.weight_table().tolist() == [[1.0] * 6]
    assert family_settings(resolve("1p-frac-tiny"), "onepfrac").classes == 12


def test_generate_labels_and_export_names(tmp_path):
    ds = tmp_path / "ds"
    code, _, err = run_cli(["generate", "--preset", "1p-frac-tiny", "--classes", "3", "--out", ds, "--workers", "2"])
    assert code == 0, err
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["plan"]["samples"] == 3
    assert [(c["label"], c["class"]) for c in manifest["categories"]] == [(0, 0), (1, 1), (2, 2)]
    code, _, err = run_cli(["export", ds, "--out", tmp_path / "folder"])
    assert code == 0, err
    files = sorted(p.relative_to(tmp_path / "folder").as_posix() for p in (tmp_path / "folder").rglob("*.png"))
    assert files == [f"perturb-{c:05d}/perturb-{c:05d}.png" for c in range(3)]


@pytest.mark.parametrize("sets, fragment", [
    (["onepfrac.sigma=5.95", "onepfrac.sigma_margin=0.1"], "sigma"),
    (["onepfrac.delta=0"], "delta"),
    (["onepfrac.delta=1.5"], "delta"),
    (["onepfrac.maps=0"], "maps"),
    (["onepfrac.fill_rate=1"], "fill_rate"),
    (["onepfrac.fill_rate=0.99", "onepfrac.max_attempts=3"], "class 0"),
])
def test_bad_settings_are_one_line_errors(sets, fragment, tmp_path):
    argv = ["generate", "--preset", "1p-frac-tiny", "--out", tmp_path / "x"]
    for s in sets:
        argv += ["--set", s]
    code, _, err = run_cli(argv)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "x").exists()


def test_settings_check_sigma_against_maps():
    with pytest.raises(ConfigError, match="inside"):
        OnePFracSettings(sigma=3.0, maps=1, seed=1)
    assert OnePFracSettings(sigma=2.0, maps=1, seed=1).maps == 1


@pytest.mark.simulator_cases("onepfrac_cuda_cases.py")
def test_cuda_path_matches_cpu_in_the_simulator():
    from tinyset import run_simulator_cases

    run_simulator_cases("onepfrac_cuda_cases.py", at_least=2)


def test_lpce_is_the_1p_frac_recipe_on_perturbation_labels():
    """The paper's LPCE is softmax cross-entropy over the perturbations (soft Mixup/CutMix
    targets, label smoothing 0.1): the 1p-frac recipe, on one label per perturbation."""
    from fractaldb.config import family_settings, resolve
    from fractaldb.families import get_family
    from fractaldb.train.config import resolve_config

    cfg = resolve_config("pretrain", "1p-frac", {"data": "x"})
    assert (cfg["loss"], cfg["mixup"], cfg["cutmix"], cfg["label_smoothing"]) == ("ce", 0.8, 1.0, 0.1)
    settings = family_settings(resolve("1p-frac"), "onepfrac")
    bound = get_family("onepfrac").bind(settings, list(range(settings.classes)))
    assert (bound.n_classes, bound.blocks_per_class, bound.images_per_block) == (1000, 1, 1)
