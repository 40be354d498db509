import datetime as dt
import math
import random
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest

from contracts.model import Agreement
from publishers.bounding import (
    _scaled_sqrt_up,
    bound_contributions,
    sensitivity_for,
)
from publishers.cells import build_cell_space, place_rows
from tests.publishers.factories import make_agreement_with, make_rows

START, END = dt.date(2025, 1, 1), dt.date(2025, 12, 31)


def bounded_counts(
    agreement: Agreement,
    rows: pd.DataFrame,
    *,
    start: dt.date = START,
    end: dt.date = END,
    seed: int = 7,
) -> np.ndarray:
    """The exact bounded count vector for ``test_agg`` (what the mechanism would get)."""
    space = build_cell_space(agreement, "test_agg", start, end)
    bound = agreement.outputs.privacy.contribution_bound
    placement = place_rows(space, rows, bound.period)
    return bound_contributions(
        placement,
        space.aggregate.measure,
        bound.max_rows_per_person_per_period,
        space.size,
        seed,
    ).counts


def sensitivity(agreement: Agreement, start: dt.date = START, end: dt.date = END):
    space = build_cell_space(agreement, "test_agg", start, end)
    return sensitivity_for(
        space.aggregate, agreement.outputs.privacy.contribution_bound, start, end, space.size
    )


def make_record(person: str, day: dt.date, vtype: str = "FATAL_SHOOTING", area: str = "1"):
    return {
        "person_id": person,
        "incident_datetime": day.isoformat(),
        "victimization_type": vtype,
        "community_area": area,
    }


def make_random_rows(rng: random.Random, start: dt.date, end: dt.date) -> pd.DataFrame:
    days = (end - start).days
    records = []
    for p in range(rng.randint(2, 6)):
        for _ in range(rng.randint(0, 14)):
            records.append(
                make_record(
                    f"p{p}",
                    start + dt.timedelta(rng.randint(0, days)),
                    rng.choice(["FATAL_SHOOTING", "NON_FATAL_SHOOTING", "ROBBERY_INJURY"]),
                    rng.choice(["1", "2"]),
                )
            )
    columns = ["person_id", "incident_datetime", "victimization_type", "community_area"]
    return make_rows(records, columns=columns)


