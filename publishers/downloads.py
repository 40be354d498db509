"""The CSV channel for published releases: one CSV file of a release's cells.

CSV files are safe to open in a spreadsheet: a text field that starts with ``=``, ``+``,
``-``, ``@``, tab or carriage return is prefixed with a single quote so it is never run as a
formula. Numbers the release computed (JSON numbers, never text) are written as numbers, so a
negative mean stays ``-3.5``.

Input: the same release dicts as :mod:`publishers.dashboard`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from publishers.pages import entry_bound, finite_number, measure_kind

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A CSV field that a spreadsheet will show as text, never evaluate as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_field(value: object) -> str:
    """A number the release computed as itself (it cannot be a formula, and a negative one
    must stay a number); anything else through :func:`csv_safe`."""
    return str(value) if finite_number(value) is not None else csv_safe(value)


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
        return [shown, cell.get("count"), flag, entry_bound(release, cell, total=False)]
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
