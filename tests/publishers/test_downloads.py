"""The CSV channel: formula-safe fields, and each measure's columns."""

import csv
import io

import pytest

from publishers.downloads import csv_safe, render_csv, write_csv
from tests.publishers.factories import HOSPITAL, REFERRALS, make_published, make_valued

RATE = (REFERRALS, "referral_followup_qtr")
MEAN = (REFERRALS, "referral_days_to_service_qtr")


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "\rx"])
def test_csv_fields_that_could_run_as_formulas_are_quoted(text):
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["2025-07", "<11", "FATAL_SHOOTING", "12", ""])
def test_csv_ordinary_fields_are_left_alone(text):
    assert csv_safe(text) == text


def test_write_csv_neutralises_formulas_in_keys_and_headers(tmp_path):
    release = make_published()
    release["cells"][0]["key"]["month"] = '=HYPERLINK("http://evil","x")'
    release["dimensions"] = ["month", "victimization_type"]
    path = write_csv(release, tmp_path / "out.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["month", "victimization_type", "count", "suppressed", "error_bound_95"]
    assert rows[1][0] == "'" + '=HYPERLINK("http://evil","x")'
    assert len(rows) == 1 + len(release["cells"])
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@"))
        assert row[3] in ("true", "false")


# --- CSV by measure -----------------------------------------------------------------------------


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_of_a_rate_gives_share_numerator_denominator_and_interval():
    release = make_published(*RATE)
    rows = read(render_csv(release))
    assert rows[0] == [
        "quarter",
        "to_org_type",
        "rate",
        "numerator",
        "denominator",
        "lower_95",
        "upper_95",
        "suppressed",
    ]
    assert len(rows) == 1 + len(release["cells"])
    for cell, row in zip(release["cells"], rows[1:], strict=True):
        assert row[:2] == [cell["key"]["quarter"], cell["key"]["to_org_type"]]
        if cell["suppressed"]:
            assert row[2:] == ["n<11", "", "", "", "", "true"]
        else:
            rate, numerator, denominator, low, high = row[2:7]
            assert float(rate) == cell["value"] and 0 <= float(rate) <= 1
            assert (int(numerator), int(denominator)) == (cell["numerator"], cell["denominator"])
            assert float(low) <= float(rate) <= float(high)
            assert row[7] == "false"


def test_csv_of_a_mean_gives_mean_n_and_interval():
    release = make_published(*MEAN)
    rows = read(render_csv(release))
    assert rows[0] == [
        "quarter",
        "to_org_type",
        "mean",
        "count",
        "lower_95",
        "upper_95",
        "suppressed",
    ]
    for cell, row in zip(release["cells"], rows[1:], strict=True):
        if cell["suppressed"]:
            assert row[2:] == ["n<11", "", "", "", "true"]
        else:
            assert float(row[2]) == cell["value"]  # two decimals, not the one-decimal display
            assert int(row[3]) == cell["count"]
            assert (float(row[4]), float(row[5])) == (cell["lower"], cell["upper"])


def test_csv_of_a_sum_gives_sum_n_and_its_error_bound():
    release = make_valued("sum")
    rows = read(render_csv(release))
    assert rows[0] == ["quarter", "urgency", "sum", "count", "suppressed", "error_bound_95"]
    for cell, row in zip(release["cells"], rows[1:], strict=True):
        assert float(row[5]) == cell["error_bound_95"]
        if cell["suppressed"]:
            assert row[2:5] == ["n<11", "", "true"]
        else:
            assert (int(row[2]), int(row[3]), row[4]) == (cell["value"], cell["count"], "false")


def test_csv_of_a_count_keeps_its_columns():
    release = make_published(HOSPITAL, "ed_assault_demog_qtr")
    rows = read(render_csv(release))
    assert rows[0] == ["quarter", "age_years", "sex", "count", "suppressed", "error_bound_95"]
    assert {float(r[5]) for r in rows[1:]} == {release["error_bound_95"]}


@pytest.mark.parametrize("maker", [lambda: make_published(*RATE), lambda: make_published(*MEAN)])
def test_csv_of_a_rate_or_mean_neutralises_formulas_in_keys(maker):
    release = maker()
    release["cells"][0]["key"]["quarter"] = "=1+1"
    release["cells"][1]["key"]["to_org_type"] = "-2+3"
    rows = read(render_csv(release))
    assert rows[1][0] == "'=1+1" and rows[2][1] == "'-2+3"
    fields = [f for row in rows for f in row]
    assert not [f for f in fields if f.startswith(("=", "+", "@", "\t", "\r"))]
