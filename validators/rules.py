"""Row rules: which rows the agreement rejects, drops, keeps for aggregates only, or keeps
out of linkage. Ingest applies the masks; this module only evaluates the conditions.

Each rule's ``when`` is parsed by :func:`contracts.conditions.parse_condition` and evaluated
with ``Condition.matches`` itself (once per distinct value, then spread to rows), so the
semantics are the contract package's: text compared after trimming, case-insensitively; an
empty cell compares as ``""``.

Handlings:

* ``reject``: matching rows must not be sent; each such rule with matches yields an error
  finding, so the upload is rejected until the rows are removed.
* ``drop_row``: matching rows are dropped silently (the agreement expects them, e.g. no
  consent to share; the steward need not act).
* ``aggregate_only``: matching rows may be counted but not linked or kept at record level
  beyond what aggregates need; ``no_linkage``: matching rows get no linkage tokens.
* ``requires_consent``: matching rows need consent recorded in ``consent_field``. A row whose
  consent value is empty, ``NONE``, ``false``, ``no``, ``n`` or ``0`` (any case, trimmed) has no
  consent and is rejected, with an error finding. Anything else counts as consent: the
  agreement's own ``values`` list decides what can appear there.

The masks overlap freely; ingest should let reject win over drop, and drop over the others.
A condition or consent field missing from the file is read as all empty. Findings quote the
rule's condition (agreement text), never a cell value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from contracts.conditions import parse_condition
from contracts.model import Dataset, RowRule
from validators.custom import condition_matches, spread
from validators.report import Finding
from validators.run import row_numbers

NO_CONSENT = frozenset({"", "none", "false", "no", "n", "0"})
"""Consent values (trimmed, lower-cased) that mean "no consent"."""

Mask = npt.NDArray[np.bool_]
ROW_RULE_RANK = 1_000_000  # row-rule findings sort after every field's findings


@dataclass(frozen=True, eq=False)
class RowRuleOutcome:
    """Per-row masks (numpy booleans, positional: one entry per row of the frame) and the
    findings of rules that reject rows."""

    rejected: Mask
    drop: Mask
    aggregate_only: Mask
    no_linkage: Mask
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def keep(self) -> Mask:
        """Rows that are stored (neither rejected nor dropped)."""
        return ~(self.rejected | self.drop)

    def findings_dict(self) -> list[dict[str, Any]]:
        """The findings in the JSON-able form of ``ValidationReport.to_dict()["findings"]``."""
        return [f.to_dict() for f in self.findings]


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    """The first column called ``name``, or an all-empty column when the file lacks it."""
    for i, column in enumerate(df.columns):
        if str(column) == name:
            return df.iloc[:, i]
    return pd.Series([None] * len(df), dtype=object)


def _lacks_consent(value: object) -> bool:
    return ("" if value is None else str(value)).strip().lower() in NO_CONSENT


def _finding(rule: RowRule, column: str, mask: Mask, row_offset: int, index: int) -> Finding:
    cite = f" ({rule.cite})" if rule.cite else ""
    if rule.handling == "requires_consent":
        consent = rule.consent_field or ""
        return Finding(
            "row_rule:requires_consent",
            consent,
            "error",
            f"no consent recorded in {consent}, which the agreement requires for rows where "
            f"`{rule.when}`{cite}",
            f"Record consent in {consent} for those rows, or remove them from the extract.",
            failing_rows=int(mask.sum()),
            first_rows=row_numbers(np.flatnonzero(mask).astype(np.int64), row_offset),
            rank=(ROW_RULE_RANK, index),
        )
    return Finding(
        "row_rule:reject",
        column,
        "error",
        f"values matching the rule `{rule.when}`, which the agreement does not allow to be "
        f"shared{cite}",
        "Remove those rows from the extract.",
        failing_rows=int(mask.sum()),
        first_rows=row_numbers(np.flatnonzero(mask).astype(np.int64), row_offset),
        rank=(ROW_RULE_RANK, index),
    )


def apply_row_rules(dataset: Dataset, df: pd.DataFrame, *, row_offset: int = 0) -> RowRuleOutcome:
    """Evaluate every row rule of ``dataset`` on ``df``.

    Raises ``contracts.conditions.ConditionError`` for a condition lint would have refused.
    """
    n = len(df)
    masks = {
        h: np.zeros(n, dtype=bool) for h in ("rejected", "drop", "aggregate_only", "no_linkage")
    }
    findings: list[Finding] = []
    for index, rule in enumerate(dataset.row_rules):
        condition = parse_condition(rule.when)
        matched = condition_matches(condition, _column(df, condition.field))
        if rule.handling == "requires_consent":
            consent = _column(df, rule.consent_field) if rule.consent_field else None
            lacking = np.ones(n, dtype=bool) if consent is None else spread(consent, _lacks_consent)
            matched &= lacking
            masks["rejected"] |= matched
        elif rule.handling == "reject":
            masks["rejected"] |= matched
        elif rule.handling == "drop_row":
            masks["drop"] |= matched
        else:
            masks[rule.handling] |= matched
        if rule.handling in ("reject", "requires_consent") and matched.any():
            findings.append(_finding(rule, condition.field, matched, row_offset, index))
    return RowRuleOutcome(
        rejected=masks["rejected"],
        drop=masks["drop"],
        aggregate_only=masks["aggregate_only"],
        no_linkage=masks["no_linkage"],
        findings=tuple(findings),
    )
