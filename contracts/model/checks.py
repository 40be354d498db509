"""The hub's named validation checks: what an agreement may ask for under ``datasets[].checks``.

A dataset's fields already say what each value must look like (type, values, pattern, range).
A *check* asks something a field declaration cannot: whether a diagnosis list holds a code of a
given kind, whether a date lies in the future, whether two dates of a row come in order. The
agreement names the check, the fields it reads and the severity of a failure; ``validators``
implements each name (``validators/custom.py``) and runs it through great-expectations with
the rest of the suite. This module is the catalogue both sides agree on: the names and the kind
of field each takes, so that lint can refuse a declaration the hub could not run.

Semantics common to every check: an empty cell passes (``required`` is what asks for a value);
a value that fails its field's type or pattern is reported there, not again by the check; dates
compare by calendar day, so a datetime is compared by its date.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.model.vocabulary import FieldType


class CheckName(StrEnum):
    """A check the hub runs on every row. icd10_assault: the ICD-10-CM codes listed in the
    field include an assault code (X92–Y09); icd10_firearm: they include a firearm-injury code
    (W32–W34, X72–X74, X93–X95, Y22–Y24, Y35.0; air, paintball and spring guns excluded);
    icd10_assault_or_firearm: either; not_in_future: the date is not after the day the extract
    is checked; dates_in_order: the first date is on or before the second (e.g. a birth date
    and the incident date)."""

    icd10_assault = "icd10_assault"
    icd10_firearm = "icd10_firearm"
    icd10_assault_or_firearm = "icd10_assault_or_firearm"
    not_in_future = "not_in_future"
    dates_in_order = "dates_in_order"


DATES = frozenset({FieldType.date, FieldType.datetime})
TEXT = frozenset({FieldType.string})


@dataclass(frozen=True)
class CheckSignature:
    """What a check reads: one entry per field, in order, naming the types that field may
    have; ``roles`` says what each field is, in words lint uses."""

    name: CheckName
    fields: tuple[frozenset[FieldType], ...]
    roles: tuple[str, ...]

    @property
    def arity(self) -> int:
        return len(self.fields)


def _sig(name: CheckName, *fields: tuple[frozenset[FieldType], str]) -> CheckSignature:
    return CheckSignature(name, tuple(t for t, _ in fields), tuple(r for _, r in fields))


_CODES = (TEXT, "a list of ICD-10-CM codes")
CHECKS: dict[CheckName, CheckSignature] = {
    s.name: s
    for s in (
        _sig(CheckName.icd10_assault, _CODES),
        _sig(CheckName.icd10_firearm, _CODES),
        _sig(CheckName.icd10_assault_or_firearm, _CODES),
        _sig(CheckName.not_in_future, (DATES, "a date")),
        _sig(
            CheckName.dates_in_order,
            (DATES, "the earlier date"),
            (DATES, "the later date"),
        ),
    )
}
"""Every check's signature, by name (one entry per :class:`CheckName`)."""
