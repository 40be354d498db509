"""The static HTML dashboard of published releases.

The dashboard is one self-contained ``index.html``: inline CSS, inline SVG charts, no
JavaScript, no fonts, images or scripts from anywhere (many city networks block CDNs), and a
Content-Security-Policy that forbids loading any. Every value that comes from a release
(titles, keys, ids) is HTML-escaped.

Input: the dicts that :meth:`publishers.release.ComputedRelease.to_manifest` returns, plus the
keys the hub adds when it publishes: ``id``, ``title``, ``released_at`` and ``agreements`` (a
list of ``"id@version"``). An optional ``linkage_split_rate`` (a fraction) is shown beside the
privacy statement when the hub provides it. Only published fields are rendered; anything else
in the dict is ignored.

Each release is shown in its measure's own terms (:func:`publishers.pages.measure_kind`):

- counts (``count_rows``, ``count_persons``; also any manifest without a ``measure``) and sums:
  the value with its ``±error_bound_95``;
- means: the value, its conservative 95% interval ``[lower, upper]`` and ``n`` (the noisy
  number of rows);
- rates: the share as a percentage, its 95% interval and the noisy numerator and denominator.

Means and rates have no single error bound (the manifest's ``error_bound_95`` is ``None``); the
page states their intervals and the manifest's ``accuracy_note`` instead. When a release was
charged to several agreements (``charges``, possibly in different units), the privacy
statement says what each paid.

The page, its CSS and escaping are shared with the other pages (:mod:`publishers.pages`); a
release's CSV file is :mod:`publishers.downloads`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from publishers.cells import PERIOD_UNIT
from publishers.pages import (
    LOSS_SYMBOL,
    MECHANISM_TEXT,
    MODEL_TEXT,
    agreement_refs,
    entry_bound,
    escape,
    finite_number,
    fmt,
    measure_kind,
    write_page,
)


def _slug(index: int, value: object) -> str:
    return f"release-{index}-" + re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")


def _bound_text(value: object) -> str:
    number = finite_number(value)
    return "—" if number is None else f"±{math.ceil(number * 10) / 10:g}"


# --- measures -----------------------------------------------------------------------------------


def _outward(value: float, digits: int, up: bool) -> float:
    """``value`` rounded to ``digits`` decimals away from the interval's middle, so a shown
    interval never claims more precision than the published one."""
    scale = 10.0**digits
    return (math.ceil(value * scale - 1e-9) if up else math.floor(value * scale + 1e-9)) / scale


def _interval_text(kind: str, lower: object, upper: object) -> str:
    """A published ``[lower, upper]`` as text: percentages for a rate, one decimal for a
    mean, each end rounded outwards ("—" when there is none)."""
    lo, hi = finite_number(lower), finite_number(upper)
    if lo is None or hi is None:
        return "—"
    if kind == "rate":
        return f"{_outward(lo * 100, 1, False):.1f}% to {_outward(hi * 100, 1, True):.1f}%"
    return f"{_outward(lo, 1, False):,.1f} to {_outward(hi, 1, True):,.1f}"


def _whole(value: object) -> str:
    number = finite_number(value)
    return "—" if number is None else str(int(number))


def _value_bounds(release: dict[str, Any]) -> tuple[float, float] | None:
    bounds = (release.get("value") or {}).get("bounds")
    if isinstance(bounds, list | tuple) and len(bounds) == 2:
        lower, upper = finite_number(bounds[0]), finite_number(bounds[1])
        if lower is not None and upper is not None:
            return lower, upper
    return None


def _range(
    release: dict[str, Any], kind: str, entry: dict[str, Any], total: bool
) -> tuple[float, float, float] | None:
    """``(value, low, high)`` of one published entry: ``value ± bound`` for counts and sums
    (never below 0 when the true value cannot be), the interval for means and rates; ``None``
    when the entry shows no number."""
    value = None if entry.get("suppressed") else finite_number(entry.get("value"))
    if value is None:
        return None
    if kind in ("mean", "rate"):
        lower, upper = finite_number(entry.get("lower")), finite_number(entry.get("upper"))
        return value, value if lower is None else lower, value if upper is None else upper
    err = entry_bound(release, entry, total) or 0.0
    low = value - err
    bounds = _value_bounds(release)
    if kind == "count" or (bounds is not None and bounds[0] >= 0):
        low = max(low, 0.0)
    return value, low, value + err


TOTALS_WORD = {"count": "Totals", "sum": "Sums", "mean": "Means", "rate": "Shares"}


def _definition(release: dict[str, Any]) -> list[tuple[str, object]]:
    """Meta rows on what a sum or mean clamps and which linked data a release reads."""
    rows: list[tuple[str, object]] = []
    bounds = _value_bounds(release)
    if bounds is not None:
        rows.append(("Values clamped to", f"{bounds[0]:g} to {bounds[1]:g}"))
    linked = release.get("requires_linkage") or []
    if linked:
        rows.append(("Linked data", ", ".join(str(d) for d in linked)))
    return rows


# --- privacy ------------------------------------------------------------------------------------


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _charges(release: dict[str, Any]) -> list[dict[str, Any]]:
    """The release's ``charges`` (what each agreement's budget paid), well-formed ones only."""
    return [
        c
        for c in release.get("charges") or []
        if isinstance(c, dict) and c.get("agreement") and finite_number(c.get("amount")) is not None
    ]


def _charge_texts(release: dict[str, Any]) -> list[str]:
    """``"ρ = 0.05 to dsa-police-victimizations@1.0.0"`` per charge (plain text)."""
    return [
        f"{LOSS_SYMBOL.get(str(c.get('unit')), str(c.get('unit')))} = {fmt(c.get('amount'))} "
        f"to {c.get('agreement')}"
        for c in _charges(release)
    ]


def _charged_differently(release: dict[str, Any]) -> bool:
    """Whether the charges say more than "the release's loss, to its one agreement"."""
    charges = _charges(release)
    if len(charges) != 1:
        return bool(charges)
    (only,) = charges
    return only.get("unit") != release.get("privacy_loss_unit") or fmt(only.get("amount")) != fmt(
        release.get("privacy_loss")
    )


def _budget_text(release: dict[str, Any]) -> str:
    charges = _charges(release)
    if not _charged_differently(release):
        return (
            "That is the loss of this release alone; the agreement's privacy budget caps the "
            "total over all releases."
        )
    converted = ""
    if any(c.get("unit") == "rho" for c in charges) and release.get("privacy_model") == "pure_dp":
        converted = (
            " (a zero-concentrated agreement is charged ρ = ε²/2 for a pure differential "
            "privacy release)"
        )
    return (
        f"This release reads data shared under {len(charges)} "
        f"agreement{'s' if len(charges) > 1 else ''}, and each agreement's privacy budget was "
        f"charged for it in its own unit: {escape(_and(_charge_texts(release)))}{converted}. Each "
        "agreement's budget caps its total over all releases."
    )


def _suppression_text(kind: str, min_cell: int) -> str:
    if kind == "count":
        return (
            f"Counts below {min_cell} are shown as “&lt;{min_cell}”; that decision was made on "
            "the noisy numbers, so it reveals nothing more."
        )
    what = {
        "sum": "A sum whose noisy number of rows is",
        "mean": "A mean whose noisy number of rows is",
        "rate": "A share whose noisy numerator, or the rest of its noisy denominator, is",
    }[kind]
    return (
        f"{what} below {min_cell} is shown as “n&lt;{min_cell}”, with no number; that "
        "decision was made on the noisy numbers, so it reveals nothing more."
    )


def _bias_text(kind: str) -> str:
    if kind == "count":
        return (
            "The 95% error bound covers the added noise; capping contributions can only make "
            "counts lower than the true ones."
        )
    if kind == "sum":
        return (
            "The 95% error bound covers the added noise only, not the effect of clamping values "
            "and capping each person's records."
        )
    clamping = "clamping values and " if kind == "mean" else ""
    return (
        "The 95% intervals cover the added noise only, not the effect of "
        f"{clamping}capping each person's records."
    )


def privacy_statement(release: dict[str, Any]) -> str:
    """The plain-language privacy statement for one release, as escaped HTML text."""
    model = release.get("privacy_model")
    kind = measure_kind(release)
    unit = LOSS_SYMBOL.get(str(release.get("privacy_loss_unit")), "loss")
    loss = fmt(release.get("privacy_loss"))
    bound = release.get("contribution_bound") or {}
    k = bound.get("max_rows_per_person_per_period")
    period = PERIOD_UNIT.get(str(bound.get("period")), "period")
    capped = (
        f"each person was counted in at most {escape(k)} cells per {period}"
        if release.get("measure") in ("count_persons", "rate_persons")
        else f"each person's records were capped at {escape(k)} per {period}"
    )
    group = (
        f"k² × {unit} (twice the ids, four times {unit})"
        if model == "zcdp"
        else f"k × {unit} (twice the ids, twice {unit})"
    )
    parts = [
        f"These numbers are protected by {MODEL_TEXT.get(str(model), 'differential privacy')} "
        f"with {unit} = {loss}: {capped}, then calibrated random noise ("
        f"{MECHANISM_TEXT.get(str(release.get('mechanism')), 'OpenDP')}, via OpenDP) was "
        "added, so the release reveals very little about whether any one person is in the "
        "data.",
        _budget_text(release),
        "The protection is per linked person: records from different agencies are joined "
        "into pseudonymous person ids by record linkage on keyed tokens, and a person whom "
        "linkage wrongly "
        f"splits into k ids is protected only at {group}.",
    ]
    split = finite_number(release.get("linkage_split_rate"))
    if split is not None:
        parts.append(f"The measured rate of people split by linkage is {split:.1%}.")
    min_cell = finite_number(release.get("min_cell"))
    if min_cell:
        parts.append(_suppression_text(kind, int(min_cell)))
    parts.append(_bias_text(kind))
    return " ".join(parts)


def _accuracy_text(release: dict[str, Any]) -> str:
    """What the accuracy figures mean, as escaped HTML text: the manifest's ``accuracy_note``
    (and ``totals_note`` for counts and sums)."""
    kind = measure_kind(release)
    note = release.get("accuracy_note")
    if not note:
        note = (
            "Each value comes with a conservative 95% interval computed from the noisy values only."
            if kind in ("mean", "rate")
            else "With probability at least 95%, a published value differs from its value after "
            "contribution bounding by less than its 95% error bound."
        )
    totals_note = release.get("totals_note") if kind in ("count", "sum") else None
    if kind in ("mean", "rate") and release.get("totals"):
        totals_note = (
            "A total row pools the noisy numbers of every cell in its row and states its "
            "interval the same way."
        )
    return " ".join(escape(n) for n in (note, totals_note) if n)


# --- figures and tables -------------------------------------------------------------------------


def _nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``x`` (an axis
    end with round ticks); 1 when ``x`` is not positive."""
    if x <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if x <= m * power * (1 + 1e-12))


