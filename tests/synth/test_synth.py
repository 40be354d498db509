"""Tests for the synthetic partner extracts (hub.synth).

Constraint checks here are written in plain Python against the agreement models on purpose:
they must not share code with the validators package they will later be used to test.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.keysets import keyset
from contracts.loader import example_agreement_paths, load_agreement
from contracts.model import Dataset, DatasetField, FieldType
from hub.synth import DATASET_IDS, TRUTH_FILE, SynthContractError, SynthSummary, generate
from hub.synth.discrepancies import dob_typo, swap_day_month, typo
from hub.synth.names import fold_accents, name_bank
from hub.synth.writer import write_extract

SEED = 20261031
PEOPLE = 2000
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
INTEGER = re.compile(r"^-?\d+$")

# Per dataset: record key, first name, last name, birth date, event date columns.
IDENTITY = {
    "police_victimizations": (
        "victimization_id",
        "victim_first_name",
        "victim_last_name",
        "victim_dob",
        "incident_datetime",
    ),
    "ed_injury_visits": (
        "visit_id",
        "patient_first_name",
        "patient_last_name",
        "patient_dob",
        "arrival_datetime",
    ),
    "cvi_participants": ("participant_id", "first_name", "last_name", "dob", "enrollment_date"),
    "referrals": (
        "referral_id",
        "client_first_name",
        "client_last_name",
        "client_dob",
        "referral_date",
    ),
}
AGE_COLUMN = {
    "police_victimizations": "victim_age",
    "ed_injury_visits": "age_years",
    "cvi_participants": "age",
}


def make_contracts() -> dict[str, Dataset]:
    found = {}
    for path in example_agreement_paths():
        for dataset in load_agreement(path).datasets:
            found[dataset.id] = dataset
    return {d: found[d] for d in DATASET_IDS}


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def file_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def field_problems(field: DatasetField, value: str) -> Iterator[str]:
    """Every way ``value`` breaks ``field``'s declared constraints, checked by hand."""
    if value == "":
        if field.required:
            yield "required but empty"
        return
    if field.type == FieldType.integer and not INTEGER.match(value):
        yield f"not an integer: {value!r}"
    if field.type == FieldType.number:
        try:
            float(value)
        except ValueError:
            yield f"not a number: {value!r}"
    if field.type == FieldType.boolean and value not in ("true", "false"):
        yield f"not true/false: {value!r}"
    if field.type == FieldType.date:
        if not DATE.match(value):
            yield f"not YYYY-MM-DD: {value!r}"
        else:
            dt.date.fromisoformat(value)
    if field.type == FieldType.datetime:
        if not DATETIME.match(value):
            yield f"not YYYY-MM-DDTHH:MM:SS: {value!r}"
        else:
            dt.datetime.fromisoformat(value)
    if field.values is not None and value not in field.values:
        yield f"not an allowed value: {value!r}"
    if field.pattern is not None and not re.search(field.pattern, value):
        yield f"does not match {field.pattern}: {value!r}"
    if field.keyset is not None and value not in keyset(field.keyset):
        yield f"not in key set {field.keyset}: {value!r}"
    if field.min is not None or field.max is not None:
        number = float(value)
        if field.min is not None and number < field.min:
            yield f"below min {field.min}: {value}"
        if field.max is not None and number > field.max:
            yield f"above max {field.max}: {value}"


def event_day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def years_between(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def norm(name: str) -> str:
    return " ".join(fold_accents(name).upper().split())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthSummary, Path]:
    out = tmp_path_factory.mktemp("synth")
    return generate(out, people=PEOPLE, seed=SEED), out


@pytest.fixture(scope="module")
def extracts(generated: tuple[SynthSummary, Path]) -> dict[str, list[dict[str, str]]]:
    _, out = generated
    return {d: read_rows(out / f"{d}.csv")[1] for d in DATASET_IDS}


