"""Compute one differentially private release of an approved aggregate.

The hub hands rows over through a narrow interface: a :class:`pandas.DataFrame` with a
``person_id`` column (text, the linked pseudonymous person, never null) and one column per
stored field the aggregate reads (:func:`contracts.plan.aggregate_fields`), values as text
exactly as stored (dates ``YYYY-MM-DD``, booleans ``true``/``false``, bin labels, enum values,
missing as ``None``). Nothing here touches storage or the budget ledger: the hub debits the
ledger, caches the result and publishes it (invariants 3 and 4).

The pipeline, in order (each step in its own module)::

    cells.py       public key sets  ─┐
                   rows → cells      ├→ bounding.py  k rows (or cells) per person per period
                                     │       │ exact counts, used only by the mechanism
    mechanisms.py  OpenDP noise  ←───┘───────┘
    postprocess.py clamp, small cells, marginal totals (noisy values only)

Usage::

    release = compute_release(agreement, "viol_monthly", rows,
                              window_start=date(2025, 1, 1), window_end=date(2025, 12, 31))
    release.to_manifest()        # public: JSON-able, noisy numbers only
    release.processing_report()  # NOT public: exact row counts, for the data steward

Caveats: the guarantee is per *linked* person (see
:func:`publishers.dashboard.privacy_statement`, published beside every release), and the
error bounds cover the noise only, not the downward bias of contribution bounding.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from contracts.model import Aggregate, Agreement, ContributionBound
from publishers.bounding import Sensitivity, bound_contributions, new_seed
from publishers.cells import (
    CellSpace,
    IntArray,
    build_cell_space,
    place_rows,
    resolve_aggregate,
)
from publishers.errors import ReleaseRefused
from publishers.measures import (
    centre,
    components,
    drop_rows,
    is_ratio,
    noise_bound,
    numerator_flags,
    row_values,
    split_by_flag,
)
from publishers.mechanisms import (
    ALPHA,
    LOSS_UNIT,
    Calibration,
    PrivacyModel,
    add_noise,
    calibrate,
    sum_error_bound,
)
from publishers.postprocess import (
    PublishedCell,
    PublishedTotal,
    marginal_totals,
    publish_cells,
    publish_measure,
)

__all__ = [
    "Charge",
    "ComputedRelease",
    "ReleaseRefused",
    "Terms",
    "compute_release",
    "preview",
    "privacy_cost",
    "release_terms",
]

MANIFEST_SCHEMA = "ovp-release/1"

ACCURACY_NOTE = (
    "With probability at least 95%, a cell's published value differs from its count after "
    "contribution bounding by less than error_bound_95 (OpenDP's accuracy for this noise "
    "scale). Rows dropped by contribution bounding bias counts downward; that bias is not "
    "included."
)
ACCURACY_NOTES = {
    "sum": (
        "Values are clamped into the agreement's bounds before they are added. With probability "
        "at least 95%, a cell's published sum differs from the sum of its clamped values after "
        "contribution bounding by less than error_bound_95. Cells whose noisy row count is below "
        "min_cell are suppressed."
    ),
    "mean": (
        "Values are clamped into the agreement's bounds. Each cell's [lower, upper] interval "
        "holds the mean of its clamped values after contribution bounding with probability at "
        "least 95%: it spans every mean that the noisy sum and the noisy count allow, each within "
        "its 97.5% noise bound. It is computed from the noisy values only and is conservative."
    ),
    "rate": (
        "Each cell's [lower, upper] interval holds the share after contribution bounding with "
        "probability at least 95%: it spans every share that the noisy numerator and the noisy "
        "rest of the denominator allow, each within its 97.5% noise bound. It is computed from "
        "the noisy values only and is conservative."
    ),
}
TOTALS_NOTE = (
    "Totals sum the unclamped noisy cells of their row, then clamp at zero. Their bound is "
    "exact for a sum of independent draws: the noise distribution convolved with itself once "
    "per cell."
)


@dataclass(frozen=True)
class RowCounts:
    """Where the rows went. Exact counts of private data: never part of the public manifest.

    ``used`` counts rows for ``count_rows`` and person×cell units for ``count_persons``; every
    received row is in exactly one of used, the four drop reasons, or merged into a unit.
    """

    received: int
    used: int
    out_of_window: int
    filtered_out: int
    out_of_key_set: int
    dropped_by_bounding: int
    merged_into_person_cells: int
    missing_value: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "used": self.used,
            "dropped_out_of_window": self.out_of_window,
            "filtered_out": self.filtered_out,
            "dropped_out_of_key_set": self.out_of_key_set,
            "dropped_missing_value": self.missing_value,
            "dropped_by_bounding": self.dropped_by_bounding,
            "merged_into_person_cells": self.merged_into_person_cells,
        }


@dataclass(frozen=True)
class NoisyPart:
    """One noisy vector of a release, as the manifest describes it (public)."""

    name: str
    share: float
    calibration: Calibration
    sensitivity: Sensitivity

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "budget_share": self.share,
            "mechanism": self.calibration.mechanism,
            "noise_scale": self.calibration.scale,
            "privacy_loss": self.calibration.loss,
            "sensitivity": self.sensitivity.as_dict(),
            "error_bound_95": self.calibration.error_bound_95,
        }


@dataclass(frozen=True)
class ComputedRelease:
    """One computed release: noisy cells and everything needed to describe them honestly.

    Everything but :attr:`row_counts` is either public metadata or a function of the noisy
    values; :meth:`to_manifest` returns exactly that part. ``error_bound_95`` and
    ``total_error_bound_95`` are the per-cell and per-total 95% bounds of a count or a sum;
    means and rates state an interval per cell instead, and leave them ``None``.
    """

    agreement: str
    aggregate_id: str
    title: str
    dataset: str
    measure: str
    dimensions: tuple[str, ...]
    filters: dict[str, tuple[str, ...]]
    time_field: str | None
    window_start: dt.date
    window_end: dt.date
    cells: tuple[PublishedCell, ...]
    totals: tuple[PublishedTotal, ...]
    mechanism: str
    privacy_model: PrivacyModel
    privacy_loss: float
    privacy_loss_requested: float
    noise_scale: float
    error_bound_95: float | None
    total_error_bound_95: float | None
    contribution_bound: ContributionBound
    sensitivity: Sensitivity
    min_cell: int
    row_counts: RowCounts = field(repr=False)
    parts: tuple[NoisyPart, ...] = ()
    definition: dict[str, Any] = field(default_factory=dict)
    charges: tuple[Charge, ...] = ()

    @property
    def loss_unit(self) -> str:
        return LOSS_UNIT[self.privacy_model]

    def to_manifest(self) -> dict[str, Any]:
        """The public, JSON-able description of the release (noisy values only)."""
        return {
            "schema": MANIFEST_SCHEMA,
            "agreement": self.agreement,
            "aggregate_id": self.aggregate_id,
            "aggregate_title": self.title,
            "dataset": self.dataset,
            "measure": self.measure,
            **self.definition,
            "dimensions": list(self.dimensions),
            "filters": {k: list(v) for k, v in self.filters.items()},
            "time_field": self.time_field,
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "privacy_unit": "linked_person",
            "privacy_model": self.privacy_model,
            "mechanism": self.mechanism,
            "privacy_loss": self.privacy_loss,
            "privacy_loss_requested": self.privacy_loss_requested,
            "privacy_loss_unit": self.loss_unit,
            "charges": [c.as_dict() for c in self.charges],
            "noise_scale": self.noise_scale,
            "contribution_bound": self.contribution_bound.model_dump(mode="json"),
            "periods": self.sensitivity.periods,
            "sensitivity": self.sensitivity.as_dict(),
            "noisy_parts": [p.as_dict() for p in self.parts],
            "error_bound_95": self.error_bound_95,
            "total_error_bound_95": self.total_error_bound_95,
            "accuracy_note": accuracy_note(self.measure),
            "totals_note": TOTALS_NOTE,
            "min_cell": self.min_cell,
            "cells": [_public(c) for c in self.cells],
            "totals": [_public(t) for t in self.totals],
        }

    def processing_report(self) -> dict[str, Any]:
        """Exact row counts (received, used, dropped and why). NOT differentially private:
        for the providing agency's steward and the audit log only, never for analysts or
        the public."""
        return {
            "agreement": self.agreement,
            "aggregate_id": self.aggregate_id,
            "rows": self.row_counts.as_dict(),
        }


def accuracy_note(measure: str) -> str:
    """What the release's accuracy figures mean, for its measure."""
    if measure.startswith("rate"):
        return ACCURACY_NOTES["rate"]
    return ACCURACY_NOTES.get(measure, ACCURACY_NOTE)


