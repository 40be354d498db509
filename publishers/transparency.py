"""The public transparency page: every published release, what it cost in privacy, and under
which agreements.

One self-contained ``transparency.html`` (inline CSS, no scripts, no network; the same
Content-Security-Policy as the dashboard). Every value from a release is HTML-escaped.

Input: release manifests as the hub publishes them (see :mod:`publishers.dashboard`): ``id``,
``released_at``, ``aggregate_id``, ``title``, ``agreements`` (``"id@version"``; falls back to
``agreement``), ``privacy_model``, ``mechanism``, ``privacy_loss``, ``privacy_loss_requested``,
``privacy_loss_unit``. No cell, count or total is read.

Cumulative loss: releases are listed oldest first, and beside each agreement the page shows the
running sum of what releases *listed on this page* charged to it (``privacy_loss_requested``,
the amount the budget ledger debits; ``privacy_loss`` when absent). A release that uses several
agreements is charged to each. Under zCDP, rho adds up across releases exactly; under pure DP,
epsilon does. Releases that were not made public are not listed, so the agreement's budget
ledger can show more spent than the sums here; the page says so.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from publishers.dashboard import (
    LOSS_SYMBOL,
    MECHANISM_TEXT,
    MODEL_TEXT,
    _agreements,
    _e,
    _fmt,
    _number,
    _write_page,
)

__all__ = ["cumulative_losses", "render_transparency"]

PAGE = "transparency.html"


def _agreement_id(ref: str) -> str:
    return ref.split("@", 1)[0]


def _charged(release: dict[str, Any]) -> float | None:
    charged = _number(release.get("privacy_loss_requested"))
    return charged if charged is not None else _number(release.get("privacy_loss"))


def _chronological(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(releases, key=lambda r: (str(r.get("released_at") or ""), str(r.get("id"))))


def _running(ordered: list[dict[str, Any]]) -> list[dict[str, float]]:
    """:func:`cumulative_losses` of releases already in chronological order."""
    running: dict[str, float] = defaultdict(float)
    out = []
    for release in ordered:
        charged = _charged(release) or 0.0
        now = {}
        for agreement in dict.fromkeys(_agreement_id(a) for a in _agreements(release)):
            running[agreement] += charged
            now[agreement] = running[agreement]
        out.append(now)
    return out


def cumulative_losses(releases: list[dict[str, Any]]) -> list[dict[str, float]]:
    """For each release in chronological order, the running loss charged to each of its
    agreements (keyed by agreement id, all versions together: budgets belong to the
    agreement, not the version)."""
    return _running(_chronological(releases))


def _row(release: dict[str, Any], cumulative: dict[str, float]) -> str:
    unit = LOSS_SYMBOL.get(str(release.get("privacy_loss_unit")), "")
    symbol = f"{unit} = " if unit else ""
    model = str(release.get("privacy_model"))
    mechanism = str(release.get("mechanism"))
    title = release.get("title") or release.get("aggregate_title")
    agreements = "<br>".join(_e(a) for a in _agreements(release)) or "—"
    running = "<br>".join(
        f"{_e(agreement)}: {_e(symbol)}{_e(_fmt(total))}" for agreement, total in cumulative.items()
    )
    window = release.get("window") or {}
    return (
        "<tr>"
        f"<td>{_e(release.get('released_at'))}</td>"
        f"<td><strong>{_e(release.get('aggregate_id'))}</strong><br>{_e(title)}"
        f"<br><small>data {_e(window.get('start'))} to {_e(window.get('end'))}; "
        f"release {_e(release.get('id'))}</small></td>"
        f"<td>{agreements}</td>"
        f"<td>{_e(MODEL_TEXT.get(model, model))}</td>"
        f"<td class='num'>{_e(symbol)}{_e(_fmt(release.get('privacy_loss')))}</td>"
        f"<td class='num'>{running or '—'}</td>"
        f"<td>{_e(MECHANISM_TEXT.get(mechanism, mechanism))}</td>"
        "</tr>"
    )


def render_transparency(releases: list[dict[str, Any]], out_dir: Path) -> Path:
    """Write ``out_dir/transparency.html`` listing every release given, oldest first, with its
    date, aggregate, agreements, privacy model, privacy loss, the cumulative loss charged to
    each agreement and the mechanism. Returns the page's path."""
    ordered = _chronological(releases)
    rows = "".join(_row(r, c) for r, c in zip(ordered, _running(ordered), strict=True))
    head = "".join(
        f"<th scope='col'>{h}</th>"
        for h in (
            "Released",
            "Aggregate",
            "Agreements",
            "Privacy model",
            "Privacy loss",
            "Cumulative loss per agreement",
            "Mechanism",
        )
    )
    table = (
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        if releases
        else "<p>No releases have been published yet.</p>"
    )
    return _write_page(
        out_dir,
        PAGE,
        title="Transparency log",
        intro="<p>Every published release, oldest first: when it was made, from which "
        "data-sharing agreements (id@version), and how much privacy it spent. Privacy loss is "
        "ρ (rho) under zero-concentrated differential privacy and ε (epsilon) under pure "
        "differential privacy; losses add up across releases, and each agreement's budget "
        "caps the total. The cumulative column sums the releases listed on this page; "
        "releases made for named recipients rather than the public are not listed, so an "
        "agreement's budget may show more spent. The guarantee is per linked person: someone "
        "record linkage splits into k ids can lose more than stated.</p>"
        "<p><a href='index.html'>Published statistics</a></p>",
        main=f"<section>{table}</section>",
    )
