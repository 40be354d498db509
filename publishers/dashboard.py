"""Output channels for published releases: a static HTML dashboard and CSV files.

The dashboard is one self-contained ``index.html``: inline CSS, inline SVG charts, no
JavaScript, no fonts, images or scripts from anywhere (many city networks block CDNs), and a
Content-Security-Policy that forbids loading any. Every value that comes from a release
(titles, keys, ids) is HTML-escaped.

Input: the dicts that :meth:`publishers.release.ComputedRelease.to_manifest` returns, plus the
keys the hub adds when it publishes: ``id``, ``title``, ``released_at`` and ``agreements`` (a
list of ``"id@version"``). An optional ``linkage_split_rate`` (a fraction) is shown beside the
privacy statement when the hub provides it. Only published fields are rendered; anything else
in the dict is ignored.

Each release is shown in its measure's own terms (:func:`measure_kind`):

- counts (``count_rows``, ``count_persons``; also any manifest without a ``measure``) and sums:
  the value with its ``±error_bound_95``;
- means: the value, its conservative 95% interval ``[lower, upper]`` and ``n`` (the noisy
  number of rows);
- rates: the share as a percentage, its 95% interval and the noisy numerator and denominator.

Means and rates have no single error bound (the manifest's ``error_bound_95`` is ``None``); the
page states their intervals and the manifest's ``accuracy_note`` instead. When a release was
charged to several agreements (``charges``, possibly in different units), the privacy
statement says what each paid.

CSV files are safe to open in a spreadsheet: a text field that starts with ``=``, ``+``,
``-``, ``@``, tab or carriage return is prefixed with a single quote so it is never run as a
formula. Numbers the release computed (JSON numbers, never text) are written as numbers, so a
negative mean stays ``-3.5``.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from publishers.cells import PERIOD_UNIT

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

MODEL_TEXT = {
    "zcdp": "zero-concentrated differential privacy",
    "pure_dp": "pure differential privacy",
}
LOSS_SYMBOL = {"rho": "ρ", "epsilon": "ε"}
MECHANISM_TEXT = {
    "discrete_gaussian": "discrete Gaussian",
    "discrete_laplace": "discrete Laplace",
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa;line-height:1.45}
header,main,footer{max-width:60rem;margin:0 auto;padding:1rem 1.25rem}
header{border-bottom:1px solid #ddd}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1.25rem 0;
padding:1rem 1.25rem}
h1{font-size:1.6rem;margin:.3rem 0}h2{font-size:1.25rem;margin:.2rem 0 .6rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0 0 1rem}
dl.meta dt{font-weight:600;color:#444}dl.meta dd{margin:0}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.suppressed{color:#777;font-style:italic}
p.privacy{background:#f2f6fb;border-left:4px solid #2b6cb0;padding:.6rem .8rem}
p.accuracy{color:#444;font-size:.9rem}
svg{max-width:100%;height:auto}
.bar{fill:#2b6cb0}.err{stroke:#1b1b1b;stroke-width:1.2}.axis{stroke:#888}
.missing{fill:#bbb}text{font-size:10px;fill:#333}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fmt(value: object, digits: int = 4) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:.{digits}g}"


def _agreements(release: dict[str, Any]) -> list[str]:
    """The release's agreements as ``"id@version"`` (``agreement`` when ``agreements`` is
    absent)."""
    listed = release.get("agreements") or [release.get("agreement")]
    return [str(a) for a in listed if a]


def page_html(*, title: str, intro: str, main: str) -> str:
    """A self-contained page: no scripts, nothing loaded from the network (the
    Content-Security-Policy forbids it), the inline CSS. ``title`` is the page's heading (plain
    text, escaped here); ``intro`` (the rest of the header) and ``main`` are HTML, escaped by the
    caller."""
    title = _e(title)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{title} — OVP Hub</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>{title}</h1>{intro}</header>"
        f"<main>{main}</main>"
        "<footer><p>Generated by OVP Hub. This page loads nothing from the network.</p>"
        "</footer></body></html>\n"
    )


def _write_page(out_dir: Path, name: str, *, title: str, intro: str, main: str) -> Path:
    """Write :func:`page_html` to ``out_dir/name`` atomically (a reader sees the old page or
    the new one, never half of one); returns the page's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    staged = out_dir / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    staged.write_text(page_html(title=title, intro=intro, main=main), encoding="utf-8")
    os.replace(staged, path)
    return path


