import copy
import csv
import io
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from publishers.dashboard import render_dashboard
from publishers.downloads import render_csv
from publishers.release import compute_release, release_terms
from tests.publishers.factories import (
    HOSPITAL,
    POLICE,
    QUIET,
    REFERRALS,
    WINDOW,
    agreement_declaring,
    make_agreement,
    make_agreement_with,
    make_linked_rows,
    make_published,
    make_rows_for,
    make_valued,
    published,
)

RATE = (REFERRALS, "referral_followup_qtr")
MEAN = (REFERRALS, "referral_days_to_service_qtr")


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
    hospital = make_published(HOSPITAL, "ed_assault_monthly")
    pure = render(tmp_path, [hospital])
    assert "k × ε" in pure and f"ε = {hospital['privacy_loss']:.4g}" in pure
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


# --- sums, means, rates and releases over linked data ------------------------------------------


@cache
def _linked_rate() -> dict[str, Any]:
    agreement = make_agreement(POLICE)
    rows = make_rows_for(agreement, "repeat_victimization_yr", 2000, persons=700)
    linked = make_linked_rows(agreement, "repeat_victimization_yr", rows)
    terms = release_terms(
        agreement, "repeat_victimization_yr", [agreement_declaring("ed_injury_visits")]
    )
    computed = compute_release(
        agreement, "repeat_victimization_yr", rows, **WINDOW, seed=3, linked=linked, terms=terms
    )
    return published(computed.to_manifest())


def make_linked_rate() -> dict[str, Any]:
    """A rate_persons release over linked ED visits, charged to the police (ρ) and hospital (ε)
    agreements."""
    return copy.deepcopy(_linked_rate())


