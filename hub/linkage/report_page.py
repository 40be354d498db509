"""The linkage report as one self-contained HTML page (the page, CSS and escaping every
published page shares: :func:`publishers.pages.page_html`). Input: the data
:func:`hub.linkage.report.linkage_report` returns; every value from it is HTML-escaped.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from hub.auth.policies import Actor
from hub.linkage.link_rates import ALL_AGENCIES, SUPPRESSED
from hub.linkage.report import linkage_report
from publishers.pages import escape, finite_number, fmt, page_html

TRAINED_TEXT = {
    "em": "em — m fitted by expectation maximisation, u by random sampling",
    "priors": "priors — too few records to fit m (it keeps the engine's starting values); "
    "u by random sampling",
    "none": "none — nothing to compare (no names or birth dates); every record is its own person",
}


def report_html(session: Session, actor: Actor, run_id: int | None = None) -> str:
    """The linkage report of run ``run_id`` (default: the latest finished run) as a page."""
    return render_report(linkage_report(session, actor, run_id))


def _num(value: object, digits: int = 4) -> str:
    return escape(fmt(value, digits))


def _int(value: object) -> str:
    number = finite_number(value)
    return "—" if number is None else f"{int(number):,}"


def _table(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    """A table; ``head`` is plain text, ``rows`` cells are HTML (``<td>`` included)."""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    ths = "".join(f"<th scope='col'>{escape(h)}</th>" for h in head)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: object, numeric: bool = False) -> str:
    return f"<td class='num'>{value}</td>" if numeric else f"<td>{value}</td>"


def _dl(items: list[tuple[str, str]]) -> str:
    """A definition list; values are HTML."""
    return (
        "<dl class='meta'>"
        + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items)
        + "</dl>"
    )


def _duration(seconds: object) -> str:
    number = finite_number(seconds)
    if number is None:
        return "—"
    if number < 60:
        return f"{number:.1f} s"
    return f"{int(number // 60)} min {number % 60:.0f} s"


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    audit = report.get("audit")
    items = [
        ("Method", escape(run.get("method"))),
        ("Started", escape(run.get("started_at"))),
        ("Duration", escape(_duration(run.get("seconds")))),
        ("Records", _int(run.get("records"))),
        ("Linkable records", _int(run.get("linkable_records"))),
        ("Persons", _int(run.get("persons"))),
        ("Links", f"{_int(run.get('links'))} pairs at or above the threshold each requires"),
        ("Trained", escape(TRAINED_TEXT.get(str(run.get("trained")), run.get("trained")))),
        ("Datasets linked", escape(", ".join(run.get("datasets") or []) or "—")),
        (
            "Audited",
            f"event {escape(audit['seq'])} of the audit log, by {escape(audit['actor'])}"
            if audit
            else "no audit event found for this run",
        ),
    ]
    note = (
        ""
        if run.get("latest")
        else "<p class='privacy'>This is not the latest run. Link rates below use the person "
        "ids as they stand now, which later runs may have changed.</p>"
    )
    overdue = run.get("key_rotation_overdue") or []
    if overdue:
        listed = ", ".join(
            f"{escape(o.get('agreement'))} (every {_int(o.get('every_days'))} days, due "
            f"{escape(o.get('due_on'))})"
            for o in overdue
        )
        note += (
            "<p class='privacy'>The linkage keys were overdue for rotation under "
            f"{listed} when this run was made. Rotate them with "
            "<code>ovphub keys rotate</code>.</p>"
        )
    return _dl(items) + note


def _threshold_section(report: dict[str, Any]) -> str:
    t = report["threshold"]
    p = t.get("probability")
    odds = finite_number(t.get("odds"))
    lines = [
        f"<p>This run linked pairs with a match probability of at least <strong>{_num(p)}"
        f"</strong> (match weight {_num(t.get('match_weight'), 3)}"
        + (f", odds of {odds:g} to 1" if odds is not None else "")
        + ").</p>",
        f"<p>Why the default, {_num(t.get('default'))}, in the words of the engine "
        f"(<code>EngineSettings.threshold</code>): {escape(t.get('why'))}</p>",
    ]
    if p != t.get("default"):
        lines.append("<p>This run did not use the default threshold.</p>")
    own = t.get("agreements") or {}
    if own:
        floored = bool(t.get("floored"))
        floor = finite_number(p) if floored else None
        items = "".join(
            f"<li><code>{escape(dataset)}</code>: {_num(value, 12)}"
            + (
                " (at or below this run's threshold, so it changes nothing)"
                if floor is not None and (finite_number(value) or 0) <= floor
                else ""
            )
            + "</li>"
            for dataset, value in sorted(own.items())
        )
        rule = (
            "the highest of this run's threshold and its two datasets' thresholds, so an "
            "agreement can only make linkage stricter"
            if floored
            else "the higher of its two datasets' thresholds (a run made before agreements "
            "could only make linkage stricter: two below the hub's threshold loosened it)"
        )
        lines.append(
            "<p>These datasets' agreements set their own match threshold "
            "(<code>linkage.method.match_threshold</code>); a pair of records links only at or "
            f"above {rule}:</p><ul>{items}</ul>"
        )
    return "<section id='threshold'><h2>Threshold</h2>" + "".join(lines) + "</section>"


def _estimates_section(report: dict[str, Any]) -> str:
    chosen = report["threshold"].get("probability")
    rows = []
    for e in report.get("estimates") or []:
        mark = " (this run)" if e.get("threshold") == chosen else ""
        rows.append(
            [
                _td(f"{_num(e.get('threshold'))}{mark}"),
                _td(_int(e.get("pairs")), True),
                _td(_num(e.get("precision")), True),
                _td(_num(e.get("recall")), True),
                _td(_num(e.get("f1")), True),
            ]
        )
    table = (
        _table(["threshold", "pairs at or above", "precision", "recall", "F1"], rows)
        if rows
        else "<p>No estimates: the run scored no pairs.</p>"
    )
    return (
        "<section id='estimates'><h2>The model's own estimate of precision and recall</h2>"
        "<p>Without ground truth, each scored pair is taken to be a true match with its match "
        "probability: the expected true matches above a threshold are the sum of their "
        "probabilities. Pairs never scored (outside the blocking rules, or below 1%) are not "
        "counted, so recall is an upper estimate. Pairwise, before clustering.</p>"
        f"{table}</section>"
    )


def _histogram_svg(bins: list[dict[str, Any]], threshold_weight: float | None) -> str:
    """Pairs per match-weight bin as bars (log scale), and the threshold as a dashed line."""
    width, height = 760, 260
    left, right, top, bottom = 60, 12, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = float(bins[0]["from"]), float(bins[-1]["to"])
    span = hi - lo or 1.0
    peak = max(int(b.get("pairs") or 0) for b in bins) or 1
    top_log = math.log10(peak + 1)

    def x(w: float) -> float:
        return left + plot_w * (w - lo) / span

    def y(n: int) -> float:
        return top + plot_h - plot_h * math.log10(n + 1) / top_log

    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Scored pairs by match weight, log scale, with the threshold">',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
        f'y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
    ]
    ticks = [10**k for k in range(int(math.log10(peak)) + 1)]
    if y(ticks[-1]) - y(peak) > 12:  # the peak too, unless its label would overlap
        ticks.append(peak)
    for tick in [0, *ticks]:
        out.append(f'<text x="{left - 6}" y="{y(tick) + 3:.1f}" text-anchor="end">{tick:,}</text>')
    for b in bins:
        n = int(b.get("pairs") or 0)
        x0, x1 = x(float(b["from"])), x(float(b["to"]))
        tip = f"match weight {b['from']:g} to {b['to']:g}: {n:,} pairs"
        out.append(
            f'<rect class="bar" x="{x0 + 0.5:.1f}" y="{y(n):.1f}" '
            f'width="{max(x1 - x0 - 1, 0.5):.1f}" height="{top + plot_h - y(n):.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    for w in range(math.ceil(lo), math.floor(hi) + 1, max(1, math.ceil(span / 12))):
        out.append(f'<text x="{x(w):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{w}</text>')
    if threshold_weight is not None and lo <= threshold_weight <= hi:
        tx = x(threshold_weight)
        out.append(
            f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{top + plot_h}" '
            'stroke="#c53030" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{tx + 4:.1f}" y="{top + 8}">threshold</text>'
        )
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        "match weight (log2 of the odds)</text></svg>"
    )
    return "".join(out)


def _histogram_section(report: dict[str, Any]) -> str:
    bins = report.get("histogram") or []
    if not bins:
        return (
            "<section id='histogram'><h2>Match-weight distribution</h2>"
            "<p>The run scored no pairs.</p></section>"
        )
    weight = finite_number(report["threshold"].get("match_weight"))
    rows = [
        [
            _td(f"{_num(b.get('from'), 3)} to {_num(b.get('to'), 3)}"),
            _td(_int(b.get("pairs")), True),
        ]
        for b in bins
    ]
    return (
        "<section id='histogram'><h2>Match-weight distribution</h2>"
        f"<figure>{_histogram_svg(bins, weight)}<figcaption>Scored pairs by match weight "
        "(bar heights on a log scale). Pairs to the right of the dashed line are links; true "
        "matches and non-matches should form two humps with the line between them. Only pairs "
        "with a match probability of 1% or more are kept.</figcaption></figure>"
        f"<details><summary>The {len(bins)} bins</summary>"
        f"{_table(['match weight', 'pairs'], rows)}</details></section>"
    )


def _parameters_section(report: dict[str, Any]) -> str:
    rows = []
    for comparison in report.get("comparisons") or []:
        for level in comparison.get("levels") or []:
            label = escape(level.get("label"))
            if level.get("tf_adjusted"):
                label += " <small>(term-frequency adjusted)</small>"
            if level.get("null_level"):
                cells = [_td("—", True), _td("—", True), _td("0 (no evidence)", True)]
            else:
                cells = [
                    _td(_num(level.get("m")), True),
                    _td(_num(level.get("u")), True),
                    _td(_num(level.get("match_weight"), 3), True),
                ]
            rows.append([_td(escape(comparison.get("name"))), _td(label), *cells])
    prior = report.get("prior") or {}
    trained = report["run"].get("trained")
    caveat = (
        " This run kept the engine's starting values for m (too few records to fit them)."
        if trained == "priors"
        else ""
    )
    table = (
        _table(["comparison", "level", "m", "u", "match weight log2(m/u)"], rows)
        if rows
        else "<p>No model: the run had nothing to compare.</p>"
    )
    return (
        "<section id='parameters'><h2>Model parameters (m and u)</h2>"
        "<p>For each comparison, the levels from best to worst: m is the share of true matches "
        "at the level, u the share of non-matches; a pair's match weight is the prior's plus "
        "each comparison's log2(m/u). Term-frequency adjusted levels weigh common names less and "
        f"rare names more than shown.{caveat}</p>"
        + _dl(
            [
                (
                    "Prior: two random records match",
                    f"{_num(prior.get('probability_two_random_records_match'))} (match weight "
                    f"{_num(prior.get('match_weight'), 3)})",
                )
            ]
        )
        + f"{table}</section>"
    )


def _blocking_section(report: dict[str, Any]) -> str:
    rules = report.get("blocking_rules") or []
    items = "".join(
        f"<li>{' and '.join(escape(w) for w in r.get('words') or [])}</li>" for r in rules
    )
    permitted = (
        " Every rule keeps only pairs within one dataset or across a pair of datasets both "
        "agreements permit."
        if rules and all(r.get("permitted_only") for r in rules)
        else ""
    )
    return (
        "<section id='blocking'><h2>Blocking rules</h2><p>A pair is scored when the two records "
        "agree on everything in any one rule (on the keyed tokens, never the values)."
        f"{permitted}</p><ol>{items}</ol></section>"
    )


def _rate_cells(row: dict[str, Any]) -> list[str]:
    """Records, linked, link rate; a suppressed group shows ``<10`` and no figures."""
    if row.get("suppressed"):
        shown = escape(SUPPRESSED)
        return [f"<td class='num suppressed'>{v}</td>" for v in (shown, "—", shown)]
    return [
        _td(_int(row.get("records")), True),
        _td(_int(row.get("linked")), True),
        _td(escape(row.get("display")), True),
    ]


def _rates_table(rows: list[dict[str, Any]], group: str) -> str:
    body = []
    for row in rows:
        ds = row.get("dataset")
        name = f"<strong>{escape(ds)}</strong>" if ds == ALL_AGENCIES else escape(ds)
        body.append([_td(name), _td(escape(row.get("group"))), *_rate_cells(row)])
    return _table(["dataset", group, "linkable records", "linked", "link rate"], body)


def _link_rates_section(report: dict[str, Any]) -> str:
    rates = report.get("link_rates") or {}
    fields = rates.get("fields") or {}
    agency_rows = [
        [_td(escape(r.get("dataset"))), _td(escape(r.get("provider"))), *_rate_cells(r)]
        for r in rates.get("by_agency") or []
    ]
    field_rows = [
        [_td(escape(ds)), *(_td(escape(f.get(k) or "none")) for k in ("age", "sex", "race"))]
        for ds, f in fields.items()
    ]
    return (
        "<section id='link-rates'><h2>Link rates</h2>"
        f"<p>{escape(rates.get('definition'))} Groups of fewer than "
        f"{escape(rates.get('min_group'))} records show “{escape(SUPPRESSED)}” instead of their "
        "figures. Lower rates for some group can mean worse linkage for it (names spelled or "
        "recorded differently, missing birth dates), or that fewer of its people are in more "
        "than one agency's data; compare within an agency.</p>"
        + _table(["dataset", "agency", "linkable records", "linked", "link rate"], agency_rows)
        + "<h3>By age band</h3><p>Report bands: 0-17, 18-24, 25-34, 35-44, 45-64, 65+; an "
        "agency's age bin that spans two of them keeps its own label.</p>"
        + _rates_table(rates.get("by_age_band") or [], "age band")
        + "<h3>By sex</h3>"
        + _rates_table(rates.get("by_sex") or [], "sex")
        + "<h3>By race</h3><p>Each agency codes race its own way, so race is shown per agency, "
        "as coded.</p>"
        + _rates_table(rates.get("by_race") or [], "race")
        + "<h3>Fields used</h3>"
        + "<p>Found in each dataset's contract; where there is none, the dataset's records "
        "count as unknown.</p>"
        + _table(["dataset", "age", "sex", "race"], field_rows)
        + "</section>"
    )


def _changes_section(report: dict[str, Any]) -> str:
    c = report.get("changes") or {}
    run = report["run"]
    return (
        "<section id='changes'><h2>Merges and splits</h2>"
        "<p>Person ids stay stable from run to run; when a run joins people it merges ids, when "
        "it parts them it splits one off.</p>"
        + _dl(
            [
                ("Merges", f"{_int(c.get('merges'))} ({_int(c.get('records_merged'))} records)"),
                (
                    "Splits",
                    f"{_int(c.get('splits'))} ({_int(c.get('records_split_off'))} records)",
                ),
                ("Records whose person id changed", _int(run.get("ids_changed"))),
            ]
        )
        + "</section>"
    )


def _record_section(report: dict[str, Any]) -> str:
    run = report["run"]
    engine = [(str(k), escape(v)) for k, v in (run.get("engine") or {}).items()]
    timings = [(str(k), escape(_duration(v))) for k, v in (run.get("timings") or {}).items()]
    pairs = "<br>".join(escape(" ~ ".join(p)) for p in run.get("dataset_pairs") or []) or "—"
    return (
        "<section id='record'><h2>The run's record</h2>"
        + _dl(
            [
                ("Run", escape(run.get("id"))),
                ("Finished", escape(run.get("finished_at"))),
                ("Pairs scored (match probability 1% or more)", _int(run.get("scored_pairs"))),
                ("Permitted dataset pairs", pairs),
            ]
        )
        + "<h3>Engine settings</h3>"
        + _dl(engine)
        + "<h3>Time per stage</h3>"
        + _dl(timings)
        + "</section>"
    )


def render_report(report: dict[str, Any]) -> str:
    """The page: run header, threshold and why, estimates, histogram, m/u, blocking rules,
    link rates, merges and splits, the run's record."""
    run = report["run"]
    return page_html(
        title=f"Linkage report: run {run['id']}",
        intro="<p>For hub admins. How record linkage joined the agencies' records into "
        "pseudonymous people, how sure its model is, and for whom it links less well. Counts "
        "only: no record, token or person id appears here.</p>" + _header(report),
        main=_threshold_section(report)
        + _estimates_section(report)
        + _histogram_section(report)
        + _parameters_section(report)
        + _blocking_section(report)
        + _link_rates_section(report)
        + _changes_section(report)
        + _record_section(report),
    )
