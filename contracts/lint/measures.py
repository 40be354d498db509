"""What an aggregate reads from its rows, checked against the dataset that holds them: filters,
the value a ``sum`` or ``mean`` adds up, and the numerator condition of a rate (including a
condition on a linked dataset, which may belong to another agreement: ``across`` checks it then).

These are helpers, not rules: ``structure.check_outputs`` runs them for the aggregate's own
dataset, and ``across.check_linked_events`` for a linked dataset declared elsewhere. Each yields
:data:`~contracts.lint.base.Finding` values at the YAML path it is given.

A field an aggregate reads must be *kept for analysis* (its transform stores a usable form of
the value: not ``drop``, ``linkage_token`` or ``keyed_hash``). A number added up must be stored
as a number (kept or top-coded, not binned, since a bin is stored as its label); a date that
days are counted from must be stored to the day (kept, or truncated to day).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from contracts.lint.base import Finding, Subject
from contracts.model import (
    Aggregate,
    Dataset,
    DatasetField,
    FieldType,
    LinkedEvent,
    TimeUnit,
    Value,
)

DATE_TYPES = (FieldType.date, FieldType.datetime)
NUMBER_TYPES = (FieldType.integer, FieldType.number)
#: What the hub stores for a boolean field, whichever spelling the file used
#: (``hub.pseudonymize.normalize_bool``): filters and declared values must use these.
STORED_BOOLEANS = frozenset({"true", "false"})


def kept_for_analysis(f: DatasetField) -> bool:
    """True when a usable form of the value is stored (a keyed hash is not usable)."""
    return f.transform.keeps_value and f.transform.kind != "keyed_hash"


def not_kept(f: DatasetField) -> str:
    return f"{f.name} is not kept for analysis (transform {f.transform.kind})"


def number_problem(f: DatasetField) -> str | None:
    """Why a sum or mean cannot add up field ``f``, or ``None`` when it can."""
    if f.type not in NUMBER_TYPES:
        dates = f.type in DATE_TYPES
        hint = "; to add up the days between two dates, use days_between" if dates else ""
        return (
            f"{f.name} is a {f.type.value} field; a sum or mean adds up an integer or number "
            f"field{hint}"
        )
    if not kept_for_analysis(f):
        return f"{not_kept(f)}, so there is no number to add up"
    if f.transform.kind == "bin":
        return (
            f"{f.name} is stored only as a band (transform bin), so there is no number to add "
            "up; keep it or top-code it instead"
        )
    return None


def date_problem(f: DatasetField, use: str) -> str | None:
    """Why days cannot be counted from field ``f`` (``use`` says what for), or ``None``."""
    if f.type not in DATE_TYPES:
        return f"{f.name} is a {f.type.value} field, not a date field; {use} needs date fields"
    if not kept_for_analysis(f):
        return f"{not_kept(f)}, so {use} cannot read it"
    unit = f.transform.truncate
    if f.transform.kind == "truncate" and unit is not None and unit != TimeUnit.day:
        return (
            f"{f.name} is kept only to the {unit.value}, so {use} cannot count days from it; "
            "truncate it to day"
        )
    return None


def check_filters(
    s: Subject, ds: Dataset, filters: Mapping[str, Sequence[str]], at: str
) -> Iterator[Finding]:
    """Each filter names a field of ``ds`` that is kept for analysis, with allowed values."""
    names = [f.name for f in ds.fields]
    for fname, values in filters.items():
        fat = f"{at}.{fname}"
        f = ds.field(fname)
        if f is None:
            if s.missing(fname, names):
                yield fat, f"{fname} is not a field of dataset {ds.id}"
        elif not kept_for_analysis(f):
            yield fat, f"{not_kept(f)}; filter on a field the hub stores"
        elif f.type == FieldType.boolean and set(values) - STORED_BOOLEANS:
            yield (
                fat,
                f"{fname} is stored as true or false, so filter on those values, not "
                f"{sorted(set(values) - STORED_BOOLEANS)}",
            )
        elif f.values is not None:
            unknown = [v for v in values if v not in f.values]
            if unknown:
                yield fat, f"values {unknown} are not allowed for {fname}"


def check_days_between(
    s: Subject, ds: Dataset, pair: tuple[str, str], at: str
) -> Iterator[Finding]:
    """``days_between: [start, end]`` names two different date fields of ``ds``, kept to the
    day."""
    names = [f.name for f in ds.fields]
    if pair[0] == pair[1]:
        yield at, f"days_between names {pair[0]} twice; give the start and the end date fields"
        return
    for k, name in enumerate(pair):
        f = ds.field(name)
        if f is None:
            if s.missing(name, names):
                yield f"{at}[{k}]", f"{name} is not a field of dataset {ds.id}; name a date field"
            continue
        problem = date_problem(f, "days_between")
        if problem is not None:
            yield f"{at}[{k}]", problem


def check_value(s: Subject, ds: Dataset, value: Value, at: str) -> Iterator[Finding]:
    """The value a sum or mean adds up is a number field, or days between two date fields."""
    if value.days_between is not None:
        yield from check_days_between(s, ds, value.days_between, f"{at}.days_between")
    if value.field is not None:
        f = ds.field(value.field)
        if f is None:
            if s.missing(value.field, [g.name for g in ds.fields]):
                yield (
                    f"{at}.field",
                    f"{value.field} is not a field of dataset {ds.id}; name a number field of it",
                )
        else:
            problem = number_problem(f)
            if problem is not None:
                yield f"{at}.field", problem


def check_linked_fields(
    s: Subject, ds: Dataset, event: LinkedEvent, at: str, owner: str = ""
) -> Iterator[Finding]:
    """The linked event's date and filters are fields of the linked dataset ``ds`` (declared by
    ``owner``, when that is another agreement)."""
    of = f" ({owner})" if owner else ""
    f = ds.field(event.time_field)
    if f is None:
        if s.missing(event.time_field, [g.name for g in ds.fields]):
            yield (
                f"{at}.time_field",
                f"{event.time_field} is not a field of dataset {ds.id}{of}; name its date field",
            )
    else:
        problem = date_problem(f, "a linked condition")
        if problem is not None:
            yield f"{at}.time_field", f"in dataset {ds.id}{of}, {problem}"
    yield from check_filters(s, ds, event.filters, f"{at}.filters")


def check_numerator(s: Subject, ds: Dataset, aggregate: Aggregate, at: str) -> Iterator[Finding]:
    """A rate's numerator reads fields of the aggregate's dataset ``ds``; a linked condition
    counts days from the aggregate's time field, so it needs one, kept to the day. ``at`` is the
    aggregate's path."""
    condition = aggregate.numerator
    if condition is None:
        return
    nat = f"{at}.numerator"
    yield from check_filters(s, ds, condition.filters, f"{nat}.filters")
    if condition.days_between is not None:
        yield from check_days_between(s, ds, condition.days_between, f"{nat}.days_between")
    event = condition.linked
    if event is None:
        return
    if event.dataset == ds.id:
        yield (
            f"{nat}.linked.dataset",
            f"a linked condition looks for the person in another dataset, not in {ds.id} "
            "itself; name a dataset in requires_linkage",
        )
    if aggregate.time_field is None:
        yield (
            f"{nat}.linked",
            f"a linked condition counts days from this row's date, but {aggregate.id} has no "
            f"time_field; set time_field to a date field of {ds.id}",
        )
        return
    tf = ds.field(aggregate.time_field)
    if tf is not None and tf.type in DATE_TYPES:  # check_outputs reports any other time_field
        problem = date_problem(tf, "a linked condition")
        if problem is not None:
            yield f"{at}.time_field", problem
