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

CSV files are safe to open in a spreadsheet: a field that starts with ``=``, ``+``, ``-``,
``@``, tab or carriage return is prefixed with a single quote so it is never run as a formula.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

PERIOD_WORD = {"P1M": "month", "P3M": "quarter", "P1Y": "year"}
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


def _slug(index: int, value: object) -> str:
    return f"release-{index}-" + re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")


def _bound_text(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"±{math.ceil(number * 10) / 10:g}"


def privacy_statement(release: dict[str, Any]) -> str:
    """The plain-language privacy statement for one release, as escaped HTML text."""
    model = release.get("privacy_model")
    unit = LOSS_SYMBOL.get(str(release.get("privacy_loss_unit")), "loss")
    loss = _fmt(release.get("privacy_loss"))
    bound = release.get("contribution_bound") or {}
    k = bound.get("max_rows_per_person_per_period")
    period = PERIOD_WORD.get(str(bound.get("period")), "period")
    capped = (
        f"each person was counted in at most {_e(k)} cells per {period}"
        if release.get("measure") == "count_persons"
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
        "data. That is the loss of this release alone; the agreement's privacy budget caps the "
        "total over all releases.",
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
        parts.append(
            f"Counts below {int(min_cell)} are shown as “&lt;{int(min_cell)}”; that decision "
            "was made on the noisy numbers, so it reveals nothing more."
        )
    parts.append(
        "The 95% error bound covers the added noise; capping contributions can only make "
        "counts lower than the true ones."
    )
    return " ".join(parts)


def _bar_chart(release: dict[str, Any]) -> str:
    """An inline SVG bar chart of the marginal totals with 95% error bars ('' if none)."""
    totals: Sequence[dict[str, Any]] = release.get("totals") or []
    dims = release.get("dimensions") or []
    if not totals or not dims:
        return ""
    first = str(dims[0])
    width, height = 760, 260
    left, right, top, bottom = 60, 12, 14, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [_number(t.get("value")) for t in totals]
    errors = [_number(t.get("error_bound_95")) or 0.0 for t in totals]
    peak = max([v + e for v, e in zip(values, errors, strict=True) if v is not None] + [1.0])

    def y(v: float) -> float:
        return top + plot_h - plot_h * max(0.0, min(v, peak)) / peak

    slot = plot_w / len(totals)
    label_every = max(1, math.ceil(len(totals) / 12))
    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(release.get("title"))}: totals by {_e(first)} with 95% error bars">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
    ]
    for tick in (0.0, peak / 2, peak):
        out.append(
            f'<text x="{left - 6}" y="{y(tick) + 3:.1f}" text-anchor="end">{tick:,.0f}</text>'
        )
    for i, (total, v, err) in enumerate(zip(totals, values, errors, strict=True)):
        key = (total.get("key") or {}).get(first, "")
        x = left + i * slot
        tip = f"{key}: {total.get('display', '')}" + (f" ± {err:g}" if v is not None else "")
        if v is None:
            out.append(
                f'<rect class="missing" x="{x + slot * 0.1:.1f}" y="{top + plot_h - 3}" '
                f'width="{slot * 0.8:.1f}" height="3"><title>{_e(tip)}</title></rect>'
            )
        else:
            cx = x + slot / 2
            out.append(
                f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{y(v):.1f}" '
                f'width="{slot * 0.8:.1f}" height="{top + plot_h - y(v):.1f}">'
                f"<title>{_e(tip)}</title></rect>"
            )
            lo, hi = y(max(0.0, v - err)), y(v + err)
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