def _slug(index: int, value: object) -> str:
    return f"release-{index}-" + re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")


def _bound_text(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"±{math.ceil(number * 10) / 10:g}"


# --- measures -----------------------------------------------------------------------------------


def measure_kind(release: dict[str, Any]) -> str:
    """``"count"``, ``"sum"``, ``"mean"`` or ``"rate"``: how the release's numbers read. A
    manifest without a ``measure`` (older ones, hand-made ones) is a count."""
    measure = str(release.get("measure") or "count_rows")
    if measure.startswith("rate"):
        return "rate"
    return measure if measure in ("sum", "mean") else "count"


def _outward(value: float, digits: int, up: bool) -> float:
    """``value`` rounded to ``digits`` decimals away from the interval's middle, so a shown
    interval never claims more precision than the published one."""
    scale = 10.0**digits
    return (math.ceil(value * scale - 1e-9) if up else math.floor(value * scale + 1e-9)) / scale


def _interval_text(kind: str, lower: object, upper: object) -> str:
    """A published ``[lower, upper]`` as text: percentages for a rate, one decimal for a
    mean, each end rounded outwards ("—" when there is none)."""
    lo, hi = _number(lower), _number(upper)
    if lo is None or hi is None:
        return "—"
    if kind == "rate":
        return f"{_outward(lo * 100, 1, False):.1f}% to {_outward(hi * 100, 1, True):.1f}%"
    return f"{_outward(lo, 1, False):,.1f} to {_outward(hi, 1, True):,.1f}"


def _whole(value: object) -> str:
    number = _number(value)
    return "—" if number is None else str(int(number))


def _entry_bound(release: dict[str, Any], entry: dict[str, Any], total: bool) -> float | None:
    """The ±95% bound of a count or a sum entry: its own, else the release's per cell or per
    total."""
    own = _number(entry.get("error_bound_95"))
    if own is not None:
        return own
    return _number(release.get("total_error_bound_95" if total else "error_bound_95"))


def _value_bounds(release: dict[str, Any]) -> tuple[float, float] | None:
    bounds = (release.get("value") or {}).get("bounds")
    if isinstance(bounds, list | tuple) and len(bounds) == 2:
        lower, upper = _number(bounds[0]), _number(bounds[1])
        if lower is not None and upper is not None:
            return lower, upper
    return None


def _range(
    release: dict[str, Any], kind: str, entry: dict[str, Any], total: bool
) -> tuple[float, float, float] | None:
    """``(value, low, high)`` of one published entry: ``value ± bound`` for counts and sums
    (never below 0 when the true value cannot be), the interval for means and rates; ``None``
    when the entry shows no number."""
    value = None if entry.get("suppressed") else _number(entry.get("value"))
    if value is None:
        return None
    if kind in ("mean", "rate"):
        lower, upper = _number(entry.get("lower")), _number(entry.get("upper"))
        return value, value if lower is None else lower, value if upper is None else upper
    err = _entry_bound(release, entry, total) or 0.0
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
        if isinstance(c, dict) and c.get("agreement") and _number(c.get("amount")) is not None
    ]


def _charge_texts(release: dict[str, Any]) -> list[str]:
    """``"ρ = 0.05 to dsa-police-victimizations@1.0.0"`` per charge (plain text)."""
    return [
        f"{LOSS_SYMBOL.get(str(c.get('unit')), str(c.get('unit')))} = {_fmt(c.get('amount'))} "
        f"to {c.get('agreement')}"
        for c in _charges(release)
    ]


