"""Small statistics for experiments: mean, sample std, and a paired 95 % confidence interval.

The interval of a paired difference is Student's t: ``mean ± t(0.975, n-1) · s / sqrt(n)``
over the per-seed differences (each seed is one split, shared by the two arms).
SciPy (a scikit-learn dependency) gives the t quantile; a table of the first 30
degrees of freedom stands in where SciPy is missing.
"""

from __future__ import annotations

import math

__all__ = ["mean_std", "t_quantile", "paired_ci", "crossed_ci", "holm"]

# t(0.975, df) for df = 1..30 (standard tables).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def mean_std(values) -> tuple:
    """Mean and sample standard deviation (n-1; 0.0 for a single value)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_std of no values")
    m = math.fsum(v) / len(v)
    if len(v) < 2:
        return m, 0.0
    return m, math.sqrt(math.fsum((x - m) ** 2 for x in v) / (len(v) - 1))


def t_quantile(df: int, q: float = 0.975) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    try:
        from scipy.stats import t
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        if q != 0.975:
            raise
        return _T975[df - 1] if df <= 30 else 1.960
    return float(t.ppf(q, df))


def paired_ci(a, b) -> dict:
    """The paired difference ``a - b`` (same seeds, same order): mean, std, n and its 95 % t interval.

    With one pair the interval is unknown (``None``).
    """
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_ci needs two equally long, non-empty lists (got {len(a)} and {len(b)})")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    m, s = mean_std(d)
    if len(d) < 2:
        return {"mean": m, "std": s, "n": 1, "ci95_low": None, "ci95_high": None}
    half = t_quantile(len(d) - 1) * s / math.sqrt(len(d))
    return {"mean": m, "std": s, "n": len(d), "ci95_low": m - half, "ci95_high": m + half}


def _t_sf(t: float, df: float) -> float:
    """Two-sided p-value of Student's t (SciPy; a normal approximation without it)."""
    try:
        from scipy.stats import t as student
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return math.erfc(abs(t) / math.sqrt(2.0))
    return float(2.0 * student.sf(abs(t), df))


def crossed_ci(diffs) -> dict:
    """The mean of a crossed two-level design's differences and its 95 % interval.

    ``diffs[p][f]``: the difference of pretraining seed ``p`` on fine-tuning subset ``f``
    (every row as long).  Model: ``d = mu + a_p + b_f + e``; the mean's variance
    ``s2_a/P + s2_b/F + s2_e/(PF)`` is estimated by ``(MS_p + MS_f) / (PF)`` from the two-way
    mean squares (conservative: it counts ``s2_e/(PF)`` twice), with Satterthwaite's degrees of
    freedom.  One row (P = 1) is exactly the paired t interval over ``f``.  Returns ``mean``,
    ``se``, ``df``, ``ci95_low``, ``ci95_high``, ``p_value`` (two-sided; None with one value).
    """
    rows = [[float(v) for v in r] for r in diffs]
    n_p, n_f = len(rows), len(rows[0]) if rows else 0
    if not n_p or not n_f or any(len(r) != n_f for r in rows):
        raise ValueError("crossed_ci needs a non-empty rectangular table of differences")
    grand = math.fsum(v for r in rows for v in r) / (n_p * n_f)
    none = {"mean": grand, "se": None, "df": None, "ci95_low": None, "ci95_high": None, "p_value": None}
    if n_f < 2:
        return none
    col = [math.fsum(r[f] for r in rows) / n_p for f in range(n_f)]
    ms_f = n_p * math.fsum((c - grand) ** 2 for c in col) / (n_f - 1)
    ms_p = 0.0
    if n_p > 1:
        ms_p = n_f * math.fsum((math.fsum(r) / n_f - grand) ** 2 for r in rows) / (n_p - 1)
    var = (ms_p + ms_f) / (n_p * n_f)
    denom = ms_f ** 2 / (n_f - 1) + (ms_p ** 2 / (n_p - 1) if n_p > 1 else 0.0)
    df = (ms_p + ms_f) ** 2 / denom if denom > 0 else float(n_f - 1)
    se = math.sqrt(var)
    if se == 0.0:
        return {**none, "se": 0.0, "df": df, "ci95_low": grand, "ci95_high": grand,
                "p_value": 1.0 if grand == 0 else 0.0}
    half = t_quantile(df) * se
    return {"mean": grand, "se": se, "df": df, "ci95_low": grand - half, "ci95_high": grand + half,
            "p_value": _t_sf(grand / se, df)}


def holm(p_values) -> list:
    """Holm's step-down adjusted p-values, in the order given (None stays None)."""
    given = [(p, i) for i, p in enumerate(p_values) if p is not None]
    out = [None] * len(p_values)
    m, running = len(given), 0.0
    for rank, (p, i) in enumerate(sorted(given)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
