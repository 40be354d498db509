"""Post-processing of noisy counts: what the public sees.

Everything here reads the *noisy* vector only, never a true count (invariant 8), so none of it
costs privacy budget or weakens the guarantee:

- **Non-negative integers.** Noisy counts are integers already (discrete noise); negative ones
  are clamped to 0. Because true counts are never negative, clamping never moves a cell
  further from its true value.
- **Small cells.** With ``min_cell > 0``, a cell whose clamped noisy value is below it is
  published as ``suppressed: true``, ``value: null``, ``display: "<{min_cell}"``. A suppressed
  cell exposes no number at all.
- **Marginal totals** per key of the first dimension (the time dimension in every example
  agreement). A total is the sum of the *unclamped* noisy cells of its row, then clamped:
  summing clamped cells would add a positive bias from every empty cell, while the raw sum's
  error is exactly the sum of the cells' independent noise, whose 95% bound
  :func:`~publishers.mechanisms.sum_error_bound` computes. A total below ``min_cell`` is
  suppressed like a cell. A total whose row has exactly one suppressed cell is withheld
  (``display: "withheld"``): otherwise subtracting the row's published cells from it would give
  back the suppressed cell's number.

Sums, means and rates (:func:`publish_measure`) follow the same rules with their own numbers:

- a sum is an integer, clamped at 0 when no value can be negative; it is suppressed when its
  noisy row count is below ``min_cell``;
- a mean (two decimals) and a rate (a share, four decimals) carry the conservative 95%
  interval of :mod:`publishers.measures`, rounded outwards; a mean is suppressed when its noisy
  count is below ``min_cell``, a rate when its noisy numerator or the rest of its denominator
  is (either could otherwise be read back from the rate and the denominator). Suppressed
  entries read ``n<{min_cell}`` and carry no number at all;
- totals add the row's unclamped noisy vectors and read them the same way, with bounds for the
  sums of draws; the withheld rule above applies unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

import numpy as np

from contracts.model import Value
from publishers.cells import CellSpace, IntArray
from publishers.measures import mean_estimate, rate_estimate

WITHHELD = "withheld"


class PublishedCell(TypedDict):
    """One published cell: its key, and either its value or the fact that it is suppressed.

    Sums add ``count`` and ``error_bound_95``; means add ``count``, ``lower`` and ``upper``;
    rates add ``numerator``, ``denominator``, ``lower`` and ``upper`` (all noisy, all ``None``
    when the cell is suppressed)."""

    key: dict[str, str]
    value: int | float | None
    display: str
    suppressed: bool
    count: NotRequired[int | None]
    numerator: NotRequired[int | None]
    denominator: NotRequired[int | None]
    lower: NotRequired[float | None]
    upper: NotRequired[float | None]
    error_bound_95: NotRequired[float | None]


class PublishedTotal(PublishedCell):
    """A marginal total over every cell that shares one key of the first dimension."""

    cells: int


def clamp_non_negative(noisy: IntArray) -> IntArray:
    """Noisy counts as non-negative integers."""
    return np.maximum(noisy.astype(np.int64, copy=False), 0)


def small_cell_display(min_cell: int) -> str:
    return f"<{min_cell}"


def is_small(values: IntArray, min_cell: int) -> np.ndarray:
    """Which (clamped, noisy) values fall under the small-cell threshold."""
    if min_cell <= 0:
        return np.zeros(values.shape, dtype=np.bool_)
    return values < min_cell


def publish_cells(space: CellSpace, noisy: IntArray, min_cell: int) -> tuple[PublishedCell, ...]:
    """The public form of every cell, in cell order."""
    values = clamp_non_negative(noisy)
    small = is_small(values, min_cell)
    hidden = small_cell_display(min_cell)
    return tuple(
        PublishedCell(
            key=key,
            value=None if s else int(v),
            display=hidden if s else str(int(v)),
            suppressed=bool(s),
        )
        for key, v, s in zip(space.keys(), values.tolist(), small.tolist(), strict=True)
    )


def marginal_totals(
    space: CellSpace, noisy: IntArray, min_cell: int, error_bound_95: float
) -> tuple[PublishedTotal, ...]:
    """Totals per key of the first dimension (none for an aggregate without dimensions).

    ``error_bound_95`` is the bound for a sum of ``space.size / len(first.keys)`` cells; the
    caller computes it from the mechanism (see the module docstring).
    """
    if not space.dimensions:
        return ()
    first = space.dimensions[0]
    rows = noisy.astype(np.int64, copy=False).reshape(len(first.keys), -1)
    per_row = rows.shape[1]
    sums = clamp_non_negative(rows.sum(axis=1))
    small = is_small(sums, min_cell)
    cells_small = is_small(clamp_non_negative(rows), min_cell).sum(axis=1)
    out: list[PublishedTotal] = []
    for key, total, s, n_small in zip(
        first.keys, sums.tolist(), small.tolist(), cells_small.tolist(), strict=True
    ):
        if s:
            value, display = None, small_cell_display(min_cell)
        elif n_small == 1:
            value, display = None, WITHHELD
        else:
            value, display = int(total), str(int(total))
        out.append(
            PublishedTotal(
                key={first.name: key},
                value=value,
                display=display,
                suppressed=value is None,
                cells=per_row,
                error_bound_95=error_bound_95,
            )
        )
    return tuple(out)


def _round_out(x: float, digits: int, up: bool) -> float:
    scale = 10.0**digits
    return (math.ceil(x * scale - 1e-9) if up else math.floor(x * scale + 1e-9)) / scale


def _entry(
    measure: str,
    noisy: Mapping[str, float],
    bounds: Mapping[str, float],
    min_cell: int,
    value: Value | None,
) -> dict[str, Any]:
    """One published sum, mean or rate from its noisy vectors' values (see module docs)."""
    hidden = f"n<{min_cell}"
    if measure == "sum":
        assert value is not None
        count = max(int(noisy["count"]), 0)
        total = int(noisy["sum"])
        if value.bounds[0] >= 0:
            total = max(total, 0)
        elif value.bounds[1] <= 0:
            total = min(total, 0)
        small = min_cell > 0 and count < min_cell
        return {
            "value": None if small else total,
            "display": hidden if small else str(total),
            "suppressed": small,
            "count": None if small else count,
            "error_bound_95": bounds["sum"],
        }
    if measure == "mean":
        assert value is not None
        count = max(int(noisy["count"]), 0)
        est = mean_estimate(noisy["sum"], noisy["count"], bounds["sum"], bounds["count"], value)
        digits, shown = 2, (lambda v: f"{v:.1f}")
        extras = {"count": count}
        small = (min_cell > 0 and count < min_cell) or est.value is None
    else:
        numerator = max(int(noisy["numerator"]), 0)
        denominator = numerator + max(int(noisy["rest"]), 0)
        est = rate_estimate(noisy["numerator"], noisy["rest"], bounds["split"])
        digits, shown = 4, (lambda v: f"{v:.1%}")
        extras = {"numerator": numerator, "denominator": denominator}
        rest = denominator - numerator
        small = (min_cell > 0 and min(numerator, rest) < min_cell) or est.value is None
    if small or est.value is None:
        return {
            "value": None,
            "display": hidden,
            "suppressed": True,
            **dict.fromkeys(extras),
            "lower": None,
            "upper": None,
        }
    point = round(est.value, digits)
    return {
        "value": point,
        "display": shown(point),
        "suppressed": False,
        **extras,
        "lower": _round_out(est.lower, digits, up=False),
        "upper": _round_out(est.upper, digits, up=True),
    }


