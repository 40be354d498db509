import csv
import re
from pathlib import Path
from typing import Any

import pytest

from publishers.dashboard import csv_safe, render_dashboard, write_csv
from tests.publishers.factories import HOSPITAL, make_published


def render(tmp_path: Path, releases: list[dict[str, Any]]) -> str:
    path = render_dashboard(releases, tmp_path / "site")
    assert path == tmp_path / "site" / "index.html"
    return path.read_text(encoding="utf-8")


def test_dashboard_loads_nothing_from_the_network(tmp_path):
    page = render(tmp_path, [make_published(), make_published(HOSPITAL, "ed_assault_demog_qtr")])
    links = re.findall(r"""(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", page, re.I)
    assert all(link.startswith("#") for link in links)
    assert "http:" not in page and "https:" not in page and "//" not in page
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page


def test_dashboard_shows_each_release_with_its_privacy_facts(tmp_path):
    release = make_published()
    page = render(tmp_path, [release])
    assert page.count("<section") == 1
    for text in (
        "Victimizations by month and type",
        "viol_monthly",
        "dsa-police-victimizations@1.0.0",
        "discrete_gaussian",
        "ρ = 0.2",
        "2025-07-01 to 2026-06-30",
        "2026-07-02T10:00:00Z",
        "per linked person",
    ):
        assert text in page
    assert f"±{release['error_bound_95']:g}" in page
    assert "<svg" in page and page.count('class="err"') >= 1


def test_privacy_statement_states_the_linkage_caveat_for_each_model(tmp_path):
    zcdp = render(tmp_path, [make_published()])
    assert "k² × ρ" in zcdp and "splits into k ids" in zcdp
    pure = render(tmp_path, [make_published(HOSPITAL, "ed_assault_monthly")])
    assert "k × ε" in pure and "ε = 1" in pure
    split = render(tmp_path, [make_published(linkage_split_rate=0.031)])
    assert "3.1%" in split


def test_dashboard_escapes_everything_from_the_release(tmp_path):
    release = make_published(title="<script>alert('x')</script>", id='"><img src=x>')
    release["cells"][0]["key"]["month"] = "<b onmouseover=alert(1)>"
    release["totals"][0]["key"]["month"] = "<i>&</i>"
    page = render(tmp_path, [release])
    assert "<script>" not in page and "<img" not in page and "<b " not in page
    assert "<i>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b onmouseover=alert(1)&gt;" in page


def test_suppressed_cells_and_withheld_totals_show_no_number(tmp_path):
    release = make_published()
    release["totals"][0].update(value=None, display="withheld", suppressed=True)
    release["cells"][0].update(value=None, display="<11", suppressed=True)
    page = render(tmp_path, [release])
    assert "withheld" in page and "&lt;11" in page
    assert 'class="missing"' in page


def test_an_empty_dashboard_still_renders(tmp_path):
    assert "No releases have been published yet." in render(tmp_path, [])


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