@pytest.fixture(scope="module")
def records_by_person(
    generated: tuple[SynthSummary, Path], extracts: dict[str, list[dict[str, str]]]
) -> dict[str, list[tuple[str, dict[str, str]]]]:
    _, out = generated
    owner = {(r["dataset"], r["record_id"]): r["person_id"] for r in read_rows(out / TRUTH_FILE)[1]}
    by_person: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
    for dataset, rows in extracts.items():
        key = IDENTITY[dataset][0]
        for row in rows:
            by_person[owner[(dataset, row[key])]].append((dataset, row))
    return by_person


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=300, seed=5)
    generate(tmp_path / "b", people=300, seed=5)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert sorted(first) == sorted([f"{d}.csv" for d in DATASET_IDS] + [TRUTH_FILE])
    assert first == second


def test_different_seeds_write_different_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=300, seed=5)
    generate(tmp_path / "b", people=300, seed=6)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert all(first[name] != second[name] for name in first)


# --- the contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_extract_has_exactly_the_declared_columns_in_declared_order(
    generated: tuple[SynthSummary, Path], dataset_id: str
) -> None:
    _, out = generated
    header, _ = read_rows(out / f"{dataset_id}.csv")
    assert header == [f.name for f in make_contracts()[dataset_id].fields]


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_every_value_satisfies_its_declared_constraints(
    extracts: dict[str, list[dict[str, str]]], dataset_id: str
) -> None:
    contract = make_contracts()[dataset_id]
    problems = [
        f"row {i + 2} {field.name}: {problem}"
        for i, row in enumerate(extracts[dataset_id])
        for field in contract.fields
        for problem in field_problems(field, row[field.name])
    ]
    assert problems == []


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_record_keys_are_unique_within_each_extract(
    extracts: dict[str, list[dict[str, str]]], dataset_id: str
) -> None:
    key = make_contracts()[dataset_id].record_key
    values = [row[key] for row in extracts[dataset_id]]
    assert len(values) == len(set(values))


def test_files_are_utf8_with_a_header_and_unix_line_endings(
    generated: tuple[SynthSummary, Path],
) -> None:
    _, out = generated
    for path in out.glob("*.csv"):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        data.decode("utf-8")
        assert b"\r\n" not in data


# --- truth and summary -------------------------------------------------------------------------


def test_truth_names_every_record_exactly_once(
    generated: tuple[SynthSummary, Path], extracts: dict[str, list[dict[str, str]]]
) -> None:
    _, out = generated
    header, truth = read_rows(out / TRUTH_FILE)
    assert header == ["dataset", "record_id", "person_id"]
    listed = Counter((r["dataset"], r["record_id"]) for r in truth)
    assert max(listed.values()) == 1
    expected = {(d, row[IDENTITY[d][0]]) for d, rows in extracts.items() for row in rows}
    assert set(listed) == expected
    assert all(r["person_id"] for r in truth)


def test_summary_matches_the_files(
    generated: tuple[SynthSummary, Path],
    extracts: dict[str, list[dict[str, str]]],
    records_by_person: dict[str, list[tuple[str, dict[str, str]]]],
) -> None:
    summary, out = generated
    assert summary.people == PEOPLE
    assert dict(summary.paths) == {d: out / f"{d}.csv" for d in DATASET_IDS}
    assert dict(summary.row_counts) == {d: len(rows) for d, rows in extracts.items()}
    assert summary.truth_path == out / TRUTH_FILE
    assert summary.people_with_records == len(records_by_person)
    multi = sum(1 for recs in records_by_person.values() if len({d for d, _ in recs}) >= 2)
    assert summary.people_in_two_or_more == multi


def test_every_person_in_the_population_has_at_least_one_record(
    generated: tuple[SynthSummary, Path],
) -> None:
    summary, _ = generated
    assert summary.people_with_records == summary.people


def test_a_meaningful_share_of_people_appear_at_two_or_more_agencies(
    generated: tuple[SynthSummary, Path],
) -> None:
    summary, _ = generated
    assert 0.3 <= summary.people_in_two_or_more / summary.people <= 0.8


