"""The HTML report: self-contained and escaped."""

from __future__ import annotations

from validator_factories import make_dataset, make_field, make_frame

from validators import ValidationReport, render_html, validate_extract


def make_report_with_hostile_header() -> ValidationReport:
    dataset = make_dataset(make_field("x", required=True))
    frame = make_frame({"x": ["a", None], "<script>alert('x')</script>": ["1", "2"]})
    return validate_extract(dataset, frame)


def test_html_escapes_header_names():
    page = render_html(make_report_with_hostile_header())
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_html_is_self_contained():
    page = render_html(make_report_with_hostile_header())
    assert page.startswith("<!DOCTYPE html>")
    for external in ("http://", "https://", "<link", "<script", "src=", "@import"):
        assert external not in page


def test_html_shows_verdict_and_findings():
    page = render_html(make_report_with_hostile_header())
    assert "Rejected" in page
    assert "unknown_column" in page and "required" in page
    assert "2 data rows checked" in page


def test_html_for_a_clean_report_says_every_check_passed():
    page = render_html(ValidationReport("d", 5))
    assert "Accepted" in page and "Every check passed." in page
