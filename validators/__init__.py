"""validators: turn a dataset's contract into checks, run them on an extract, report without
values.

    validate_extract(dataset, df, *, row_offset=0, record_keys=None, today=None) -> ValidationReport
    apply_row_rules(dataset, df, *, row_offset=0) -> RowRuleOutcome
    compile_suite(dataset) -> great_expectations ExpectationSuite
    render_html(report) -> str

The agreement's named checks (``datasets[].checks``: ICD-10-CM code kinds, dates not in the
future, dates in order) are implemented in ``custom.py`` and run in the same suite.

Importing this package does not import great-expectations (that costs seconds); the first
validation does. Depends on ``contracts`` only.
"""

from validators.checks import TYPE_PATTERNS, Check, compile_checks
from validators.html import render_html
from validators.keys import RecordKeyTracker, normalize_record_key
from validators.report import FIRST_ROWS, Finding, Severity, ValidationReport
from validators.rules import NO_CONSENT, RowRuleOutcome, apply_row_rules
from validators.run import validate_extract
from validators.suite import ValidationEngineError, compile_suite

__all__ = [
    "FIRST_ROWS",
    "NO_CONSENT",
    "TYPE_PATTERNS",
    "Check",
    "Finding",
    "RecordKeyTracker",
    "RowRuleOutcome",
    "Severity",
    "ValidationEngineError",
    "ValidationReport",
    "apply_row_rules",
    "compile_checks",
    "compile_suite",
    "normalize_record_key",
    "render_html",
    "validate_extract",
]
