"""Report merging across chunks, row offsets and the report's JSON and text forms."""

from __future__ import annotations

import json

import pytest
from validator_factories import make_dataset, make_field, make_frame

from validators import Finding, RecordKeyTracker, ValidationReport, validate_extract


def make_faulty_dataset():
    return make_dataset(
        make_field("age", "integer", min=0, max=120),
        make_field("sex", required=True, values=["M", "F"]),
    )


def make_faulty_frame(n: int):
    ages = [("200" if i % 7 == 0 else "x" if i % 11 == 0 else str(i % 100)) for i in range(n)]
    sexes = [(None if i % 5 == 0 else "M") for i in range(n)]
    ids = [f"K{i % 40}" for i in range(n)]  # repeats after 40 rows
    return make_frame({"row_id": ids, "age": ages, "sex": sexes, "extra": ["e"] * n})


def validate_in_chunks(dataset, frame, size: int) -> ValidationReport:
    keys = RecordKeyTracker()
    report = ValidationReport.empty(dataset.id)
    for offset in range(0, len(frame), size):
        chunk = frame.iloc[offset : offset + size]
        report = report.merge(validate_extract(dataset, chunk, row_offset=offset, record_keys=keys))
    return report


def test_chunked_validation_merges_to_the_whole_file_report():
    dataset, frame = make_faulty_dataset(), make_faulty_frame(250)
    whole = validate_extract(dataset, frame)
    chunked = validate_in_chunks(dataset, frame, 37)
    assert chunked.to_dict() == whole.to_dict()
    assert chunked.rows_checked == 250


def test_findings_that_start_in_a_later_chunk_sort_as_in_the_whole_file():
    dataset, frame = make_faulty_dataset(), make_faulty_frame(120)
    frame.loc[100:, "age"] = "not a number"  # the first type:integer failure is in chunk 3
    frame.loc[:99, "age"] = "5"
    whole = validate_extract(dataset, frame)
    chunked = validate_in_chunks(dataset, frame, 50)
    assert [f.rule for f in chunked.findings] == [f.rule for f in whole.findings]
    assert chunked.to_dict() == whole.to_dict()


def test_merge_adds_counts_and_keeps_the_earliest_rows():
    dataset = make_dataset(make_field("x", required=True))
    first = validate_extract(dataset, make_frame({"x": [None] * 15}), row_offset=0)
    second = validate_extract(dataset, make_frame({"x": [None] * 15}), row_offset=15)
    merged = second.merge(first)
    finding = merged.finding("required", "x")
    assert finding is not None
    assert finding.failing_rows == 30
    assert finding.first_rows == tuple(range(1, 21))


def test_merge_keeps_column_findings_once():
    dataset = make_faulty_dataset()
    frame = make_frame({"age": ["1"], "sex": ["M"], "extra": ["e"]})
    one = validate_extract(dataset, frame)
    merged = one.merge(validate_extract(dataset, frame, row_offset=1))
    assert [f.rule for f in merged.findings].count("unknown_column") == 1


def test_merge_refuses_reports_of_another_dataset():
    with pytest.raises(ValueError, match="cannot merge"):
        ValidationReport.empty("a").merge(ValidationReport.empty("b"))


def test_unique_key_across_chunks_needs_the_shared_tracker():
    dataset = make_dataset(make_field("x"))
    frame = make_frame({"row_id": ["A", "B", "A"], "x": ["1", "2", "3"]})
    keys = RecordKeyTracker()
    first = validate_extract(dataset, frame.iloc[:2], record_keys=keys)
    second = validate_extract(dataset, frame.iloc[2:], row_offset=2, record_keys=keys)
    finding = first.merge(second).finding("unique_record_key", "row_id")
    assert finding is not None and finding.first_rows == (3,)


def test_to_dict_is_json_with_the_documented_keys():
    report = validate_extract(make_faulty_dataset(), make_faulty_frame(30))
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"dataset", "rows_checked", "ok", "findings"}
    assert data["ok"] is False
    assert set(data["findings"][0]) == {
        "rule",
        "column",
        "severity",
        "failing_rows",
        "first_rows",
        "message",
    }


def test_to_text_has_a_summary_then_a_line_per_finding():
    report = validate_extract(make_faulty_dataset(), make_faulty_frame(30))
    lines = report.to_text().splitlines()
    assert lines[0].startswith("test_dataset: 30 rows checked; rejected")
    assert len(lines) == 1 + len(report.findings)
    assert any(line.startswith("ERROR   range [age]") for line in lines)


def test_messages_say_what_to_fix_with_counts_and_rows():
    finding = Finding(
        "type:date",
        "victim_dob",
        "error",
        "a victim_dob that is not a real date in YYYY-MM-DD form",
        "Write dates as YYYY-MM-DD.",
        failing_rows=12,
        first_rows=(3, 17),
    )
    assert finding.message == (
        "12 rows have a victim_dob that is not a real date in YYYY-MM-DD form; "
        "first rows: 3, 17. Write dates as YYYY-MM-DD."
    )


def test_with_findings_adds_row_rule_findings():
    report = ValidationReport("d", 3)
    extra = Finding("row_rule:reject", "x", "error", "bad rows", "Remove them.", 1, (2,))
    combined = report.with_findings([extra])
    assert not combined.ok and combined.rows_checked == 3
