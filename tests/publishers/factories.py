"""Plain factories for the publishers tests: example agreements and small row frames."""

from __future__ import annotations

import copy
import datetime as dt
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from contracts.loader import example_agreement_paths, load_agreement
from contracts.model import Aggregate, Agreement, FieldType

POLICE = "dsa-police-victimizations"
HOSPITAL = "dsa-hospital-ed-injury"
CVI = "dsa-cvi-participants"
REFERRALS = "dsa-referrals"

VICTIMIZATION_TYPES = (
    "FATAL_SHOOTING",
    "NON_SHOOTING_HOMICIDE",
    "NON_FATAL_SHOOTING",
    "AGG_BATTERY_NONGUN",
    "ROBBERY_INJURY",
)


@cache
def make_agreement(agreement_id: str = POLICE) -> Agreement:
    """One of the example agreements shipped in contracts/agreements/, by id."""
    for path in example_agreement_paths():
        agreement = load_agreement(path)
        if agreement.id == agreement_id:
            return agreement
    raise KeyError(agreement_id)


def agreement_declaring(dataset_id: str) -> Agreement:
    """The example agreement that declares ``dataset_id``."""
    for path in example_agreement_paths():
        agreement = make_agreement(load_agreement(path).id)
        if agreement.dataset(dataset_id) is not None:
            return agreement
    raise KeyError(dataset_id)


def make_agreement_with(
    base: Agreement | None = None,
    *,
    min_cell: int | None = None,
    model: str | None = None,
    bound: tuple[int, str] | None = None,
    per_period: float | None = None,
    **aggregate: Any,
) -> Agreement:
    """An example agreement with one extra aggregate ``test_agg`` (fields from ``aggregate``)
    and, optionally, a different min_cell, privacy model, contribution bound or budget."""
    base = base or make_agreement(POLICE)
    spec: dict[str, Any] = {
        "id": "test_agg",
        "title": "Test aggregate",
        "dataset": base.datasets[0].id,
        "measure": "count_rows",
        "dimensions": ("month",),
        "time_field": "incident_datetime",
        "budget_share": 0.2,
    }
    spec.update(aggregate)
    outputs = base.outputs
    privacy = outputs.privacy
    if model is not None:
        privacy = privacy.model_copy(update={"model": model})
    if bound is not None:
        cb = privacy.contribution_bound.model_copy(
            update={"max_rows_per_person_per_period": bound[0], "period": bound[1]}
        )
        privacy = privacy.model_copy(update={"contribution_bound": cb})
    if per_period is not None:
        privacy = privacy.model_copy(
            update={"budget": privacy.budget.model_copy(update={"per_period": per_period})}
        )
    outputs = outputs.model_copy(
        update={
            "aggregates": (*outputs.aggregates, Aggregate.model_validate(spec)),
            "privacy": privacy,
            "min_cell": outputs.min_cell if min_cell is None else min_cell,
        }
    )
    return base.model_copy(update={"outputs": outputs})


def make_area_agreement(**kwargs: Any) -> Agreement:
    """The police agreement plus ``test_agg``: victimizations by month and community area."""
    return make_agreement_with(dimensions=("month", "community_area"), **kwargs)


