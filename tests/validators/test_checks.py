"""Every rule the contract compiles to, passing and failing, one scenario per test."""

from __future__ import annotations

import pytest
from validator_factories import make_dataset, make_field, make_frame

from validators import validate_extract


def check_one(field_kwargs: dict[str, object], values: list[str | None]):
    """Validate one field (named ``x``) holding ``values``; return the report."""
    dataset = make_dataset(make_field("x", **field_kwargs))
    return validate_extract(dataset, make_frame({"x": values}))


def test_clean_extract_has_no_findings():
    report = check_one({"type_": "integer", "required": True, "min": 0, "max": 9}, ["1", "2"])
    assert report.ok
    assert report.findings == ()
    assert report.rows_checked == 2


def test_required_field_empty_is_an_error_with_row_numbers():
    report = check_one({"required": True}, ["a", None, "b", None])
    finding = report.finding("required", "x")
    assert finding is not None
    assert (finding.severity, finding.failing_rows, finding.first_rows) == ("error", 2, (2, 4))
    assert not report.ok


def test_optional_field_may_be_empty():
    assert check_one({}, [None, None]).ok


def test_allowed_values_pass_when_exact():
    assert check_one({"values": ["M", "F"]}, ["M", "F", None]).ok


def test_allowed_values_are_case_sensitive():
    report = check_one({"values": ["M", "F"]}, ["M", "m", "Q"])
    finding = report.finding("allowed_values", "x")
    assert finding is not None and finding.first_rows == (2, 3)
    assert "M, F" in finding.message


def test_keyset_accepts_public_key_values():
    assert check_one({"keyset": "community_area"}, ["1", "77"]).ok


def test_keyset_rejects_values_outside_the_public_list():
    report = check_one({"keyset": "community_area"}, ["1", "78", "0"])
    finding = report.finding("keyset", "x")
    assert finding is not None and finding.first_rows == (2, 3)


def test_pattern_passes_matching_values():
    assert check_one({"pattern": r"^P\d{6}$"}, ["P000001", "P123456"]).ok


def test_pattern_fails_non_matching_values():
    report = check_one({"pattern": r"^P\d{6}$"}, ["P000001", "P12345", "X000001"])
    finding = report.finding("pattern", "x")
    assert finding is not None and finding.first_rows == (2, 3)


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("integer", ["0", "-12", "+7", "0042"], ["1.5", "12a", " 3", "1,000", "١٢", ""]),
        ("number", ["0", "-1.5", ".5", "3.", "1e-3", "+2E5"], ["1,5", "abc", "inf", "nan", "1e"]),
        ("boolean", ["true", "FALSE", "Yes", "no", "y", "N", "1", "0"], ["t", "2", "truth", "ja"]),
        (
            "date",
            ["2024-02-29", "1999-12-31", "0001-01-01"],
            ["2023-02-29", "2024-2-9", "2024/01/01", "2024-04-31", "2024-01-01T00:00"],
        ),  # noqa: E501
        (
            "datetime",
            ["2024-03-09T14:30", "2024-03-09 14:30:05", "2024-02-29T23:59:59.123"],
            [
                "2024-03-09",
                "2024-03-09T24:00",
                "2023-02-29T10:00",
                "2024-03-09T14:30Z",
                "2024-03-09T1:30",
            ],  # noqa: E501
        ),
    ],
)
def test_type_check_accepts_good_and_rejects_bad_values(type_, good, bad):
    assert check_one({"type_": type_}, good).ok
    report = check_one({"type_": type_}, good + bad)
    finding = report.finding(f"type:{type_}", "x")
    assert finding is not None
    assert finding.failing_rows == len(bad)
    assert finding.first_rows == tuple(range(len(good) + 1, len(good) + len(bad) + 1))


def test_date_failing_both_format_and_calendar_is_counted_once():
    report = check_one({"type_": "date"}, ["2024-02-30", "2024-13-45", "x"])
    finding = report.finding("type:date", "x")
    assert finding is not None and finding.failing_rows == 3


def test_range_passes_inclusive_bounds():
    assert check_one({"type_": "integer", "min": 0, "max": 120}, ["0", "120", "-0"]).ok


