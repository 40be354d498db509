"""The grammar of diff sentences: raw differences, their context, and the generic sentence.

``sentences.py`` registers a rule per path pattern with :func:`rule`; this module holds what the
rules share — :class:`Difference` (what the walker in ``diff.py`` found), :class:`Ctx` (that
difference with both agreements, for context), :func:`fmt` (a canonical value in words),
:func:`where` (a path in words) and :func:`generic`, the sentence used when no rule applies,
which is what guarantees that every difference is described.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from contracts.model import Agreement, Dataset, DatasetField
from contracts.model.vocabulary import DURATION
from contracts.readable import words as w

__all__ = [
    "RULES",
    "Ctx",
    "Difference",
    "fmt",
    "generic",
    "more",
    "path_of",
    "pattern",
    "rule",
    "toggle",
    "where",
    "words_for",
]

Loc = tuple[str, ...]


def path_of(loc: Loc) -> str:
    """``("datasets", "[pv]", "fields")`` → ``datasets[pv].fields``."""
    out = ""
    for segment in loc:
        out += segment if segment.startswith("[") or not out else f".{segment}"
    return out


def pattern(loc: Loc) -> str:
    """``("datasets", "[pv]", "fields")`` → ``datasets[*].fields``."""
    return path_of(tuple("[*]" if s.startswith("[") else s for s in loc))


@dataclass(frozen=True)
class Difference:
    """A raw difference: where, what kind, the values either side. ``element`` marks a value
    added to or removed from a list of plain values; ``reorder`` the same items in a new order."""

    loc: tuple[str, ...]
    kind: Literal["added", "removed", "changed"]
    old: Any
    new: Any
    element: bool = False
    reorder: bool = False


@dataclass(frozen=True)
class Ctx:
    d: Difference
    before: Agreement
    after: Agreement

    @property
    def keys(self) -> list[str]:
        return [s[1:-1] for s in self.d.loc if s.startswith("[")]

    @property
    def value(self) -> Any:
        """The value added or removed (the new one for a change)."""
        return self.d.old if self.d.kind == "removed" else self.d.new

    def dataset(self, side: Agreement | None = None) -> Dataset | None:
        agreements = [side] if side else [self.after, self.before]
        return next((d for a in agreements if (d := a.dataset(self.keys[0]))), None)

    def field(self, side: Agreement) -> DatasetField | None:
        dataset = side.dataset(self.keys[0])
        return dataset.field(self.keys[1]) if dataset else None

    def in_dataset(self) -> str:
        """ " in dataset X" when either version has more than one dataset, else nothing."""
        several = max(len(self.before.datasets), len(self.after.datasets)) > 1
        return f" in dataset {self.keys[0]}" if several else ""

    def field_ref(self) -> str:
        return f"field {self.keys[1]}{self.in_dataset()}"


Rule = Callable[[Ctx], str | None]
RULES: dict[str, Rule] = {}
SINGULAR = {
    "parties": "party",
    "legal_basis": "legal basis",
    "datasets": "dataset",
    "fields": "field",
    "row_rules": "row rule",
    "aggregates": "aggregate",
    "statutory": "statutory deadline",
    "signatories": "signatory",
    "approvals": "approval",
    "amendments": "amendment",
}
NOUNS = {
    "five_safes_summary": "Five Safes summary",
    "signed_on": "signing date",
    "minutes_ref": "minutes reference",
    "max_lag_days": "maximum lag in days",
    "review_every_months": "review interval in months",
    "class": "class",
    "dpv_map": "DPV term",
}


def rule(*patterns: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for p in patterns:
            RULES[p] = fn
        return fn

    return register


DURATION_LEAVES = frozenset(
    {
        "raw_upload",
        "pseudonymized_tables",
        "linkage_tokens",
        "aggregates",
        "within",
        "audit_log_retention",
        "notify_provider_within",
        "max",
    }
)
"""Leaves holding ISO-8601 durations, which read as words ("P3Y" → "3 years")."""


def fmt(value: Any, duration: bool = False) -> str:
    """A value from the canonical form in words; ``duration`` reads ISO durations as words."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return w.number(value)
    if isinstance(value, str):
        if duration and (value == "indefinite" or DURATION.match(value)):
            return "not at all" if w.is_zero_duration(value) else w.duration(value)
        return value
    if isinstance(value, list):
        return ", ".join(fmt(v, duration) for v in value) if value else "nothing"
    if isinstance(value, dict):
        shown = [f"{w.humanize(str(k))} {fmt(v)}" for k, v in value.items() if v not in (None, [])]
        return "; ".join(shown) if shown else "nothing"
    return str(value)


def where(loc: tuple[str, ...]) -> str:
    """A path in words: ``datasets[pv].delivery.frequency`` → "the delivery frequency of
    dataset pv"."""
    owners: list[str] = []
    tail: list[str] = []
    for i, segment in enumerate(loc):
        if segment.startswith("["):
            noun = SINGULAR.get(loc[i - 1], w.humanize(loc[i - 1])) if i else "item"
            owners.append(f"{noun} {segment[1:-1]}")
            tail = []
        elif not (i == 0 and segment in ("agreement", "outputs")):
            tail.append(segment)
    words = " ".join(NOUNS.get(s, w.humanize(s)) for s in tail)
    owner = " of ".join(reversed(owners))
    if words and owner:
        return f"the {words} of {owner}"
    return f"the {words}" if words else owner


def generic(c: Ctx) -> str:
    """The sentence for a difference no rule words: the path in words, and the values."""
    d = c.d
    place = where(d.loc)
    leaf = next((s for s in reversed(d.loc) if not s.startswith("[")), "")
    as_duration = leaf in DURATION_LEAVES
    old, new = fmt(d.old, as_duration), fmt(d.new, as_duration)
    if d.reorder:
        return f"changes the order of {place}"
    if d.element:
        return f"adds {new} to {place}" if d.kind == "added" else f"removes {old} from {place}"
    if d.loc and d.loc[-1].startswith("["):
        return f"{'adds' if d.kind == 'added' else 'removes'} {place}"
    if d.old is None:
        return f"sets {place} to {new}"
    if d.new is None:
        return f"clears {place} (was {old})"
    return f"changes {place} from {old} to {new}"


def more(c: Ctx, noun: str, show: Callable[[Any], str] = fmt, first: str = "") -> str | None:
    old, new = c.d.old, c.d.new
    if not (isinstance(old, int | float) and isinstance(new, int | float)):
        return None
    verb = "raises" if new > old else "lowers"
    return f"{verb} {noun} from {first}{show(old)} to {show(new)}"


def toggle(c: Ctx, on: str, off: str) -> str | None:
    if isinstance(c.d.new, bool):
        return on if c.d.new else off
    return None


def words_for(table: dict[str, str], value: Any) -> str:
    return table.get(value, w.humanize(str(value))) if value is not None else "nothing"