@cache
def _example(agreement_id: str, aggregate_id: str, n: int) -> dict[str, Any]:
    agreement = make_agreement_with(make_agreement(agreement_id), per_period=QUIET)
    rows = make_rows_for(agreement, aggregate_id, n, persons=n // 3)
    computed = compute_release(agreement, aggregate_id, rows, **WINDOW, seed=3)
    return published(computed.to_manifest())


def make_example(aggregate: tuple[str, str], n: int = 3000) -> dict[str, Any]:
    """The release of an example aggregate over ``n`` synthetic rows, with a budget so large
    that the noise hardly moves a value (which cells and totals are shown depends on the data,
    not on the draw)."""
    return copy.deepcopy(_example(*aggregate, n))


def section_of(page: str) -> str:
    return page.split("<section", 1)[1].split("</section>", 1)[0]


def totals_rows(page: str) -> list[list[str]]:
    """The totals table's body rows, as cell texts."""
    table = page.split("<caption>", 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def error_bars(page: str) -> list[tuple[float, float, float, float]]:
    """Each drawn bar of the first chart as ``(zero, value, low, high)`` in SVG y units."""
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    bars = re.findall(r'class="bar" x="[^"]*" y="([^"]*)" width="[^"]*" height="([^"]*)"', svg)
    paths = re.findall(r'class="err" d="M[\d.]+ ([\d.]+)V([\d.]+)', svg)
    assert len(bars) == len(paths)
    return [
        (float(y) + float(h), float(y), float(lo), float(hi))
        for (y, h), (lo, hi) in zip(bars, paths, strict=True)
    ]


def assert_bars_span(page: str, spans: list[tuple[float, float, float]]) -> None:
    """The first chart draws one bar per ``(value, low, high)``, its error bar from low to high
    (to within the SVG's rounding to 0.1 units)."""
    bars = error_bars(page)
    assert len(bars) == len(spans)
    for (zero, top, low, high), (value, lower, upper) in zip(bars, spans, strict=True):
        per_unit = (zero - top) / value  # SVG units per unit of the value
        assert zero - low == pytest.approx(lower * per_unit, abs=0.3)
        assert zero - high == pytest.approx(upper * per_unit, abs=0.3)


def test_a_rate_shows_percentages_with_its_interval_numerator_and_denominator(tmp_path):
    release = make_example(RATE)
    page = render(tmp_path, [release])
    section = section_of(page)
    assert "None" not in section and "±" not in section
    assert "<th scope='col'>share</th><th scope='col'>95% interval</th>" in section
    assert "<th scope='col'>numerator</th><th scope='col'>denominator</th>" in section
    shown = [t for t in release["totals"] if not t["suppressed"]]
    assert shown, "the synthetic rows give some quarter a share"
    rows = {r[0]: r for r in totals_rows(section)}
    for total in shown:
        quarter = total["key"]["quarter"]
        assert total["display"].endswith("%")
        low, high = total["lower"] * 100, total["upper"] * 100
        assert rows[quarter][1] == total["display"]
        assert rows[quarter][3:] == [str(total["numerator"]), str(total["denominator"])]
        interval = rows[quarter][2]
        assert re.fullmatch(r"\d+\.\d% to \d+\.\d%", interval)
        shown_low, shown_high = (float(x.rstrip("%")) for x in interval.split(" to "))
        assert shown_low <= low + 1e-9 and shown_high >= high - 1e-9  # rounded outwards
        assert f"{quarter}: {total['display']} (95% interval {interval})" in section


def test_a_rates_error_bars_span_its_interval_not_a_symmetric_bound(tmp_path):
    release = make_example(RATE)
    page = render(tmp_path, [release])
    shown = [t for t in release["totals"] if not t["suppressed"]]
    assert_bars_span(page, [(t["value"], t["lower"], t["upper"]) for t in shown])
    assert "shares by quarter with 95% intervals" in page
    assert "whiskers show the 95% interval" in page


def test_a_mean_shows_its_value_interval_and_n(tmp_path):
    release = make_example(MEAN)
    page = render(tmp_path, [release])
    section = section_of(page)
    assert "None" not in section and "±" not in section
    assert "<th scope='col'>mean</th><th scope='col'>95% interval</th>" in section
    assert "<th scope='col'>n (rows)</th>" in section
    assert "Values clamped to</dt><dd>0 to 90" in section
    rows = {r[0]: r for r in totals_rows(section)}
    shown = [t for t in release["totals"] if not t["suppressed"]]
    assert shown
    for total in shown:
        row = rows[total["key"]["quarter"]]
        assert row[1] == total["display"] and row[3] == str(total["count"])
        low, high = (float(x) for x in row[2].split(" to "))
        assert low <= total["lower"] and high >= total["upper"]
    assert_bars_span(page, [(t["value"], t["lower"], t["upper"]) for t in shown])


def test_a_sum_shows_its_value_with_its_error_bound_and_n(tmp_path):
    release = make_valued("sum")
    page = render(tmp_path, [release])
    section = section_of(page)
    assert "None" not in section
    assert f"±{release['error_bound_95']:.1f}".rstrip("0").rstrip(".") in section
    rows = {r[0]: r for r in totals_rows(section)}
    shown = [t for t in release["totals"] if not t["suppressed"]]
    assert shown
    for total in shown:
        row = rows[total["key"]["quarter"]]
        assert row[1] == total["display"] and row[3] == str(total["count"])
        assert row[2].startswith("±")
        assert float(row[2][1:]) >= total["error_bound_95"]
    spans = [
        (t["value"], t["value"] - t["error_bound_95"], t["value"] + t["error_bound_95"])
        for t in shown
    ]
    assert_bars_span(page, [(v, max(low, 0), high) for v, low, high in spans])


def test_the_accuracy_text_is_the_manifests_note_never_a_missing_bound(tmp_path):
    releases = [make_published(*RATE), make_published(*MEAN), make_linked_rate()]
    assert all(r["error_bound_95"] is None for r in releases)
    page = render(tmp_path, releases)
    assert "±None" not in page and "None" not in page and "±—" not in page
    for release in releases:
        note = release["accuracy_note"].replace("'", "&#x27;")
        assert note in page
    assert page.count("95% interval</dt><dd>one per cell and per total") == 3
    assert "The 95% intervals cover the added noise only" in page


def test_suppressed_means_and_rates_show_n_under_min_cell_and_no_number(tmp_path):
    for aggregate in (RATE, MEAN):
        # Few rows leave cells under min_cell; many rows give cells a number.
        cells = make_example(aggregate, n=300)["cells"] + make_example(aggregate)["cells"]
        hidden = next(c for c in cells if c["suppressed"])
        shown = next(c for c in cells if not c["suppressed"])
        assert hidden["display"] == "n<11"
        release = make_example(aggregate)
        release["cells"] = [hidden, shown]
        page = render(tmp_path, [release])
        rows = re.findall(r"<tr><td>.*?</tr>", page.split("<details>", 1)[1])
        numbers = [re.findall(r"<td class='num[^']*'>(.*?)</td>", row) for row in rows]
        assert numbers[0][0] == "n&lt;11" and set(numbers[0][1:]) == {"—"}
        assert "—" not in numbers[1] and numbers[1][0] == shown["display"]
        assert "<td class='num suppressed'>n&lt;11</td>" in page


def test_a_release_over_linked_data_states_what_each_agreement_was_charged(tmp_path):
    release = make_linked_rate()
    police, hospital = release["charges"]
    assert (police["unit"], hospital["unit"]) == ("rho", "epsilon")
    assert release["privacy_loss_unit"] == "epsilon"
    page = render(tmp_path, [release])
    charged = (
        f"ρ = {police['amount']:.4g} to dsa-police-victimizations@1.0.0 and "
        f"ε = {hospital['amount']:.4g} to dsa-hospital-ed-injury@1.0.0"
    )
    assert f"charged for it in its own unit: {charged}" in page
    assert "ρ = ε²/2" in page
    assert f"ε = {release['privacy_loss']:.4g}: each person was counted in at most" in page
    assert "Linked data</dt><dd>ed_injury_visits" in page
    assert "dsa-police-victimizations@1.0.0, dsa-hospital-ed-injury@1.0.0" in page
    assert "That is the loss of this release alone" not in page


def test_a_release_charged_to_its_own_agreement_alone_says_so_once(tmp_path):
    page = render(tmp_path, [make_published(*RATE)])
    assert "That is the loss of this release alone" in page
    assert "Charged</dt>" not in page and "in its own unit" not in page


def test_a_negative_mean_is_drawn_below_zero_and_written_as_a_number(tmp_path):
    release = make_valued("mean", bounds=(-90, 0))
    shown = [c for c in release["cells"] if not c["suppressed"]]
    assert shown and all(c["value"] < 0 for c in shown)
    page = render(tmp_path, [release])
    assert re.search(r'text-anchor="end">-\d', page)  # the axis goes below zero
    rows = list(csv.reader(io.StringIO(render_csv(release))))
    by_key = {(c["key"]["quarter"], c["key"]["urgency"]): c for c in release["cells"]}
    for quarter, urgency, mean, _, low, high, flag in rows[1:]:
        cell = by_key[(quarter, urgency)]
        if flag == "false":
            assert float(mean) == cell["value"] < 0
            assert (float(low), float(high)) == (cell["lower"], cell["upper"])


def test_rate_values_keys_and_titles_are_escaped(tmp_path):
    release = make_published(*RATE, title="<script>alert(1)</script>")
    release["totals"][0]["key"]["quarter"] = "<b onclick=x>"
    release["cells"][0]["key"]["to_org_type"] = "<i>"
    release["totals"][0]["display"] = "<img src=x>"
    page = render(tmp_path, [release])
    assert "<script>" not in page and "<b " not in page and "<i>" not in page
    assert "<img" not in page
    assert "&lt;b onclick=x&gt;" in page and "&lt;img src=x&gt;" in page


def test_the_dashboard_of_every_measure_loads_nothing_from_the_network(tmp_path):
    page = render(
        tmp_path,
        [make_published(*RATE), make_published(*MEAN), make_valued("sum"), make_linked_rate()],
    )
    assert page.count("<section") == 4 and page.count("<svg") == 4
    links = re.findall(r"""(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", page, re.I)
    assert all(link.startswith("#") for link in links)
    assert "<script" not in page.lower() and "//" not in page
    assert "default-src 'none'" in page