def _public(entry: PublishedCell | PublishedTotal) -> dict[str, Any]:
    out = dict(entry)
    out["key"] = dict(entry["key"])
    return out


def definition_of(aggregate: Aggregate) -> dict[str, Any]:
    """What a sum, mean or rate adds up or counts, as the manifest states it."""
    out: dict[str, Any] = {}
    if aggregate.value is not None:
        out["value"] = aggregate.value.model_dump(mode="json", exclude_none=True)
    if aggregate.numerator is not None:
        out["numerator"] = aggregate.numerator.model_dump(mode="json", exclude_none=True)
    if aggregate.requires_linkage:
        out["requires_linkage"] = list(aggregate.requires_linkage)
    return out


def privacy_cost(agreement: Agreement, aggregate_id: str) -> float:
    """The loss one release of the aggregate spends: ``budget_share × budget.per_period``
    (rho for zCDP, epsilon for pure DP)."""
    aggregate, _ = resolve_aggregate(agreement, aggregate_id)
    return aggregate.budget_share * agreement.outputs.privacy.budget.per_period


@dataclass(frozen=True)
class Charge:
    """What one agreement's budget is charged for a release, in its own unit."""

    agreement: str
    amount: float
    unit: str

    def as_dict(self) -> dict[str, Any]:
        return {"agreement": self.agreement, "amount": self.amount, "unit": self.unit}


