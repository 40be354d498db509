"""The validation report: findings by rule, column and row number, never by value.

A :class:`Finding` says which rule failed, on which column, how many rows failed and which
were the first few (1-based data-row numbers; the header is not a data row). Its ``message`` is
a sentence a data steward can act on. Everything in a finding comes from the agreement (field
names, allowed values, patterns, ranges) or from the file's header, counts and row numbers:
**no cell value is ever copied into a report**, so a report can be shown, stored and logged.

Reports from chunks of one file merge (:meth:`ValidationReport.merge`): counts add up and the
first rows stay the first ``FIRST_ROWS`` of the whole file, because each chunk keeps its own
first ones and chunks are numbered with their offset. Column-level findings (unknown or missing
columns) repeat in every chunk and are kept once.

Caveat: a header name is echoed in ``unknown_column`` findings. When no header name matches the
agreement the header row may really be a data row, so ``run.py`` reports ``missing_header``
without naming any column instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Severity = Literal["error", "warning"]

FIRST_ROWS = 20
"""How many failing row numbers a finding lists."""

# Findings about the header rather than about rows; they carry no row numbers.
COLUMN_RULES = frozenset({"missing_header", "missing_column", "unknown_column", "duplicate_column"})


@dataclass(frozen=True)
class Finding:
    """One failing rule on one column (or on the header).

    ``subject`` completes "N rows have ..." for row findings ("a victim_dob that is not a real
    date in YYYY-MM-DD form") and is a whole sentence for column findings. ``fix`` says what to
    change. Both are written from the agreement and the header only, never from cell values.
    """

    rule: str
    column: str | None
    severity: Severity
    subject: str
    fix: str
    failing_rows: int = 0
    first_rows: tuple[int, ...] = ()
    rank: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)
    """Where the finding sorts in a report (header first, then by field and check order), so
    that chunk reports merge into the same order as a whole-file report. Not exported."""

    @property
    def is_column_finding(self) -> bool:
        return self.rule in COLUMN_RULES

    @property
    def message(self) -> str:
        if self.is_column_finding:
            return f"{self.subject} {self.fix}".strip()
        n = self.failing_rows
        head = f"{n} row{'s' if n != 1 else ''} {'have' if n != 1 else 'has'} {self.subject}"
        return f"{head}; {describe_rows(self.first_rows, n)}. {self.fix}".strip()

    def merged_with(self, other: Finding) -> Finding:
        """The finding for both chunks: counts add, first rows are the earliest overall."""
        if self.is_column_finding:
            return self
        rows = tuple(sorted(set(self.first_rows) | set(other.first_rows))[:FIRST_ROWS])
        return replace(self, failing_rows=self.failing_rows + other.failing_rows, first_rows=rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "severity": self.severity,
            "failing_rows": self.failing_rows,
            "first_rows": list(self.first_rows),
            "message": self.message,
        }


def describe_rows(rows: Sequence[int], total: int) -> str:
    """``row 3``, ``rows 3, 17`` or ``first rows 3, 17, ...`` when not all rows are listed."""
    listed = ", ".join(str(r) for r in rows)
    if not rows:
        return "no row numbers recorded"
    if total > len(rows):
        return f"first rows: {listed}"
    return f"row {listed}" if len(rows) == 1 else f"rows: {listed}"


def _key(f: Finding) -> tuple[str, str | None, str]:
    # The subject tells apart two row rules that reject on the same column.
    return (f.rule, f.column, f.subject)


@dataclass(frozen=True)
class ValidationReport:
    """What validating one extract (or one chunk of it) found.

    ``ok`` is true when no finding is an error; warnings (such as a column the agreement says
    to drop) never reject an upload. Reports are immutable; :meth:`merge` returns a new one.
    """

    dataset: str
    rows_checked: int
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @classmethod
    def empty(cls, dataset: str) -> ValidationReport:
        """A report of nothing, to fold chunk reports into."""
        return cls(dataset=dataset, rows_checked=0)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def finding(self, rule: str, column: str | None = None) -> Finding | None:
        """The finding for ``rule`` on ``column``, if any (handy in tests and the UI)."""
        return next((f for f in self.findings if (f.rule, f.column) == (rule, column)), None)

    def with_findings(self, extra: Iterable[Finding]) -> ValidationReport:
        """This report plus ``extra`` findings (e.g. row-rule rejections), merged by rule."""
        return self.merge(ValidationReport(self.dataset, 0, tuple(extra)))

    def merge(self, other: ValidationReport) -> ValidationReport:
        """Combine the reports of two chunks of the same file (in either order).

        Row counts add, and each finding keeps the earliest ``FIRST_ROWS`` row numbers of both.
        Findings are ordered by their ``rank``: header findings, then field by field.
        """
        if other.dataset != self.dataset:
            raise ValueError(
                f"cannot merge a report for {other.dataset} into one for {self.dataset}"
            )
        merged: dict[tuple[str, str | None, str], Finding] = {_key(f): f for f in self.findings}
        for f in other.findings:
            mine = merged.get(_key(f))
            merged[_key(f)] = f if mine is None else mine.merged_with(f)
        return ValidationReport(
            dataset=self.dataset,
            rows_checked=self.rows_checked + other.rows_checked,
            findings=tuple(sorted(merged.values(), key=lambda f: f.rank)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``dataset``, ``rows_checked``, ``ok`` and ``findings``."""
        return {
            "dataset": self.dataset,
            "rows_checked": self.rows_checked,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
        }

    @property
    def summary(self) -> str:
        verdict = "accepted" if self.ok else "rejected"
        e, w = len(self.errors), len(self.warnings)
        return (
            f"{self.dataset}: {self.rows_checked} rows checked; {verdict} "
            f"({e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''})"
        )

    def to_text(self) -> str:
        """Plain lines for a terminal or an e-mail: a summary, then one line per finding."""
        lines = [self.summary]
        for f in self.findings:
            where = f" [{f.column}]" if f.column else ""
            lines.append(f"{f.severity.upper():7} {f.rule}{where}: {f.message}")
        return "\n".join(lines)
