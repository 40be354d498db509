"""Plain factories for the validators tests: datasets, rows and frames.

Frames are built the way the hub's reader builds them: header names as columns, every value a
``str`` or ``None``, dtype object.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from contracts.loader import example_agreement_paths, load_agreement
from contracts.model import Dataset, DatasetField, RowRule


def make_example_dataset(dataset_id: str) -> Dataset:
    """A dataset from one of the shipped example agreements."""
    for path in example_agreement_paths():
        agreement = load_agreement(path)
        found = agreement.dataset(dataset_id)
        if found is not None:
            return found
    raise KeyError(dataset_id)


def make_field(name: str, type_: str = "string", **kwargs: Any) -> DatasetField:
    spec: dict[str, Any] = {
        "name": name,
        "type": type_,
        "class": "operational",
        "use": "analysis",
        "transform": "keep",
    }
    spec.update(kwargs)
    return DatasetField.model_validate(spec)


def make_dataset(
    *fields: DatasetField,
    record_key: str = "row_id",
    unlisted_fields: str = "reject",
    row_rules: tuple[RowRule, ...] = (),
) -> Dataset:
    """A small dataset; a required string ``row_id`` record key is added unless given."""
    all_fields = list(fields)
    if not any(f.name == record_key for f in all_fields):
        all_fields.insert(0, make_field(record_key, required=True))
    return Dataset.model_validate(
        {
            "id": "test_dataset",
            "title": "Test dataset",
            "provider": "org:test",
            "record_key": record_key,
            "unlisted_fields": unlisted_fields,
            "fields": [f.model_dump(by_alias=True) for f in all_fields],
            "row_rules": [r.model_dump() for r in row_rules],
        }
    )


def make_rule(when: str, handling: str, **kwargs: Any) -> RowRule:
    return RowRule.model_validate({"when": when, "handling": handling, **kwargs})


def make_frame(columns: dict[str, list[str | None]], with_ids: bool = True) -> pd.DataFrame:
    """A reader-shaped frame; ``row_id`` gets distinct ids unless given or ``with_ids`` is off."""
    n = len(next(iter(columns.values()))) if columns else 0
    data: dict[str, list[str | None]] = {}
    if with_ids and "row_id" not in columns:
        data["row_id"] = [f"R{i:06d}" for i in range(n)]
    data.update(columns)
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})


POLICE_CHOICES: dict[str, list[str]] = {
    "victimization_type": [
        "FATAL_SHOOTING",
        "NON_SHOOTING_HOMICIDE",
        "NON_FATAL_SHOOTING",
        "AGG_BATTERY_NONGUN",
        "ROBBERY_INJURY",
    ],
    "gunshot_injury": ["YES", "NO", "UNKNOWN"],
    "fatal": ["true", "false", "Y", "N"],
    "weapon_code": ["11", "12", "13", "14", "15", "20", "30", "40", "95", "99"],
    "location_description": ["STREET", "SIDEWALK", "RESIDENCE", "ALLEY", "VEHICLE"],
    "victim_sex": ["M", "F", "X", "U"],
    "victim_race": ["BLK", "WHI", "WWH", "WBH", "API", "I", "UNKNOWN"],
    "juvenile_flag": ["true", "false"],
    "domestic_related": ["false", "false", "true"],
    "officer_involved": ["false", "true"],
    "victim_first_name": ["ALEX", "JORDAN", "SAM", "TAYLOR", "CASEY"],
    "victim_last_name": ["SMITH", "JONES", "GARCIA", "LEE", "BROWN"],
    "victim_middle_initial": ["A", "B", "C"],
}


def make_police_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` valid rows of the police_victimizations extract (25 columns), vectorised."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n)
    days = rng.integers(0, 700, n).astype("timedelta64[D]") + np.datetime64("2024-01-01")
    dobs = rng.integers(0, 20000, n).astype("timedelta64[D]") + np.datetime64("1950-01-01")
    hours = rng.integers(0, 24, n)
    minutes = rng.integers(0, 60, n)
    cols: dict[str, Any] = {
        "victimization_id": [f"V2024-{i:06d}" for i in ids],
        "case_number": [f"JA{i:06d}" for i in ids],
        "incident_datetime": [
            f"{d}T{h:02d}:{m:02d}" for d, h, m in zip(days.astype(str), hours, minutes, strict=True)
        ],
        "block_address": ["001XX N STATE ST"] * n,
        "latitude": np.round(rng.uniform(41.6, 42.0, n), 5).astype(str),
        "longitude": np.round(rng.uniform(-87.9, -87.5, n), 5).astype(str),
        "community_area": rng.integers(1, 78, n).astype(str),
        "victim_dob": dobs.astype(str),
        "victim_age": rng.integers(0, 100, n).astype(str),
        "victim_home_address": ["1 MAIN ST"] * n,
        "victim_home_zip": rng.integers(60601, 60661, n).astype(str),
        "narrative": ["SEE REPORT"] * n,
    }
    for name, choices in POLICE_CHOICES.items():
        cols[name] = np.asarray(choices, dtype=object)[rng.integers(0, len(choices), n)]
    order = [f.name for f in make_example_dataset("police_victimizations").fields]
    return pd.DataFrame({k: pd.Series(list(cols[k]), dtype=object) for k in order})