@dataclass(frozen=True)
class Terms:
    """The privacy model and loss a release runs under, and what each agreement pays.

    An aggregate's own agreement sets the loss (:func:`privacy_cost`). When it reads the data of
    linked datasets, every agreement involved is charged, each in its own unit. If all use the
    same model, each pays the same loss. If any uses pure DP, the release must satisfy pure DP:
    it runs under ``pure_dp`` with ``ε = √(2ρ)`` when its own agreement is zCDP with ``ρ`` (an
    ε-DP mechanism satisfies ``ε²/2``-zCDP), and a zCDP agreement is charged ``ρ = ε²/2`` of a
    pure-DP release (Bun & Steinke 2016, Proposition 1.4). ``min_cell`` is the largest of the
    agreements' small-cell thresholds.
    """

    privacy_model: PrivacyModel
    loss: float
    charges: tuple[Charge, ...]
    min_cell: int = 0


def _zcdp_of(epsilon: float) -> float:
    """The zCDP ρ an ε-DP release satisfies (rounded up)."""
    return math.nextafter(epsilon * epsilon / 2, math.inf)


def release_terms(
    agreement: Agreement, aggregate_id: str, linked: Sequence[Agreement] = ()
) -> Terms:
    """The :class:`Terms` of a release of ``aggregate_id`` that also reads ``linked``'s data."""
    own = agreement.outputs.privacy.model
    cost = privacy_cost(agreement, aggregate_id)
    everyone = [agreement, *(a for a in linked if a.ref != agreement.ref)]
    models = {a.outputs.privacy.model for a in everyone}
    if models == {own}:
        model, loss = own, cost
    elif own == "zcdp":
        model, loss = "pure_dp", math.sqrt(2 * cost)
        while _zcdp_of(loss) > cost:
            loss = math.nextafter(loss, 0.0)
    else:
        model, loss = "pure_dp", cost
    charges = []
    for a in everyone:
        theirs = a.outputs.privacy.model
        amount = loss if theirs == model else _zcdp_of(loss)
        if a is agreement and theirs == own:
            amount = cost  # exactly what the agreement's own aggregate is priced at
        charges.append(Charge(a.ref, amount, LOSS_UNIT[theirs]))
    # Every agreement's small-cell rule holds: the strictest one applies.
    min_cell = max(a.outputs.min_cell for a in everyone)
    return Terms(model, loss, tuple(charges), min_cell)


