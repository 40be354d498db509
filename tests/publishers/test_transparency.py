"""The transparency page: every release with its date, aggregate, agreements, model, loss,
cumulative loss per agreement and mechanism; self-contained and escaped."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from publishers.release import compute_release, release_terms
from publishers.transparency import cumulative_losses, render_transparency
from tests.publishers.factories import (
    HOSPITAL,
    POLICE,
    WINDOW,
    agreement_declaring,
    make_agreement,
    make_linked_rows,
    make_published,
    make_rows_for,
)


@cache
def linked_manifest() -> dict[str, Any]:
    """The manifest of repeat_victimization_yr: police rows, linked to ED visits, charged to
    both agreements in their own units."""
    agreement = make_agreement(POLICE)
    rows = make_rows_for(agreement, "repeat_victimization_yr", 1000, persons=400)
    linked = make_linked_rows(agreement, "repeat_victimization_yr", rows)
    terms = release_terms(
        agreement, "repeat_victimization_yr", [agreement_declaring("ed_injury_visits")]
    )
    return compute_release(
        agreement, "repeat_victimization_yr", rows, **WINDOW, seed=3, linked=linked, terms=terms
    ).to_manifest()


def make_linked_published(released_at: str) -> dict[str, Any]:
    manifest = linked_manifest()
    return {
        **manifest,
        "id": f"rel-linked-{released_at[:10]}",
        "title": manifest["aggregate_title"],
        "released_at": released_at,
        "agreements": [c["agreement"] for c in manifest["charges"]],
    }


def render(tmp_path: Path, releases: list[dict[str, Any]]) -> str:
    path = render_transparency(releases, tmp_path / "site")
    assert path == tmp_path / "site" / "transparency.html"
    return path.read_text(encoding="utf-8")


def rows_of(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body)


def test_every_release_is_listed_oldest_first_with_what_it_cost(tmp_path: Path) -> None:
    police = make_published(released_at="2026-07-02T10:00:00Z")
    later = make_published(released_at="2026-08-02T10:00:00Z")
    hospital = make_published(HOSPITAL, "ed_assault_demog_qtr", "2026-07-15T10:00:00Z")
    page = render(tmp_path, [later, hospital, police])
    rows = rows_of(page)
    assert len(rows) == 3
    assert [r["released_at"] for r in (police, hospital, later)] == [
        re.search(r"<td>(.*?)</td>", row).group(1)  # type: ignore[union-attr]
        for row in rows
    ]
    first = rows[0]
    assert police["agreements"][0] in first
    assert "viol_monthly" in first and police["title"] in first
    assert "zero-concentrated differential privacy" in first
    assert "discrete Gaussian" in first
    assert f"ρ = {police['privacy_loss']:.4g}" in first
    for header in ("Released", "Aggregate", "Agreements", "Privacy model", "Privacy loss"):
        assert f"<th scope='col'>{header}</th>" in page
    assert "Cumulative loss per agreement" in page and "Mechanism" in page


def test_cumulative_loss_adds_up_per_agreement(tmp_path: Path) -> None:
    one = make_published(released_at="2026-07-02T10:00:00Z")
    two = make_published(released_at="2026-08-02T10:00:00Z")
    other = make_published(HOSPITAL, "ed_assault_demog_qtr", "2026-07-15T10:00:00Z")
    cost = one["privacy_loss_requested"]
    police_id = one["agreements"][0].split("@")[0]
    hospital_id = other["agreements"][0].split("@")[0]
    running = cumulative_losses([two, other, one])
    assert running == [
        {police_id: cost},
        {hospital_id: other["privacy_loss_requested"]},
        {police_id: 2 * cost},
    ]
    rows = rows_of(render(tmp_path, [two, other, one]))
    assert f"{police_id}: ρ = {2 * cost:.4g}" in rows[2]


def test_an_older_release_without_charges_is_charged_its_loss_to_each_agreement() -> None:
    joint = make_published(agreements=["dsa-a@1.0.0", "dsa-b@2.0.0"])
    solo = make_published(released_at="2026-09-01T00:00:00Z", agreements=["dsa-a@1.1.0"])
    for older in (joint, solo):
        del older["charges"]
    cost = joint["privacy_loss_requested"]
    assert cumulative_losses([joint, solo]) == [
        {"dsa-a": cost, "dsa-b": cost},
        {"dsa-a": 2 * cost},  # versions of one agreement share its budget
    ]


def test_the_page_loads_nothing_and_escapes_every_value(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    page = render(
        tmp_path,
        [make_published(title=evil, aggregate_id="viol_monthly", agreements=[f"{evil}@1"])],
    )
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page


def test_no_cells_or_counts_appear_on_the_page(tmp_path: Path) -> None:
    release = make_published()
    page = render(tmp_path, [release])
    for cell in release["cells"]:
        assert f"<td>{cell['display']}</td>" not in page
    assert "cells" not in page.lower().split("<main>", 1)[1]


def test_an_empty_log_says_so(tmp_path: Path) -> None:
    assert "No releases have been published yet." in render(tmp_path, [])


def test_a_linked_release_adds_each_agreements_own_charge_in_its_own_unit(
    tmp_path: Path,
) -> None:
    police = make_published(released_at="2026-07-02T10:00:00Z")
    hospital = make_published(HOSPITAL, "ed_assault_monthly", "2026-07-03T10:00:00Z")
    linked = make_linked_published("2026-07-04T10:00:00Z")
    rho, epsilon = (c["amount"] for c in linked["charges"])
    assert [c["unit"] for c in linked["charges"]] == ["rho", "epsilon"]
    assert linked["privacy_loss_unit"] == "epsilon" and rho != linked["privacy_loss_requested"]
    running = cumulative_losses([linked, hospital, police])
    assert running[2] == {
        POLICE: pytest.approx(police["charges"][0]["amount"] + rho),
        HOSPITAL: pytest.approx(hospital["charges"][0]["amount"] + epsilon),
    }
    rows = rows_of(render(tmp_path, [linked, hospital, police]))
    police_total = police["charges"][0]["amount"] + rho
    hospital_total = hospital["charges"][0]["amount"] + epsilon
    assert f"{POLICE}: ρ = {police_total:.4g}" in rows[2]
    assert f"{HOSPITAL}: ε = {hospital_total:.4g}" in rows[2]
    assert f"ε = {linked['privacy_loss']:.4g}<br><small>charged ρ = {rho:.4g} to " in rows[2]
    assert f"ε = {epsilon:.4g} to {HOSPITAL}" in rows[2]


def test_a_release_charged_to_its_own_agreement_alone_shows_no_charge_line(
    tmp_path: Path,
) -> None:
    rows = rows_of(render(tmp_path, [make_published()]))
    assert "charged" not in rows[0]


def test_the_page_explains_charges_in_each_agreements_unit(tmp_path: Path) -> None:
    page = render(tmp_path, [make_linked_published("2026-07-04T10:00:00Z")])
    assert "charged to each, in that agreement's own unit" in page
    assert "ρ = ε²/2" in page


def test_an_agreement_charged_in_two_units_keeps_two_totals() -> None:
    # A new version of an agreement may change its model; ρ and ε never add up.
    first = make_published(charges=[{"agreement": "dsa-a@1.0.0", "amount": 0.2, "unit": "rho"}])
    second = make_published(
        released_at="2026-09-01T00:00:00Z",
        charges=[{"agreement": "dsa-a@2.0.0", "amount": 1.0, "unit": "epsilon"}],
    )
    third = make_published(
        released_at="2026-10-01T00:00:00Z",
        charges=[{"agreement": "dsa-a@1.0.0", "amount": 0.2, "unit": "rho"}],
    )
    assert cumulative_losses([third, second, first]) == [
        {"dsa-a": 0.2},
        {"dsa-a": 1.0},
        {"dsa-a": pytest.approx(0.4)},
    ]


def test_charges_are_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>@1"
    release = make_linked_published("2026-07-04T10:00:00Z")
    release["charges"] = [
        {"agreement": evil, "amount": 0.1, "unit": "rho"},
        {"agreement": "dsa-b@1", "amount": 0.3, "unit": "<b>"},
    ]
    page = render(tmp_path, [release])
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
