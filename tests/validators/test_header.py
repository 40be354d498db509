"""The header: unknown, missing and duplicated columns, under reject and drop."""

from __future__ import annotations

import pandas as pd
import pytest
from validator_factories import make_dataset, make_field, make_frame

from validators import validate_extract


def make_two_field_dataset(unlisted_fields: str = "reject"):
    return make_dataset(
        make_field("age", "integer", min=0, max=120),
        make_field("sex", required=True, values=["M", "F"]),
        unlisted_fields=unlisted_fields,
    )


def test_unknown_column_is_an_error_under_reject():
    frame = make_frame({"age": ["1"], "sex": ["M"], "notes": ["x"]})
    report = validate_extract(make_two_field_dataset("reject"), frame)
    finding = report.finding("unknown_column", "notes")
    assert finding is not None and finding.severity == "error"
    assert not report.ok


def test_unknown_column_is_a_warning_under_drop():
    frame = make_frame({"age": ["1"], "sex": ["M"], "notes": ["x"]})
    report = validate_extract(make_two_field_dataset("drop"), frame)
    finding = report.finding("unknown_column", "notes")
    assert finding is not None and finding.severity == "warning"
    assert "drops" in finding.message
    assert report.ok


@pytest.mark.parametrize("unlisted_fields", ["reject", "drop"])
def test_missing_required_column_is_reported_once_not_per_row(unlisted_fields):
    frame = make_frame({"age": ["1", "2", "3"]})
    report = validate_extract(make_two_field_dataset(unlisted_fields), frame)
    assert report.finding("missing_column", "sex") is not None
    assert report.finding("required", "sex") is None
    assert not report.ok


@pytest.mark.parametrize("unlisted_fields", ["reject", "drop"])
def test_missing_optional_column_is_treated_as_empty(unlisted_fields):
    frame = make_frame({"sex": ["M", "F"]})
    report = validate_extract(make_two_field_dataset(unlisted_fields), frame)
    assert report.ok
    assert report.findings == ()


def test_misspelled_column_gets_a_rename_hint():
    frame = make_frame({"age": ["1"], " Sex": ["M"]})
    report = validate_extract(make_two_field_dataset(), frame)
    unknown = report.finding("unknown_column", " Sex")
    assert unknown is not None and "rename it exactly so" in unknown.message
    assert report.finding("missing_column", "sex") is not None


def test_duplicate_column_is_an_error_and_the_first_is_checked():
    frame = pd.DataFrame(
        [["R1", "M", "bad"], ["R2", "Q", "F"]], columns=["row_id", "sex", "sex"], dtype=object
    )
    report = validate_extract(make_two_field_dataset(), frame)
    assert report.finding("duplicate_column", "sex") is not None
    values = report.finding("allowed_values", "sex")
    assert values is not None and values.first_rows == (2,)


def test_header_matching_no_field_is_reported_without_names():
    frame = pd.DataFrame([["R9", "Zebulon", "1990-01-01"]], columns=["R1", "Ada", "1988-04-12"])
    report = validate_extract(make_two_field_dataset(), frame)
    assert [f.rule for f in report.findings] == ["missing_header"]
    text = report.to_text()
    assert "Ada" not in text and "1988-04-12" not in text
    assert "row_id, age, sex" in text


def test_non_string_header_names_are_handled():
    frame = make_frame({"age": ["1"], "sex": ["M"]})
    frame[7] = ["x"]
    report = validate_extract(make_two_field_dataset(), frame)
    assert report.finding("unknown_column", "7") is not None