@dataclass(frozen=True)
class _Plan:
    space: CellSpace
    parts: tuple[NoisyPart, ...]

    @property
    def first(self) -> NoisyPart:
        return self.parts[0]

    def part(self, name: str) -> NoisyPart:
        return next(p for p in self.parts if p.name == name)

    @property
    def loss(self) -> float:
        return sum(p.calibration.loss for p in self.parts)

    @property
    def per_total(self) -> int:
        space = self.space
        return space.size // len(space.dimensions[0].keys) if space.dimensions else 0

    def bounds(self, cells: int) -> dict[str, float]:
        """Each part's noise bound for the sum of ``cells`` draws (one cell: ``cells = 1``), at
        95% for a count or a sum and at 97.5% for each part of a mean or a rate."""
        alpha = ALPHA / 2 if is_ratio(self.space.aggregate.measure) else ALPHA
        model = self.first.calibration.privacy_model
        return {p.name: noise_bound(model, p.calibration.scale, cells, alpha) for p in self.parts}

    def stated_bounds(self) -> tuple[float | None, float | None]:
        """The per-cell and per-total 95% bounds of a count or a sum (``None`` for ratios)."""
        if is_ratio(self.space.aggregate.measure):
            return None, None
        c = self.first.calibration
        return c.error_bound_95, sum_error_bound(c.privacy_model, c.scale, self.per_total, ALPHA)


def _plan(
    agreement: Agreement,
    aggregate_id: str,
    window_start: dt.date,
    window_end: dt.date,
    terms: Terms | None,
) -> _Plan:
    space = build_cell_space(agreement, aggregate_id, window_start, window_end)
    privacy = agreement.outputs.privacy
    terms = terms or release_terms(agreement, aggregate_id)
    model, cost = terms.privacy_model, terms.loss
    parts = tuple(
        NoisyPart(c.name, c.share, calibrate(model, c.sensitivity, cost * c.share), c.sensitivity)
        for c in components(
            space.aggregate, privacy.contribution_bound, window_start, window_end, space.size
        )
    )
    return _Plan(space, parts)


def preview(
    agreement: Agreement,
    aggregate_id: str,
    window_start: dt.date,
    window_end: dt.date,
    terms: Terms | None = None,
) -> dict[str, Any]:
    """What a release would look like, from the agreement alone (no data is read): its cells,
    cost and accuracy. Safe to show an analyst before anything is spent.

    A mean's or a rate's interval depends on the noisy values, so for them the preview gives
    each noisy part's 95% bound (``noisy_parts``) and no single ``error_bound_95``."""
    terms = terms or release_terms(agreement, aggregate_id)
    plan = _plan(agreement, aggregate_id, window_start, window_end, terms)
    space, first = plan.space, plan.first.calibration
    cell_bound, total_bound = plan.stated_bounds()
    return {
        "agreement": agreement.ref,
        "aggregate_id": aggregate_id,
        "measure": space.aggregate.measure,
        "dimensions": [{"name": d.name, "keys": len(d.keys)} for d in space.dimensions],
        "cells": space.size,
        "window": {"start": window_start.isoformat(), "end": window_end.isoformat()},
        "privacy_model": first.privacy_model,
        "mechanism": first.mechanism,
        "cost": terms.loss,
        "charges": [c.as_dict() for c in terms.charges],
        "privacy_loss": plan.loss,
        "privacy_loss_unit": first.loss_unit,
        "noise_scale": first.scale,
        "contribution_bound": agreement.outputs.privacy.contribution_bound.model_dump(),
        "periods": plan.first.sensitivity.periods,
        "sensitivity": plan.first.sensitivity.as_dict(),
        "noisy_parts": [p.as_dict() for p in plan.parts],
        "error_bound_95": cell_bound,
        "total_error_bound_95": total_bound,
        "min_cell": terms.min_cell,
        "accuracy_note": accuracy_note(space.aggregate.measure),
    }


