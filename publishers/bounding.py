"""Contribution bounding and the sensitivity it buys.

The privacy unit is the (linked) person. Before any noise is added, each person's influence on
the count vector is capped:

- ``count_rows``: keep at most ``k = max_rows_per_person_per_period`` of a person's rows in each
  contribution period (calendar month, quarter or year of the time field; the whole window
  when the aggregate has no time field);
- ``count_persons``: first merge a person's rows that fall in the same cell (a person counts at
  most once per cell), then keep at most ``k`` of the person's cells per period. A cell that
  spans several periods is charged to the period of the row that represents it.
- ``sum`` and ``mean`` keep rows as ``count_rows`` does, and add up each kept row's value,
  already clamped into ``[lower, upper]`` (``measures.py``); ``rate_rows`` and ``rate_persons``
  bound rows or person-cells as the counts do (see ``measures.py`` for how the numerator rides
  along without costing more sensitivity).

Which rows survive is decided by a keyed pseudo-random priority computed from
``(seed, person_id, cell, period)`` only, so one person's choice never depends on anyone
else's rows (adding or removing a person changes no one else's kept rows), and rows that tie
are interchangeable (same person, cell and period, and for sums and means the same value).

Sensitivity over a window that touches ``P`` periods (see :func:`sensitivity_for`):

==============  ==========================  =========================================
measure         L1                          L2
==============  ==========================  =========================================
count_rows      k·P                         k·√P when a time dimension nests inside the
                                            periods (every cell in exactly one period),
                                            else k·P (all rows may land in one cell)
count_persons   min(k·P, cells)             √min(k·P, cells) (each cell changes by ≤ 1)
sum of values   M·(count_rows' L1)          M·(count_rows' L2), M = max(|lower|, |upper|)
==============  ==========================  =========================================

Irrational values are rounded *up* to the next float, so sensitivity is never understated.

Caveat: the bound is per linked person id. If linkage splits one human into several ids, each
id gets its own allowance; see the privacy statement in ``dashboard.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from contracts.model import Aggregate, ContributionBound
from publishers.cells import IntArray, Placement, nests_in_periods, periods_in_window

U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class Sensitivity:
    """How much one person can move the bounded count vector (L1 and L2 norms)."""

    l1: float
    l2: float
    bound: int
    periods: int
    nested: bool

    def as_dict(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


def _scaled_sqrt_up(k: int, m: int) -> float:
    """The smallest float ``x`` with ``x >= k·√m`` exactly (``x² ≥ k²·m`` in rationals)."""
    x = k * math.sqrt(m)
    while Fraction(x) ** 2 < k * k * m:
        x = math.nextafter(x, math.inf)
    return x


#: Measures whose unit is a person × cell (a person counts at most once per cell).
PER_PERSON_CELL = ("count_persons", "rate_persons")


def sensitivity_for(
    aggregate: Aggregate,
    bound: ContributionBound,
    window_start: dt.date,
    window_end: dt.date,
    n_cells: int,
    magnitude: int = 1,
) -> Sensitivity:
    """The L1/L2 sensitivity of the bounded vector; needs no data (see module docs).

    ``magnitude`` is the largest absolute value one kept row adds to its cell: 1 for counts,
    ``M`` for a sum of values clamped into ``[-M, M]`` (rows-based measures only).
    """
    k = bound.max_rows_per_person_per_period
    if aggregate.time_field is None:
        periods = 1  # the whole window is one period
    else:
        periods = periods_in_window(window_start, window_end, bound.period)
    nested = aggregate.time_field is not None and nests_in_periods(aggregate, bound.period)
    if aggregate.measure in PER_PERSON_CELL:
        if magnitude != 1:
            raise ValueError("person-cell measures add 1 per unit; magnitude must be 1")
        touched = min(k * periods, max(n_cells, 1))
        return Sensitivity(float(touched), _scaled_sqrt_up(1, touched), k, periods, nested)
    per_period = k * magnitude
    l2 = _scaled_sqrt_up(per_period, periods) if nested else float(per_period * periods)
    return Sensitivity(float(per_period * periods), l2, k, periods, nested)


@dataclass(frozen=True)
class BoundedCounts:
    """The true (bounded) count per cell, and what bounding did to the rows.

    ``counts`` (and ``sums``, the kept rows' values added up per cell when values were given)
    are exact statistics of private data: they go to the mechanism and nowhere else.
    """

    counts: IntArray
    used: int
    dropped_by_bounding: int
    merged_into_person_cells: int
    sums: IntArray | None = None


def new_seed() -> int:
    """A fresh bounding seed when the caller does not fix one."""
    return secrets.randbits(63)


def _mix(x: U64) -> U64:
    """SplitMix64's finaliser: spreads every input bit over the 64-bit output."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_priorities(
    placement: Placement, rows: IntArray, seed: int, values: IntArray | None = None
) -> U64:
    """A pseudo-random priority per row, a keyed function of (person_id, cell, period) and,
    for measures that add up values, of the row's value.

    The person id itself (not its factorised code, which depends on the order of everyone's
    rows) goes through a SipHash keyed by the seed. Rows that tie are interchangeable: same
    person, cell, period (and value), so which one a stable sort keeps, which depends on the
    order the rows arrive in, never changes the bounded statistic. Without the value, a sum
    would keep one of a person's tied rows or another by arrival order, and the order of other
    people's rows could move that person's contribution by more than the sensitivity.
    """
    key = hashlib.sha256(f"ovphub/bounding/{seed}".encode()).hexdigest()[:16]
    person_hash = pd.util.hash_array(placement.person_ids, hash_key=key, categorize=False)
    cell = placement.cell[rows].astype(np.uint64)
    period = placement.period[rows].astype(np.uint64)
    salt = _mix(cell ^ (period << np.uint64(32)))
    if values is not None:
        salt = _mix(salt ^ values[rows].astype(np.int64).view(np.uint64))
    return _mix(person_hash[placement.person[rows]] ^ salt)


