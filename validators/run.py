"""Validate one extract (or one chunk of it) against its dataset's contract.

Usage, whole file::

    report = validate_extract(dataset, df)

Usage, chunk by chunk (ingest streams the file)::

    keys = RecordKeyTracker()
    report = ValidationReport.empty(dataset.id)
    for offset, chunk in chunks:            # offset = data rows before this chunk
        report = report.merge(validate_extract(dataset, chunk, row_offset=offset, record_keys=keys))

``df`` is what the hub's reader produces: the file's header names as columns, every value a
``str`` or ``None`` (``NaN`` is also taken as empty), positional row ``i`` being data row
``i + 1 + row_offset``. The index is ignored.

The header is checked here, in Python, before any row check: great-expectations' column-set
expectation cannot express what a steward needs (a duplicated header name, a likely typo, a
header that is really a data row), and a frame with duplicate names cannot even be validated.
Decisions:

* a declared column that is missing is an error when the field is required
  (``missing_column``) and is otherwise treated as all empty: it passes every check;
* a column the agreement does not list is an error under ``unlisted_fields: reject`` and a
  warning (the hub drops it) under ``drop`` (``unknown_column``);
* a header name given twice is an error (``duplicate_column``); the first is checked;
* when *no* header name matches the agreement, the first line is probably data, so the report
  says ``missing_header`` without quoting any name, and no row is checked.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from contracts.model import Dataset
from contracts.readable.words import article
from validators.checks import TYPE_PATTERNS, Check, compile_checks
from validators.keys import RecordKeyTracker
from validators.report import FIRST_ROWS, Finding, ValidationReport
from validators.suite import Failures, run_suite

_SHOWN_NAME = 80  # header names longer than this are cut in messages


@dataclass(frozen=True)
class Header:
    """What the file's header says: where each declared field is, and what is wrong."""

    positions: dict[str, int]
    missing: frozenset[str]
    findings: tuple[Finding, ...]
    unusable: bool = False


def row_numbers(positions: npt.NDArray[np.int64], row_offset: int) -> tuple[int, ...]:
    """The first ``FIRST_ROWS`` 1-based data-row numbers of sorted 0-based positions."""
    return tuple(int(p) + 1 + row_offset for p in positions[:FIRST_ROWS])


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")


def _shown(name: str) -> str:
    return name if len(name) <= _SHOWN_NAME else name[: _SHOWN_NAME - 1] + "…"


def read_header(dataset: Dataset, columns: Sequence[object]) -> Header:
    """Check the header against the declared fields (see the module docstring)."""
    names = [str(c) for c in columns]
    declared = [f.name for f in dataset.fields]
    declared_set = set(declared)
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in declared_set:
            positions.setdefault(name, i)
    missing = frozenset(declared_set - positions.keys())
    if declared and not positions:
        subject = (
            f"None of the file's column names match the fields of {dataset.id}, so its first "
            "line may be data rather than a header; the names are not repeated here for that "
            "reason."
        )
        fix = "Make the first line the header, with these names: " + ", ".join(declared) + "."
        finding = Finding("missing_header", None, "error", subject, fix)
        return Header(positions, missing, (finding,), unusable=True)

    findings: list[Finding] = []
    for name, count in Counter(names).items():
        if count > 1:
            findings.append(
                Finding(
                    "duplicate_column",
                    _shown(name),
                    "error",
                    f'The header names the column "{_shown(name)}" {count} times.',
                    "Keep one column per name; only the first was checked.",
                )
            )
    reject = dataset.unlisted_fields == "reject"
    for name in dict.fromkeys(names):
        if name in declared_set:
            continue
        guess = _normalise(name)
        hint = f" (if it holds {guess}, rename it exactly so)" if guess in missing else ""
        subject = f'The file has a column "{_shown(name)}" that the agreement does not list.'
        if reject:
            fix = f"Remove it from the extract{hint}; the agreement rejects unlisted columns."
        else:
            fix = f"The hub drops it without storing it{hint}; remove it from future extracts."
        findings.append(
            Finding("unknown_column", _shown(name), "error" if reject else "warning", subject, fix)
        )
    for f in dataset.fields:
        if f.name in missing and f.required:
            findings.append(
                Finding(
                    "missing_column",
                    f.name,
                    "error",
                    f"The file has no {f.name} column, which the agreement requires.",
                    f"Add a column headed exactly {f.name}.",
                )
            )
    ranked = tuple(replace(f, rank=(0, i)) for i, f in enumerate(findings))
    return Header(positions, missing, ranked)


