"""The compiled plan: what the hub executes for a dataset, derived from the authored spec.

Shared vocabulary between ingest (which writes transformed values) and publishers (which build
release cells from public key sets): bin labels, time keys and the set of stored columns. Keeping
both sides on these functions is what makes a release cell line up with a stored value.

Stored values are text: dates ``YYYY-MM-DD``, booleans ``true``/``false``, bins ``18-24``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from contracts.keysets import keyset
from contracts.model import Aggregate, Dataset, DatasetField, FieldType, LinkRole


def _edge(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def bin_labels(edges: tuple[float, ...], integer: bool = True) -> list[str]:
    """Labels for half-open bins ``[e0, e1), [e1, e2), ...``: ``0-11`` for integers."""
    labels = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        upper = _edge(hi - 1) if integer else f"<{_edge(hi)}"
        labels.append(f"{_edge(lo)}-{upper}")
    return labels


def bin_label(value: float, edges: tuple[float, ...], integer: bool = True) -> str | None:
    """The label of the bin holding ``value``; ``None`` outside the edges."""
    labels = bin_labels(edges, integer)
    for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        if lo <= value < hi:
            return labels[i]
    return None


def time_key(day: dt.date, unit: str) -> str:
    if unit == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if unit == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    if unit == "year":
        return f"{day.year:04d}"
    raise ValueError(f"unknown time unit {unit!r}")


def time_keys(start: dt.date, end: dt.date, unit: str) -> list[str]:
    """Every key of ``unit`` from ``start`` to ``end`` inclusive, in order (a public key set)."""
    keys: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        key = time_key(dt.date(year, month, 1), unit)
        if not keys or keys[-1] != key:
            keys.append(key)
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return keys


def field_keys(field: DatasetField) -> list[str] | None:
    """The public key set of a stored field's values, or ``None`` if it has none."""
    t = field.transform
    if t.kind == "bin" and t.bin is not None:
        return bin_labels(t.bin, integer=field.type == FieldType.integer)
    if t.kind == "geo_coarsen" and t.geo_coarsen is not None:
        return list(keyset(t.geo_coarsen.value))
    if field.keyset is not None:
        return list(keyset(field.keyset))
    if field.values is not None:
        return list(field.values)
    if field.type == FieldType.boolean:
        return ["true", "false"]
    return None


@dataclass(frozen=True)
class DatasetPlan:
    """What ingest does with one dataset: columns expected, stored, tokenized, hashed."""

    dataset: Dataset

    @property
    def declared_columns(self) -> list[str]:
        return [f.name for f in self.dataset.fields]

    @property
    def stored_fields(self) -> list[DatasetField]:
        """Fields whose (transformed) value is stored with the record."""
        return [f for f in self.dataset.fields if f.transform.keeps_value]

    @property
    def token_fields(self) -> list[tuple[DatasetField, LinkRole]]:
        """Fields that feed the linkage tokens, with their role."""
        return [(f, f.link_as) for f in self.dataset.fields if f.link_as is not None]


def aggregate_fields(aggregate: Aggregate) -> list[str]:
    """Stored fields of its own dataset an aggregate reads: dimensions, filters, time field,
    the value it adds up and the fields of its numerator (not those of linked datasets: see
    :attr:`~contracts.model.Aggregate.linked_events`)."""
    names = [d for d in aggregate.dimensions if d not in ("month", "quarter", "year")]
    more = list(aggregate.filters)
    if aggregate.time_field:
        more.append(aggregate.time_field)
    if aggregate.value is not None:
        more += aggregate.value.fields
    if aggregate.numerator is not None:
        more += aggregate.numerator.fields
    for name in more:
        if name not in names:
            names.append(name)
    return names
