"""What every lint rule shares: the finding type, the subject being linted, and helpers that
read row rules the way the hub applies them.

A :class:`Subject` may be *partial*: when part of a document fails to parse, the loader lints
what did parse. ``parsed`` names the top-level sections that are usable; each :class:`Rule`
says which sections it reads and is skipped when one of them is missing, so a broken section
never causes a misleading second problem. ``unparsed`` holds the ids and names of list items
that were left out (a field with a typo in its type, say), so that rules do not report a
reference to one of them as a reference to nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from contracts.conditions import Condition, ConditionError, parse_condition
from contracts.model import Agreement, Dataset, DatasetField, FieldType, RegimeFlag, RowHandling

Finding = tuple[str, str]
"""``(yaml_path, sentence)``: where the problem is and what to change."""

SECTIONS: frozenset[str] = frozenset(Agreement.model_fields)


@dataclass(frozen=True)
class Subject:
    """An agreement to lint, with what parsed of it."""

    agreement: Agreement
    parsed: frozenset[str] = SECTIONS
    unparsed: frozenset[str] = frozenset()

    def missing(self, name: str, known: Iterable[str]) -> bool:
        """True when ``name`` is not among ``known`` and was not left out by a parse error."""
        return name not in set(known) and name not in self.unparsed


Check = Callable[[Subject], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    """A lint rule: a check and the top-level sections it reads."""

    needs: tuple[str, ...]
    check: Check

    @property
    def name(self) -> str:
        return self.check.__name__

    def applies(self, subject: Subject) -> bool:
        return all(section in subject.parsed for section in self.needs)

    def __call__(self, subject: Subject) -> Iterator[Finding]:
        return self.check(subject)


def rule(*needs: str) -> Callable[[Check], Rule]:
    """Declare a check and the sections it reads: ``@rule("datasets", "parties")``."""
    unknown = set(needs) - SECTIONS
    if unknown:
        raise ValueError(f"no such sections: {sorted(unknown)}")

    def wrap(check: Check) -> Rule:
        return Rule(needs, check)

    return wrap


def duplicates(names: Iterable[str]) -> list[str]:
    return [name for name, n in Counter(names).items() if n > 1]


def flagged_datasets(a: Agreement, *flags: RegimeFlag) -> Iterator[tuple[int, Dataset, str]]:
    """Datasets whose provider carries one of ``flags``: ``(index, dataset, flag)``."""
    for i, ds in enumerate(a.datasets):
        party = a.party(ds.provider)
        if party is None:
            continue
        hit = next((f for f in flags if f in party.regime_flags), None)
        if hit is not None:
            yield i, ds, hit.value


def conditions(ds: Dataset) -> Iterator[tuple[int, RowHandling, Condition]]:
    """Each row rule that parses, with its index and handling."""
    for j, r in enumerate(ds.row_rules):
        try:
            yield j, r.handling, parse_condition(r.when)
        except ConditionError:
            continue


def universe(f: DatasetField) -> set[str] | None:
    """Every text a field may hold, as conditions compare it (lower-cased), or ``None`` when
    the agreement does not say. Includes the empty cell unless the field is required."""
    if f.values is not None:
        values = {v.strip().lower() for v in f.values}
    elif f.type == FieldType.boolean:
        values = {"true", "false"}
    else:
        return None
    return values if f.required else values | {""}


def covers_every_row(cond: Condition, ds: Dataset) -> bool:
    """True when the condition matches every row the dataset can hold."""
    if cond.every_row:
        return True
    f = ds.field(cond.field)
    values = universe(f) if f is not None else None
    return values is not None and all(cond.matches(v) for v in values)


def consent_gate(
    ds: Dataset, consent_field: str, valid: Iterable[str], handlings: Iterable[RowHandling]
) -> int | None:
    """The index of a row rule that keeps every row without valid consent out of the hub.

    Either a ``requires_consent`` rule on ``consent_field`` that covers every row, or a rule
    with one of ``handlings`` (reject, drop_row) on the consent field itself that matches every
    value not in ``valid`` (so only valid consent gets through)."""
    valid_set = {v.strip().lower() for v in valid}
    refusing = set(handlings)
    f = ds.field(consent_field)
    for j, handling, cond in conditions(ds):
        rule_ = ds.row_rules[j]
        if handling == RowHandling.requires_consent:
            if rule_.consent_field == consent_field and covers_every_row(cond, ds):
                return j
        elif handling in refusing and cond.field == consent_field and f is not None:
            values = universe(f)
            if values is None:
                # Only `!= valid` is decidable without a list of values: everything else matches.
                if cond.op == "!=" and set(cond.values) <= valid_set:
                    return j
            elif all(cond.matches(v) for v in values - valid_set):
                return j
    return None


def juvenile_fields(ds: Dataset) -> list[DatasetField]:
    """Fields that tell a juvenile's row from an adult's: a boolean named for juveniles, or a
    numeric age (a name with the word ``age`` in it: age, victim_age, age_years)."""
    found = []
    for f in ds.fields:
        words = f.name.split("_")
        flag = f.type == FieldType.boolean and any("juvenile" in w for w in words)
        age = f.type in (FieldType.integer, FieldType.number) and "age" in words
        if flag or age:
            found.append(f)
    # A flag says it outright; prefer it over an age when suggesting a rule.
    return sorted(found, key=lambda f: f.type != FieldType.boolean)


def selects_juveniles(cond: Condition, f: DatasetField) -> bool:
    """True when the condition matches every juvenile row for this flag or age field."""
    if cond.field != f.name:
        return False
    if f.type == FieldType.boolean:
        return cond.matches("true")
    return all(cond.matches(str(age)) for age in range(18))
