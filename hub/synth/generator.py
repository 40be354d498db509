"""The generator's entry point: one population, four partner extracts, one truth file.

Order of work: population → police incidents (which decide who is killed, and when) → ED
visits (many follow incidents) → CVI enrollments (many follow ED referrals or incidents) →
referrals (which follow all three) → rows, written against the agreements' columns.

Determinism: everything random comes from ``random.Random`` streams seeded from ``seed``; no
clock, no hash seed, no set iteration. The same arguments give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import MappingProxyType

from hub.synth.city import City
from hub.synth.cvi import cvi_rows, plan_cvi
from hub.synth.hospital import ed_rows, plan_ed
from hub.synth.names import name_bank
from hub.synth.police import plan_police, police_rows
from hub.synth.population import Calendar, Window, make_population
from hub.synth.referrals import plan_referrals, referral_rows
from hub.synth.schema import (
    CVI_PARTICIPANTS,
    DATASET_IDS,
    ED_INJURY_VISITS,
    POLICE_VICTIMIZATIONS,
    REFERRALS,
    dataset_contracts,
)
from hub.synth.writer import TRUTH_FILE, Row, SynthSummary, write_extract, write_truth

DEFAULT_END = dt.date(2026, 10, 31)
DEFAULT_FACILITIES = ("FAC01", "FAC02", "FAC03", "FAC04")


def generate(
    out_dir: Path,
    people: int,
    seed: int,
    end: dt.date = DEFAULT_END,
    months: int = 24,
) -> SynthSummary:
    """Write ``police_victimizations.csv``, ``ed_injury_visits.csv``, ``cvi_participants.csv``,
    ``referrals.csv`` and ``truth.csv`` into ``out_dir`` (created if missing; files replaced).

    ``people`` is the size of the synthetic population; every event falls in the ``months``
    calendar months ending on ``end`` (``followup_due_date`` in referrals is a plan and may
    run up to 14 days past ``end``). Columns, types and allowed values come from the example
    agreements in ``contracts/agreements``. Runs in linear time (about 0.5 s for 2,000
    people and 3.5 s for 20,000 on a laptop-class machine).

    Caveat for linkage tests: ``truth.csv`` says which person each record belongs to, including
    records the agreements' row rules would drop or keep out of linkage (consent NONE,
    domestic-related, juvenile, SUD rows); filter by those columns before scoring a linker.
    """
    if people < 0:
        raise ValueError(f"people must be zero or more, got {people}")
    window = Window.ending(end, months)
    contracts = dataset_contracts()
    bank = name_bank()
    all_zips = tuple(sorted({z for area in bank.community_areas for z in area.zips}))
    city = City(
        seed=seed,
        window=window,
        calendar=Calendar(window),
        bank=bank,
        people=[],
        all_zips=all_zips,
    )
    city.people = make_population(people, city.rng("population"), window, bank)

    facility_field = contracts[ED_INJURY_VISITS].field("facility_id")
    facilities = (facility_field.values if facility_field else None) or DEFAULT_FACILITIES
    victimizations = plan_police(city)
    visits = plan_ed(city, victimizations, tuple(facilities))
    enrollments = plan_cvi(city, victimizations, visits)
    referrals = plan_referrals(city, victimizations, visits, enrollments)
    rows: dict[str, list[Row]] = {
        POLICE_VICTIMIZATIONS: police_rows(city, victimizations),
        ED_INJURY_VISITS: ed_rows(city, visits),
        CVI_PARTICIPANTS: cvi_rows(city, enrollments),
        REFERRALS: referral_rows(city, referrals),
    }

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    truth: list[tuple[str, str, str]] = []
    datasets_of: dict[str, set[str]] = {}
    for dataset_id in DATASET_IDS:
        contract = contracts[dataset_id]
        path = out_dir / f"{dataset_id}.csv"
        write_extract(path, contract, rows[dataset_id])
        paths[dataset_id] = path
        for person_id, values in rows[dataset_id]:
            truth.append((dataset_id, values[contract.record_key], person_id))
            datasets_of.setdefault(person_id, set()).add(dataset_id)
    truth_path = out_dir / TRUTH_FILE
    write_truth(truth_path, truth)

    people_per_dataset = {d: len({person_id for person_id, _ in rows[d]}) for d in DATASET_IDS}
    return SynthSummary(
        out_dir=out_dir,
        seed=seed,
        window_start=window.start,
        window_end=window.end,
        people=people,
        people_with_records=len(datasets_of),
        people_in_two_or_more=sum(1 for s in datasets_of.values() if len(s) >= 2),
        paths=MappingProxyType(paths),
        row_counts=MappingProxyType({d: len(rows[d]) for d in DATASET_IDS}),
        people_per_dataset=MappingProxyType(people_per_dataset),
        truth_path=truth_path,
    )
