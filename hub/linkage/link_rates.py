"""Link rates: for whom linkage links, by dataset (agency), age band, sex and race.

The link rate of a group is the share of its *linkable* records (the dataset was linked in the
run; the record is under no no-linkage or aggregate-only rule, and its consent had not ended on
the day of the run) whose person id is shared with at
least one record of *another* dataset. Records linked only within their own dataset (repeat
visits) do not count: the rate is about joining agencies' data.

The fields are found in each dataset's contract (:func:`group_fields`), per agreement version
the records were stored under; a record without one counts as ``unknown``. Ages are put in common
bands (:func:`age_band`) from an agency's own bins, an age or a birth year. Race is coded
differently by each agency, so it is counted per agency only; age band and sex also for all
agencies together. Counts are made in SQL from the stored (generalized) values; no record key,
token or person id leaves the database.

A group of fewer than :data:`MIN_GROUP` records shows ``<10`` and no figures (:func:`rate_row`).
That is not complementary suppression: a suppressed group's count can be worked out from its
agency's total when it is the only one suppressed there. The report is for admins.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, null, select
from sqlalchemy.orm import Session

from contracts.model import Dataset, DatasetField, FieldClass, FieldType, LinkRole
from hub.agreements.service import spec_of
from hub.db.models import AgreementVersion, PersonLink, Record
from hub.linkage.service import consent_ended

#: Groups with fewer records than this show ``<10``, not their counts and rate.
MIN_GROUP = 10
SUPPRESSED = f"<{MIN_GROUP}"
UNKNOWN = "unknown"
ALL_AGENCIES = "all agencies"

#: Lower edges of the report's age bands: 0-17, 18-24, 25-34, 35-44, 45-64, 65+. A dataset's
#: own age bin that lies within one band counts in it; one that straddles two (``35-80``) keeps
#: its own label, as the band of its records cannot be told.
AGE_EDGES: tuple[float, ...] = (0, 18, 25, 35, 45, 65, math.inf)

LINK_RATE_DEFINITION = (
    "The link rate of a group is the share of its linkable records whose person id is shared "
    "with at least one record of another dataset. Records linked only to records of their own "
    "dataset (repeat visits, say) do not count as linked. Linkable: the dataset was linked in "
    "this run, the record is under no no-linkage or aggregate-only rule, and, where its "
    "agreement ties it to consent, its consent had not ended on the day of the run."
)


@dataclass(frozen=True)
class GroupFields:
    """The stored fields of one dataset that link rates are grouped by (``None``: it has none).

    ``age_kind``: ``bins`` (a binned age, ``18-24``), ``years`` (an age in years) or
    ``birth_year`` (a birth date kept to the year or coarser; the age is the one reached in
    the run's year)."""

    age: str | None = None
    age_kind: str = ""
    sex: str | None = None
    race: str | None = None

    def describe(self) -> dict[str, str | None]:
        kinds = {"bins": "age bins", "years": "age in years", "birth_year": "birth year"}
        age = f"{self.age} ({kinds[self.age_kind]})" if self.age else None
        return {"age": age, "sex": self.sex, "race": self.race}


def _stored(f: DatasetField) -> bool:
    """Whether the field's own (generalized) value is stored: not dropped, tokenized or hashed,
    and not an identifier."""
    return (
        f.transform.kind not in ("drop", "linkage_token", "keyed_hash")
        and f.class_ not in (FieldClass.direct_identifier, FieldClass.record_identifier)
        and f.class_ != FieldClass.free_text
    )


def _words(f: DatasetField) -> set[str]:
    return set(f.name.split("_"))


def group_fields(dataset: Dataset) -> GroupFields:
    """Find age, sex and race in a dataset's contract, among the fields whose value is stored:
    sex is the field linkage knows as sex (``link_as: sex``) or one named ``sex``/``gender``
    (``victim_sex``); race one named ``race`` (``race_ethnicity``); age a number named ``age``
    (``age_years``, ``client_age``), else a birth date or year kept to the year."""
    stored = [f for f in dataset.fields if _stored(f)]
    sex = next((f for f in stored if f.link_as == LinkRole.sex), None) or next(
        (f for f in stored if _words(f) & {"sex", "gender"}), None
    )
    race = next((f for f in stored if "race" in _words(f)), None)
    numeric = (FieldType.integer, FieldType.number)
    age = next((f for f in stored if "age" in _words(f) and f.type in numeric), None)
    kind = ("bins" if age.transform.kind == "bin" else "years") if age else ""
    if age is None:
        born = next(
            (
                f
                for f in stored
                if f.link_as == LinkRole.birth_date
                or {"dob", "yob"} & _words(f)
                or {"birth", "year"} <= _words(f)
            ),
            None,
        )
        if born is not None:
            age, kind = born, "birth_year"
    return GroupFields(
        age=age.name if age else None,
        age_kind=kind,
        sex=sex.name if sex else None,
        race=race.name if race else None,
    )


def _band_label(i: int) -> str:
    lo, hi = AGE_EDGES[i], AGE_EDGES[i + 1]
    return f"{lo:g}+" if math.isinf(hi) else f"{lo:g}-{hi - 1:g}"


_BIN = re.compile(r"^(\d+(?:\.\d+)?)-(<)?(\d+(?:\.\d+)?)$")


def age_band(value: str | None, kind: str, year: int) -> tuple[str, float]:
    """The report's age band of a stored value, and a sort key. ``year`` is the run's year
    (ages from a birth year are the ages reached that year)."""
    if value is None or not kind:
        return UNKNOWN, math.inf
    text = str(value).strip()
    try:
        if kind == "bins":
            match = _BIN.match(text)
            if match is None:
                return UNKNOWN, math.inf
            # Integer bins are labelled with their last value (18-24), others as 18-<25.
            lo = float(match[1])
            hi = float(match[3]) if match[2] else float(match[3]) + 1
        elif kind == "birth_year":
            lo = hi = float(year - int(text[:4]))
        else:
            lo = hi = float(text)
    except ValueError:
        return UNKNOWN, math.inf
    if lo < 0:
        return UNKNOWN, math.inf
    for i in range(len(AGE_EDGES) - 1):
        if AGE_EDGES[i] <= lo < AGE_EDGES[i + 1] and hi <= AGE_EDGES[i + 1]:
            return _band_label(i), AGE_EDGES[i]
    return text, lo  # a bin straddling two bands keeps its own label


@dataclass
class _Count:
    records: int = 0
    linked: int = 0

    def add(self, records: int, linked: int) -> None:
        self.records += records
        self.linked += linked


def rate_row(records: int, linked: int) -> dict[str, Any]:
    """A group's figures, or ``<10`` and nothing else for a group of fewer than 10 records."""
    if records < MIN_GROUP:
        return {
            "records": None,
            "linked": None,
            "rate": None,
            "suppressed": True,
            "display": SUPPRESSED,
        }
    rate = linked / records
    return {
        "records": records,
        "linked": linked,
        "rate": round(rate, 4),
        "suppressed": False,
        "display": f"{rate:.1%}",
    }


def _value(field: str | None) -> ColumnElement[Any]:
    if field is None:
        return null()
    return Record.values[field].as_string()


def _consent_in_force(expiry: str | None, day: str | None) -> list[ColumnElement[bool]]:
    """The condition that a record's consent had not ended before ``day``, as the run read it
    (none where its dataset ties no consent end)."""
    if expiry is None or day is None:
        return []
    return [~consent_ended(expiry, day)]


def _dataset_fields(session: Session, datasets: list[str]) -> dict[tuple[str, int], Dataset]:
    """The contract of each (dataset, agreement version) the records were stored under."""
    pairs = session.execute(
        select(Record.dataset_id, Record.agreement_version_id)
        .where(Record.dataset_id.in_(datasets))
        .distinct()
    ).all()
    out: dict[tuple[str, int], Dataset] = {}
    specs: dict[int, Any] = {}
    for ds, version_id in pairs:
        if version_id not in specs:
            row = session.get(AgreementVersion, version_id)
            specs[version_id] = spec_of(row) if row is not None else None
        spec = specs[version_id]
        found = spec.dataset(ds) if spec is not None else None
        if found is not None:
            out[(ds, version_id)] = found
    return out


def link_rates(
    session: Session,
    datasets: Iterable[str],
    year: int,
    consent_ends: Mapping[str, str] | None = None,
    day: str | None = None,
) -> dict[str, Any]:
    """Link rates by dataset, age band, sex and race (see the module docstring).
    ``consent_ends`` names, per dataset, the field holding the day its rows' consent ends;
    rows whose consent ended before ``day`` (ISO) were not linked by the run, so are not
    counted as linkable."""
    consent_ends = consent_ends or {}
    datasets = sorted(set(datasets))
    contracts = _dataset_fields(session, datasets)
    # Person ids whose records span more than one dataset.
    spanning = (
        select(PersonLink.person_id)
        .join(Record, Record.id == PersonLink.record_id)
        .group_by(PersonLink.person_id)
        .having(func.count(distinct(Record.dataset_id)) > 1)
        .subquery()
    )
    totals: dict[str, _Count] = defaultdict(_Count)
    by: dict[str, dict[tuple[str, str], _Count]] = {
        "age_band": defaultdict(_Count),
        "sex": defaultdict(_Count),
        "race": defaultdict(_Count),
    }
    age_order: dict[str, float] = {}
    fields: dict[str, dict[str, str | None]] = {}
    for (ds, version_id), contract in sorted(contracts.items()):
        found = group_fields(contract)
        described = fields.setdefault(ds, {"provider": contract.provider})
        for dim, name in found.describe().items():
            # Versions of one contract may name a field differently: list each name once.
            names = [n for n in (described.get(dim) or "").split(" / ") if n]
            described[dim] = " / ".join(dict.fromkeys([*names, name or "none"]))
        # Grouped in an outer query: PostgreSQL cannot match GROUP BY expressions with bound
        # parameters (the JSON keys) to the same expressions in SELECT.
        each = (
            select(
                _value(found.age).label("age"),
                _value(found.sex).label("sex"),
                _value(found.race).label("race"),
                spanning.c.person_id.label("spanning"),
            )
            .select_from(Record)
            .join(PersonLink, PersonLink.record_id == Record.id)
            .outerjoin(spanning, spanning.c.person_id == PersonLink.person_id)
            .where(
                Record.dataset_id == ds,
                Record.agreement_version_id == version_id,
                ~Record.no_linkage,
                ~Record.aggregate_only,
                *_consent_in_force(consent_ends.get(ds), day),
            )
            .subquery()
        )
        groups = (each.c.age, each.c.sex, each.c.race)
        rows = session.execute(
            select(*groups, func.count(), func.count(each.c.spanning)).group_by(*groups)
        ).all()
        for age_value, sex_value, race_value, records, linked in rows:
            band, band_start = age_band(age_value, found.age_kind, year)
            age_order[band] = band_start
            totals[ds].add(records, linked)
            for dim, group in (
                ("age_band", band),
                ("sex", sex_value or UNKNOWN),
                ("race", race_value or UNKNOWN),
            ):
                by[dim][(ds, group)].add(records, linked)
                if dim != "race":  # race is coded differently by each agency
                    by[dim][(ALL_AGENCIES, group)].add(records, linked)

    def sort_key(dim: str, key: tuple[str, str]) -> tuple[Any, ...]:
        ds, group = key
        first = (ds == ALL_AGENCIES, ds)
        if dim == "age_band":
            return (*first, age_order.get(group, math.inf), group == UNKNOWN, group)
        return (*first, group == UNKNOWN, group)

    def table(dim: str) -> list[dict[str, Any]]:
        counts = by[dim]
        return [
            {"dataset": ds, "group": group, **rate_row(c.records, c.linked)}
            for (ds, group), c in sorted(counts.items(), key=lambda kv: sort_key(dim, kv[0]))
        ]

    return {
        "definition": LINK_RATE_DEFINITION,
        "min_group": MIN_GROUP,
        "fields": fields,
        "by_agency": [
            {
                "dataset": ds,
                "provider": fields.get(ds, {}).get("provider"),
                **rate_row(c.records, c.linked),
            }
            for ds, c in sorted(totals.items())
        ],
        "by_age_band": table("age_band"),
        "by_sex": table("sex"),
        "by_race": table("race"),
    }
