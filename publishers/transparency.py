"""The public transparency page: every published release, what it cost in privacy, and under
which agreements.

One self-contained ``transparency.html`` (inline CSS, no scripts, no network; the same page
and Content-Security-Policy as the dashboard: :func:`publishers.pages.page_html`). Every value
from a release is HTML-escaped.

Input: release manifests as the hub publishes them (see :mod:`publishers.dashboard`): ``id``,
``released_at``, ``aggregate_id``, ``title``, ``agreements`` (``"id@version"``; falls back to
``agreement``), ``privacy_model``, ``mechanism``, ``privacy_loss``, ``privacy_loss_requested``,
``privacy_loss_unit`` and ``charges``. No cell, count or total is read.

Cumulative loss: releases are listed oldest first, and beside each agreement the page shows the
running sum of what releases *listed on this page* charged to it, in that agreement's own unit.
The charges come from ``charges`` (``{agreement, amount, unit}`` per agreement: what the budget
ledger debits). A release that reads linked data is charged to every agreement involved, each in
its own unit: a pure-DP release that reads a zCDP agreement's data charges that agreement
``ρ = ε²/2`` and a pure-DP agreement ``ε``. Older manifests without ``charges`` are charged
``privacy_loss_requested`` (``privacy_loss`` when absent) to each of their agreements, in the
release's unit. Under zCDP, rho adds up across releases exactly; under pure DP, epsilon does.
Releases that were not made public are not listed, so the agreement's budget ledger can show
more spent than the sums here; the page says so.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from publishers.pages import (
    LOSS_SYMBOL,
    MECHANISM_TEXT,
    MODEL_TEXT,
    agreement_refs,
    escape,
    finite_number,
    fmt,
    write_page,
)

__all__ = ["cumulative_losses", "render_transparency"]

PAGE = "transparency.html"


def _agreement_id(ref: str) -> str:
    return ref.split("@", 1)[0]


def _charges(release: dict[str, Any]) -> list[tuple[str, float, str]]:
    """``(agreement id, amount, unit)`` for each agreement the release was charged to: its
    ``charges``, or for an older manifest the requested loss, in the release's unit, for each
    of its agreements."""
    charges = [
        (_agreement_id(str(c["agreement"])), amount, str(c.get("unit") or ""))
        for c in release.get("charges") or []
        if isinstance(c, dict)
        and c.get("agreement")
        and (amount := finite_number(c.get("amount"))) is not None
    ]
    if charges:
        return charges
    charged = finite_number(release.get("privacy_loss_requested"))
    if charged is None:
        charged = finite_number(release.get("privacy_loss")) or 0.0
    unit = str(release.get("privacy_loss_unit") or "")
    return [
        (a, charged, unit) for a in dict.fromkeys(_agreement_id(a) for a in agreement_refs(release))
    ]


def _chronological(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(releases, key=lambda r: (str(r.get("released_at") or ""), str(r.get("id"))))


def _running(ordered: list[dict[str, Any]]) -> list[dict[str, tuple[float, str]]]:
    """For releases already in chronological order: each of the release's agreements, its
    running total and that total's unit. Totals are kept per agreement *and* unit, so an
    agreement whose model changed between versions never adds ρ to ε."""
    running: dict[tuple[str, str], float] = defaultdict(float)
    out = []
    for release in ordered:
        now = {}
        for agreement, amount, unit in _charges(release):
            running[agreement, unit] += amount
            now[agreement] = (running[agreement, unit], unit)
        out.append(now)
    return out


def cumulative_losses(releases: list[dict[str, Any]]) -> list[dict[str, float]]:
    """For each release in chronological order, the running loss charged to each of its
    agreements, in the unit that release charged it (keyed by agreement id, all versions
    together: budgets belong to the agreement, not the version)."""
    return [
        {agreement: total for agreement, (total, _) in now.items()}
        for now in _running(_chronological(releases))
    ]


def _loss(unit: object, amount: object) -> str:
    symbol = LOSS_SYMBOL.get(str(unit), "")
    return f"{escape(symbol)} = {escape(fmt(amount))}" if symbol else escape(fmt(amount))


def _row(release: dict[str, Any], cumulative: dict[str, tuple[float, str]]) -> str:
    unit = release.get("privacy_loss_unit")
    model = str(release.get("privacy_model"))
    mechanism = str(release.get("mechanism"))
    title = release.get("title") or release.get("aggregate_title")
    agreements = "<br>".join(escape(a) for a in agreement_refs(release)) or "—"
    running = "<br>".join(
        f"{escape(agreement)}: {_loss(total_unit, total)}"
        for agreement, (total, total_unit) in cumulative.items()
    )
    charges = _charges(release)
    charged = ""
    if release.get("charges") and (len(charges) > 1 or any(u != unit for _, _, u in charges)):
        listed = "; ".join(f"{_loss(u, amount)} to {escape(a)}" for a, amount, u in charges)
        charged = f"<br><small>charged {listed}</small>"
    window = release.get("window") or {}
    return (
        "<tr>"
        f"<td>{escape(release.get('released_at'))}</td>"
        f"<td><strong>{escape(release.get('aggregate_id'))}</strong><br>{escape(title)}"
        f"<br><small>data {escape(window.get('start'))} to {escape(window.get('end'))}; "
        f"release {escape(release.get('id'))}</small></td>"
        f"<td>{agreements}</td>"
        f"<td>{escape(MODEL_TEXT.get(model, model))}</td>"
        f"<td class='num'>{_loss(unit, release.get('privacy_loss'))}{charged}</td>"
        f"<td class='num'>{running or '—'}</td>"
        f"<td>{escape(MECHANISM_TEXT.get(mechanism, mechanism))}</td>"
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
    return write_page(
        out_dir,
        PAGE,
        title="Transparency log",
        intro="<p>Every published release, oldest first: when it was made, from which "
        "data-sharing agreements (id@version), and how much privacy it spent. Privacy loss is "
        "ρ (rho) under zero-concentrated differential privacy and ε (epsilon) under pure "
        "differential privacy; losses add up across releases, and each agreement's budget "
        "caps the total. A release that reads data shared under several agreements is charged "
        "to each, in that agreement's own unit (an agreement under zero-concentrated "
        "differential privacy pays ρ = ε²/2 for a release under pure differential privacy). "
        "The cumulative column sums the releases listed on this page; "
        "releases made for named recipients rather than the public are not listed, so an "
        "agreement's budget may show more spent. The guarantee is per linked person: someone "
        "record linkage splits into k ids can lose more than stated.</p>"
        "<p><a href='index.html'>Published statistics</a></p>",
        main=f"<section>{table}</section>",
    )