def _charged_differently(release: dict[str, Any]) -> bool:
    """Whether the charges say more than "the release's loss, to its one agreement"."""
    charges = _charges(release)
    if len(charges) != 1:
        return bool(charges)
    (only,) = charges
    return only.get("unit") != release.get("privacy_loss_unit") or _fmt(only.get("amount")) != _fmt(
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
        f"charged for it in its own unit: {_e(_and(_charge_texts(release)))}{converted}. Each "
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
        "rate": "A share whose noisy numerator or denominator is",
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
    loss = _fmt(release.get("privacy_loss"))
    bound = release.get("contribution_bound") or {}
    k = bound.get("max_rows_per_person_per_period")
    period = PERIOD_UNIT.get(str(bound.get("period")), "period")
    capped = (
        f"each person was counted in at most {_e(k)} cells per {period}"
        if release.get("measure") in ("count_persons", "rate_persons")
        else f"each person's records were capped at {_e(k)} per {period}"
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
    split = _number(release.get("linkage_split_rate"))
    if split is not None:
        parts.append(f"The measured rate of people split by linkage is {split:.1%}.")
    min_cell = _number(release.get("min_cell"))
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
    return " ".join(_e(n) for n in (note, totals_note) if n)


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
    if entry.get("suppressed") or _number(entry.get("value")) is None:
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
        f'aria-label="{_e(release.get("title"))}: {TOTALS_WORD[kind].lower()} by '
        f'{_e(first)} with {errors}">',
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
        tip = _tip(kind, key, total, _entry_bound(release, total, total=True))
        if span is None:
            out.append(
                f'<rect class="missing" x="{x + slot * 0.1:.1f}" y="{y(0.0) - 3:.1f}" '
                f'width="{slot * 0.8:.1f}" height="3"><title>{_e(tip)}</title></rect>'
            )
        else:
            v, low, high = span
            cx = x + slot / 2
            bar_top, bar_bottom = min(y(v), y(0.0)), max(y(v), y(0.0))
            out.append(
                f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{bar_top:.1f}" '
                f'width="{slot * 0.8:.1f}" height="{bar_bottom - bar_top:.1f}">'
                f"<title>{_e(tip)}</title></rect>"
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
                f'text-anchor="middle">{_e(key)}</text>'
            )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{_e(first)}</text></svg>"
    )
    return "".join(out)


Column = tuple[str, Callable[[dict[str, Any]], str]]
"""A table column: its header, and the plain text (escaped by the table) of an entry."""


def _columns(release: dict[str, Any], kind: str, total: bool) -> list[Column]:
    """The numeric columns of a table of cells (or of totals), by measure."""

    def bound(entry: dict[str, Any]) -> str:
        if entry.get("suppressed"):
            return "—"
        return _bound_text(_entry_bound(release, entry, total))

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
        tds = "".join(f"<td>{_e(key.get(d))}</td>" for d in dims)
        for i, (_, text) in enumerate(columns):
            css = "num suppressed" if i == 0 and entry.get("suppressed") else "num"
            tds += f"<td class='{css}'>{_e(text(entry))}</td>"
        body.append(f"<tr>{tds}</tr>")
    return "".join(body)


def _head(dims: Sequence[str], columns: Sequence[Column]) -> str:
    return "".join(f"<th scope='col'>{_e(h)}</th>" for h in [*dims, *(c[0] for c in columns)])


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
        f"<table><caption>{TOTALS_WORD[kind]} by {_e(first)}</caption>"
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
    return f"{TOTALS_WORD[kind]} by {_e(dims[0])}, {_e(over)}."


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
        ("Agreements", ", ".join(_agreements(release))),
        ("Mechanism", f"{release.get('mechanism')} ({release.get('privacy_model')})"),
        ("Privacy loss", f"{unit} = {_fmt(release.get('privacy_loss'))}"),
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
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    chart = _bar_chart(release)
    figure = (
        f"<figure>{chart}<figcaption>{_caption(release, kind)}</figcaption></figure>"
        if chart
        else ""
    )
    n_cells = len(release.get("cells") or [])
    return (
        f"<section id='{_slug(index, release.get('id'))}'>"
        f"<h2>{_e(release.get('title') or release.get('aggregate_title'))}</h2>"
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
        f"<li><a href='#{_slug(i, r.get('id'))}'>{_e(r.get('title') or r.get('id'))}</a></li>"
        for i, r in enumerate(releases)
    )
    sections = "".join(_section(i, r) for i, r in enumerate(releases))
    empty = "" if releases else "<p>No releases have been published yet.</p>"
    return _write_page(
        out_dir,
        "index.html",
        title="Published statistics",
        intro="<p>Counts, sums, means and shares from data shared under data-sharing "
        "agreements, released with differential privacy: no figure here is exact, and each "
        "comes with its 95% error bound or 95% interval.</p>"
        f"<nav><ul>{nav}</ul></nav>",
        main=f"{empty}{sections}",
    )


# --- CSV ----------------------------------------------------------------------------------------


def csv_safe(value: object) -> str:
    """A CSV field that a spreadsheet will show as text, never evaluate as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_field(value: object) -> str:
    """A number the release computed as itself (it cannot be a formula, and a negative one
    must stay a number); anything else through :func:`csv_safe`."""
    return str(value) if _number(value) is not None else csv_safe(value)


CSV_COLUMNS = {
    "count": ("count", "suppressed", "error_bound_95"),
    "sum": ("sum", "count", "suppressed", "error_bound_95"),
    "mean": ("mean", "count", "lower_95", "upper_95", "suppressed"),
    "rate": ("rate", "numerator", "denominator", "lower_95", "upper_95", "suppressed"),
}


def _csv_values(release: dict[str, Any], kind: str, cell: dict[str, Any]) -> list[object]:
    suppressed = bool(cell.get("suppressed"))
    flag = "true" if suppressed else "false"
    if kind == "count":
        return [cell.get("display"), flag, release.get("error_bound_95")]
    shown = cell.get("display") if suppressed or cell.get("value") is None else cell.get("value")
    if kind == "sum":
        return [shown, cell.get("count"), flag, _entry_bound(release, cell, total=False)]
    if kind == "mean":
        return [shown, cell.get("count"), cell.get("lower"), cell.get("upper"), flag]
    return [
        shown,
        cell.get("numerator"),
        cell.get("denominator"),
        cell.get("lower"),
        cell.get("upper"),
        flag,
    ]


def render_csv(release: dict[str, Any]) -> str:
    """A release's cells as CSV text: one column per dimension, then by measure (see
    :data:`CSV_COLUMNS`):

    - counts: the published count (``<N`` when suppressed, never a number), the suppressed
      flag and the per-cell 95% error bound;
    - sums: the sum, the noisy row count, the flag and the 95% error bound;
    - means: the mean (two decimals), the noisy row count, the 95% interval and the flag;
    - rates: the share (0 to 1, four decimals), the noisy numerator and denominator, the 95%
      interval (shares too) and the flag.

    A suppressed sum, mean or rate reads ``n<N`` and leaves its numbers empty. Text goes
    through :func:`csv_safe`."""
    dims = [str(d) for d in release.get("dimensions") or []]
    kind = measure_kind(release)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([csv_safe(h) for h in (*dims, *CSV_COLUMNS[kind])])
    for cell in release.get("cells") or []:
        key = cell.get("key") or {}
        writer.writerow(
            [csv_safe(key.get(d)) for d in dims]
            + [_csv_field(v) for v in _csv_values(release, kind, cell)]
        )
    return buffer.getvalue()


def write_csv(release: dict[str, Any], path: Path) -> Path:
    """Write :func:`render_csv` of a release to ``path``."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(render_csv(release))
    return path