def prepare_frame(
    dataset: Dataset, df: pd.DataFrame, header: Header, checks: Sequence[Check]
) -> pd.DataFrame:
    """The frame the suite reads: one text column per checked field (all empty when the file
    lacks it), plus the derived numeric columns of range checks; RangeIndex.

    Columns use pandas' ``str`` dtype (Arrow-backed): great-expectations converts to it for
    every regex anyway, and null tests on it are far cheaper than on object columns.
    """
    n = len(df)
    columns: dict[str, pd.Series] = {}
    for check in checks:
        for name in check.fields:
            if name in columns:
                continue
            pos = header.positions.get(name)
            values = df.iloc[:, pos].to_numpy(dtype=object) if pos is not None else [None] * n
            columns[name] = pd.Series(values, dtype="str")
    for check in checks:
        if check.numeric and check.column not in columns:
            field = dataset.field(check.field)
            assert field is not None
            columns[check.column] = as_numbers(columns[check.field], TYPE_PATTERNS[field.type])
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def as_numbers(text: pd.Series, pattern: str) -> pd.Series:
    """Floats where ``text`` matches the type's ``pattern``, NaN elsewhere (so range checks
    never see a value the type check rejects). Arrow's cast is used when it can (fast)."""
    valid = text.where(text.str.contains(pattern, na=False))
    try:
        return valid.astype("float64")
    except (TypeError, ValueError):  # a spelling Arrow's cast refuses; Python's float is laxer
        return pd.to_numeric(valid, errors="coerce").astype("float64")


def check_findings(
    dataset: Dataset,
    checks: Sequence[Check],
    failures: Failures,
    skip: frozenset[str],
    row_offset: int,
) -> list[Finding]:
    """One finding per (rule, field, subject) with failing rows: the union of its checks'
    failures, minus the rows its ``excludes`` rules already report. Fields in ``skip`` are
    left out."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    by_rule: dict[tuple[str, str], list[int]] = {}
    for i, check in enumerate(checks):
        groups.setdefault((check.rule, check.field, check.subject), []).append(i)
        by_rule.setdefault((check.rule, check.field), []).append(i)
    empty = np.zeros(0, dtype=np.int64)

    def failing(indexes: Sequence[int]) -> npt.NDArray[np.int64]:
        rows = empty
        for i in indexes:
            rows = np.union1d(rows, failures.get(i, empty))
        return rows

    findings: list[Finding] = []
    for (rule, field, _), indexes in groups.items():
        if field in skip:
            continue
        rows = failing(indexes)
        first = checks[indexes[0]]
        if first.excludes and len(rows):
            excluded = [i for key in first.excludes for i in by_rule.get(key, [])]
            rows = np.setdiff1d(rows, failing(excluded))
        if len(rows):
            findings.append(
                Finding(
                    rule,
                    field,
                    first.severity,
                    first.subject,
                    first.fix,
                    failing_rows=len(rows),
                    first_rows=row_numbers(rows, row_offset),
                    rank=(field_rank(dataset, field), indexes[0]),
                )
            )
    return findings


def field_rank(dataset: Dataset, name: str) -> int:
    """1 + the field's position: findings sort after the header's, in field order."""
    return 1 + next(
        (i for i, f in enumerate(dataset.fields) if f.name == name), len(dataset.fields)
    )


def key_findings(
    dataset: Dataset, df: pd.DataFrame, header: Header, tracker: RecordKeyTracker, row_offset: int
) -> list[Finding]:
    key = dataset.record_key
    pos = header.positions.get(key)
    if pos is None or dataset.field(key) is None:
        return []
    rows = np.flatnonzero(tracker.repeats(df.iloc[:, pos])).astype(np.int64)
    if not len(rows):
        return []
    return [
        Finding(
            "unique_record_key",
            key,
            "error",
            f"{article(key)} already used by an earlier row",
            f"Give each row its own {key}: remove repeated rows or correct the key.",
            failing_rows=len(rows),
            first_rows=row_numbers(rows, row_offset),
            rank=(field_rank(dataset, key), 1_000_000),  # after the key field's own checks
        )
    ]


def validate_extract(
    dataset: Dataset,
    df: pd.DataFrame,
    *,
    row_offset: int = 0,
    record_keys: RecordKeyTracker | None = None,
    today: dt.date | None = None,
) -> ValidationReport:
    """Check ``df`` against ``dataset``'s contract; the report names rules, columns and row
    numbers, never values.

    ``row_offset`` is the number of data rows before this chunk. ``record_keys`` carries
    record-key uniqueness across chunks: pass the same tracker for every chunk of one file, in
    order. Without one, ``df`` is taken to be the whole file. ``today`` is the day the
    agreement's named checks compare against (``not_in_future``); the hub passes its clock,
    and the default is the system's date.

    Row rules (reject, drop_row, ...) are not applied here; see :func:`rules.apply_row_rules`.
    Raises ``ValidationEngineError`` if great-expectations fails (not for bad data).
    """
    if row_offset < 0:
        raise ValueError("row_offset counts the data rows before this chunk; it cannot be negative")
    header = read_header(dataset, list(df.columns))
    findings = list(header.findings)
    if header.unusable:
        return ValidationReport(dataset.id, len(df), tuple(findings))
    checks = compile_checks(dataset)
    frame = prepare_frame(dataset, df, header, checks)
    failures = run_suite(dataset, frame, today=today or dt.date.today())
    findings += check_findings(dataset, checks, failures, header.missing, row_offset)
    tracker = record_keys if record_keys is not None else RecordKeyTracker()
    findings += key_findings(dataset, df, header, tracker, row_offset)
    return ValidationReport(dataset.id, len(df), tuple(sorted(findings, key=lambda f: f.rank)))