def publish_measure(
    space: CellSpace,
    measure: str,
    noisy: Mapping[str, IntArray],
    cell_bounds: Mapping[str, float],
    total_bounds: Mapping[str, float],
    min_cell: int,
    value: Value | None,
) -> tuple[tuple[PublishedCell, ...], tuple[PublishedTotal, ...]]:
    """Cells and totals of a sum, mean or rate. ``noisy`` holds one vector per part (``sum`` and
    ``count``, or ``numerator`` and ``rest``), in cell order; the bounds are each part's noise
    bound for one cell and for one row's total, at the level the measure's statement needs."""
    keys = space.keys()
    cells = tuple(
        cast(
            PublishedCell,
            {
                "key": key,
                **_entry(
                    measure,
                    {k: float(v[i]) for k, v in noisy.items()},
                    cell_bounds,
                    min_cell,
                    value,
                ),
            },
        )
        for i, key in enumerate(keys)
    )
    if not space.dimensions:
        return cells, ()
    first = space.dimensions[0]
    per_row = space.size // len(first.keys)
    rows = {k: v.astype(np.int64).reshape(len(first.keys), per_row) for k, v in noisy.items()}
    totals = []
    for r, key in enumerate(first.keys):
        entry = _entry(
            measure, {k: float(v[r].sum()) for k, v in rows.items()}, total_bounds, min_cell, value
        )
        row_cells = cells[r * per_row : (r + 1) * per_row]
        if not entry["suppressed"] and sum(c["suppressed"] for c in row_cells) == 1:
            entry = {
                **{k: None for k in entry},
                "display": WITHHELD,
                "suppressed": True,
            }
        if measure == "sum":
            entry["error_bound_95"] = total_bounds["sum"]
        totals.append(cast(PublishedTotal, {"key": {first.name: key}, **entry, "cells": per_row}))
    return cells, tuple(totals)