def test_range_fails_outside_bounds():
    report = check_one({"type_": "number", "min": -90, "max": 90}, ["-90.5", "0", "90.01"])
    finding = report.finding("range", "x")
    assert finding is not None and finding.first_rows == (1, 3)
    assert "-90 to 90" in finding.message


def test_range_with_only_a_minimum():
    report = check_one({"type_": "integer", "min": 10}, ["9", "10", "1000000"])
    finding = report.finding("range", "x")
    assert finding is not None and finding.first_rows == (1,)
    assert "minimum 10" in finding.message


def test_range_with_only_a_maximum():
    report = check_one({"type_": "number", "max": 1.5}, ["1.5", "1.6"])
    finding = report.finding("range", "x")
    assert finding is not None and finding.first_rows == (2,)
    assert "maximum 1.5" in finding.message


def test_type_failures_are_not_reported_again_as_range_failures():
    report = check_one({"type_": "integer", "min": 0, "max": 120}, ["1.5e3", "abc", "500", "7"])
    type_finding = report.finding("type:integer", "x")
    range_finding = report.finding("range", "x")
    assert type_finding is not None and type_finding.first_rows == (1, 2)
    assert range_finding is not None and range_finding.first_rows == (3,)


def test_min_max_on_a_string_field_are_ignored():
    assert check_one({"min": 0, "max": 1}, ["500"]).ok


def test_unique_record_key_flags_later_repeats_only():
    dataset = make_dataset(make_field("x"))
    frame = make_frame({"row_id": ["A", "B", "A", "C", "A", None, None], "x": ["1"] * 7})
    report = validate_extract(dataset, frame)
    finding = report.finding("unique_record_key", "row_id")
    assert finding is not None
    assert (finding.failing_rows, finding.first_rows) == (2, (3, 5))
    assert report.finding("required", "row_id") is not None  # empty keys: required's job


def test_unique_record_key_passes_when_keys_differ():
    dataset = make_dataset(make_field("x"))
    assert validate_extract(dataset, make_frame({"x": ["1", "2", "3"]})).ok


def test_first_rows_are_capped_at_twenty_but_counts_are_exact():
    report = check_one({"required": True}, [None] * 45)
    finding = report.finding("required", "x")
    assert finding is not None
    assert finding.failing_rows == 45
    assert finding.first_rows == tuple(range(1, 21))
    assert "first rows: 1, 2," in finding.message


def test_row_offset_shifts_row_numbers():
    dataset = make_dataset(make_field("x", required=True))
    report = validate_extract(dataset, make_frame({"x": ["a", None]}), row_offset=1000)
    finding = report.finding("required", "x")
    assert finding is not None and finding.first_rows == (1002,)


def test_dataframe_index_is_ignored_for_row_numbers():
    dataset = make_dataset(make_field("x", required=True))
    frame = make_frame({"x": ["a", None, "b"]})
    frame.index = [70, 10, 99]
    finding = validate_extract(dataset, frame).finding("required", "x")
    assert finding is not None and finding.first_rows == (2,)


def test_nan_cells_count_as_empty():
    dataset = make_dataset(make_field("x", required=True))
    frame = make_frame({"x": ["a", "b"]})
    frame.loc[1, "x"] = float("nan")
    finding = validate_extract(dataset, frame).finding("required", "x")
    assert finding is not None and finding.first_rows == (2,)


def test_empty_frame_is_ok():
    dataset = make_dataset(make_field("x", required=True))
    report = validate_extract(dataset, make_frame({"x": []}))
    assert report.ok and report.rows_checked == 0


def test_negative_row_offset_is_refused():
    dataset = make_dataset(make_field("x"))
    with pytest.raises(ValueError, match="row_offset"):
        validate_extract(dataset, make_frame({"x": ["a"]}), row_offset=-1)


def test_example_agreement_extract_validates_clean(police_frame):
    from validator_factories import make_example_dataset

    report = validate_extract(make_example_dataset("police_victimizations"), police_frame)
    assert report.ok, report.to_text()