def _tick_text(kind: str, tick: float, peak: float) -> str:
    if kind == "rate":
        return f"{tick:.1%}" if peak < 0.1 else f"{tick:.0%}"
    if kind == "mean":
        return f"{tick:,.1f}"
    return f"{tick:,.0f}"


def _tip(kind: str, key: object, entry: dict[str, Any], err: float | None) -> str:
    shown = f"{key}: {entry.get('display', '')}"
    if entry.get("suppressed") or finite_number(entry.get("value")) is None:
        return shown
    if kind in ("mean", "rate"):
        return (
            f"{shown} (95% interval {_interval_text(kind, entry.get('lower'), entry.get('upper'))})"
        )
    return shown + ("" if err is None else f" {_bound_text(err)}")


def _bar_chart(release: dict[str, Any]) -> str:
    """An inline SVG bar chart of the marginal totals with 95% error bars ('' if none): ±the
    95% bound for counts and sums, the 95% interval for means and rates."""
    totals: Sequence[dict[str, Any]] = release.get("totals") or []
    dims = release.get("dimensions") or []
    if not totals or not dims:
        return ""
    kind = measure_kind(release)
    first = str(dims[0])
    width, height = 760, 260
    left, right, top, bottom = 60, 12, 14, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    ranges = [_range(release, kind, t, total=True) for t in totals]
    shown = [r for r in ranges if r is not None]
    lowest = min([lo for _, lo, _ in shown] + [0.0])
    floor = -_nice_ceiling(-lowest) if lowest < 0 else 0.0
    peak = _nice_ceiling(max([hi for _, _, hi in shown] + [0.0]))
    if kind == "rate":
        peak = min(peak, 1.0)

    def y(v: float) -> float:
        return top + plot_h - plot_h * (max(floor, min(v, peak)) - floor) / (peak - floor)

    slot = plot_w / len(totals)
    label_every = max(1, math.ceil(len(totals) / 12))
    errors = "95% intervals" if kind in ("mean", "rate") else "95% error bars"
    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(release.get("title"))}: {TOTALS_WORD[kind].lower()} by '
        f'{escape(first)} with {errors}">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
    ]
    if floor < 0:
        out.append(
            f'<line class="axis" x1="{left}" y1="{y(0.0):.1f}" x2="{width - right}" '
            f'y2="{y(0.0):.1f}"/>'
        )
    ticks = sorted({floor, 0.0, (floor + peak) / 2, peak} if floor < 0 else {0.0, peak / 2, peak})
    for tick in ticks:
        out.append(
            f'<text x="{left - 6}" y="{y(tick) + 3:.1f}" text-anchor="end">'
            f"{_tick_text(kind, tick, peak)}</text>"
        )
    for i, (total, span) in enumerate(zip(totals, ranges, strict=True)):
        key = (total.get("key") or {}).get(first, "")
        x = left + i * slot
        tip = _tip(kind, key, total, entry_bound(release, total, total=True))
        if span is None:
            out.append(
                f'<rect class="missing" x="{x + slot * 0.1:.1f}" y="{y(0.0) - 3:.1f}" '
                f'width="{slot * 0.8:.1f}" height="3"><title>{escape(tip)}</title></rect>'
            )
        else:
            v, low, high = span
            cx = x + slot / 2
            bar_top, bar_bottom = min(y(v), y(0.0)), max(y(v), y(0.0))
            out.append(
                f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{bar_top:.1f}" '
                f'width="{slot * 0.8:.1f}" height="{bar_bottom - bar_top:.1f}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            lo, hi = y(low), y(high)
            cap = min(4.0, slot * 0.2)
            out.append(
                f'<path class="err" d="M{cx:.1f} {lo:.1f}V{hi:.1f}M{cx - cap:.1f} {hi:.1f}'
                f'H{cx + cap:.1f}M{cx - cap:.1f} {lo:.1f}H{cx + cap:.1f}"/>'
            )
        if i % label_every == 0:
            out.append(
                f'<text x="{x + slot / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{escape(key)}</text>'
            )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(first)}</text></svg>"
    )
    return "".join(out)


