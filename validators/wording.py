"""The words of the named checks' findings (``datasets[].checks``), made from field names.

Kept apart from ``custom.py`` (the checks themselves, which need pyarrow compute kernels) so
that compiling a contract into checks (``checks.py``) does not load them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts.conditions import parse_condition
from contracts.model import CheckName
from contracts.readable.words import article

Words = Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class CheckWords:
    """The words of a named check's finding, made from its field names.

    ``subject`` completes "N rows have ..."; ``fix`` says what to change. Both are written from
    the agreement (field names, the condition), never from cell values.
    """

    subject: Words
    fix: Words


_ASSAULT = "an ICD-10-CM assault code (X92–Y09)"
_FIREARM = (
    "an ICD-10-CM firearm-injury code (W32–W34, X72–X74, X93–X95, Y22–Y24 or Y35.0; "
    "air, paintball and BB guns do not count)"
)


def _codes_words(kind: str) -> CheckWords:
    return CheckWords(
        lambda f: f"{article(f[0])} without {kind}",
        lambda f: f"List the injury's external-cause code in {f[0]} (codes separated by ;).",
    )


WORDS: dict[CheckName, CheckWords] = {
    CheckName.icd10_assault: _codes_words(_ASSAULT),
    CheckName.icd10_firearm: _codes_words(_FIREARM),
    CheckName.icd10_assault_or_firearm: _codes_words(
        f"{_ASSAULT} or {_FIREARM.removeprefix('an ICD-10-CM ')}"
    ),
    CheckName.not_in_future: CheckWords(
        lambda f: f"{article(f[0])} in the future (after the day the file was checked)",
        lambda f: f"Correct {f[0]}: it cannot be later than the day the extract is checked.",
    ),
    CheckName.dates_in_order: CheckWords(
        lambda f: f"{article(f[0])} later than the row's {f[1]}",
        lambda f: f"Correct {f[0]} or {f[1]}: {f[0]} must be on or before {f[1]}.",
    ),
}
"""The words of every check of ``contracts.model.CHECKS`` (a test keeps the two in step)."""


def describe(name: str, fields: Sequence[str], when: str | None) -> tuple[str, str]:
    """``(subject, fix)`` of a declared check's finding, from field names and the condition."""
    words = WORDS[CheckName(name)]
    subject, fix = words.subject(fields), words.fix(fields)
    if when is not None and not parse_condition(when).every_row:
        subject += f", in a row where `{when}`"
        fix += f" If `{when}` should not hold for the row, correct that instead."
    return subject, fix
