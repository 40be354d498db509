"""What an aggregate counts, in words: its measure, dimensions and filters, the value a sum or
mean adds up, and the condition a rate's share counts — for the rendering, the ODRL export's
descriptions and the diff.

``aggregate_brief`` is the one-line description ("mean of the days from referral_date to
first_service_date (clamped to 0–90 days) by quarter and to org type"); the smaller functions
are what the diff's sentences reuse ("widens the bounds ... from 0–90 to 0–120 days").
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.model import Aggregate, LinkedEvent, Value
from contracts.readable.words import MEASURE_WORDS, humanize, join_and


def dimensions(names: Sequence[str]) -> str:
    return join_and(humanize(d) for d in names)


def filters(flt: dict[str, tuple[str, ...]]) -> str:
    """``{victimization_type: [A, B]}`` → "rows where victimization_type is A or B"."""
    parts = [f"{name} is {join_and(values, 'or')}" for name, values in flt.items()]
    return "rows where " + join_and(parts)


def days(n: int) -> str:
    return f"{n} day{'' if abs(n) == 1 else 's'}"


def span(lower: int, upper: int) -> str:
    """``0, 90`` → "0–90"; with a negative end, "-10 to 10" (a dash would read as a minus)."""
    if lower == upper:
        return str(lower)
    return f"{lower} to {upper}" if min(lower, upper) < 0 else f"{lower}–{upper}"


def bounds(value: Value) -> str:
    """ "0–90 days" for days between two dates, "0–31" for a field."""
    text = span(*value.bounds)
    return f"{text} days" if value.days_between is not None else text


def value_source(value: Value) -> str:
    """What a sum or mean adds up: "the days from referral_date to first_service_date", or the
    field's name."""
    if value.days_between is not None:
        return f"the days from {value.days_between[0]} to {value.days_between[1]}"
    return str(value.field)


def value_brief(value: Value) -> str:
    """ "the days from referral_date to first_service_date (clamped to 0–90 days)"."""
    return f"{value_source(value)} (clamped to {bounds(value)})"


def offset(n: int, anchor: str) -> str:
    """One end of a window: "7 days before incident_datetime", "the day of referral_date"."""
    if n == 0:
        return f"the day of {anchor}"
    return f"{days(abs(n))} {'before' if n < 0 else 'after'} {anchor}"


def window(days_from: int, days_to: int, anchor: str) -> str:
    """When a date falls relative to ``anchor``, ``days_from`` to ``days_to`` days after it
    (negative: before): "1 to 365 days before X", "within 7 days after X", "on the same day as
    X", "between 30 days before and 30 days after X"."""
    if days_from == days_to == 0:
        return f"on the same day as {anchor}"
    if days_from == days_to:
        return f"exactly {offset(days_to, anchor)}"
    if days_from == 0:
        return f"within {days(days_to)} after {anchor}"
    if days_to == 0:
        return f"within {days(-days_from)} before {anchor}"
    if days_to < 0:
        return f"{-days_to} to {days(-days_from)} before {anchor}"
    if days_from > 0:
        return f"{days_from} to {days(days_to)} after {anchor}"
    return f"between {days(-days_from)} before and {days(days_to)} after {anchor}"


def _is(flt: dict[str, tuple[str, ...]]) -> list[str]:
    return [f"{name} is {join_and(values, 'or')}" for name, values in flt.items()]


def gap(days_between: tuple[str, str], at_most_days: int) -> str:
    """ "followup_done_date is within 7 days after referral_date"."""
    start, end = days_between
    return f"{end} is {window(0, at_most_days, start)}"


def linked_row(event: LinkedEvent, anchor: str) -> str:
    """ "a row in ed_injury_visits with injury_intent ASSAULT and arrival_datetime 1 to 365
    days before incident_datetime"."""
    parts = [f"{name} {join_and(values, 'or')}" for name, values in event.filters.items()]
    parts.append(f"{event.time_field} {window(event.days_from, event.days_to, anchor)}")
    return f"a row in {event.dataset} with {join_and(parts)}"


def numerator(aggregate: Aggregate) -> str:
    """Who or what a rate's share counts: "rows where followup_done_date is within 7 days after
    referral_date", "people who have a row in ed_injury_visits with ...". Empty without a
    numerator."""
    condition = aggregate.numerator
    if condition is None:
        return ""
    own = _is(condition.filters)
    if condition.days_between is not None and condition.at_most_days is not None:
        own.append(gap(condition.days_between, condition.at_most_days))
    event = condition.linked
    date = aggregate.time_field or "date"
    if aggregate.measure == "rate_persons":
        if event is None:
            return "people with a row where " + join_and(own)
        if not own:
            return f"people who have {linked_row(event, f'their {date}')}"
        return f"people with a row where {join_and(own)} and who have " + linked_row(
            event, f"that row's {date}"
        )
    if event is not None:
        own.append("the same person has " + linked_row(event, f"the row's {date}"))
    return "rows where " + join_and(own)


def aggregate_brief(aggregate: Aggregate) -> str:
    """ "count of rows by month and victimization type", "mean of the days from referral_date
    to first_service_date (clamped to 0–90 days) by quarter and to org type", "share of rows
    where followup_done_date is within 7 days after referral_date, by quarter and to org type"."""
    measure = MEASURE_WORDS.get(aggregate.measure, humanize(aggregate.measure))
    if aggregate.value is not None:
        measure = f"{aggregate.measure} of {value_brief(aggregate.value)}"
    if aggregate.numerator is not None:
        measure = f"share of {numerator(aggregate)},"
    text = f"{measure} by {dimensions(aggregate.dimensions)}"
    if aggregate.filters:
        text += f", counting only {filters(aggregate.filters)}"
    return text