Column = tuple[str, Callable[[dict[str, Any]], str]]
"""A table column: its header, and the plain text (escaped by the table) of an entry."""


def _columns(release: dict[str, Any], kind: str, total: bool) -> list[Column]:
    """The numeric columns of a table of cells (or of totals), by measure."""

    def bound(entry: dict[str, Any]) -> str:
        if entry.get("suppressed"):
            return "—"
        return _bound_text(entry_bound(release, entry, total))

    def interval(entry: dict[str, Any]) -> str:
        return _interval_text(kind, entry.get("lower"), entry.get("upper"))

    def display(entry: dict[str, Any]) -> str:
        return str(entry.get("display") or "")

    if kind == "count":
        return [("total", display), ("95% error", bound)] if total else [("count", display)]
    if kind == "sum":
        return [
            ("sum", display),
            ("95% error", bound),
            ("n (rows)", lambda e: _whole(e.get("count"))),
        ]
    if kind == "mean":
        return [
            ("mean", display),
            ("95% interval", interval),
            ("n (rows)", lambda e: _whole(e.get("count"))),
        ]
    return [
        ("share", display),
        ("95% interval", interval),
        ("numerator", lambda e: _whole(e.get("numerator"))),
        ("denominator", lambda e: _whole(e.get("denominator"))),
    ]


