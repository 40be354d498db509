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
  consent and is rejected, with an error finding. Anything else counts as consent, unless
  the agreement's consent section lists its ``valid_values`` (below).

The agreement's consent section (``consent=``) sharpens ``requires_consent``: where it names the
consent field and its ``valid_values``, only those values (any case, trimmed) count as consent.
Where it names an ``expiry_field`` for the dataset, a row whose consent ended before ``today``
(the date in that field, compared as ISO text, as validation requires dates to be written) is
rejected with an error finding: its consent no longer allows it to be shared.

The masks overlap freely; ingest should let reject win over drop, and drop over the others.
A condition or consent field missing from the file is read as all empty. Findings quote the
rule's condition (agreement text), never a cell value.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from contracts.conditions import NO_CONSENT, parse_condition
from contracts.model import Consent, Dataset, RowRule
from validators.custom import condition_matches, spread
from validators.report import Finding
from validators.run import row_numbers

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


def _outside(valid: set[str], value: object) -> bool:
    """The consent value is none of ``valid`` (trimmed, lower-cased)."""
    return ("" if value is None else str(value)).strip().lower() not in valid


def _consent_lapsed(expiry: pd.Series, today: dt.date) -> Mask:
    """Rows whose consent end date (ISO, as validated) is before ``today``; empty: not."""
    day = today.isoformat()
    return spread(expiry, lambda v: v is not None and bool(str(v).strip()) and str(v)[:10] < day)


def apply_row_rules(
    dataset: Dataset,
    df: pd.DataFrame,
    *,
    row_offset: int = 0,
    consent: Consent | None = None,
    today: dt.date | None = None,
) -> RowRuleOutcome:
    """Evaluate every row rule of ``dataset`` on ``df``; with the agreement's ``consent``
    section, also its valid values and, on ``today``, its expiry (see the module docstring).

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
            given = _column(df, rule.consent_field) if rule.consent_field else None
            valid = (
                {v.strip().lower() for v in consent.valid_values}
                if consent is not None
                and consent.valid_values
                and consent.field == rule.consent_field
                else None
            )
            if given is None:
                lacking = np.ones(n, dtype=bool)
            elif valid is not None:
                lacking = spread(given, functools.partial(_outside, valid))
            else:
                lacking = spread(given, _lacks_consent)
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
    expiry = consent.expiry_for(dataset.id) if consent is not None else None
    if expiry is not None and today is not None:
        lapsed = _consent_lapsed(_column(df, expiry), today)
        masks["rejected"] |= lapsed
        if lapsed.any():
            findings.append(
                Finding(
                    "consent_expired",
                    expiry,
                    "error",
                    f"consent that ended before {today.isoformat()} (the date in {expiry}); "
                    f"the agreement does not allow these rows to be shared after it"
                    + (f" ({consent.cite})" if consent is not None and consent.cite else ""),
                    "Remove those rows, or record the person's renewed consent and its new "
                    "end date.",
                    failing_rows=int(lapsed.sum()),
                    first_rows=row_numbers(np.flatnonzero(lapsed).astype(np.int64), row_offset),
                    rank=(ROW_RULE_RANK, len(dataset.row_rules)),
                )
            )
    return RowRuleOutcome(
        rejected=masks["rejected"],
        drop=masks["drop"],
        aggregate_only=masks["aggregate_only"],
        no_linkage=masks["no_linkage"],
        findings=tuple(findings),
    )