def test_zero_people_writes_header_only_files(tmp_path: Path) -> None:
    summary = generate(tmp_path, people=0, seed=1)
    assert summary.total_rows == 0
    assert summary.people_in_two_or_more == 0
    for dataset_id in DATASET_IDS:
        header, rows = read_rows(tmp_path / f"{dataset_id}.csv")
        assert header and rows == []


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="people"):
        generate(tmp_path, people=-1, seed=1)
    with pytest.raises(ValueError, match="months"):
        generate(tmp_path, people=10, seed=1, months=0)


# --- time --------------------------------------------------------------------------------------


def test_events_fall_in_the_default_24_months_ending_31_october_2026(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    start, end = dt.date(2024, 11, 1), dt.date(2026, 10, 31)
    for dataset_id, rows in extracts.items():
        days = [event_day(row[IDENTITY[dataset_id][4]]) for row in rows]
        assert min(days) >= start and max(days) <= end, dataset_id
        assert (min(days) - start).days < 15 and (end - max(days)).days < 15, dataset_id


def test_a_custom_window_bounds_every_date_column(tmp_path: Path) -> None:
    end = dt.date(2025, 3, 15)
    summary = generate(tmp_path, people=400, seed=3, end=end, months=3)
    assert (summary.window_start, summary.window_end) == (dt.date(2025, 1, 1), end)
    contracts = make_contracts()
    for dataset_id in DATASET_IDS:
        _, rows = read_rows(tmp_path / f"{dataset_id}.csv")
        date_fields = [
            f.name
            for f in contracts[dataset_id].fields
            if f.type in (FieldType.date, FieldType.datetime)
            and f.link_as is None
            and f.name != "followup_due_date"  # a plan, documented to run past the end
        ]
        for row in rows:
            for name in date_fields:
                if row[name]:
                    assert dt.date(2025, 1, 1) <= event_day(row[name]) <= end, (dataset_id, name)


def test_ages_agree_with_recorded_birth_date_and_event_date(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    checked = 0
    for dataset_id, age_column in AGE_COLUMN.items():
        _, _, _, dob_column, when_column = IDENTITY[dataset_id]
        for row in extracts[dataset_id]:
            if row[dob_column]:
                born = dt.date.fromisoformat(row[dob_column])
                assert int(row[age_column]) == years_between(born, event_day(row[when_column]))
                checked += 1
    assert checked > 1000


def test_juvenile_flag_is_set_exactly_for_victims_under_18(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    rows = [r for r in extracts["police_victimizations"] if r["victim_age"]]
    assert all((r["juvenile_flag"] == "true") == (int(r["victim_age"]) < 18) for r in rows)
    assert any(r["juvenile_flag"] == "true" for r in rows)


# --- realism for linkage -----------------------------------------------------------------------


def test_linked_records_sometimes_disagree_on_first_name_birth_date_or_zip(
    records_by_person: dict[str, list[tuple[str, dict[str, str]]]],
) -> None:
    first_differs = dob_differs = zip_differs = pairs = 0
    for records in records_by_person.values():
        police = [r for d, r in records if d == "police_victimizations"]
        ed = [r for d, r in records if d == "ed_injury_visits"]
        for p in police[:1]:
            for e in ed[:1]:
                pairs += 1
                if p["victim_first_name"] and e["patient_first_name"]:
                    first_differs += norm(p["victim_first_name"]) != norm(e["patient_first_name"])
                if p["victim_dob"] and e["patient_dob"]:
                    dob_differs += p["victim_dob"] != e["patient_dob"]
                if p["victim_home_zip"] and e["patient_zip5"]:
                    zip_differs += p["victim_home_zip"] != e["patient_zip5"]
    assert pairs > 200
    # A few per cent each: errors exist, but most pairs still agree.
    for differs in (first_differs, dob_differs, zip_differs):
        assert 0.01 * pairs < differs < 0.3 * pairs


def test_sources_use_nicknames_for_some_legal_first_names(
    records_by_person: dict[str, list[tuple[str, dict[str, str]]]],
) -> None:
    bank = name_bank()
    nickname_pairs = 0
    for records in records_by_person.values():
        names = {norm(r[IDENTITY[d][1]]) for d, r in records if r[IDENTITY[d][1]].strip()}
        for name in names:
            nicknames = {norm(n) for n in bank.nicknames_for(name)}
            nickname_pairs += bool(nicknames & names)
    assert nickname_pairs >= 10


def test_birth_dates_are_missing_at_each_agencys_rate(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    expected = {
        "police_victimizations": (0.03, 0.09),
        "ed_injury_visits": (0.005, 0.07),
        "cvi_participants": (0.14, 0.27),
        "referrals": (0.01, 0.08),
    }
    for dataset_id, (low, high) in expected.items():
        rows = extracts[dataset_id]
        missing = sum(1 for r in rows if not r[IDENTITY[dataset_id][3]]) / len(rows)
        assert low <= missing <= high, (dataset_id, missing)


def test_surnames_vary_by_hyphen_suffix_case_and_accent(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    police_last = [r["victim_last_name"] for r in extracts["police_victimizations"]]
    ed_last = [r["patient_last_name"] for r in extracts["ed_injury_visits"]]
    cvi_last = [r["last_name"] for r in extracts["cvi_participants"]]
    assert all(name == fold_accents(name).upper() for name in police_last)
    assert any(name != fold_accents(name) for name in ed_last)
    assert any("-" in name for name in police_last + ed_last)
    assert any(re.search(r"\b(JR|III|II|SR)\.?$", name.upper()) for name in police_last + ed_last)
    assert any(name and name == name.lower() for name in cvi_last)


def test_some_people_recur_within_one_agency(
    records_by_person: dict[str, list[tuple[str, dict[str, str]]]],
) -> None:
    for dataset_id in DATASET_IDS:
        repeaters = sum(
            1
            for records in records_by_person.values()
            if sum(1 for d, _ in records if d == dataset_id) >= 2
        )
        assert repeaters >= 10, dataset_id


def test_multi_victim_incidents_share_a_case_number_and_time(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    by_case: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in extracts["police_victimizations"]:
        by_case[row["case_number"]].append(row)
    shared = [rows for rows in by_case.values() if len(rows) > 1]
    assert len(shared) >= 20
    assert all(len({r["incident_datetime"] for r in rows}) == 1 for rows in shared)


# --- agency realism ----------------------------------------------------------------------------


def test_police_extract_has_domestic_unknown_and_fatal_rows(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    rows = extracts["police_victimizations"]
    assert any(r["domestic_related"] == "true" for r in rows)
    assert any(r["gunshot_injury"] == "UNKNOWN" for r in rows)
    assert any(r["victim_race"] == "UNKNOWN" for r in rows)
    assert any(r["fatal"] == "true" for r in rows)
    assert any(r["incident_datetime"].endswith("T00:00:00") for r in rows)


def test_ed_extract_has_non_assault_intents_and_follow_up_encounters(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    rows = extracts["ed_injury_visits"]
    intents = Counter(r["injury_intent"] for r in rows)
    assert intents["SELF_HARM"] > 0 and intents["UNINTENTIONAL"] > 0
    assert intents["ASSAULT"] > sum(intents.values()) / 2
    seqs = Counter(r["encounter_seq"] for r in rows)
    assert seqs["D"] > 0 and seqs["S"] > 0
    for row in rows:
        if row["encounter_seq"] != "A":
            assert all(not c.endswith("A") or len(c) != 8 for c in row["dx_codes"].split(";"))


def test_cvi_extract_has_every_consent_level(extracts: dict[str, list[dict[str, str]]]) -> None:
    consents = Counter(r["consent_to_share"] for r in extracts["cvi_participants"])
    assert set(consents) == {"NONE", "AGGREGATE_ONLY", "LINKAGE_OK"}


def test_referrals_include_sud_treatment_and_unconsented_rows_from_every_partner_kind(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    rows = extracts["referrals"]
    assert any(r["service_domain"] == "SUD_TREATMENT" for r in rows)
    assert any(r["consent_type"] == "NONE" for r in rows)
    senders = {r["from_org_type"] for r in rows}
    assert {"HOSPITAL", "CVI_CBO", "POLICE", "OVP", "SCHOOL_DISTRICT"} <= senders
    assert all(r["rejection_reason"] == "" or r["status"] == "REJECTED" for r in rows)


def test_free_text_columns_sometimes_name_the_person(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    police = extracts["police_victimizations"]
    named = [
        r
        for r in police
        if r["victim_last_name"].strip() and r["victim_last_name"].strip() in r["narrative"]
    ]
    assert len(named) > 0.1 * len(police)
    cvi = extracts["cvi_participants"]
    assert any(r["first_name"].strip() and r["first_name"].strip() in r["case_notes"] for r in cvi)
    ed = extracts["ed_injury_visits"]
    assert any(r["chief_complaint"].startswith("pt ") for r in ed)


def test_some_community_areas_have_counts_below_a_small_cell_threshold(
    extracts: dict[str, list[dict[str, str]]],
) -> None:
    counts = Counter(r["community_area"] for r in extracts["police_victimizations"])
    per_area = [counts.get(area, 0) for area in keyset("community_area")]
    assert sum(1 for c in per_area if c < 11) >= 10
    assert max(per_area) >= 50


# --- the error helpers -------------------------------------------------------------------------


def test_typo_changes_a_name_by_one_edit_and_leaves_short_names_alone() -> None:
    rng = random.Random(1)
    for _ in range(200):
        changed = typo("Marquise", rng)
        assert abs(len(changed) - len("Marquise")) <= 1 and changed[0] == "M"
    assert typo("Li", rng) == "Li"


def test_day_month_swap_only_when_it_gives_another_valid_date() -> None:
    assert swap_day_month(dt.date(1998, 3, 7)) == dt.date(1998, 7, 3)
    assert swap_day_month(dt.date(1998, 3, 13)) is None
    assert swap_day_month(dt.date(1998, 4, 4)) is None


def test_birth_date_typos_stay_close_to_the_truth() -> None:
    rng = random.Random(2)
    true = dt.date(2000, 2, 29)
    for _ in range(200):
        wrong = dob_typo(true, rng)
        assert abs(wrong.year - true.year) <= 10


# --- speed -------------------------------------------------------------------------------------


# Generation speed is a benchmark figure (bench/bench_pipeline.py), not a unit-test assertion:
# a timed assertion fails on a loaded machine without anything being wrong.


@pytest.mark.slow
def test_twenty_thousand_people_all_get_records(tmp_path: Path) -> None:
    summary = generate(tmp_path, people=20_000, seed=11)
    assert summary.people_with_records == 20_000


# --- contract drift and hash seed ---------------------------------------------------------------


def test_a_required_column_the_generator_does_not_know_is_refused(tmp_path: Path) -> None:
    contract = make_contracts()["referrals"]
    extra = contract.fields[0].model_copy(update={"name": "new_required_code"})
    drifted = contract.model_copy(update={"fields": (*contract.fields, extra)})
    with pytest.raises(SynthContractError, match="new_required_code"):
        write_extract(tmp_path / "r.csv", drifted, [("person-1", {"referral_id": "R0000001"})])


def test_unknown_optional_columns_are_written_empty_and_undeclared_ones_left_out(
    tmp_path: Path,
) -> None:
    contract = make_contracts()["cvi_participants"]
    kept = tuple(f for f in contract.fields if f.name != "case_notes")
    optional = kept[2].model_copy(update={"name": "new_optional_note"})
    drifted = contract.model_copy(update={"fields": (*kept, optional)})
    values = {f.name: "x" for f in contract.fields}
    write_extract(tmp_path / "c.csv", drifted, [("person-1", values)])
    header, rows = read_rows(tmp_path / "c.csv")
    assert header == [f.name for f in drifted.fields]
    assert rows[0]["new_optional_note"] == "" and "case_notes" not in rows[0]


def test_output_does_not_depend_on_the_python_hash_seed(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib; from hub.synth import generate; "
        "generate(pathlib.Path(sys.argv[1]), people=200, seed=9)"
    )
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / hash_seed)], check=True, env=env
        )
    assert file_bytes(tmp_path / "1") == file_bytes(tmp_path / "2")
