import datetime as dt
import itertools

import pytest

from contracts.plan import field_keys, time_keys
from publishers.cells import build_cell_space, place_rows
from publishers.errors import ReleaseRefused, RowsMismatch
from publishers.release import compute_release
from tests.publishers.factories import (
    CVI,
    POLICE,
    VICTIMIZATION_TYPES,
    make_agreement,
    make_agreement_with,
    make_area_agreement,
    make_rows,
)

START, END = dt.date(2025, 1, 1), dt.date(2025, 12, 31)


def make_police_record(person: str, day: str, vtype: str = "FATAL_SHOOTING", **extra: str):
    return {"person_id": person, "incident_datetime": day, "victimization_type": vtype, **extra}


def test_cells_are_the_product_of_public_keys_even_for_groups_absent_from_the_data():
    agreement = make_agreement(POLICE)
    rows = make_rows([make_police_record("p1", "2025-03-04", "ROBBERY_INJURY")])
    release = compute_release(
        agreement, "viol_monthly", rows, window_start=START, window_end=END, seed=1
    )
    keys = [(c["key"]["month"], c["key"]["victimization_type"]) for c in release.cells]
    expected = list(itertools.product(time_keys(START, END, "month"), VICTIMIZATION_TYPES))
    assert keys == expected
    assert len(release.cells) == 12 * 5


def test_cell_layout_does_not_depend_on_the_data():
    agreement = make_agreement(POLICE)
    empty = make_rows([], columns=["person_id", "incident_datetime", "victimization_type"])
    some = make_rows([make_police_record("p1", "2025-03-04")])
    a = compute_release(agreement, "viol_monthly", empty, window_start=START, window_end=END)
    b = compute_release(agreement, "viol_monthly", some, window_start=START, window_end=END)
    assert [c["key"] for c in a.cells] == [c["key"] for c in b.cells]


def test_non_time_dimensions_take_keys_from_bins_and_declared_values():
    agreement = make_agreement(POLICE)
    space = build_cell_space(agreement, "viol_demog_qtr", START, END)
    dataset = agreement.datasets[0]
    age, sex = dataset.field("victim_age"), dataset.field("victim_sex")
    assert age is not None and sex is not None
    assert [d.name for d in space.dimensions] == ["quarter", "victim_age", "victim_sex"]
    assert list(space.dimensions[0].keys) == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert list(space.dimensions[1].keys) == field_keys(age)
    assert list(space.dimensions[2].keys) == field_keys(sex)
    assert space.size == 4 * 7 * 4


def test_community_area_dimension_uses_the_shipped_key_set():
    space = build_cell_space(make_area_agreement(), "test_agg", START, END)
    assert space.dimensions[1].keys == tuple(str(i) for i in range(1, 78))


def test_rows_land_in_the_cell_named_by_their_values():
    agreement = make_agreement(POLICE)
    space = build_cell_space(agreement, "viol_monthly", START, END)
    rows = make_rows(
        [
            make_police_record("p1", "2025-01-01", "FATAL_SHOOTING"),
            make_police_record("p2", "2025-12-31", "ROBBERY_INJURY"),
            make_police_record("p3", "2025-02-15", "NON_FATAL_SHOOTING"),
        ]
    )
    placement = place_rows(space, rows, "P1Y")
    keys = space.keys()
    placed = [keys[i] for i in placement.cell.tolist()]
    assert placed == [
        {"month": "2025-01", "victimization_type": "FATAL_SHOOTING"},
        {"month": "2025-12", "victimization_type": "ROBBERY_INJURY"},
        {"month": "2025-02", "victimization_type": "NON_FATAL_SHOOTING"},
    ]


def test_rows_outside_the_window_or_without_a_date_are_dropped_and_counted():
    agreement = make_agreement(POLICE)
    space = build_cell_space(agreement, "viol_monthly", START, END)
    rows = make_rows(
        [
            make_police_record("p1", "2024-12-31"),
            make_police_record("p2", "2026-01-01"),
            make_police_record("p3", None),  # type: ignore[arg-type]
            make_police_record("p4", "not-a-date"),
            make_police_record("p5", "2025-06-30"),
        ]
    )
    placement = place_rows(space, rows, "P1Y")
    assert placement.cell.tolist()[:4] == [-1, -1, -1, -1]
    assert placement.cell[4] >= 0
    assert placement.out_of_window == 4
    assert placement.out_of_key_set == 0