def _order_within_groups(groups: IntArray, priority: U64) -> IntArray:
    """Indices that sort by group, then by priority (a stable sort: ties keep input order)."""
    if groups.size == 0:
        return np.zeros(0, dtype=np.int64)
    gbits = int(groups.max()).bit_length()
    if gbits > 32:
        return np.lexsort((priority, groups)).astype(np.int64, copy=False)
    # One 64-bit key (the group in the high bits, the top 32+ bits of the priority below it)
    # sorts in a single pass, several times faster than a two-key lexsort. Priorities that
    # tie in their top bits are equally likely either way round.
    combined = priority >> np.uint64(gbits)
    if gbits:
        combined |= groups.astype(np.uint64) << np.uint64(64 - gbits)
    return np.argsort(combined, kind="stable").astype(np.int64, copy=False)


def _rank_in_group(sorted_groups: IntArray) -> IntArray:
    """0, 1, 2, ... within each run of equal values of an already sorted array."""
    m = sorted_groups.size
    starts = np.ones(m, dtype=np.bool_)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    positions = np.arange(m, dtype=np.int64)
    return positions - np.maximum.accumulate(np.where(starts, positions, 0))


def _keep_first(rows: IntArray, groups: IntArray, priority: U64, k: int) -> IntArray:
    """Of ``rows``, keep the ``k`` of lowest priority in each group."""
    order = _order_within_groups(groups, priority)
    rank = _rank_in_group(groups[order])
    return rows[order[rank < k]]


def bound_contributions(
    placement: Placement,
    measure: str,
    k: int,
    n_cells: int,
    seed: int,
    values: IntArray | None = None,
) -> BoundedCounts:
    """Cap each person's contribution and count the survivors per cell; with ``values`` (one
    per row, already clamped), also add up the survivors' values per cell."""
    rows = np.flatnonzero(placement.cell >= 0).astype(np.int64)
    placed = rows.size
    if placed == 0:
        zeros = np.zeros(n_cells, dtype=np.int64)
        return BoundedCounts(zeros, 0, 0, 0, None if values is None else zeros.copy())
    priority = row_priorities(placement, rows, seed, values)
    person = placement.person[rows]
    merged = 0
    if measure in PER_PERSON_CELL:
        if values is not None:
            raise ValueError("person-cell measures count units; they add up no values")
        # One unit per person × cell, represented by the person's lowest-priority row there.
        pair = person * n_cells + placement.cell[rows]
        index = np.arange(placed, dtype=np.int64)
        first = _keep_first(index, pair - pair.min(), priority, 1)
        rows, priority, person = rows[first], priority[first], person[first]
        merged = placed - rows.size
    period = placement.period[rows]
    span = int(period.max() - period.min()) + 1
    groups = person * span + (period - period.min())
    kept = _keep_first(rows, groups, priority, k)
    counts = np.bincount(placement.cell[kept], minlength=n_cells).astype(np.int64)
    sums = None
    if values is not None:
        # Exact: float64 holds integers to 2^53, far above any bounded sum of one release.
        weights = values[kept].astype(np.float64)
        sums = np.rint(np.bincount(placement.cell[kept], weights, n_cells)).astype(np.int64)
    return BoundedCounts(counts, int(kept.size), int(rows.size - kept.size), merged, sums)