def make_rows(records: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    """A small frame from explicit records (missing keys become None)."""
    columns = columns or sorted({k for r in records for k in r})
    return pd.DataFrame(
        [{c: r.get(c) for c in columns} for r in records], columns=columns, dtype=object
    )


def make_police_rows(
    n: int,
    *,
    persons: int,
    start: dt.date = dt.date(2024, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
    seed: int = 0,
) -> pd.DataFrame:
    """``n`` synthetic stored police rows over ``persons`` people, dates in [start, end]."""
    rng = np.random.default_rng(seed)
    days = np.array(
        [(start + dt.timedelta(d)).isoformat() for d in range((end - start).days + 1)],
        dtype=object,
    )
    areas = np.array([str(i) for i in range(1, 78)], dtype=object)
    types = np.array(VICTIMIZATION_TYPES, dtype=object)
    ages = np.array(["0-11", "12-17", "18-24", "25-34", "35-44", "45-64", "65-120"], dtype=object)
    sexes = np.array(["M", "F", "X", "U"], dtype=object)
    ids = np.array([f"person-{i:07d}" for i in range(persons)], dtype=object)
    return pd.DataFrame(
        {
            "person_id": ids[rng.integers(0, persons, n)],
            "incident_datetime": days[rng.integers(0, len(days), n)],
            "community_area": areas[rng.integers(0, len(areas), n)],
            "victimization_type": types[rng.integers(0, len(types), n)],
            "victim_age": ages[rng.integers(0, len(ages), n)],
            "victim_sex": sexes[rng.integers(0, len(sexes), n)],
        }
    )


def make_rows_for(
    agreement: Agreement,
    aggregate_id: str,
    n: int,
    *,
    persons: int,
    start: dt.date = dt.date(2025, 7, 1),
    end: dt.date = dt.date(2026, 6, 30),
    seed: int = 0,
) -> pd.DataFrame:
    """Synthetic stored rows for any aggregate: each field drawn from its public key set (or
    its filter list), the time field uniform over [start, end]."""
    from contracts.plan import aggregate_fields, field_keys

    aggregate = agreement.aggregate(aggregate_id)
    assert aggregate is not None
    dataset = agreement.dataset(aggregate.dataset)
    assert dataset is not None
    rng = np.random.default_rng(seed)
    ids = np.array([f"person-{i:07d}" for i in range(persons)], dtype=object)
    data: dict[str, Any] = {"person_id": ids[rng.integers(0, persons, n)]}
    first = rng.integers(0, (end - start).days + 1, n)
    for name in aggregate_fields(aggregate):
        field = dataset.field(name)
        assert field is not None
        if name == aggregate.time_field:
            data[name] = np.array([(start + dt.timedelta(int(d))).isoformat() for d in first])
        elif field.type in (FieldType.date, FieldType.datetime):
            # A later date of the same row (0-60 days on), missing for one row in five.
            later = first + rng.integers(0, 61, n)
            data[name] = np.array(
                [
                    None if gone else (start + dt.timedelta(int(d))).isoformat()
                    for d, gone in zip(later, rng.random(n) < 0.2, strict=True)
                ],
                dtype=object,
            )
        else:
            keys = field_keys(field) or list(aggregate.filters.get(name, ()))
            choices = np.array(keys, dtype=object)
            data[name] = choices[rng.integers(0, len(choices), n)]
    return pd.DataFrame(data)


def make_linked_rows(
    agreement: Agreement, aggregate_id: str, rows: pd.DataFrame, *, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """For an aggregate whose numerator looks into a linked dataset: that dataset's rows for
    half of ``rows``' people, dated within a year of one of their rows, with the condition's
    filter values (or others) drawn at random."""
    aggregate = agreement.aggregate(aggregate_id)
    assert aggregate is not None and aggregate.time_field is not None
    rng = np.random.default_rng(seed)
    out = {}
    for event in aggregate.linked_events:
        chosen = rows.sample(frac=0.5, random_state=seed)
        base = pd.to_datetime(chosen[aggregate.time_field]).to_numpy()
        shift = rng.integers(-400, 60, len(chosen)).astype("timedelta64[D]")
        frame: dict[str, Any] = {
            "person_id": chosen["person_id"].to_numpy(),
            event.time_field: pd.Series(base + shift).dt.strftime("%Y-%m-%d").to_numpy(),
        }
        for name, allowed in event.filters.items():
            values = np.array([*allowed, "SOMETHING_ELSE"], dtype=object)
            frame[name] = values[rng.integers(0, len(values), len(chosen))]
        out[event.dataset] = pd.DataFrame(frame)
    return out


WINDOW = {"window_start": dt.date(2025, 7, 1), "window_end": dt.date(2026, 6, 30)}
"""The data window of the releases :func:`make_published` computes."""


def make_published(
    agreement_id: str = POLICE,
    aggregate_id: str = "viol_monthly",
    released_at: str = "2026-07-02T10:00:00Z",
    *,
    n: int = 1500,
    persons: int = 600,
    **extra: Any,
) -> dict[str, Any]:
    """A release dict as the hub publishes it: the manifest of ``n`` synthetic rows over
    ``persons`` people, plus id, title, date and agreements (``extra`` overrides any key)."""
    from publishers.release import compute_release  # OpenDP loads lazily

    agreement = make_agreement(agreement_id)
    rows = make_rows_for(agreement, aggregate_id, n, persons=persons)
    manifest = compute_release(agreement, aggregate_id, rows, **WINDOW, seed=3).to_manifest()
    return {
        **manifest,
        "id": f"rel-{aggregate_id}-{released_at[:10]}",
        "title": manifest["aggregate_title"],
        "released_at": released_at,
        "agreements": [agreement.ref],
        **extra,
    }


QUIET = 50.0  # a per-period budget so large that the noise hardly moves a value


def published(manifest: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A computed manifest as the hub publishes it (id, title, date, agreements added)."""
    return {
        **manifest,
        "id": f"rel-{manifest['aggregate_id']}",
        "title": manifest["aggregate_title"],
        "released_at": "2026-07-02T10:00:00Z",
        "agreements": [c["agreement"] for c in manifest["charges"]],
        **extra,
    }


@cache
def _valued(measure: str, bounds: tuple[int, int]) -> dict[str, Any]:
    from publishers.release import compute_release  # OpenDP loads lazily

    days = ("referral_date", "first_service_date")
    agreement = make_agreement_with(
        make_agreement(REFERRALS),
        measure=measure,
        dataset="referrals",
        time_field="referral_date",
        dimensions=("quarter", "urgency"),
        value={"days_between": days if bounds[0] >= 0 else days[::-1], "bounds": bounds},
        per_period=QUIET,
    )
    rows = make_rows_for(agreement, "test_agg", 3000, persons=1000)
    return published(compute_release(agreement, "test_agg", rows, **WINDOW, seed=3).to_manifest())


def make_valued(measure: str, bounds: tuple[int, int] = (0, 90)) -> dict[str, Any]:
    """A sum or mean of the days from referral to first service (from first service back to
    the referral when the bounds are negative), by quarter and urgency, with little noise."""
    return copy.deepcopy(_valued(measure, bounds))
