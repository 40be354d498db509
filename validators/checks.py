"""Compile a dataset's contract into checks: plain descriptions, no great-expectations import.

Each :class:`Check` names the finding rule it reports under (``required``, ``allowed_values``,
``keyset``, ``pattern``, ``type:<type>``, ``range``, and ``check:<name>`` for the named checks
the agreement declares under ``checks``, see ``custom.py``), the field, and the
great-expectations expectation that evaluates it (see ``suite.py``). Several checks may share
one rule: a date is checked by a regular expression *and* by a real calendar parse, and a row
failing either is one failing row of ``type:date``.

Semantics, decided here once:

* Empty cells (``None``) pass every check except ``required``. A cell holding only spaces is a
  value, not an empty cell (the reader decides what is empty).
* ``values`` and ``keyset`` compare exact text: ``m`` is not ``M``.
* ``pattern`` is searched, as Python's ``re.search`` and great-expectations do: anchor it with
  ``^...$`` to constrain the whole value (every example agreement does).
* Types (:data:`TYPE_PATTERNS`): integer is an optional sign and ASCII digits; number is decimal
  float syntax (no ``inf``/``nan``, no thousands separators); boolean is true/false/yes/no/y/n/1/0
  in any case; date is ``YYYY-MM-DD`` naming a real calendar day; datetime is
  ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` or the same with a space, 24-hour clock, no time zone, on a
  real calendar day. Surrounding spaces fail every type.
* ``min``/``max`` apply to integer and number fields only and are inclusive. They are checked on
  the values that passed the type check, so a bad number is reported once, as a type failure.
* A named check (``checks:`` in the agreement) reports under ``check:<name>`` on its first
  field, with the severity the agreement gives it; rows whose value fails the type or pattern
  of one of the check's fields are reported there, not again by the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from contracts.conditions import parse_condition
from contracts.keysets import keyset
from contracts.model import Dataset, DatasetCheck, DatasetField, FieldType
from contracts.readable.words import article
from validators.report import Severity
from validators.wording import describe

TYPE_PATTERNS: dict[FieldType, str] = {
    FieldType.integer: r"^[+-]?[0-9]+\Z",
    FieldType.number: r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z",
    FieldType.boolean: r"^(?i:true|false|yes|no|y|n|1|0)\Z",
    FieldType.date: r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])\Z",
    FieldType.datetime: (
        r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[T ]"
        r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?\Z"
    ),
}
"""The regular expression each declared type must match (ingest may reuse these)."""

_TYPE_WORDS: dict[FieldType, tuple[str, str]] = {
    FieldType.integer: (
        "that is not a whole number",
        "Write whole numbers with digits only, such as 42 (no decimals, units or separators).",
    ),
    FieldType.number: (
        "that is not a number",
        "Write numbers with digits and an optional decimal point, such as -87.65 "
        "(no units or thousands separators).",
    ),
    FieldType.boolean: (
        "that is not true or false",
        "Write true or false (yes/no, y/n and 1/0 are also accepted).",
    ),
    FieldType.date: (
        "that is not a real date in YYYY-MM-DD form",
        "Write dates as YYYY-MM-DD, such as 2024-03-09, and check that the day exists.",
    ),
    FieldType.datetime: (
        "that is not a real date and time in YYYY-MM-DDTHH:MM[:SS] form",
        "Write date-times as 2024-03-09T14:30 or 2024-03-09 14:30:05 "
        "(24-hour clock, no time zone) and check that the day exists.",
    ),
}

NUMERIC_TYPES = frozenset({FieldType.integer, FieldType.number})
LONG_VALUE_LIST = 12  # longer enumerations are summarised, not listed, in messages

Expectation = Literal["not_null", "in_set", "match_regex", "calendar_date", "between", "custom"]


@dataclass(frozen=True)
class Check:
    """One expectation on one column, and how its failures are reported.

    ``column`` is the column of the validation frame the expectation reads: the field itself,
    or, when ``numeric`` is set, a derived float column holding the field's value where it
    parses as a number (and nothing elsewhere). A named check (``expectation == "custom"``)
    reads several fields: ``columns`` lists them, its condition's field last. ``excludes``
    names ``(rule, field)`` pairs whose failing rows are not reported again under this check
    (a range check excludes the type check).
    """

    rule: str
    field: str
    expectation: Expectation
    kwargs: tuple[tuple[str, Any], ...]
    subject: str
    fix: str
    numeric: bool = False
    excludes: tuple[tuple[str, str], ...] = ()
    severity: Severity = "error"

    @property
    def column(self) -> str:
        return numeric_column(self.field) if self.numeric else self.field

    @property
    def columns(self) -> tuple[str, ...]:
        """Every frame column the expectation reads."""
        declared: tuple[str, ...] | None = self.kwarg("columns")
        return declared if declared is not None else (self.column,)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field of the extract the expectation reads (before any derivation)."""
        declared: tuple[str, ...] | None = self.kwarg("columns")
        return declared if declared is not None else (self.field,)

    def kwarg(self, name: str) -> Any:
        return dict(self.kwargs).get(name)


