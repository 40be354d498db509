"""Sums, means and rates: what each row adds, and how each is noised and read back.

Counts (``count_rows``, ``count_persons``) release one noisy vector. The other measures are
built so that the person stays the unit and the sensitivity stays known without the data:

``sum`` / ``mean``
    Each row's value (an integer field, or the days between two of the row's dates) is clamped
    into the agreement's ``bounds = [L, U]``; rows without a value are left out. Rows are
    bounded as for ``count_rows`` (``k`` per person per period), and two vectors are noised:
    the sum of the kept values (sensitivity ``M`` times that of a row count, ``M = max(|L|,
    |U|)``) and the count of kept rows. The budget is split between them, ``SUM_SHARE`` to the
    sum. A mean adds up ``value - c`` with ``c`` the middle of the bounds (``M`` halves) and
    publishes ``c + sum/count``.

``rate_rows`` / ``rate_persons``
    A unit (a row, or a person in a cell) is *in* the numerator or *not*: never both. So the
    numerator and the rest are counted as one vector of twice the cells, which one unit
    changes in only one place: the same sensitivity as the plain count, with the whole budget.
    The denominator is numerator + rest. For ``rate_persons`` a person is in the numerator of a
    cell when any of their rows there meets the condition.

Accuracy. A rate or a mean is a ratio of two noisy numbers, so its statement is an interval
computed from the noisy values only (post-processing): each of the two noisy numbers is within
its ``alpha/2`` bound with probability at least ``1 - alpha/2``; both are, with probability at
least ``1 - alpha`` (union bound), and then the true ratio lies between the ratio's extremes
over those two ranges. The interval is conservative (it covers at least 95%, usually more).
A sum's statement is its own 95% noise bound, as for a count.

Linked conditions (``numerator.linked``): the row's person has a row in another dataset, with
the given values, dated ``days_from`` to ``days_to`` days after this row's date (negative:
before). The other dataset's rows come in their own frame (``person_id`` and its fields) and
are read only here, to set the flag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from contracts.model import (
    RATE_MEASURES,
    VALUE_MEASURES,
    Aggregate,
    Condition,
    ContributionBound,
    LinkedEvent,
    Value,
)
from publishers.bounding import PER_PERSON_CELL, Sensitivity, sensitivity_for
from publishers.cells import PERSON_COLUMN, BoolArray, IntArray, Placement
from publishers.errors import ReleaseRefused, RowsMismatch

if TYPE_CHECKING:
    from publishers.mechanisms import PrivacyModel

SUM_SHARE = 0.75
"""Share of a sum's or mean's budget spent on the sum; the rest goes to the count. The mean's
error is about ``(σ_sum + |mean - c|·σ_count) / count``; centring makes the second term small,
so most of the budget buys a quieter sum (0.75 is near the optimum for means within a quarter
of the range of the middle of the bounds)."""

EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class Component:
    """One noisy vector of a release: what it counts, its sensitivity and its budget share."""

    name: str  # "count", "sum" or "split" (numerator cells, then the rest)
    sensitivity: Sensitivity
    share: float


def is_ratio(measure: str) -> bool:
    return measure == "mean" or measure in RATE_MEASURES


def centre(value: Value) -> int:
    """The integer nearest the middle of the bounds, subtracted from values a mean adds up."""
    lower, upper = value.bounds
    return (lower + upper) // 2


def magnitude(value: Value, centred: bool) -> int:
    """The largest absolute value one row adds: ``M`` (sum) or ``M`` after centring (mean)."""
    lower, upper = value.bounds
    c = centre(value) if centred else 0
    return max(abs(lower - c), abs(upper - c))


def components(
    aggregate: Aggregate,
    bound: ContributionBound,
    window_start: dt.date,
    window_end: dt.date,
    n_cells: int,
) -> tuple[Component, ...]:
    """The noisy vectors a release of ``aggregate`` is made of (see the module docstring)."""

    def sens(size: int = 1) -> Sensitivity:
        return sensitivity_for(aggregate, bound, window_start, window_end, n_cells, size)

    if aggregate.measure in VALUE_MEASURES:
        assert aggregate.value is not None
        size = magnitude(aggregate.value, centred=aggregate.measure == "mean")
        return (
            Component("sum", sens(max(size, 1)), SUM_SHARE),
            Component("count", sens(), 1.0 - SUM_SHARE),
        )
    if aggregate.measure in RATE_MEASURES:
        return (Component("split", sens(), 1.0),)
    return (Component("count", sens(), 1.0),)


def _days(column: pd.Series) -> tuple[IntArray, BoolArray]:
    """Stored dates (``YYYY-MM-DD``, or longer text starting with one) as days since 1970."""
    text = column.astype("string").str.slice(0, 10)
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    ok = parsed.notna().to_numpy()
    days = np.zeros(len(column), dtype=np.int64)
    if ok.any():
        day_values = parsed[ok].to_numpy().astype("datetime64[D]")
        days[ok] = (day_values - EPOCH).astype(np.int64)
    return days, ok


def _days_between(rows: pd.DataFrame, fields: tuple[str, str]) -> tuple[IntArray, BoolArray]:
    start, start_ok = _days(rows[fields[0]])
    end, end_ok = _days(rows[fields[1]])
    return end - start, start_ok & end_ok


def row_values(value: Value, rows: pd.DataFrame) -> tuple[IntArray, BoolArray]:
    """Each row's value clamped into the bounds, and whether the row has one."""
    if value.days_between is not None:
        raw, ok = _days_between(rows, value.days_between)
    else:
        numbers = pd.to_numeric(rows[str(value.field)], errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(numbers)
        raw = np.zeros(len(rows), dtype=np.int64)
        # Clamped while still floats: a value past the int64 range must not wrap round.
        raw[ok] = np.rint(np.clip(numbers[ok], *value.bounds)).astype(np.int64)
    lower, upper = value.bounds
    return np.clip(raw, lower, upper).astype(np.int64), ok


def _in(column: pd.Series, allowed: tuple[str, ...]) -> BoolArray:
    return column.isin(list(allowed)).to_numpy(dtype=np.bool_)


def _linked_flags(
    event: LinkedEvent,
    rows: pd.DataFrame,
    time_field: str | None,
    other: pd.DataFrame,
    placed: BoolArray,
) -> BoolArray:
    if time_field is None:
        raise ReleaseRefused(
            f"a linked condition on {event.dataset} compares dates, so the aggregate needs a "
            "time_field"
        )
    missing = [c for c in (PERSON_COLUMN, *event.fields) if c not in other.columns]
    if missing:
        raise RowsMismatch(
            f"The rows of linked dataset {event.dataset} lack the column(s) "
            f"{', '.join(missing)}; the hub must pass {PERSON_COLUMN}, {', '.join(event.fields)}."
        )
    keep = np.ones(len(other), dtype=np.bool_)
    for name, allowed in event.filters.items():
        keep &= _in(other[name], allowed)
    other_days, other_ok = _days(other[event.time_field])
    keep &= other_ok
    own_days, own_ok = _days(rows[time_field])
    own_ok = own_ok & placed  # rows in no cell need no flag: fewer pairs held in memory
    theirs = pd.DataFrame(
        {"p": other[PERSON_COLUMN].to_numpy()[keep], "their_day": other_days[keep]}
    ).drop_duplicates()
    own_index = np.flatnonzero(own_ok)
    ours = pd.DataFrame(
        {"p": rows[PERSON_COLUMN].to_numpy()[own_index], "row": own_index, "day": own_days[own_ok]}
    )
    pairs = ours.merge(theirs, on="p", how="inner")
    gap = pairs["their_day"].to_numpy() - pairs["day"].to_numpy()
    hit = (gap >= event.days_from) & (gap <= event.days_to)
    flags = np.zeros(len(rows), dtype=np.bool_)
    flags[pairs["row"].to_numpy()[hit]] = True
    return flags


def numerator_flags(
    aggregate: Aggregate,
    rows: pd.DataFrame,
    linked: dict[str, pd.DataFrame],
    placed: BoolArray | None = None,
) -> BoolArray:
    """Which rows meet the numerator condition (every part of it); ``placed`` (rows that have
    a cell) limits the linked lookups to the rows that count."""
    condition: Condition | None = aggregate.numerator
    assert condition is not None
    flags = np.ones(len(rows), dtype=np.bool_)
    for name, allowed in condition.filters.items():
        flags &= _in(rows[name], allowed)
    if condition.days_between is not None and condition.at_most_days is not None:
        gap, ok = _days_between(rows, condition.days_between)
        flags &= ok & (gap >= 0) & (gap <= condition.at_most_days)
    if condition.linked is not None:
        other = linked.get(condition.linked.dataset)
        if other is None:
            raise RowsMismatch(
                f"Aggregate {aggregate.id} needs the rows of linked dataset "
                f"{condition.linked.dataset}; the hub must pass them."
            )
        if placed is None:
            placed = np.ones(len(rows), dtype=np.bool_)
        flags &= _linked_flags(condition.linked, rows, aggregate.time_field, other, placed)
    return flags


def split_by_flag(placement: Placement, flags: BoolArray, n_cells: int, measure: str) -> Placement:
    """Move every placed unit that is *not* in the numerator to cell ``cell + n_cells``.

    For ``rate_persons`` the unit is the person in a cell: if any of their rows there is in
    the numerator, all of them are, so the person lands in exactly one of the two halves.
    """
    cell = placement.cell
    placed = cell >= 0
    unit_flags = flags.copy()
    if measure in PER_PERSON_CELL and placed.any():
        index = np.flatnonzero(placed)
        pair = placement.person[index] * n_cells + cell[index]
        codes, uniques = pd.factorize(pair)
        any_flag = np.bincount(
            codes, weights=flags[index].astype(np.float64), minlength=len(uniques)
        )
        unit_flags[index] = any_flag[codes] > 0
    moved = np.where(placed & ~unit_flags, cell + n_cells, cell)
    return dataclasses.replace(placement, cell=moved.astype(np.int64))


def drop_rows(placement: Placement, without: BoolArray) -> tuple[Placement, int]:
    """Take placed rows marked ``without`` out of their cells; returns how many were placed."""
    hit = without & (placement.cell >= 0)
    cell = np.where(hit, np.int64(-1), placement.cell)
    return dataclasses.replace(placement, cell=cell), int(hit.sum())


@dataclass(frozen=True)
class Estimate:
    """A published ratio (a mean or a share) and its conservative 95% interval."""

    value: float | None
    lower: float
    upper: float


def rate_estimate(numerator: float, rest: float, bound: float) -> Estimate:
    """The share ``n / (n + r)`` from noisy ``numerator`` and ``rest``, each within ``bound``
    of its true value (at the ``alpha/2`` level); the interval spans every share those ranges
    allow."""
    n_hat, r_hat = max(numerator, 0.0), max(rest, 0.0)
    total = n_hat + r_hat
    value = n_hat / total if total > 0 else None
    n_lo, n_hi = max(numerator - bound, 0.0), max(numerator + bound, 0.0)
    r_lo, r_hi = max(rest - bound, 0.0), max(rest + bound, 0.0)
    lower = n_lo / (n_lo + r_hi) if n_lo + r_hi > 0 else 0.0
    upper = n_hi / (n_hi + r_lo) if n_hi + r_lo > 0 else 1.0
    return Estimate(value, lower, upper)


def mean_estimate(
    centred_sum: float, count: float, sum_bound: float, count_bound: float, value: Value
) -> Estimate:
    """The mean ``c + s / n`` from a noisy centred sum and count; the interval spans every mean
    those ranges allow (the true count of a cell with a mean is a whole number, at least 1)."""
    lower_b, upper_b = float(value.bounds[0]), float(value.bounds[1])
    c = float(centre(value))
    estimate = c + centred_sum / count if count >= 1 else None
    if estimate is not None:
        estimate = min(max(estimate, lower_b), upper_b)
    n_lo = max(math.ceil(count - count_bound), 1)
    n_hi = count + count_bound
    if n_hi < 1:
        return Estimate(estimate, lower_b, upper_b)
    s_lo, s_hi = centred_sum - sum_bound, centred_sum + sum_bound
    corners = [s / n for s in (s_lo, s_hi) for n in (n_lo, max(n_hi, n_lo))]
    lo = c + min(corners)
    hi = c + max(corners)
    return Estimate(estimate, max(lo, lower_b), min(hi, upper_b))


def noise_bound(model: PrivacyModel, scale: float, cells: int, alpha: float) -> float:
    """The ``1 - alpha`` bound on the sum of ``cells`` noise draws (one draw when 1)."""
    from publishers.mechanisms import error_bound, sum_error_bound

    if cells == 1:
        return error_bound(model, scale, alpha)
    return sum_error_bound(model, scale, cells, alpha)