def _cells_table(release: dict[str, Any]) -> str:
    dims = [str(d) for d in release.get("dimensions") or []]
    head = "".join(f"<th scope='col'>{_e(d)}</th>" for d in dims) + "<th scope='col'>count</th>"
    body = []
    for cell in release.get("cells") or []:
        key = cell.get("key") or {}
        css = "num suppressed" if cell.get("suppressed") else "num"
        tds = "".join(f"<td>{_e(key.get(d))}</td>" for d in dims)
        body.append(f"<tr>{tds}<td class='{css}'>{_e(cell.get('display'))}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _totals_table(release: dict[str, Any]) -> str:
    totals = release.get("totals") or []
    dims = release.get("dimensions") or []
    if not totals or not dims:
        return ""
    first = str(dims[0])
    rows = "".join(
        f"<tr><td>{_e((t.get('key') or {}).get(first))}</td>"
        f"<td class='{'num suppressed' if t.get('suppressed') else 'num'}'>"
        f"{_e(t.get('display'))}</td><td class='num'>{_bound_text(t.get('error_bound_95'))}"
        "</td></tr>"
        for t in totals
    )
    return (
        f"<table><caption>Totals by {_e(first)}</caption><thead><tr><th scope='col'>"
        f"{_e(first)}</th><th scope='col'>total</th><th scope='col'>95% error</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _section(index: int, release: dict[str, Any]) -> str:
    window = release.get("window") or {}
    bound = release.get("contribution_bound") or {}
    unit = LOSS_SYMBOL.get(str(release.get("privacy_loss_unit")), "")
    agreements = release.get("agreements") or [release.get("agreement")]
    meta = [
        ("Release", release.get("id")),
        ("Aggregate", release.get("aggregate_id")),
        ("Agreements", ", ".join(str(a) for a in agreements if a)),
        ("Mechanism", f"{release.get('mechanism')} ({release.get('privacy_model')})"),
        ("Privacy loss", f"{unit} = {_fmt(release.get('privacy_loss'))}"),
        (
            "95% error bound",
            f"{_bound_text(release.get('error_bound_95'))} per cell, "
            f"{_bound_text(release.get('total_error_bound_95'))} per total",
        ),
        (
            "Contribution bound",
            f"{bound.get('max_rows_per_person_per_period')} per person per "
            f"{PERIOD_WORD.get(str(bound.get('period')), 'period')}",
        ),
        ("Data window", f"{window.get('start')} to {window.get('end')}"),
        ("Released", release.get("released_at")),
    ]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    chart = _bar_chart(release)
    figure = (
        f"<figure>{chart}<figcaption>Totals by {_e((release.get('dimensions') or [''])[0])}, "
        "summed over the other dimensions; bars show 95% error.</figcaption></figure>"
        if chart
        else ""
    )
    n_cells = len(release.get("cells") or [])
    return (
        f"<section id='{_slug(index, release.get('id'))}'>"
        f"<h2>{_e(release.get('title') or release.get('aggregate_title'))}</h2>"
        f"<dl class='meta'>{dl}</dl>{figure}"
        f"<p class='privacy'>{privacy_statement(release)}</p>"
        f"{_totals_table(release)}"
        f"<details><summary>All {n_cells} cells</summary>{_cells_table(release)}</details>"
        "</section>"
    )


def render_dashboard(releases: list[dict[str, Any]], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` showing every release; returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nav = "".join(
        f"<li><a href='#{_slug(i, r.get('id'))}'>{_e(r.get('title') or r.get('id'))}</a></li>"
        for i, r in enumerate(releases)
    )
    sections = "".join(_section(i, r) for i, r in enumerate(releases))
    empty = "" if releases else "<p>No releases have been published yet.</p>"
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<title>Published statistics — OVP Hub</title>"
        f"<style>{CSS}</style></head><body>"
        "<header><h1>Published statistics</h1><p>Counts shared under data-sharing "
        "agreements, released with differential privacy: no figure here is an exact count, "
        f"and each comes with its 95% error bound.</p><nav><ul>{nav}</ul></nav></header>"
        f"<main>{empty}{sections}</main>"
        "<footer><p>Generated by OVP Hub. This page loads nothing from the network.</p>"
        "</footer></body></html>\n"
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def csv_safe(value: object) -> str:
    """A CSV field that a spreadsheet will show as text, never evaluate as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def render_csv(release: dict[str, Any]) -> str:
    """A release's cells as CSV text: one column per dimension, then the published count
    (``<N`` when suppressed, never a number), the suppressed flag and the per-cell 95% error
    bound. Every field goes through :func:`csv_safe`."""
    dims = [str(d) for d in release.get("dimensions") or []]
    bound = release.get("error_bound_95")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([csv_safe(h) for h in (*dims, "count", "suppressed", "error_bound_95")])
    for cell in release.get("cells") or []:
        key = cell.get("key") or {}
        row = [key.get(d) for d in dims]
        row += [cell.get("display"), "true" if cell.get("suppressed") else "false", bound]
        writer.writerow([csv_safe(v) for v in row])
    return buffer.getvalue()


def write_csv(release: dict[str, Any], path: Path) -> Path:
    """Write :func:`render_csv` of a release to ``path``."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(render_csv(release))
    return path
