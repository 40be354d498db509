"""Diff sentences for what an aggregate counts: its filters, the value a sum or mean adds up,
and the numerator of a rate (with its condition on a linked dataset).

Importing the module registers its rules (``sentences.py`` does). The value and numerator of an
aggregate change together with its measure — a count has neither — so adding one reads as what
the aggregate now adds up or shares ("makes aggregate X add up the days from A to B (clamped to
0–90 days)"), next to the measure's own sentence. ``days_between`` and ``bounds`` are compared
as one value each (see ``diff.ATOMIC``), so a pair reads as a pair: "widens the bounds of
aggregate X from 0–90 to 0–120 days".
"""

from __future__ import annotations

from typing import Any

from contracts.model import Aggregate, LinkedEvent
from contracts.readable import aggregate_words as aw
from contracts.readable import words as w
from contracts.readable.phrasing import Ctx, fmt, rule

AGG = "outputs.aggregates[*]"


def _aggregates(c: Ctx) -> tuple[Aggregate | None, Aggregate | None]:
    return c.before.aggregate(c.keys[0]), c.after.aggregate(c.keys[0])


def _either(c: Ctx) -> Aggregate | None:
    before, after = _aggregates(c)
    return after or before


def _pair(value: Any) -> tuple[str, str] | None:
    if isinstance(value, list) and len(value) == 2:
        return str(value[0]), str(value[1])
    return None


