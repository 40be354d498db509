"""The contracts the synthetic extracts are written against, and how values become CSV text.

The agreement YAML under ``contracts/agreements/`` is the source of truth for the columns: the
generator writes exactly the declared fields, in declared order. Value formats follow
``contracts.plan``: dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDTHH:MM:SS``, booleans
``true``/``false``, an empty cell for an absent optional value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from contracts.loader import example_agreement_paths, load_agreement
from contracts.model import Dataset

POLICE_VICTIMIZATIONS = "police_victimizations"
ED_INJURY_VISITS = "ed_injury_visits"
CVI_PARTICIPANTS = "cvi_participants"
REFERRALS = "referrals"
DATASET_IDS: tuple[str, ...] = (
    POLICE_VICTIMIZATIONS,
    ED_INJURY_VISITS,
    CVI_PARTICIPANTS,
    REFERRALS,
)


class SynthContractError(Exception):
    """The agreements and the generator disagree (a dataset or a required column is missing)."""


def dataset_contracts(paths: list[Path] | None = None) -> dict[str, Dataset]:
    """The four partner datasets, by id, from the example agreements (or ``paths``)."""
    found: dict[str, Dataset] = {}
    for path in paths if paths is not None else example_agreement_paths():
        for dataset in load_agreement(path).datasets:
            if dataset.id in DATASET_IDS:
                found[dataset.id] = dataset
    missing = [d for d in DATASET_IDS if d not in found]
    if missing:
        raise SynthContractError(
            f"no agreement declares dataset(s) {', '.join(missing)}; the synthetic generator "
            "needs all of " + ", ".join(DATASET_IDS)
        )
    return found


def columns(dataset: Dataset) -> list[str]:
    return [f.name for f in dataset.fields]


def check_generated_columns(dataset: Dataset, generated: set[str]) -> None:
    """Refuse to write a file the contract would reject for want of a column.

    A declared *required* column the generator does not produce is an error. A declared
    optional column it does not produce is written empty; a generated column the contract no
    longer declares is left out. So a contract change never yields a file with the wrong columns.
    """
    missing = [f.name for f in dataset.fields if f.required and f.name not in generated]
    if missing:
        raise SynthContractError(
            f"{dataset.id}: the agreement requires column(s) {', '.join(missing)} that "
            "hub.synth does not generate; extend the generator for this dataset"
        )


def fmt_date(day: dt.date | None) -> str:
    return "" if day is None else day.isoformat()


def fmt_datetime(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S")


def fmt_bool(flag: bool | None) -> str:
    return "" if flag is None else ("true" if flag else "false")


def fmt_int(number: int | None) -> str:
    return "" if number is None else str(number)


def fmt_coord(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"