# (description, aggregate fields, (k, period), window) — nested and non-nested layouts.
LAYOUTS: list[tuple[str, dict[str, Any], tuple[int, str], tuple[dt.date, dt.date]]] = [
    (
        "rows, month in P1Y",
        {"dimensions": ("month", "victimization_type")},
        (2, "P1Y"),
        (dt.date(2024, 11, 1), dt.date(2025, 2, 28)),
    ),
    (
        "rows, month in P3M",
        {"dimensions": ("month",)},
        (1, "P3M"),
        (dt.date(2025, 1, 1), dt.date(2025, 6, 30)),
    ),
    (
        "rows, quarter over P1M",
        {"dimensions": ("quarter", "community_area")},
        (2, "P1M"),
        (dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
    ),
    (
        "rows, no time dimension",
        {"dimensions": ("victimization_type",)},
        (2, "P1M"),
        (dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
    ),
    (
        "persons, month in P1Y",
        {"dimensions": ("month", "community_area"), "measure": "count_persons"},
        (2, "P1Y"),
        (dt.date(2024, 12, 1), dt.date(2025, 1, 31)),
    ),
    (
        "persons, quarter over P1M",
        {"dimensions": ("quarter", "victimization_type"), "measure": "count_persons"},
        (1, "P1M"),
        (dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
    ),
]


@pytest.mark.parametrize(
    ("name", "fields", "bound", "window"), LAYOUTS, ids=[x[0] for x in LAYOUTS]
)
def test_removing_any_person_never_moves_the_counts_more_than_the_stated_sensitivity(
    name: str, fields: dict[str, Any], bound: tuple[int, str], window: tuple[dt.date, dt.date]
):
    agreement = make_agreement_with(bound=bound, **fields)
    start, end = window
    stated = sensitivity(agreement, start, end)
    rng = random.Random(name)
    worst_l1 = worst_l2 = 0.0
    for trial in range(60):
        rows = make_random_rows(rng, start - dt.timedelta(10), end + dt.timedelta(10))
        full = bounded_counts(agreement, rows, start=start, end=end, seed=trial)
        for person in rows["person_id"].unique():
            rest = rows[rows["person_id"] != person]
            diff = full - bounded_counts(agreement, rest, start=start, end=end, seed=trial)
            worst_l1 = max(worst_l1, float(np.abs(diff).sum()))
            worst_l2 = max(worst_l2, math.sqrt(float((diff * diff).sum())))
    assert worst_l1 <= stated.l1
    assert worst_l2 <= stated.l2


def make_worst_case_person(agreement: Agreement, start: dt.date, end: dt.date) -> pd.DataFrame:
    """One person who piles as much as the bound allows into as few cells as possible."""
    bound = agreement.outputs.privacy.contribution_bound
    records = []
    day = start
    while day <= end:
        if day.day == 1:  # one burst on the first of every month
            records += [make_record("worst", day)] * (bound.max_rows_per_person_per_period + 3)
        day += dt.timedelta(1)
    return make_rows(records)


@pytest.mark.parametrize(
    ("dimensions", "bound", "expected_l2"),
    [
        (("month",), (2, "P1Y"), lambda k, p: k * math.sqrt(p)),  # nested
        (("quarter",), (2, "P1M"), lambda k, p: k * p),  # a quarter spans 3 periods
        (("victimization_type",), (3, "P1M"), lambda k, p: k * p),  # no time dimension
    ],
)
def test_a_worst_case_person_attains_the_stated_sensitivity(dimensions, bound, expected_l2):
    # If the stated sensitivity were smaller than this person's real influence, the noise
    # would be too small; the brute-force test above would fail, and so would this one.
    start, end = dt.date(2024, 1, 1), dt.date(2025, 3, 31)
    if dimensions == ("quarter",):
        start, end = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
    agreement = make_agreement_with(dimensions=dimensions, bound=bound)
    stated = sensitivity(agreement, start, end)
    counts = bounded_counts(
        agreement, make_worst_case_person(agreement, start, end), start=start, end=end
    )
    k, p = stated.bound, stated.periods
    assert counts.sum() == stated.l1 == k * p
    assert math.sqrt(float((counts * counts).sum())) == pytest.approx(stated.l2)
    assert stated.l2 == pytest.approx(expected_l2(k, p))


def test_sensitivity_table_for_count_rows_and_count_persons():
    nested_rows = make_agreement_with(dimensions=("month",), bound=(4, "P1Y"))
    s = sensitivity(nested_rows, dt.date(2024, 1, 1), dt.date(2025, 12, 31))
    assert (s.periods, s.l1, s.nested) == (2, 8.0, True)
    assert s.l2 == pytest.approx(4 * math.sqrt(2))
    persons = make_agreement_with(dimensions=("month",), bound=(4, "P1Y"), measure="count_persons")
    s = sensitivity(persons, dt.date(2024, 1, 1), dt.date(2025, 12, 31))
    assert (s.l1, s.l2) == (8.0, pytest.approx(math.sqrt(8)))
    # A period touched by the window counts whole: mid-year to mid-year touches two years.
    s = sensitivity(nested_rows, dt.date(2025, 7, 1), dt.date(2026, 6, 30))
    assert s.periods == 2


def test_count_persons_sensitivity_is_capped_by_the_number_of_cells():
    agreement = make_agreement_with(dimensions=("year",), bound=(5, "P1M"), measure="count_persons")
    s = sensitivity(agreement)  # 12 periods × 5 cells allowed, but only 1 cell exists
    assert (s.l1, s.l2) == (1.0, 1.0)


def test_irrational_l2_sensitivity_is_rounded_up_never_down():
    for k in range(1, 9):
        for periods in range(1, 40):
            x = _scaled_sqrt_up(k, periods)
            assert Fraction(x) ** 2 >= k * k * periods
            assert x == pytest.approx(k * math.sqrt(periods), rel=1e-15)


def test_count_rows_keeps_at_most_k_rows_per_person_per_period():
    agreement = make_agreement_with(dimensions=("month",), bound=(3, "P3M"))
    records = [make_record("p", dt.date(2025, 1, d)) for d in range(1, 11)]  # 10 in Q1
    records += [make_record("p", dt.date(2025, 4, d)) for d in range(1, 3)]  # 2 in Q2
    counts = bounded_counts(agreement, make_rows(records))
    assert counts.sum() == 5
    assert counts[0] == 3 and counts[3] == 2


def test_count_persons_counts_a_person_once_per_cell():
    agreement = make_agreement_with(dimensions=("month",), measure="count_persons")
    records = [make_record("p", dt.date(2025, 1, d)) for d in range(1, 6)]
    records += [make_record("q", dt.date(2025, 1, 9))]
    counts = bounded_counts(agreement, make_rows(records))
    assert counts[0] == 2
    assert counts.sum() == 2


def test_one_persons_kept_rows_do_not_depend_on_anyone_elses_rows():
    agreement = make_agreement_with(dimensions=("month", "community_area"), bound=(2, "P1Y"))
    rng = random.Random(3)
    rows = make_random_rows(rng, START, END)
    alone = [
        bounded_counts(agreement, rows[rows["person_id"] == p]) for p in rows["person_id"].unique()
    ]
    # Shuffling the row order and bounding everyone together changes no one's choice.
    together = bounded_counts(agreement, rows.sample(frac=1, random_state=5))
    assert (together == sum(alone)).all()


def test_the_seed_decides_which_rows_bounding_keeps():
    agreement = make_agreement_with(dimensions=("month",), bound=(1, "P1Y"))
    records = [make_record("p", dt.date(2025, m, 1)) for m in range(1, 13)]
    rows = make_rows(records)
    kept = {int(np.flatnonzero(bounded_counts(agreement, rows, seed=s))[0]) for s in range(40)}
    assert len(kept) > 4  # different seeds keep different months
    same = [bounded_counts(agreement, rows, seed=11).tolist() for _ in range(3)]
    assert same[0] == same[1] == same[2]


def test_without_a_time_field_the_whole_window_is_one_period():
    agreement = make_agreement_with(
        dimensions=("victimization_type",), time_field=None, bound=(2, "P1M")
    )
    s = sensitivity(agreement)
    assert (s.periods, s.l1, s.l2, s.nested) == (1, 2.0, 2.0, False)
    records = [make_record("p", dt.date(2025, m, 1)) for m in range(1, 13)]
    columns = ["person_id", "victimization_type"]
    counts = bounded_counts(agreement, make_rows(records)[columns])
    assert counts.sum() == 2


def test_the_two_key_sort_fallback_orders_like_the_fast_path():
    from publishers.bounding import _order_within_groups

    rng = np.random.default_rng(1)
    groups = rng.integers(0, 50, 2000).astype(np.int64)
    priority = rng.integers(0, 2**63, 2000).astype(np.uint64) * np.uint64(2)
    fast = _order_within_groups(groups, priority)
    slow = _order_within_groups(groups + (1 << 40), priority)  # too wide for one 64-bit key
    assert (groups[fast] == groups[slow]).all() and (priority[fast] == priority[slow]).all()
    assert _order_within_groups(groups[:0], priority[:0]).size == 0
