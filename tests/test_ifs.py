"""The IFS model, the official category CSV format and the weight tables.

Facts pinned here come from the original FractalDB release (SPEC 1.1-1.2):
category files are written by ``np.savetxt(..., delimiter=',')`` and the
``weights_0.4`` table holds the identity plus each coefficient scaled by
0.2, 0.6, 1.4 and 1.8, parsed from decimal text.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import published

from fractaldb.errors import ConfigError, FractalDBError, InputError
from fractaldb.ifs.system import IFS, load_categories, parse_csv, read_csv, to_csv_bytes, write_csv
from fractaldb.ifs.weights import parse_weights

def _sierpinski() -> IFS:
    maps = [[0.5, 0, 0, 0.5, 0, 0], [0.5, 0, 0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5, 0.25, 0.5]]
    return IFS(np.array(maps), np.full(3, 1 / 3))


# --------------------------------------------------------------------------- model


def test_valid_ifs_is_frozen_float64():
    ifs = _sierpinski()
    assert ifs.n_maps == 3
    assert ifs.maps.dtype == np.float64 and ifs.probs.dtype == np.float64
    # Read-only arrays: a category cannot change under a renderer's feet.
    with pytest.raises(ValueError):
        ifs.maps[0, 0] = 1.0
    assert ifs.rows().shape == (3, 7)
    np.testing.assert_array_equal(ifs.rows()[:, 6], ifs.probs)


def test_from_rows_round_trip_and_equality():
    ifs = _sierpinski()
    again = IFS.from_rows(ifs.rows())
    assert again == ifs and hash(again) == hash(ifs)
    other = IFS.from_rows(np.concatenate([ifs.maps * 0.9, ifs.probs[:, None]], axis=1))
    assert other != ifs


def test_cumulative_accumulates_left_to_right():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    ifs = IFS(np.zeros((4, 6)), probs)
    # The original accumulates with ``cum += p``: 0.1 + 0.2 is 0.30000000000000004.
    expected = [0.1, 0.1 + 0.2, 0.1 + 0.2 + 0.3, 0.1 + 0.2 + 0.3 + 0.4]
    assert ifs.cumulative().tolist() == expected


def test_weighted_scales_coefficients_not_probs():
    ifs = _sierpinski()
    w = ifs.weighted([2, 1, 1, 1, 1, 3])
    np.testing.assert_array_equal(w[:, 0], ifs.maps[:, 0] * 2)
    np.testing.assert_array_equal(w[:, 5], ifs.maps[:, 5] * 3)
    np.testing.assert_array_equal(w[:, 1:5], ifs.maps[:, 1:5])


@pytest.mark.parametrize(
    "maps, probs, fragment",
    [
        (np.zeros((2, 5)), [0.5, 0.5], "6 coefficients"),
        (np.zeros(6), [1.0], "6 coefficients"),
        (np.zeros((0, 6)), [], "1 to 32 maps"),
        (np.zeros((33, 6)), np.full(33, 1 / 33), "1 to 32 maps"),
        (np.zeros((2, 6)), [1.0], "one probability per map"),
        ([[np.nan, 0, 0, 0, 0, 0], [0] * 6], [0.5, 0.5], "NaN or inf"),
        ([[np.inf, 0, 0, 0, 0, 0], [0] * 6], [0.5, 0.5], "NaN or inf"),
        (np.zeros((2, 6)), [np.nan, 1.0], ">= 0"),
        (np.zeros((2, 6)), [-0.5, 1.5], ">= 0"),
        (np.zeros((2, 6)), [0.3, 0.3], "sum to 1"),
        (np.zeros((2, 6)), [0.7, 0.7], "sum to 1"),
    ],
)
def test_invalid_ifs_raises_input_error(maps, probs, fragment):
    with pytest.raises(InputError) as info:
        IFS(np.asarray(maps, dtype=np.float64), np.asarray(probs, dtype=np.float64))
    msg = str(info.value)
    assert fragment in msg
    assert "\n" not in msg  # the CLI prints it as one line
    # Library users may catch it as the common base or as a ValueError.
    assert isinstance(info.value, FractalDBError) and isinstance(info.value, ValueError)


def test_map_count_bounds_are_inclusive():
    assert IFS(np.zeros((1, 6)), [1.0]).n_maps == 1
    assert IFS(np.zeros((32, 6)), np.full(32, 1 / 32)).n_maps == 32


def test_sum_message_names_the_sum():
    with pytest.raises(InputError, match=r"sum to 0\.6"):
        IFS(np.zeros((2, 6)), [0.3, 0.3])


# --------------------------------------------------------------------------- CSV


def test_to_csv_bytes_equals_numpy_savetxt():
    ifs = parse_csv(published.text("00002"))
    buf = io.BytesIO()
    np.savetxt(buf, ifs.rows(), delimiter=",")
    assert to_csv_bytes(ifs) == buf.getvalue()
    # ...and that is the published file, byte for byte.
    assert to_csv_bytes(ifs) == published.text("00002").encode("ascii")


def test_csv_parse_is_bit_exact():
    ifs = parse_csv(published.text("00002"))
    assert ifs.n_maps == 2
    assert ifs.maps[0, 0] == 5.837848063254049702e-01
    assert ifs.probs[1] == 3.607718692212917855e-01
    assert parse_csv(to_csv_bytes(ifs).decode()) == ifs


def test_write_csv_read_csv_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    maps = rng.uniform(-1, 1, size=(7, 6))
    probs = rng.uniform(0, 1, size=7)
    ifs = IFS(maps, probs / probs.sum())
    path = tmp_path / "00012.csv"
    write_csv(ifs, path)
    assert read_csv(path) == ifs
    assert path.read_bytes() == to_csv_bytes(ifs)
    # Written under a temporary name and renamed: nothing else is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00012.csv"]


def test_parse_csv_skips_blank_and_comment_lines():
    text = "# a comment\n\n" + published.text("00002") + "\n   \n"
    assert parse_csv(text) == parse_csv(published.text("00002"))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "no maps found"),
        ("\n# only a comment\n", "no maps found"),
        ("1,2,3,4,5,6\n", "line 1 has 6 values, expected 7"),
        ("0.5,0,0,0.5,0,0,1\n1,2,3,4,5,6,7,8\n", "line 2 has 8 values, expected 7"),
        ("a,b,c,d,e,f,g\n", "line 1 is not 7 comma-separated numbers"),
        ("0.5,0,0,0.5,0,0,nan\n", "line 1 contains NaN or inf"),
        ("0.5,0,0,0.5,0,inf,1\n", "line 1 contains NaN or inf"),
        ("0.5,0,0,0.5,0,0,0.5\n", "sum to 1"),
        ("0.5,0,0,0.5,0,0,-1\n0.5,0,0,0.5,0,0,2\n", ">= 0"),
    ],
)
def test_parse_csv_errors_name_file_and_problem(text, fragment):
    with pytest.raises(InputError) as info:
        parse_csv(text, "cat.csv")
    msg = str(info.value)
    assert msg.startswith("cat.csv: ")
    assert fragment in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "no maps found"),
        (b"1,2,3,4,5,6\n", "has 6 values"),
        (b"x,y,z,1,2,3,4\n", "not 7 comma-separated numbers"),
        (b"NaN,0,0,0.5,0,0,1\n", "NaN or inf"),
        (b"\xff\xfe\x00\x01", "not a text CSV"),
    ],
)
def test_read_csv_errors(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_csv(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_csv(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- load_categories


def test_load_categories_folder_uses_numeric_stems(tmp_path):
    a, b = _sierpinski(), parse_csv(published.text("00002"))
    write_csv(a, tmp_path / "00007.csv")
    write_csv(b, tmp_path / "00003.csv")
    (tmp_path / "categories.json").write_text("{}")  # not a category
    (tmp_path / ".00001.csv.tmp-1").write_text("junk")  # a leftover temporary file
    (tmp_path / ".hidden.csv").write_text("junk")
    ids, systems = load_categories(tmp_path)
    assert ids == [3, 7]
    assert systems == [b, a]


def test_load_categories_non_numeric_names_use_positions(tmp_path):
    write_csv(_sierpinski(), tmp_path / "zeta.csv")
    write_csv(parse_csv(published.text("00002")), tmp_path / "alpha.csv")
    ids, systems = load_categories(tmp_path)
    assert ids == [0, 1]
    assert systems[0] == parse_csv(published.text("00002"))  # sorted by name


def test_load_categories_single_file(tmp_path):
    path = tmp_path / "00042.csv"
    write_csv(parse_csv(published.text("00002")), path)
    ids, systems = load_categories(path)
    assert ids == [42]
    assert systems == [parse_csv(published.text("00002"))]


def test_load_categories_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_categories(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .csv category files"):
        load_categories(empty)
    (empty / "00000.csv").write_text("1,2,3\n")
    with pytest.raises(InputError, match="00000.csv: line 1 has 3 values"):
        load_categories(empty)


# --------------------------------------------------------------------------- weights


def _original_table(factors_below, factors_above):
    """The original weights table as literal rows (identity after a's low factors)."""
    rows = []
    for k in range(6):
        order = list(factors_below) + ([1.0] if k == 0 else []) + list(factors_above)
        for f in order:
            row = [1.0] * 6
            row[k] = f
            rows.append(row)
    return np.array(rows)


def test_weights_04_is_the_original_table():
    table = parse_weights("0.4")
    # Literal decimal doubles, as the original parsed them from weights_0.4.csv.
    expected = _original_table([0.2, 0.6], [1.4, 1.8])
    assert table.shape == (25, 6)
    assert table.dtype == np.float64
    assert table.tobytes() == expected.tobytes()
    # The trap this guards: 1 - 2 * 0.4 is 0.19999999999999996, not 0.2.
    assert table[0, 0] == 0.2 and table[0, 0] != 1 - 2 * 0.4
    assert table[1, 0] == 0.6
    assert table[2].tolist() == [1.0] * 6  # identity
    assert table[4, 0] == 1.8  # weight 04: a x 1.8
    assert table[5, 1] == 0.2 and table[5, 0] == 1.0  # weight 05: b x 0.2
    assert table[24, 5] == 1.8
    # Exactly one factor differs from 1 in every row except the identity.
    assert ((table != 1.0).sum(axis=1) == np.r_[[1, 1, 0], np.ones(22)]).all()


def test_weights_explicit_factors_equal_the_step_table():
    assert parse_weights("0.2,0.6,1.4,1.8").tobytes() == parse_weights("0.4").tobytes()
    assert parse_weights(" 0.4 ").tobytes() == parse_weights("0.4").tobytes()


def test_weights_step_01():
    table = parse_weights("0.1")
    assert table.shape == (25, 6)
    assert table[:5, 0].tolist() == [0.8, 0.9, 1.0, 1.1, 1.2]
    assert table[5:9, 1].tolist() == [0.8, 0.9, 1.1, 1.2]


@pytest.mark.parametrize("step", ["0.0125", "0.025", "0.05", "0.2", "0.3", "0.5"])
def test_weights_original_steps(step):
    table = parse_weights(step)
    s = float(step)
    assert table.shape == (25, 6)
    # Each factor is the double nearest the decimal 1 +- k*step (decimal arithmetic).
    from decimal import Decimal

    d = Decimal(step)
    assert table[:5, 0].tolist() == [float(1 - 2 * d), float(1 - d), 1.0, float(1 + d), float(1 + 2 * d)]
    assert abs(table[0, 0] - (1 - 2 * s)) < 1e-12


@pytest.mark.parametrize("spec", ["none", "None", "identity", "1"])
def test_weights_none_is_one_identity_row(spec):
    table = parse_weights(spec)
    assert table.shape == (1, 6)
    assert table.tolist() == [[1.0] * 6]


def test_weights_ndarray_passes_through():
    arr = np.ones((3, 6))
    assert parse_weights(arr) is arr


@pytest.mark.parametrize(
    "spec",
    ["abc", "", "0", "-0.1", "0.6", "1.5", "nan", "inf", "0.2,1", "0.2,-1", "0.2,abc", ",", "0.2,nan"],
)
def test_bad_weights_raise_config_error(spec):
    with pytest.raises(ConfigError) as info:
        parse_weights(spec)
    assert "\n" not in str(info.value)
    assert "weight" in str(info.value)