def numeric_column(field: str) -> str:
    """Name of the derived numeric column; no declared field can have it (names start a-z)."""
    return f"__number__{field}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def compile_checks(dataset: Dataset) -> tuple[Check, ...]:
    """Every row-level check the contract implies, in field order.

    The record key's uniqueness is not among them: it must hold across chunks, which one
    expectation on one chunk cannot see, so ``keys.RecordKeyTracker`` checks it.
    """
    checks: list[Check] = []
    for f in dataset.fields:
        checks.extend(_field_checks(f))
    checks.extend(declared_check(dataset, c) for c in dataset.checks)
    return tuple(checks)


def declared_check(dataset: Dataset, declared: DatasetCheck) -> Check:
    """The check for one entry of the agreement's ``checks`` (lint has vetted its fields)."""
    name = declared.check.value
    columns = list(declared.fields)
    if declared.when is not None:
        condition = parse_condition(declared.when)
        if condition.field and condition.field not in columns:
            columns.append(condition.field)
    excludes: list[tuple[str, str]] = []
    for field_name in declared.fields:
        f = dataset.field(field_name)
        if f is None:
            continue
        if f.type in TYPE_PATTERNS:
            excludes.append((f"type:{f.type.value}", f.name))
        if f.pattern is not None:
            excludes.append(("pattern", f.name))
    subject, fix = describe(name, declared.fields, declared.when)
    return Check(
        f"check:{name}",
        declared.fields[0],
        "custom",
        (("check", name), ("columns", tuple(columns)), ("when", declared.when)),
        subject,
        fix,
        excludes=tuple(excludes),
        severity=declared.severity,
    )


def _field_checks(f: DatasetField) -> list[Check]:
    name, a_name = f.name, article(f.name)
    out: list[Check] = []
    if f.required:
        out.append(
            Check(
                "required",
                name,
                "not_null",
                (),
                f"no {name}, which the agreement requires",
                f"Fill in {name} on every row.",
            )
        )
    if f.type in TYPE_PATTERNS:
        words, fix = _TYPE_WORDS[f.type]
        rule = f"type:{f.type.value}"
        subject = f"{a_name} {words}"
        out.append(
            Check(rule, name, "match_regex", (("regex", TYPE_PATTERNS[f.type]),), subject, fix)
        )
        if f.type in (FieldType.date, FieldType.datetime):
            out.append(Check(rule, name, "calendar_date", (), subject, fix))
    if f.values is not None:
        shown = (
            ", ".join(f.values)
            if len(f.values) <= LONG_VALUE_LIST
            else f"the {len(f.values)} values the agreement lists"
        )
        out.append(
            Check(
                "allowed_values",
                name,
                "in_set",
                (("value_set", tuple(f.values)),),
                f"{a_name} that is not one of the allowed values ({shown})",
                f"Use exactly one of the allowed values for {name}; capitals and spaces count.",
            )
        )
    if f.keyset is not None:
        out.append(
            Check(
                "keyset",
                name,
                "in_set",
                (("value_set", keyset(f.keyset)),),
                f"{a_name} that is not in the public {f.keyset} list",
                f"Use a value from the hub's published {f.keyset} list, written exactly as there.",
            )
        )
    if f.pattern is not None:
        out.append(
            Check(
                "pattern",
                name,
                "match_regex",
                (("regex", f.pattern),),
                f"{a_name} that does not match the required pattern {f.pattern}",
                f"Correct the format of {name} to match the agreement's pattern.",
            )
        )
    if f.type in NUMERIC_TYPES and (f.min is not None or f.max is not None):
        out.append(_range_check(f))
    return out


def _range_check(f: DatasetField) -> Check:
    if f.min is not None and f.max is not None:
        bound = f"outside the allowed range {_fmt(f.min)} to {_fmt(f.max)}"
    elif f.min is not None:
        bound = f"below the allowed minimum {_fmt(f.min)}"
    else:
        assert f.max is not None
        bound = f"above the allowed maximum {_fmt(f.max)}"
    fix = f"Correct {f.name}" + ("." if f.required else ", or leave it empty if it is unknown.")
    return Check(
        "range",
        f.name,
        "between",
        (("min_value", f.min), ("max_value", f.max)),
        f"{article(f.name)} {bound}",
        fix,
        numeric=True,
        excludes=((f"type:{f.type.value}", f.name),),
    )