def bounded_statistics(
    space: CellSpace,
    rows: pd.DataFrame,
    bound: ContributionBound,
    seed: int,
    linked: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, IntArray], RowCounts]:
    """The exact statistics each noisy part adds noise to, after contribution bounding, and
    where the rows went. Private: for the mechanism (and tests of sensitivity) only.

    Keys: ``count`` (a count vector), ``sum`` (the kept rows' clamped values, centred for a
    mean) and ``split`` (for rates: the numerator's cells, then the rest's).
    """
    aggregate = space.aggregate
    placement = place_rows(space, rows, bound.period)
    n_cells, values, missing = space.size, None, 0
    if aggregate.value is not None:
        values, has_value = row_values(aggregate.value, rows)
        if aggregate.measure == "mean":
            values = values - centre(aggregate.value)
        placement, missing = drop_rows(placement, ~has_value)
    split = aggregate.numerator is not None
    if split:
        flags = numerator_flags(aggregate, rows, dict(linked), placement.cell >= 0)
        placement = split_by_flag(placement, flags, n_cells, aggregate.measure)
    bounded = bound_contributions(
        placement,
        aggregate.measure,
        bound.max_rows_per_person_per_period,
        2 * n_cells if split else n_cells,
        seed,
        values,
    )
    exact = {"split" if split else "count": bounded.counts}
    if bounded.sums is not None:
        exact["sum"] = bounded.sums
    row_counts = RowCounts(
        received=placement.received,
        used=bounded.used,
        out_of_window=placement.out_of_window,
        filtered_out=placement.filtered_out,
        out_of_key_set=placement.out_of_key_set,
        dropped_by_bounding=bounded.dropped_by_bounding,
        merged_into_person_cells=bounded.merged_into_person_cells,
        missing_value=missing,
    )
    return exact, row_counts


def compute_release(
    agreement: Agreement,
    aggregate_id: str,
    rows: pd.DataFrame,
    *,
    window_start: dt.date,
    window_end: dt.date,
    seed: int | None = None,
    linked: Mapping[str, pd.DataFrame] | None = None,
    terms: Terms | None = None,
) -> ComputedRelease:
    """Bound, count, add calibrated OpenDP noise and post-process one aggregate.

    ``linked`` holds, for an aggregate whose numerator looks into a linked dataset, that
    dataset's rows (``person_id`` and the fields the condition reads), and ``terms`` (from
    :func:`release_terms` with the linked datasets' agreements) the privacy model and loss that
    covers them all. ``seed`` fixes which
    rows contribution bounding keeps (it never affects the noise, which OpenDP draws from its
    own secure source). Raises :class:`ReleaseRefused` when the aggregate is not approved by
    ``agreement`` or cannot be built from public key sets, and
    :class:`~publishers.errors.RowsMismatch` when ``rows`` lacks a needed column.
    """
    terms = terms or release_terms(agreement, aggregate_id)
    plan = _plan(agreement, aggregate_id, window_start, window_end, terms)
    space, aggregate = plan.space, plan.space.aggregate
    privacy = agreement.outputs.privacy
    exact, row_counts = bounded_statistics(
        space,
        rows,
        privacy.contribution_bound,
        new_seed() if seed is None else seed,
        linked or {},
    )
    noisy = {p.name: add_noise(p.calibration, exact[p.name]) for p in plan.parts}
    del exact  # the exact statistics go no further than the mechanism
    n_cells = space.size
    split = aggregate.numerator is not None
    min_cell = terms.min_cell
    cell_bound, total_bound = plan.stated_bounds()
    if aggregate.measure in ("count_rows", "count_persons"):
        assert total_bound is not None
        cells = publish_cells(space, noisy["count"], min_cell)
        totals = marginal_totals(space, noisy["count"], min_cell, total_bound)
    else:
        if split:
            noisy = {"numerator": noisy["split"][:n_cells], "rest": noisy["split"][n_cells:]}
        cells, totals = publish_measure(
            space,
            aggregate.measure,
            noisy,
            plan.bounds(1),
            plan.bounds(plan.per_total),
            min_cell,
            aggregate.value,
        )
    first = plan.first
    return ComputedRelease(
        agreement=agreement.ref,
        aggregate_id=aggregate.id,
        title=aggregate.title,
        dataset=aggregate.dataset,
        measure=aggregate.measure,
        dimensions=space.names,
        filters=dict(aggregate.filters),
        time_field=aggregate.time_field,
        window_start=window_start,
        window_end=window_end,
        cells=cells,
        totals=totals,
        mechanism=first.calibration.mechanism,
        privacy_model=first.calibration.privacy_model,
        privacy_loss=plan.loss,
        privacy_loss_requested=terms.loss,
        noise_scale=first.calibration.scale,
        error_bound_95=cell_bound,
        total_error_bound_95=total_bound,
        contribution_bound=privacy.contribution_bound,
        sensitivity=first.sensitivity,
        min_cell=min_cell,
        row_counts=row_counts,
        parts=plan.parts,
        definition=definition_of(aggregate),
        charges=terms.charges,
    )
