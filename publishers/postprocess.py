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
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from publishers.cells import CellSpace, IntArray

WITHHELD = "withheld"


class PublishedCell(TypedDict):
    """One published cell: its key, and either its value or the fact that it is suppressed."""

    key: dict[str, str]
    value: int | None
    display: str
    suppressed: bool


class PublishedTotal(TypedDict):
    """A marginal total over every cell that shares one key of the first dimension."""

    key: dict[str, str]
    value: int | None
    display: str
    suppressed: bool
    cells: int
    error_bound_95: float


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