def _ints(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    return None


def _share(c: Ctx) -> str:
    return f"the share of aggregate {c.keys[0]}"


# --- filters (of the aggregate, of its numerator, of the linked dataset) -------------------------


def _filter_sentence(c: Ctx, who: str, rows: str) -> str | None:
    name = c.d.loc[-1]
    if c.d.element:
        if c.d.kind == "added":
            return f"makes {who} also count {rows} where {name} is {c.value}"
        return f"makes {who} no longer count {rows} where {name} is {c.value}"
    if c.d.reorder or not isinstance(c.value, list):
        return None
    values = w.join_and([str(v) for v in c.value], "or")
    if c.d.kind == "added":
        return f"makes {who} count only {rows} where {name} is {values}"
    return f"makes {who} stop limiting {rows} to those where {name} is {values}"


@rule(f"{AGG}.filters.*")
def _filter(c: Ctx) -> str | None:
    return _filter_sentence(c, f"aggregate {c.keys[0]}", "rows")


@rule(f"{AGG}.numerator.filters.*")
def _numerator_filter(c: Ctx) -> str | None:
    return _filter_sentence(c, _share(c), "rows")


@rule(f"{AGG}.numerator.linked.filters.*")
def _linked_filter(c: Ctx) -> str | None:
    event = _event(c)
    rows = f"{event.dataset} rows" if event else "linked rows"
    return _filter_sentence(c, _share(c), rows)


@rule(f"{AGG}.requires_linkage")
def _requires_linkage(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    if c.d.kind == "added":
        return f"makes aggregate {c.keys[0]} need linkage with {c.value}"
    return f"makes aggregate {c.keys[0]} no longer need linkage with {c.value}"


# --- the value of a sum or mean ------------------------------------------------------------------


@rule(f"{AGG}.value")
def _value(c: Ctx) -> str | None:
    before, after = _aggregates(c)
    if c.d.kind == "added" and after is not None and after.value is not None:
        return f"makes aggregate {c.keys[0]} add up {aw.value_brief(after.value)}"
    if c.d.kind == "removed" and before is not None and before.value is not None:
        return f"makes aggregate {c.keys[0]} stop adding up {aw.value_source(before.value)}"
    return None


@rule(f"{AGG}.value.field")
def _value_field(c: Ctx) -> str:
    if c.d.old is None:
        return f"makes aggregate {c.keys[0]} add up {fmt(c.d.new)}"
    if c.d.new is None:
        return f"makes aggregate {c.keys[0]} stop adding up {fmt(c.d.old)}"
    return f"makes aggregate {c.keys[0]} add up {fmt(c.d.new)} instead of {fmt(c.d.old)}"


@rule(f"{AGG}.value.days_between")
def _value_days(c: Ctx) -> str | None:
    old, new = _pair(c.d.old), _pair(c.d.new)
    if new and old:
        return (
            f"makes aggregate {c.keys[0]} add up the days from {new[0]} to {new[1]} instead of "
            f"from {old[0]} to {old[1]}"
        )
    if new:
        return f"makes aggregate {c.keys[0]} add up the days from {new[0]} to {new[1]}"
    if old:
        return f"makes aggregate {c.keys[0]} stop adding up the days from {old[0]} to {old[1]}"
    return None


@rule(f"{AGG}.value.bounds")
def _bounds(c: Ctx) -> str | None:
    old, new = _ints(c.d.old), _ints(c.d.new)
    if old is None or new is None:
        return None
    aggregate = _either(c)
    unit = " days" if aggregate and aggregate.value and aggregate.value.days_between else ""
    if new[0] <= old[0] and new[1] >= old[1]:
        verb = "widens"
    elif new[0] >= old[0] and new[1] <= old[1]:
        verb = "narrows"
    else:
        verb = "moves"
    old_span, new_span = aw.span(*old), aw.span(*new)
    return f"{verb} the bounds of aggregate {c.keys[0]} from {old_span} to {new_span}{unit}"


# --- the numerator of a rate ---------------------------------------------------------------------


@rule(f"{AGG}.numerator")
def _numerator(c: Ctx) -> str | None:
    before, after = _aggregates(c)
    if c.d.kind == "added" and after is not None and after.numerator is not None:
        return f"makes aggregate {c.keys[0]} the share of {aw.numerator(after)}"
    if c.d.kind == "removed" and before is not None and before.numerator is not None:
        return f"makes aggregate {c.keys[0]} no longer the share of {aw.numerator(before)}"
    return None


@rule(f"{AGG}.numerator.days_between")
def _numerator_days(c: Ctx) -> str | None:
    old, new = _pair(c.d.old), _pair(c.d.new)
    before, after = _aggregates(c)
    if new and old:
        return (
            f"makes {_share(c)} measure the days from {new[0]} to {new[1]} instead of from "
            f"{old[0]} to {old[1]}"
        )
    limit = after.numerator.at_most_days if after and after.numerator else None
    if new and limit is not None:
        return f"makes {_share(c)} count only rows where {aw.gap(new, limit)}"
    limit = before.numerator.at_most_days if before and before.numerator else None
    if old and limit is not None:
        return f"makes {_share(c)} stop requiring {old[1]} to be {aw.window(0, limit, old[0])}"
    return None


@rule(f"{AGG}.numerator.at_most_days")
def _at_most_days(c: Ctx) -> str | None:
    old, new = c.d.old, c.d.new
    if isinstance(old, int) and isinstance(new, int):
        aggregate = _either(c)
        pair = aggregate.numerator.days_between if aggregate and aggregate.numerator else None
        after = f" after {pair[0]}" if pair else ""
        verb = "extends" if new > old else "shortens"
        return f"{verb} the window of {_share(c)} from {old} to {aw.days(new)}{after}"
    if isinstance(new, int):
        return f"sets the time limit of {_share(c)} to {aw.days(new)}"
    if isinstance(old, int):
        return f"removes the time limit of {aw.days(old)} from {_share(c)}"
    return None


# --- a condition on a linked dataset -------------------------------------------------------------


def _event(c: Ctx) -> LinkedEvent | None:
    before, after = _aggregates(c)
    for aggregate in (after, before):
        if aggregate is not None and aggregate.linked_events:
            return aggregate.linked_events[0]
    return None


def _anchor(c: Ctx) -> str:
    aggregate = _either(c)
    return aggregate.time_field if aggregate and aggregate.time_field else "the row's date"


@rule(f"{AGG}.numerator.linked")
def _linked(c: Ctx) -> str | None:
    before, after = _aggregates(c)
    if c.d.kind == "added" and after is not None and after.linked_events:
        event = after.linked_events[0]
        row = aw.linked_row(event, f"the row's {after.time_field or 'date'}")
        return f"makes {_share(c)} require that the same person has {row}"
    if c.d.kind == "removed" and before is not None and before.linked_events:
        event = before.linked_events[0]
        return f"makes {_share(c)} stop looking for the person's rows in {event.dataset}"
    return None


@rule(f"{AGG}.numerator.linked.dataset")
def _linked_dataset(c: Ctx) -> str:
    return (
        f"makes {_share(c)} look for the person's rows in {fmt(c.d.new)} instead of {fmt(c.d.old)}"
    )


@rule(f"{AGG}.numerator.linked.time_field")
def _linked_time(c: Ctx) -> str:
    event = _event(c)
    rows = f"the {event.dataset} rows" if event else "the linked rows"
    return f"makes {_share(c)} date {rows} by {fmt(c.d.new)} instead of {fmt(c.d.old)}"


def _edge(n: int) -> str:
    if n == 0:
        return "on the day of"
    return f"{aw.days(abs(n))} {'before' if n < 0 else 'after'}"


@rule(f"{AGG}.numerator.linked.days_from", f"{AGG}.numerator.linked.days_to")
def _linked_window(c: Ctx) -> str | None:
    old, new = c.d.old, c.d.new
    if not (isinstance(old, int) and isinstance(new, int)):
        return None
    start = c.d.loc[-1] == "days_from"
    wider = new < old if start else new > old
    event = _event(c)
    rows = f"{event.dataset} rows" if event else "linked rows"
    was = "the same day" if old == 0 else _edge(old)
    return (
        f"{'widens' if wider else 'narrows'} the window for {rows} in {_share(c)} to "
        f"{'start' if start else 'end'} {_edge(new)} {_anchor(c)} instead of {was}"
    )