def test_values_missing_or_outside_the_key_set_fall_in_no_cell():
    space = build_cell_space(make_area_agreement(), "test_agg", START, END)
    rows = make_rows(
        [
            make_police_record("p1", "2025-05-05", community_area="999"),
            make_police_record("p2", "2025-05-05", community_area=None),  # type: ignore[arg-type]
            make_police_record("p3", "2025-05-05", community_area="77"),
        ]
    )
    placement = place_rows(space, rows, "P1Y")
    assert placement.cell.tolist()[:2] == [-1, -1]
    assert placement.out_of_key_set == 2
    assert placement.placed == 1


def test_filters_keep_only_rows_whose_value_is_listed():
    agreement = make_agreement(POLICE)  # viol_demog_qtr keeps fatal and non-fatal shootings
    space = build_cell_space(agreement, "viol_demog_qtr", START, END)
    common = {"victim_age": "18-24", "victim_sex": "M"}
    rows = make_rows(
        [
            make_police_record("p1", "2025-05-05", "FATAL_SHOOTING", **common),
            make_police_record("p2", "2025-05-05", "NON_FATAL_SHOOTING", **common),
            make_police_record("p3", "2025-05-05", "ROBBERY_INJURY", **common),
            make_police_record("p4", "2025-05-05", None, **common),  # type: ignore[arg-type]
        ]
    )
    placement = place_rows(space, rows, "P1Y")
    assert (placement.cell >= 0).tolist() == [True, True, False, False]
    assert placement.filtered_out == 2


def test_every_row_is_counted_in_exactly_one_place():
    space = build_cell_space(make_area_agreement(), "test_agg", START, END)
    rows = make_rows(
        [
            make_police_record("p1", "2024-05-05", community_area="1"),
            make_police_record("p2", "2025-05-05", community_area="x"),
            make_police_record("p3", "2025-05-05", community_area="3"),
        ]
    )
    p = place_rows(space, rows, "P1Y")
    assert p.out_of_window + p.filtered_out + p.out_of_key_set + p.placed == p.received == 3


def test_a_dimension_without_a_public_key_set_is_refused():
    agreement = make_agreement_with(
        make_agreement(CVI),
        dimensions=("month", "exit_date"),
        time_field="enrollment_date",
        dataset="cvi_participants",
    )
    with pytest.raises(ReleaseRefused, match="no public key set"):
        build_cell_space(agreement, "test_agg", START, END)


def test_a_prohibited_dimension_is_refused():
    agreement = make_agreement_with(dimensions=("month", "case_number"))
    with pytest.raises(ReleaseRefused, match="prohibited"):
        build_cell_space(agreement, "test_agg", START, END)


def test_an_aggregate_the_agreement_does_not_approve_is_refused_with_a_sentence():
    with pytest.raises(ReleaseRefused, match=r"does not approve .*'nope'.*viol_monthly"):
        build_cell_space(make_agreement(POLICE), "nope", START, END)


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ReleaseRefused, match="ends"):
        build_cell_space(make_agreement(POLICE), "viol_monthly", END, START)


def test_rows_missing_a_needed_column_are_reported():
    space = build_cell_space(make_agreement(POLICE), "viol_monthly", START, END)
    rows = make_rows([{"person_id": "p1", "incident_datetime": "2025-01-01"}])
    with pytest.raises(RowsMismatch, match="victimization_type"):
        place_rows(space, rows, "P1Y")


def test_rows_without_a_person_are_reported():
    space = build_cell_space(make_agreement(POLICE), "viol_monthly", START, END)
    rows = make_rows([make_police_record(None, "2025-01-01")])  # type: ignore[arg-type]
    with pytest.raises(RowsMismatch, match="person_id"):
        place_rows(space, rows, "P1Y")


def test_a_time_dimension_without_a_time_field_is_refused():
    agreement = make_agreement_with(dimensions=("month",), time_field=None)
    with pytest.raises(ReleaseRefused, match="time_field"):
        build_cell_space(agreement, "test_agg", START, END)


def test_a_dimension_with_an_empty_key_set_is_refused():
    agreement = make_agreement(POLICE)
    dataset = agreement.datasets[0]
    fields = tuple(
        f.model_copy(update={"values": ()}) if f.name == "victimization_type" else f
        for f in dataset.fields
    )
    empty = agreement.model_copy(
        update={"datasets": (dataset.model_copy(update={"fields": fields}),)}
    )
    with pytest.raises(ReleaseRefused, match="empty key set"):
        build_cell_space(empty, "viol_monthly", START, END)
