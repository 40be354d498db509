import datetime as dt

import numpy as np

from publishers.cells import build_cell_space
from publishers.postprocess import clamp_non_negative, marginal_totals, publish_cells
from tests.publishers.factories import make_agreement_with

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)


def make_space(dimensions=("month", "victim_sex")):
    """3 months × 4 sexes = 12 cells (or whatever ``dimensions`` give)."""
    return build_cell_space(make_agreement_with(dimensions=dimensions), "test_agg", START, END)


def test_negative_noisy_values_become_zero_and_others_are_untouched():
    noisy = np.array([-7, -1, 0, 1, 250], dtype=np.int64)
    assert clamp_non_negative(noisy).tolist() == [0, 0, 0, 1, 250]


def test_no_published_cell_is_negative():
    space = make_space()
    noisy = np.arange(-6, 6, dtype=np.int64)
    cells = publish_cells(space, noisy, min_cell=0)
    assert [c["value"] for c in cells] == [0] * 7 + [1, 2, 3, 4, 5]
    assert all(c["display"] == str(c["value"]) for c in cells)


def test_a_small_cell_exposes_no_number():
    space = make_space()
    noisy = np.array([3, 11, 10, -4, 50, 0, 12, 11, 9, 100, 1, 11], dtype=np.int64)
    cells = publish_cells(space, noisy, min_cell=11)
    small = [c for c in cells if c["suppressed"]]
    assert len(small) == 6
    for c in small:
        assert c == {"key": c["key"], "value": None, "display": "<11", "suppressed": True}
    assert [c["value"] for c in cells if not c["suppressed"]] == [11, 50, 12, 11, 100, 11]


def test_min_cell_zero_suppresses_nothing():
    cells = publish_cells(make_space(), np.zeros(12, dtype=np.int64), min_cell=0)
    assert not any(c["suppressed"] for c in cells)


def test_totals_sum_the_unclamped_noisy_cells_of_each_row_then_clamp():
    space = make_space()  # rows are months, 4 cells each
    noisy = np.array([5, -3, 20, 1, -9, -9, -9, 2, 40, 40, 40, 40], dtype=np.int64)
    totals = marginal_totals(space, noisy, min_cell=0, error_bound_95=9.0)
    assert [t["key"] for t in totals] == [{"month": m} for m in ("2025-01", "2025-02", "2025-03")]
    assert [t["value"] for t in totals] == [23, 0, 160]
    assert all(t["cells"] == 4 and t["error_bound_95"] == 9.0 for t in totals)


def test_a_small_total_is_suppressed_like_a_cell():
    space = make_space()
    noisy = np.array([2, 2, 2, 2, 30, 30, 30, 30, 0, 0, 0, 0], dtype=np.int64)
    totals = marginal_totals(space, noisy, min_cell=11, error_bound_95=9.0)
    assert totals[0]["value"] is None
    assert (totals[0]["suppressed"], totals[0]["display"]) == (True, "<11")
    assert totals[1]["value"] == 120


def test_a_total_is_withheld_when_it_would_give_back_its_rows_one_suppressed_cell():
    space = make_space()
    noisy = np.array([4, 50, 60, 70, 4, 5, 60, 70, 50, 60, 70, 80], dtype=np.int64)
    totals = marginal_totals(space, noisy, min_cell=11, error_bound_95=9.0)
    # Row 1 has one small cell: total − published cells would reveal it.
    assert (totals[0]["value"], totals[0]["display"], totals[0]["suppressed"]) == (
        None,
        "withheld",
        True,
    )
    # Row 2 has two: subtraction gives only their sum, so the total is published.
    assert totals[1]["value"] == 139
    assert totals[2]["value"] == 260


def test_suppression_reads_the_noisy_values_it_is_given_and_nothing_else():
    # publish_cells has no access to true counts; the same noisy vector gives the same
    # decision whatever the data were.
    space = make_space()
    noisy = np.array([10, 11, 12, 0, 10, 11, 12, 0, 10, 11, 12, 0], dtype=np.int64)
    decisions = [c["suppressed"] for c in publish_cells(space, noisy, min_cell=11)]
    assert decisions == [True, False, False, True] * 3
