"""The transparency page: every release with its date, aggregate, agreements, model, loss,
cumulative loss per agreement and mechanism; self-contained and escaped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from publishers.transparency import cumulative_losses, render_transparency
from tests.publishers.factories import HOSPITAL, make_published


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


def test_a_release_of_several_agreements_is_charged_to_each() -> None:
    joint = make_published(agreements=["dsa-a@1.0.0", "dsa-b@2.0.0"])
    solo = make_published(released_at="2026-09-01T00:00:00Z", agreements=["dsa-a@1.1.0"])
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
