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
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from contracts.model import Agreement, ContributionBound
from publishers.bounding import Sensitivity, bound_contributions, new_seed, sensitivity_for
from publishers.cells import CellSpace, build_cell_space, place_rows, resolve_aggregate
from publishers.errors import ReleaseRefused
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
)

__all__ = ["ComputedRelease", "ReleaseRefused", "compute_release", "preview", "privacy_cost"]

MANIFEST_SCHEMA = "ovp-release/1"

ACCURACY_NOTE = (
    "With probability at least 95%, a cell's published value differs from its count after "
    "contribution bounding by less than error_bound_95 (OpenDP's accuracy for this noise "
    "scale). Rows dropped by contribution bounding bias counts downward; that bias is not "
    "included."
)
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

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "used": self.used,
            "dropped_out_of_window": self.out_of_window,
            "filtered_out": self.filtered_out,
            "dropped_out_of_key_set": self.out_of_key_set,
            "dropped_by_bounding": self.dropped_by_bounding,
            "merged_into_person_cells": self.merged_into_person_cells,
        }


@dataclass(frozen=True)
class ComputedRelease:
    """One computed release: noisy cells and everything needed to describe them honestly.

    Everything but :attr:`row_counts` is either public metadata or a function of the noisy
    values; :meth:`to_manifest` returns exactly that part.
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
    error_bound_95: float
    total_error_bound_95: float
    contribution_bound: ContributionBound
    sensitivity: Sensitivity
    min_cell: int
    row_counts: RowCounts = field(repr=False)

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
            "noise_scale": self.noise_scale,
            "contribution_bound": self.contribution_bound.model_dump(mode="json"),
            "periods": self.sensitivity.periods,
            "sensitivity": self.sensitivity.as_dict(),
            "error_bound_95": self.error_bound_95,
            "total_error_bound_95": self.total_error_bound_95,
            "accuracy_note": ACCURACY_NOTE,
            "totals_note": TOTALS_NOTE,
            "min_cell": self.min_cell,
            "cells": [_cell_json(c) for c in self.cells],
            "totals": [_total_json(t) for t in self.totals],
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


def _cell_json(cell: PublishedCell) -> dict[str, Any]:
    return {
        "key": dict(cell["key"]),
        "value": cell["value"],
        "display": cell["display"],
        "suppressed": cell["suppressed"],
    }


def _total_json(total: PublishedTotal) -> dict[str, Any]:
    return {
        "key": dict(total["key"]),
        "value": total["value"],
        "display": total["display"],
        "suppressed": total["suppressed"],
        "cells": total["cells"],
        "error_bound_95": total["error_bound_95"],
    }


def privacy_cost(agreement: Agreement, aggregate_id: str) -> float:
    """The loss one release of the aggregate spends: ``budget_share × budget.per_period``
    (rho for zCDP, epsilon for pure DP)."""
    aggregate, _ = resolve_aggregate(agreement, aggregate_id)
    return aggregate.budget_share * agreement.outputs.privacy.budget.per_period


def _plan(
    agreement: Agreement, aggregate_id: str, window_start: dt.date, window_end: dt.date
) -> tuple[CellSpace, Sensitivity, Calibration]:
    space = build_cell_space(agreement, aggregate_id, window_start, window_end)
    privacy = agreement.outputs.privacy
    sensitivity = sensitivity_for(
        space.aggregate, privacy.contribution_bound, window_start, window_end, space.size
    )
    calibration = calibrate(privacy.model, sensitivity, privacy_cost(agreement, aggregate_id))
    return space, sensitivity, calibration


def _cells_per_total(space: CellSpace) -> int:
    return space.size // len(space.dimensions[0].keys) if space.dimensions else 0


def preview(
    agreement: Agreement, aggregate_id: str, window_start: dt.date, window_end: dt.date
) -> dict[str, Any]:
    """What a release would look like, from the agreement alone (no data is read): its cells,
    cost and accuracy. Safe to show an analyst before anything is spent."""
    space, sensitivity, calibration = _plan(agreement, aggregate_id, window_start, window_end)
    per_total = _cells_per_total(space)
    return {
        "agreement": agreement.ref,
        "aggregate_id": aggregate_id,
        "dimensions": [{"name": d.name, "keys": len(d.keys)} for d in space.dimensions],
        "cells": space.size,
        "window": {"start": window_start.isoformat(), "end": window_end.isoformat()},
        "privacy_model": calibration.privacy_model,
        "mechanism": calibration.mechanism,
        "cost": calibration.loss_requested,
        "privacy_loss": calibration.loss,
        "privacy_loss_unit": calibration.loss_unit,
        "noise_scale": calibration.scale,
        "contribution_bound": agreement.outputs.privacy.contribution_bound.model_dump(),
        "periods": sensitivity.periods,
        "sensitivity": sensitivity.as_dict(),
        "error_bound_95": calibration.error_bound_95,
        "total_error_bound_95": sum_error_bound(
            calibration.privacy_model, calibration.scale, per_total, ALPHA
        ),
        "min_cell": agreement.outputs.min_cell,
        "accuracy_note": ACCURACY_NOTE,
    }


def compute_release(
    agreement: Agreement,
    aggregate_id: str,
    rows: pd.DataFrame,
    *,
    window_start: dt.date,
    window_end: dt.date,
    seed: int | None = None,
) -> ComputedRelease:
    """Bound, count, add calibrated OpenDP noise and post-process one aggregate.

    ``seed`` fixes which rows contribution bounding keeps (it never affects the noise, which
    OpenDP draws from its own secure source). Raises :class:`ReleaseRefused` when the
    aggregate is not approved by ``agreement`` or cannot be built from public key sets, and
    :class:`~publishers.errors.RowsMismatch` when ``rows`` lacks a needed column.
    """
    space, sensitivity, calibration = _plan(agreement, aggregate_id, window_start, window_end)
    privacy = agreement.outputs.privacy
    placement = place_rows(space, rows, privacy.contribution_bound.period)
    bounded = bound_contributions(
        placement,
        space.aggregate.measure,
        privacy.contribution_bound.max_rows_per_person_per_period,
        space.size,
        new_seed() if seed is None else seed,
    )
    noisy = add_noise(calibration, bounded.counts)
    row_counts = RowCounts(
        received=placement.received,
        used=bounded.used,
        out_of_window=placement.out_of_window,
        filtered_out=placement.filtered_out,
        out_of_key_set=placement.out_of_key_set,
        dropped_by_bounding=bounded.dropped_by_bounding,
        merged_into_person_cells=bounded.merged_into_person_cells,
    )
    del bounded  # the exact counts go no further than the mechanism
    min_cell = agreement.outputs.min_cell
    total_bound = sum_error_bound(
        calibration.privacy_model, calibration.scale, _cells_per_total(space), ALPHA
    )
    aggregate = space.aggregate
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
        cells=publish_cells(space, noisy, min_cell),
        totals=marginal_totals(space, noisy, min_cell, total_bound),
        mechanism=calibration.mechanism,
        privacy_model=calibration.privacy_model,
        privacy_loss=calibration.loss,
        privacy_loss_requested=calibration.loss_requested,
        noise_scale=calibration.scale,
        error_bound_95=calibration.error_bound_95,
        total_error_bound_95=total_bound,
        contribution_bound=privacy.contribution_bound,
        sensitivity=sensitivity,
        min_cell=min_cell,
        row_counts=row_counts,
    )