def _rows(entries: Sequence[dict[str, Any]], dims: Sequence[str], columns: Sequence[Column]) -> str:
    body = []
    for entry in entries:
        key = entry.get("key") or {}
        tds = "".join(f"<td>{escape(key.get(d))}</td>" for d in dims)
        for i, (_, text) in enumerate(columns):
            css = "num suppressed" if i == 0 and entry.get("suppressed") else "num"
            tds += f"<td class='{css}'>{escape(text(entry))}</td>"
        body.append(f"<tr>{tds}</tr>")
    return "".join(body)


def _head(dims: Sequence[str], columns: Sequence[Column]) -> str:
    return "".join(f"<th scope='col'>{escape(h)}</th>" for h in [*dims, *(c[0] for c in columns)])


def _cells_table(release: dict[str, Any]) -> str:
    dims = [str(d) for d in release.get("dimensions") or []]
    columns = _columns(release, measure_kind(release), total=False)
    return (
        f"<table><thead><tr>{_head(dims, columns)}</tr></thead>"
        f"<tbody>{_rows(release.get('cells') or [], dims, columns)}</tbody></table>"
    )


def _totals_table(release: dict[str, Any]) -> str:
    totals = release.get("totals") or []
    dims = release.get("dimensions") or []
    if not totals or not dims:
        return ""
    first = str(dims[0])
    kind = measure_kind(release)
    columns = _columns(release, kind, total=True)
    return (
        f"<table><caption>{TOTALS_WORD[kind]} by {escape(first)}</caption>"
        f"<thead><tr>{_head([first], columns)}</tr></thead>"
        f"<tbody>{_rows(totals, [first], columns)}</tbody></table>"
    )


