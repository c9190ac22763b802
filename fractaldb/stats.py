"""Small statistics for experiments: mean, sample std, and a paired 95 % confidence interval.

The interval of a paired difference is Student's t: ``mean ± t(0.975, n-1) · s / sqrt(n)``
over the per-seed differences (each seed is one split, shared by the two arms).
SciPy (a scikit-learn dependency) gives the t quantile; a table of the first 30
degrees of freedom stands in where SciPy is missing.
"""

from __future__ import annotations

import math

__all__ = ["mean_std", "t_quantile", "paired_ci"]

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
