"""Weight tables: the coefficient factors that make a category's instances.

The original ships ``weights_<step>.csv`` tables (steps 0.0125 ... 0.5): the
identity plus each of a, b, c, d, e, f multiplied in turn by ``1 - 2s``,
``1 - s``, ``1 + s``, ``1 + 2s`` (25 rows; the identity sits between the
factors below and above 1 of coefficient a).  Factors are built from decimal
strings, so ``1 - 2 * 0.4`` is exactly the double the original parsed from
``0.2`` (not ``0.19999999999999996``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np

from ..errors import ConfigError

__all__ = ["weight_table", "parse_weights", "factors_for_step"]


def factors_for_step(step: str) -> list:
    """``[1 - 2s, 1 - s, 1 + s, 1 + 2s]`` as exact decimals."""
    s = Decimal(str(step))
    return [Decimal(1) - 2 * s, Decimal(1) - s, Decimal(1) + s, Decimal(1) + 2 * s]


def weight_table(factors) -> np.ndarray:
    """``(1 + 6 * len(factors), 6)`` factor rows in the original order."""
    fs = [Decimal(str(f)) for f in factors]
    below = [f for f in fs if f < 1]
    above = [f for f in fs if f >= 1]
    rows = []
    for k in range(6):
        order = below + ([Decimal(1)] if k == 0 else []) + above
        for f in order:
            row = [1.0] * 6
            row[k] = float(str(f))
            rows.append(row)
    if not fs:
        rows = [[1.0] * 6]
    return np.array(rows, dtype=np.float64)


def parse_weights(spec) -> np.ndarray:
    """Parse a ``--weights`` value into a factor table.

    ``"0.4"`` (a step, as the original's ``weights_0.4.csv``), ``"0.2,0.6,1.4,1.8"``
    (explicit factors), or ``"none"`` (identity only: one weight).
    """
    if isinstance(spec, np.ndarray):
        return spec
    text = str(spec).strip().lower()
    if text in ("none", "identity", "1"):
        return weight_table([])
    try:
        if "," in text:
            values = [Decimal(v.strip()) for v in text.split(",") if v.strip()]
            if not values or any(not v.is_finite() or v < 0 or v == 1 for v in values):
                raise InvalidOperation
            return weight_table(values)
        step = Decimal(text)
    except InvalidOperation:
        raise ConfigError(
            f"weights {spec!r} not understood; give a step such as 0.4, a factor list such as "
            "0.2,0.6,1.4,1.8 (non-negative, not 1), or none"
        ) from None
    if not step.is_finite() or not Decimal(0) < step <= Decimal("0.5"):
        raise ConfigError(f"weight step must be in (0, 0.5], got {spec}; the original tables use 0.0125 ... 0.5")
    return weight_table(factors_for_step(str(step)))