def _accuracy_meta(release: dict[str, Any], kind: str) -> tuple[str, str]:
    if kind in ("mean", "rate"):
        return "95% interval", "one per cell and per total, shown beside each value"
    return (
        "95% error bound",
        f"{_bound_text(release.get('error_bound_95'))} per cell, "
        f"{_bound_text(release.get('total_error_bound_95'))} per total",
    )


def _caption(release: dict[str, Any], kind: str) -> str:
    dims = release.get("dimensions") or [""]
    over = (
        "summed over the other dimensions; bars show the 95% error bound"
        if kind in ("count", "sum")
        else "pooled over the other dimensions; whiskers show the 95% interval"
    )
    if len(dims) == 1:
        over = over.split("; ", 1)[1]
    return f"{TOTALS_WORD[kind]} by {escape(dims[0])}, {escape(over)}."


def _section(index: int, release: dict[str, Any]) -> str:
    kind = measure_kind(release)
    window = release.get("window") or {}
    bound = release.get("contribution_bound") or {}
    unit = LOSS_SYMBOL.get(str(release.get("privacy_loss_unit")), "")
    meta = [
        ("Release", release.get("id")),
        ("Aggregate", release.get("aggregate_id")),
        ("Measure", release.get("measure") or "count_rows"),
        *_definition(release),
        ("Agreements", ", ".join(agreement_refs(release))),
        ("Mechanism", f"{release.get('mechanism')} ({release.get('privacy_model')})"),
        ("Privacy loss", f"{unit} = {fmt(release.get('privacy_loss'))}"),
    ]
    if _charged_differently(release):
        meta.append(("Charged", "; ".join(_charge_texts(release))))
    meta += [
        _accuracy_meta(release, kind),
        (
            "Contribution bound",
            f"{bound.get('max_rows_per_person_per_period')} per person per "
            f"{PERIOD_UNIT.get(str(bound.get('period')), 'period')}",
        ),
        ("Data window", f"{window.get('start')} to {window.get('end')}"),
        ("Released", release.get("released_at")),
    ]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in meta)
    chart = _bar_chart(release)
    figure = (
        f"<figure>{chart}<figcaption>{_caption(release, kind)}</figcaption></figure>"
        if chart
        else ""
    )
    n_cells = len(release.get("cells") or [])
    return (
        f"<section id='{_slug(index, release.get('id'))}'>"
        f"<h2>{escape(release.get('title') or release.get('aggregate_title'))}</h2>"
        f"<dl class='meta'>{dl}</dl>{figure}"
        f"<p class='privacy'>{privacy_statement(release)}</p>"
        f"<p class='accuracy'>{_accuracy_text(release)}</p>"
        f"{_totals_table(release)}"
        f"<details><summary>All {n_cells} cells</summary>{_cells_table(release)}</details>"
        "</section>"
    )


def render_dashboard(releases: list[dict[str, Any]], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` showing every release; returns its path."""
    nav = "".join(
        f"<li><a href='#{_slug(i, r.get('id'))}'>{escape(r.get('title') or r.get('id'))}</a></li>"
        for i, r in enumerate(releases)
    )
    sections = "".join(_section(i, r) for i, r in enumerate(releases))
    empty = "" if releases else "<p>No releases have been published yet.</p>"
    return write_page(
        out_dir,
        "index.html",
        title="Published statistics",
        intro="<p>Counts, sums, means and shares from data shared under data-sharing "
        "agreements, released with differential privacy: no figure here is exact, and each "
        "comes with its 95% error bound or 95% interval.</p>"
        f"<nav><ul>{nav}</ul></nav>",
        main=f"{empty}{sections}",
    )
