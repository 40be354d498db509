"""What changed between two versions of an agreement, one plain-language sentence per change.

``diff_agreements(old, new)`` compares the *canonical forms* (the dump every hash and signature
is computed over) and returns :class:`Change` values in document order; ``format_diff`` prints
them as a list. Sentences read as continuations of "Version 1.1.0 …": "adds field victim_home_zip
(quasi-identifier, kept as ZIP3)", "raises the monthly budget from ρ=0.05 to 0.1", "removes law
enforcement from the recipients".

How the comparison works:

* Lists of things with an identity are compared by it, never by position: parties by id, legal
  bases by regime and pathway, datasets and aggregates by id, fields by name, row rules by their
  condition, statutory deadlines by regime, signatories by party, approvals by body and date,
  amendments by version. Moving an item is a reordering, not a removal and an addition. A list
  whose identities repeat is compared as a whole.
* Lists of plain values (purposes, recipients, dimensions, allowed values …) are compared as
  collections: each value added or removed is one change; the same values in a new order is one
  "changes the order" change.
* A field's transform is compared as one value ("changes the transform of X from keep to drop"),
  and so are the pairs of a sum's, mean's or rate's ``days_between`` and ``bounds`` ("widens
  the bounds of aggregate X from 0–90 to 0–120 days").
* Every difference in the canonical form yields at least one change: where ``sentences.py`` has
  no sentence for a path, a generic one names the path ("changes the audit log retention of the
  security from 6 years to 7 years"). The tests mutate every leaf of the examples to hold this.

A change to the hub-managed parts (status, signing dates, approvals) is reported like any other,
since it changes the canonical form; it does not change the signing form.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from contracts.model import Agreement
from contracts.readable.phrasing import Difference, path_of, pattern
from contracts.readable.sentences import sentence

__all__ = ["Change", "ChangeKind", "diff_agreements", "format_diff"]

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    """One difference between two versions.

    ``path`` locates it in the canonical form, with list items named by identity
    (``datasets[police_victimizations].fields[victim_dob].transform``); for a value added to or
    removed from a list of plain values, ``path`` is the list and ``old``/``new`` the value.
    """

    path: str
    kind: ChangeKind
    sentence: str
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "sentence": self.sentence,
            "old": self.old,
            "new": self.new,
        }


def _by(*keys: str) -> Callable[[dict[str, Any]], str]:
    return lambda item: ":".join(str(item.get(k)) for k in keys)


IDENTITY: dict[str, Callable[[dict[str, Any]], str]] = {
    "parties": _by("id"),
    "legal_basis": _by("regime", "pathway"),
    "datasets": _by("id"),
    "datasets[*].fields": _by("name"),
    "datasets[*].row_rules": _by("when"),
    "outputs.aggregates": _by("id"),
    "incidents.statutory": _by("regime"),
    "signatories": _by("party"),
    "approvals": _by("body", "date"),
    "amendments": _by("version"),
}
"""How the items of each list of things are told apart."""

ATOMIC = frozenset(
    {
        "datasets[*].fields[*].transform",
        "outputs.aggregates[*].value.days_between",
        "outputs.aggregates[*].value.bounds",
        "outputs.aggregates[*].numerator.days_between",
    }
)
"""Paths compared as one value (a pair such as ``bounds: [0, 90]`` is one value, not a
collection of two)."""
ATOMIC_LEAVES = frozenset(p.rsplit(".", 1)[-1] for p in ATOMIC)

Loc = tuple[str, ...]


def _same(a: Any, b: Any) -> bool:
    # Type-aware: True and 1 (or 1 and 1.0) differ in the canonical form, so they differ here.
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _hashable(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


class _Walker:
    def __init__(self) -> None:
        self.found: list[Difference] = []

    def add(self, loc: Loc, kind: ChangeKind, old: Any, new: Any, **flags: bool) -> None:
        self.found.append(Difference(loc, kind, old, new, **flags))

    def walk(self, old: Any, new: Any, loc: Loc) -> None:
        # Both dumps come from one model, which gives each path one type, so Python's equality
        # (where True == 1) can only skip equal parts; scalars are compared type-aware anyway.
        if isinstance(old, dict | list) and old == new:
            return
        if loc and loc[-1] in ATOMIC_LEAVES and pattern(loc) in ATOMIC:
            if not _same(old, new):
                self.add(loc, "changed", old, new)
        elif isinstance(old, dict) and isinstance(new, dict):
            self.mapping(old, new, loc)
        elif isinstance(old, list) and isinstance(new, list):
            self.sequence(old, new, loc)
        elif _same(old, new):
            return
        elif old is None:
            self.add(loc, "added", old, new)
        elif new is None:
            self.add(loc, "removed", old, new)
        else:
            self.add(loc, "changed", old, new)

    def mapping(self, old: dict[str, Any], new: dict[str, Any], loc: Loc) -> None:
        for key in old:
            if key not in new:
                self.add((*loc, key), "removed", old[key], None)
        for key in new:
            if key not in old:
                self.add((*loc, key), "added", None, new[key])
        for key in new:
            if key in old:
                self.walk(old[key], new[key], (*loc, key))

    def sequence(self, old: list[Any], new: list[Any], loc: Loc) -> None:
        identity = IDENTITY.get(pattern(loc))
        items = old + new
        if identity and all(isinstance(x, dict) for x in items):
            old_keys = [identity(x) for x in old]
            new_keys = [identity(x) for x in new]
            if len(set(old_keys)) == len(old_keys) and len(set(new_keys)) == len(new_keys):
                self.keyed(
                    dict(zip(old_keys, old, strict=True)),
                    dict(zip(new_keys, new, strict=True)),
                    loc,
                )
                return
        elif all(_scalar(x) for x in items):
            self.collection(old, new, loc)
            return
        if not _same(old, new):
            self.add(loc, "changed", old, new)

    def keyed(self, old: dict[str, Any], new: dict[str, Any], loc: Loc) -> None:
        for key, item in old.items():
            if key not in new:
                self.add((*loc, f"[{key}]"), "removed", item, None)
        for key, item in new.items():
            if key not in old:
                self.add((*loc, f"[{key}]"), "added", None, item)
        for key, item in new.items():
            if key in old:
                self.walk(old[key], item, (*loc, f"[{key}]"))
        common_old = [k for k in old if k in new]
        common_new = [k for k in new if k in old]
        if common_old != common_new:
            self.add(loc, "changed", common_old, common_new, reorder=True)

    def collection(self, old: list[Any], new: list[Any], loc: Loc) -> None:
        before = Counter(_hashable(x) for x in old)
        after = Counter(_hashable(x) for x in new)
        for (_, value), count in (before - after).items():
            for _ in range(count):
                self.add(loc, "removed", value, None, element=True)
        for (_, value), count in (after - before).items():
            for _ in range(count):
                self.add(loc, "added", None, value, element=True)
        if before == after and [_hashable(x) for x in old] != [_hashable(x) for x in new]:
            self.add(loc, "changed", old, new, reorder=True)


def diff_agreements(old: Agreement, new: Agreement) -> list[Change]:
    """Every difference between two agreements, each with a plain-language sentence, in
    document order. Identical agreements give an empty list."""
    walker = _Walker()
    walker.walk(
        old.model_dump(mode="json", by_alias=True),
        new.model_dump(mode="json", by_alias=True),
        (),
    )
    return [
        Change(path_of(d.loc), d.kind, sentence(d, old, new), d.old, d.new) for d in walker.found
    ]


def format_diff(changes: list[Change]) -> str:
    """The changes as a plain-text list, one sentence a line ("No changes." when empty)."""
    if not changes:
        return "No changes.\n"
    return "".join(f"- {c.sentence}\n" for c in changes)
