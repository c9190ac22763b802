"""Stream keys: the vectorised derivation equals NumPy's SeedSequence, key for key."""

from __future__ import annotations

import numpy as np
import pytest

from fractaldb.seeds import PURPOSES, stream_key, stream_keys


def _reference(seed, purpose, ids):
    return np.array([stream_key(seed, purpose, *row) for row in np.asarray(ids).tolist()], dtype=np.uint64)


@pytest.mark.parametrize("seed", [0, 1, 7, 2**31, 2**32 - 1, 2**32, 2**40 + 5, 2**96 + 1, 2**128 - 1, 2**130 + 3])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 6])
def test_stream_keys_match_seedsequence(seed, width):
    rng = np.random.default_rng(seed % 1000 + width)
    ids = rng.integers(0, 2**32, size=(64, width), dtype=np.uint64)
    ids[:4] = 0
    ids[4:8] = 2**32 - 1
    ids[8:12] = rng.integers(0, 10, size=(4, width))
    assert np.array_equal(stream_keys(seed, "render-patches", ids), _reference(seed, "render-patches", ids))


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_stream_keys_for_every_purpose(purpose):
    ids = [[0, 0, 0], [3, 24, 9], [999, 1, 2]]
    assert np.array_equal(stream_keys(1, purpose, ids), _reference(1, purpose, ids))


def test_render_layout_matches_the_renderer_keys():
    # The ids the renderers use: (category, weight) and (category, weight, draw).
    grid = np.array([(c, w, d) for c in (0, 1, 41, 999) for w in range(25) for d in range(10)])
    got = stream_keys(1, "render-patches", grid)
    assert got.dtype == np.uint64 and got.shape == (len(grid),)
    assert np.array_equal(got, _reference(1, "render-patches", grid))
    assert len(set(got.tolist())) == len(grid)  # distinct streams
    pairs = grid[::10, :2]
    assert np.array_equal(stream_keys(1, "render-points", pairs), _reference(1, "render-points", pairs))


def test_ids_of_several_words_fall_back_to_seedsequence():
    ids = np.array([[2**32, 5], [2**40 + 7, 0], [1, 2**63]], dtype=np.uint64)
    assert np.array_equal(stream_keys(3, "render-points", ids), _reference(3, "render-points", ids))


def test_empty_and_bad_shapes():
    assert stream_keys(1, "render-points", np.zeros((0, 2), dtype=np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="2-D"):
        stream_keys(1, "render-points", [1, 2, 3])
    with pytest.raises(ValueError):  # SeedSequence refuses negative ids; so does the fallback
        stream_keys(1, "render-points", [[-1, 0]])


def test_stream_key_is_numpys_seedsequence():
    """stream_key's compiled mixing against NumPy's SeedSequence itself, over every
    purpose, edge words (0, 2**32 - 1), up to 12 ids, and ids/seeds past 32 bits
    (which go to SeedSequence)."""
    rs = np.random.RandomState(11)
    edge = [0, 1, 2**31, 2**32 - 1]
    for t in range(4000):
        pick = lambda: int(rs.choice(edge)) if rs.rand() < 0.3 else int(rs.randint(0, 2**31))  # noqa: E731
        seed = pick() if t % 50 else 2**40 + t
        purpose = list(PURPOSES)[t % len(PURPOSES)]
        ids = [pick() for _ in range(rs.randint(0, 13))]
        if t % 97 == 0:
            ids.append(2**33 + t)
        want = np.random.SeedSequence(seed, spawn_key=(PURPOSES[purpose], *ids)).generate_state(1, np.uint64)[0]
        got = stream_key(seed, purpose, *ids)
        assert isinstance(got, np.uint64) and got == want, (seed, purpose, ids)
