from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import func, select

from contracts.model import Agreement, Linkage
from factories import (
    AGREEMENTS_DIR,
    POLICE,
    load_agreement,
    make_actor,
    make_agreement_data,
    make_police_csv,
    make_police_row,
    upload_all,
    upload_as_police_steward,
)
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import AuditEvent, LinkageChange, LinkageRun, PersonLink, Record
from hub.keys import InMemoryKeyStore
from hub.linkage import engine
from hub.linkage.evaluate import evaluate
from hub.linkage.report import linkage_report
from hub.linkage.report_page import render_report
from hub.linkage.service import assign_person_ids, linkage_terms, permitted_pairs, run_linkage
from hub.pseudonymize import TOKEN_COLUMNS, Pseudonymizer
from hub.synth import generate

# --- the engine, on token frames --------------------------------------------------------------


def token_people(n: int, seed: int) -> list[dict[str, int | None]]:
    """``n`` people as token rows; first names and surnames from small pools, so namesakes
    occur as they do in a city."""
    rng = random.Random(seed)
    people = []
    for i in range(n):
        fn = rng.randrange(60)
        ln = rng.randrange(200)
        year, month, day = rng.randrange(1950, 2010), rng.randrange(1, 13), rng.randrange(1, 29)
        people.append(
            {
                "t_fn": 1000 + fn,
                "t_fn2": None,
                "t_fi": 3000 + fn % 20,
                "t_fsx": 4000 + fn % 45,
                "t_mn": None,
                "t_ln": 5000 + ln,
                "t_ln2": None,
                "t_ln3": None,
                "t_lsx": 6000 + ln % 150,
                "t_dob": year * 10_000 + month * 100 + day,
                "t_dob2": (year * 10_000 + day * 100 + month) if day <= 12 else None,
                "t_by": year,
                "t_md": 7000 + month * 100 + day,
                "t_md2": None,
                "t_ym": year * 100 + month,
                "t_sex": 8000 + i % 2,
                "t_zip3": None,
                "t_sw": 20_000 + fn,  # the first name keyed as a surname
            }
        )
    return people


def token_frame(rows: list[tuple[str, dict[str, int | None]]]) -> pd.DataFrame:
    frame = pd.DataFrame([tokens for _, tokens in rows], columns=list(TOKEN_COLUMNS))
    frame = frame.astype("Int64")
    frame.insert(0, "source_dataset", [ds for ds, _ in rows])
    frame.insert(0, "unique_id", np.arange(1, len(rows) + 1))
    return frame


@pytest.fixture(scope="module")
def two_agencies() -> pd.DataFrame:
    """400 people at agency ``a``; the first 300 also at ``b``, where person 0 goes by a
    nickname, person 1's first name has a typo (same Soundex and initial) and person 2's birth
    date has day and month swapped; person 3 has no birth date at ``b``; person 4's names are
    swapped at ``b``."""
    people = token_people(400, seed=3)
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in people]
    for i, p in enumerate(people[:300]):
        q = dict(p)
        if i == 0:
            q["t_fn"], q["t_fn2"] = 99_000, p["t_fn"]  # "Bill", with William's group token
        elif i == 1:
            q["t_fn"] = 99_001
        elif i == 2:
            q["t_dob"], q["t_dob2"] = p["t_dob2"] or 19_901_203, p["t_dob"]
        elif i == 3:
            q["t_dob"] = q["t_dob2"] = q["t_by"] = q["t_md"] = q["t_ym"] = None
        elif i == 4:  # first name and surname swapped
            q.update(t_fn=90_000 + int(p["t_ln"] or 0), t_fi=None, t_fsx=None, t_lsx=None)
            q.update(t_ln=p["t_sw"], t_sw=p["t_ln"])
        rows.append(("b", q))
    return token_frame(rows)


def same_person(result: engine.LinkResult, a: int, b: int) -> bool:
    label = dict(zip(result.record_ids.tolist(), result.cluster.tolist(), strict=True))
    return label[a] == label[b]


def test_the_engine_links_nicknames_typos_and_swapped_dates_across_agencies(
    two_agencies: pd.DataFrame,
) -> None:
    result = engine.link(two_agencies, {frozenset("ab")})
    # Record ids: person i is i + 1 at a and 401 + i at b.
    for i in (0, 1, 2, 3, 4):
        assert same_person(result, i + 1, 401 + i), i
    linked = sum(same_person(result, i + 1, 401 + i) for i in range(300))
    assert linked >= 295
    # People only at a (ids 301-400) stay apart from everyone else at b.
    label = dict(zip(result.record_ids.tolist(), result.cluster.tolist(), strict=True))
    b_labels = {label[401 + i] for i in range(300)}
    wrongly_joined = sum(label[i + 1] in b_labels for i in range(300, 400))
    assert wrongly_joined <= 2
    assert result.trained == "priors"  # 700 records: too few for EM


def test_a_shared_person_identifier_and_address_link_records_under_other_names() -> None:
    """Person 0 is recorded at agency b under another first name and surname (an alias, a
    married name); their birth date, SSN, house number and postcode are the same. Without the
    identifier and address tokens the two records stay apart (the control), with them they
    link."""
    people = token_people(400, seed=5)
    for i, p in enumerate(people):
        p.update(t_pid=50_000 + i, t_hn=60_000 + i % 90, t_zip=70_000 + i % 40)
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in people]
    for i, p in enumerate(people[:300]):
        q = dict(p)
        if i == 0:
            q.update(t_fn=99_100, t_fi=99_101, t_fsx=99_102, t_sw=99_103)
            q.update(t_ln=99_104, t_lsx=99_105)
        rows.append(("b", q))
    with_ids = engine.link(token_frame(rows), {frozenset("ab")})
    assert same_person(with_ids, 1, 401)
    control = token_frame(rows)
    control[["t_pid", "t_hn", "t_zip"]] = pd.NA
    assert not same_person(engine.link(control, {frozenset("ab")}), 1, 401)


def told_apart_by(
    people: list[dict[str, int | None]],
    twin: dict[str, int | None],
    stand_in: Callable[[dict[str, int | None]], dict[str, int | None]],
    columns: list[str],
    comparison: str,
) -> list[str]:
    """Agency a holds ``people`` and person 10's namesake ``twin``; agency b the first 300,
    people 10-24 without a birth date and with what ``stand_in`` gives them instead. Asserts
    that b's person 10 joins the right one, and, with ``columns`` emptied (the control),
    neither; returns the level labels of ``comparison``, which holds the stand-in's levels."""
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in [*people, twin]]
    for i, p in enumerate(people[:300]):
        q = dict(p)
        if 10 <= i < 25:
            q.update(t_dob=None, t_dob2=None, t_by=None, t_md=None, t_md2=None, t_ym=None)
            q.update(stand_in(p))
        rows.append(("b", q))
    frame = token_frame(rows)
    result = engine.link(frame, {frozenset("ab")})
    b_id = 402 + 10  # 401 records at a, then b's in order
    assert same_person(result, 11, b_id) and not same_person(result, 401, b_id)
    assert sum(same_person(result, i + 1, 402 + i) for i in range(10, 25)) >= 14
    control = frame.copy()
    control[columns] = pd.NA
    without = engine.link(control, {frozenset("ab")})
    assert not same_person(without, 11, b_id) and not same_person(without, 401, b_id)
    levels = next(c for c in result.model["comparisons"] if c["output_column_name"] == comparison)
    return [lv.get("label_for_charts") for lv in levels["comparison_levels"]]


def test_an_age_tells_namesakes_apart_where_the_birth_date_is_missing() -> None:
    """At agency b, 15 people (5%) have no birth date, only an age (``t_ay``/``t_ay2``: the two
    birth years it allows). Person 10 has a namesake at a born twenty years earlier. With the
    age, b's record joins the right one; without it (the control), it matches both on name
    alone and joins neither."""
    people = token_people(400, seed=11)
    twin = dict(people[10])
    year = int(twin["t_by"] or 0) - 20
    twin.update(t_by=year, t_dob=year * 10_000 + 615, t_dob2=None, t_md=7615, t_ym=year * 100 + 6)

    def age(p: dict[str, int | None]) -> dict[str, int | None]:
        return {"t_ay": p["t_by"], "t_ay2": int(p["t_by"] or 0) - 1}

    labels = told_apart_by(people, twin, age, ["t_ay", "t_ay2"], "birth_date")
    assert labels[-4:-1] == [
        "birth year fits the age",
        "ages fit each other",
        "birth year or age does not fit",
    ]


def test_a_community_area_tells_namesakes_apart_where_zip_and_birth_date_are_missing() -> None:
    """Everyone at agency a has a home ZIP (one of 40); at b, 15 people have neither a birth
    date nor a ZIP, only their home community area (``t_az1``-``t_az3``: the ZIPs it spans,
    hashed as ZIPs). Person 10 has a namesake at a living elsewhere. With the area, b's record
    joins the right one; without it (the control), it matches both on name alone and joins
    neither."""
    people = token_people(400, seed=17)
    for i, person in enumerate(people):
        person.update(t_zip=60_600 + i % 40, t_zip3=606)
    twin = dict(people[10])
    twin.update(t_by=1930, t_dob=19_300_615, t_dob2=None, t_md=7615, t_ym=193_006)
    twin["t_zip"] = 60_600 + (10 + 20) % 40

    def area(p: dict[str, int | None]) -> dict[str, int | None]:
        home = int(p["t_zip"] or 0)
        return dict(t_zip=None, t_zip3=None, t_ca=home, t_az1=home - 1, t_az2=home, t_az3=home + 1)

    labels = told_apart_by(people, twin, area, ["t_ca", "t_az1", "t_az2", "t_az3"], "zip")
    assert labels[-5:-1] == [
        "ZIP in the other's community area",
        "ZIP outside the other's community area",
        "same community area",
        "another community area",
    ]


def test_a_record_with_only_a_community_area_is_blocked_with_records_at_its_zips() -> None:
    """Person 7 is at b with a mistyped first name, no birth date and no ZIP, only a home area:
    only the surname and the area (one of whose ZIPs is a's ZIP) can bring the pair together,
    through the surname + ZIP blocking rule, which blocks on the area's ZIPs too."""
    people = token_people(400, seed=19)
    for i, person in enumerate(people):
        person.update(t_zip=60_600 + i % 40, t_zip3=606)
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in people]
    for i, p in enumerate(people[:300]):
        q = dict(p)
        if i == 7:
            q.update(t_fn=99_007, t_fn2=None, t_fsx=99_008, t_sw=99_009)
            q.update(t_dob=None, t_dob2=None, t_by=None, t_md=None, t_md2=None, t_ym=None)
            home = int(p["t_zip"] or 0)
            q.update(t_zip=None, t_zip3=None, t_ca=home, t_az1=home + 1, t_az2=home)
        rows.append(("b", q))
    frame = token_frame(rows)
    pairs = engine.link(frame, {frozenset("ab")}).pairs
    assert ((pairs["unique_id_l"] == 8) & (pairs["unique_id_r"] == 408)).any()
    frame[["t_ca", "t_az1", "t_az2"]] = pd.NA
    pairs = engine.link(frame, {frozenset("ab")}).pairs
    assert not ((pairs["unique_id_l"] == 8) & (pairs["unique_id_r"] == 408)).any()


def test_one_name_in_the_others_place_still_links() -> None:
    """Person 5 is written at b with the surname as first name and a mistyped first name as
    surname: only one name agrees, crosswise (the pair is blocked on birth date and ZIP3). The
    control, without the crosswise token, stays apart."""
    people = token_people(400, seed=13)
    people[5]["t_zip3"] = 606
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in people]
    for i, p in enumerate(people[:300]):
        q = dict(p)
        if i == 5:
            q.update(t_fn=90_000 + int(p["t_ln"] or 0), t_fi=None, t_fsx=None, t_lsx=None)
            q.update(t_sw=p["t_ln"], t_ln=99_300)  # the surname as first name; a typo
        rows.append(("b", q))
    frame = token_frame(rows)
    assert same_person(engine.link(frame, {frozenset("ab")}), 6, 406)
    frame.loc[frame["unique_id"] == 406, "t_sw"] = pd.NA
    assert not same_person(engine.link(frame, {frozenset("ab")}), 6, 406)


def test_one_name_in_the_others_place_is_blocked_on_the_birth_date() -> None:
    """As above, without a ZIP: only the rule for one name in the other's place with the same
    birth date proposes the pair."""
    people = token_people(400, seed=13)
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in people]
    for i, p in enumerate(people[:300]):
        q = dict(p)
        if i == 5:
            q.update(t_fn=90_000 + int(p["t_ln"] or 0), t_fi=None, t_fsx=None, t_lsx=None)
            q.update(t_sw=p["t_ln"], t_ln=99_300)
        rows.append(("b", q))
    assert same_person(engine.link(token_frame(rows), {frozenset("ab")}), 6, 406)


def test_a_level_random_sampling_never_saw_gets_a_u_of_its_own() -> None:
    """Unseen, Splink would give the level a default ``u`` by position (about 0.001): the
    names-swapped level gets u(same first name) x u(same surname), any other its starting
    ``m`` (no evidence either way: a disagreement level must never count for a match because
    sampling missed it); levels seen keep theirs."""

    def lv(label: str, u: float | None = None, sql: str = "x") -> dict[str, object]:
        out: dict[str, object] = {"label_for_charts": label, "sql_condition": sql}
        out["m_probability"] = 0.03
        return out if u is None else {**out, "u_probability": u}

    null = {"is_null_level": True, "sql_condition": "null"}
    model = {
        "comparisons": [
            {
                "output_column_name": "first_name",
                "comparison_levels": [
                    null,
                    lv("exact", 0.004),
                    lv("swapped", sql=engine.SWAPPED_NAMES),
                    lv("else", 0.9),
                ],
            },
            {
                "output_column_name": "surname",
                "comparison_levels": [null, lv("exact", 0.0005), lv("soundex"), lv("else", 0.99)],
            },
        ]
    }
    out = engine._u_for_unseen(model, 1e7)
    first, surname = (c["comparison_levels"] for c in out["comparisons"])
    assert first[2]["u_probability"] == pytest.approx(0.004 * 0.0005)
    assert surname[2]["u_probability"] == pytest.approx(0.03)
    assert [first[1]["u_probability"], surname[3]["u_probability"]] == [0.004, 0.99]
    assert "u_probability" not in first[0]


def test_records_of_a_distinct_dataset_are_never_compared_or_joined() -> None:
    """Agency a holds person 7 twice. Declared distinct (each record a different person), a's
    two records are never compared, and b's record of person 7 joins one of them, not both;
    the control joins all three."""
    people = token_people(400, seed=17)
    rows: list[tuple[str, dict[str, int | None]]] = [("a", p) for p in [*people, people[7]]]
    rows += [("b", p) for p in people[:300]]
    frame = token_frame(rows)  # ids: a 1-401 (401 is person 7 again), b 402-701
    control = engine.link(frame, {frozenset("ab")})
    assert same_person(control, 8, 401) and same_person(control, 8, 409)
    result = engine.link(frame, {frozenset("ab")}, distinct={"a", "b"})
    assert not same_person(result, 8, 401)
    assert same_person(result, 8, 409) or same_person(result, 401, 409)
    within = result.pairs[
        (result.pairs["unique_id_l"] <= 401) == (result.pairs["unique_id_r"] <= 401)
    ]
    assert within.empty
    assert sum(same_person(result, i + 1, 402 + i) for i in range(300)) >= 295
    # One distinct dataset alone has no pair to compare: no model is needed.
    alone = engine.link(token_frame([("a", p) for p in people]), set(), distinct={"a"})
    assert alone.trained == "none" and len(set(alone.cluster.tolist())) == 400


def test_a_roster_and_a_partner_that_do_not_overlap_yet_still_link() -> None:
    """Roster ``a`` (one record per person, 2,000 of them, 30 keyed twice by mistake) and
    partner ``b`` share no person: no pair agrees on name and birth date, the match share
    estimates at 0 and EM's birth-date block is empty. The run holds the share at one pair in
    all, skips what it cannot train, and keeps everyone apart."""
    people = token_people(2010, seed=1)
    rows = [("a", p) for p in [*people[:2000], *people[:30]]] + [("b", p) for p in people[2000:]]
    settings = engine.EngineSettings(u_max_pairs=2e5)
    result = engine.link(token_frame(rows), {frozenset("ab")}, settings, distinct={"a"})
    assert len(set(result.cluster.tolist())) == 2040


def test_age_levels_unseen_by_sampling_are_no_evidence_either_way() -> None:
    """The datasets sampled for ``u`` (``s``) hold no record with only an age, so random
    sampling never sees the age levels; a disagreement must not then count for a match."""
    people = token_people(500, seed=3)
    rows: list[tuple[str, dict[str, int | None]]] = [("s", p) for p in people[:300]]
    for name, group in (("p", people[300:400]), ("h", people[350:450])):
        for i, p in enumerate(group):
            q = dict(p, t_ay=p["t_by"], t_ay2=int(p["t_by"] or 0) - 1)
            if i % 2:
                q.update(t_dob=None, t_dob2=None, t_by=None, t_md=None, t_md2=None, t_ym=None)
            rows.append((name, q))
    result = engine.link(token_frame(rows), {frozenset("ph")})
    birth = next(c for c in result.model["comparisons"] if c["output_column_name"] == "birth_date")
    level = {lv.get("label_for_charts"): lv for lv in birth["comparison_levels"]}
    misfit = level["birth year or age does not fit"]
    assert misfit["m_probability"] <= misfit["u_probability"] * (1 + 1e-9)  # weight <= 0


def test_datasets_not_permitted_together_are_never_linked(two_agencies: pd.DataFrame) -> None:
    result = engine.link(two_agencies, permitted=set())
    assert not any(same_person(result, i + 1, 401 + i) for i in range(300))
    # Not merely unlinked: no pair across the two was ever generated or scored.
    side = dict(zip(two_agencies["unique_id"], two_agencies["source_dataset"], strict=True))

    def across(result: engine.LinkResult) -> int:
        pairs = result.pairs
        return sum(
            side[a] != side[b]
            for a, b in zip(pairs["unique_id_l"], pairs["unique_id_r"], strict=True)
        )

    assert across(result) == 0
    assert across(engine.link(two_agencies, {frozenset("ab")})) >= 295


def test_a_person_never_holds_records_of_datasets_not_permitted_together() -> None:
    # The same 100 people at a, b and c; a-b and b-c are permitted, a-c is not.
    people = token_people(100, seed=6)
    frame = token_frame([(ds, p) for ds in "abc" for p in people])
    result = engine.link(frame, {frozenset("ab"), frozenset("bc")})
    side = dict(zip(frame["unique_id"], frame["source_dataset"], strict=True))
    held: dict[int, set[str]] = {}
    for rid, label in zip(result.record_ids.tolist(), result.cluster.tolist(), strict=True):
        held.setdefault(label, set()).add(side[rid])
    assert not [h for h in held.values() if {"a", "c"} <= h]
    # ... while each b record still joins its a or its c record.
    assert sum(len(h) == 2 for h in held.values()) >= 95


def test_a_pair_links_only_at_the_threshold_both_its_agreements_require() -> None:
    ids = np.array([1, 2, 3])
    datasets = np.array(["a", "b", "c"], dtype=object)
    pairs = scored((1, 2, 0.95), (2, 3, 0.6), (1, 3, 0.4))
    settings = engine.EngineSettings()
    need = engine.required_thresholds(ids, datasets, pairs, {"a": 0.99, "c": 0.3}, settings)
    assert need.tolist() == [0.99, settings.threshold, 0.99]  # type: ignore[union-attr]
    # Never looser than the hub's own threshold, even where both agreements ask for it.
    loose = {"a": 0.3, "b": 0.3, "c": 0.3}
    assert engine.required_thresholds(ids, datasets, pairs, loose, settings) == settings.threshold
    need = engine.required_thresholds(ids, datasets, pairs, {"a": 0.3, "c": 0.9}, settings)
    assert need.tolist() == [settings.threshold, 0.9, 0.9]  # type: ignore[union-attr]
    assert engine.required_thresholds(ids, datasets, pairs, {}, settings) == settings.threshold


def test_an_agreement_threshold_keeps_weaker_links_out(two_agencies: pd.DataFrame) -> None:
    permitted = {frozenset("ab")}
    loose = engine.link(two_agencies, permitted)
    side = dict(zip(two_agencies["unique_id"], two_agencies["source_dataset"], strict=True))
    p = loose.pairs
    links = p[p["match_probability"] >= 0.5]
    seen = pd.concat([links["unique_id_l"], links["unique_id_r"]]).value_counts()
    # The weakest links across agencies between records in no other link (one that is could
    # still join its person through a stronger path).
    alone = [
        side[a] != side[b] and seen[a] == seen[b] == 1
        for a, b in zip(links["unique_id_l"], links["unique_id_r"], strict=True)
    ]
    weak = links[alone].nsmallest(2, "match_probability")
    strict_at = float(weak["match_probability"].max()) + 1e-9
    assert strict_at < 1 and all(same_person(loose, a, b) for a, b in weak.iloc[:, :2].values)
    strict = engine.link(two_agencies, permitted, thresholds={"b": strict_at})
    assert not any(same_person(strict, a, b) for a, b in weak.iloc[:, :2].values)
    cross = [side[a] != side[b] for a, b in zip(p["unique_id_l"], p["unique_id_r"], strict=True)]
    need = np.where(cross, strict_at, 0.5)
    assert loose.links == len(links)
    assert strict.links == int((p["match_probability"] >= need).sum()) < loose.links


def test_a_chain_of_undated_records_cannot_bridge_two_people() -> None:
    ids = np.arange(1, 6)
    dated = np.array([True, True, False, False, False])
    chain = scored((1, 3, 0.9), (3, 5, 0.9), (5, 4, 0.9), (4, 2, 0.9))
    labels = engine._components(ids, chain, dated)
    assert labels[0] != labels[1]
    assert labels[2] == labels[3] == labels[4] not in (labels[0], labels[1])


def test_u_is_sampled_only_among_datasets_all_permitted_together() -> None:
    datasets = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2)
    chain = {frozenset("ab"), frozenset("bc")}  # c may meet b, never a
    assert engine._sampling_group(datasets, chain) == {"a", "b"}
    assert engine._sampling_group(datasets, set()) == {"a"}
    everyone = {frozenset("ab"), frozenset("bc"), frozenset("ac")}
    assert engine._sampling_group(datasets, everyone) == {"a", "b", "c"}
    # A dataset permitted with no one is a group of its own, and does not hide a pair that
    # may meet.
    lonely = pd.Series(["a"] * 2 + ["b", "c"])
    assert engine._sampling_group(lonely, {frozenset("bc")}) == {"a"}  # a tie: first by name
    singles = pd.Series(["a", "b", "c"])
    assert engine._sampling_group(singles, {frozenset("bc")}) == {"b", "c"}


def test_single_records_of_datasets_not_permitted_together_need_no_model() -> None:
    frame = token_frame([("a", token_people(1, seed=1)[0]), ("b", token_people(1, seed=1)[0])])
    result = engine.link(frame, set())
    assert result.cluster.tolist() == [0, 1] and result.trained == "none"


def test_the_engine_trains_m_by_em_and_records_the_model(two_agencies: pd.DataFrame) -> None:
    settings = engine.EngineSettings(min_records_to_train=100)
    result = engine.link(two_agencies, {frozenset("ab")}, settings)
    assert result.trained == "em"
    names = [c["output_column_name"] for c in result.model["comparisons"]]
    # Comparisons on columns no record has are left out.
    assert names == ["first_name", "surname", "birth_date", "sex"]
    birth = result.model["comparisons"][2]["comparison_levels"]
    exact = next(lv for lv in birth if lv.get("label_for_charts") == "Exact match on t_dob")
    assert exact["m_probability"] > 0.8 and exact["u_probability"] < 0.01
    assert sum(same_person(result, i + 1, 401 + i) for i in range(300)) >= 295


def test_scoring_in_chunks_bounds_memory_and_changes_nothing(two_agencies: pd.DataFrame) -> None:
    whole = engine.link(two_agencies, {frozenset("ab")})
    said: list[str] = []
    chunked = engine.link(
        two_agencies, {frozenset("ab")}, engine.EngineSettings(chunk_records=300), said.append
    )
    assert "scored chunk 9 of 9" in said

    def pairs(result: engine.LinkResult) -> set[tuple[int, int, float]]:
        return {
            (a, b, round(p, 9))
            for a, b, p in result.pairs[
                ["unique_id_l", "unique_id_r", "match_probability"]
            ].itertuples(index=False)
        }

    assert pairs(chunked) == pairs(whole) and len(pairs(whole)) >= 300


def scored(*pairs: tuple[int, int, float]) -> pd.DataFrame:
    """Scored pairs, each match weight the log2 odds of its probability (as Splink's are)."""
    return pd.DataFrame(
        [(a, b, float(np.log2(p / (1 - p))), p) for a, b, p in pairs],
        columns=["unique_id_l", "unique_id_r", "match_weight", "match_probability"],
    )


def test_a_record_without_birth_date_joins_the_person_it_matches_clearly_best() -> None:
    """Undated record 3 matches dated records 1 and 2, which stayed apart: it joins 1 when its
    link there is stronger by at least CLEAR_LEAD_BITS, and neither when the two are close."""
    ids = np.array([1, 2, 3])
    dated = np.array([True, True, False])

    def weighed(w13: float, w23: float) -> pd.DataFrame:
        links = scored((1, 3, 0.9), (2, 3, 0.9))
        links["match_weight"] = [w13, w23]
        return links

    lead = engine.CLEAR_LEAD_BITS
    labels = engine._components(ids, weighed(8.0 + lead, 8.0), dated)
    assert labels[2] == labels[0] != labels[1]
    labels = engine._components(ids, weighed(8.0, 8.0 + lead), dated)
    assert labels[2] == labels[1] != labels[0]
    labels = engine._components(ids, weighed(8.0 + lead / 2, 8.0), dated)
    assert len(set(labels.tolist())) == 3


def test_a_record_without_birth_date_cannot_bridge_two_people() -> None:
    ids = np.array([1, 2, 3, 4])
    dated = np.array([True, True, False, False])
    # 3 matches John Smith born 1980 (1) and John Smith born 1990 (2) on name alone.
    labels = engine._components(ids, scored((1, 3, 0.9), (2, 3, 0.9), (3, 4, 0.9)), dated)
    assert len({labels[0], labels[1], labels[2]}) == 3 and labels[3] != labels[0]
    # Matching one of them only, it joins that one, and so does 4 through it.
    labels = engine._components(ids, scored((1, 3, 0.9), (3, 4, 0.9)), dated)
    assert labels[0] == labels[2] == labels[3] != labels[1]


def test_people_born_apart_are_not_joined_by_a_shared_name() -> None:
    """Two people of two dated records each (1+2 born 1981, 3+4 born 2003) stay two when a
    link, or a chain of them, would join them and no birth date of one shares a year, month
    and day, year and month, or the date or its swap with the other's (test below)."""
    ids = np.arange(1, 6)
    dated = np.array([True, True, True, True, False])
    births = np.array([[11, 12], [11, 13], [21, 0], [21, 0], [0, 0]], dtype=np.int64)
    links = scored((1, 2, 0.99), (3, 4, 0.99), (2, 3, 0.9), (1, 5, 0.9), (4, 5, 0.9))
    labels = engine._components(ids, links, dated, births=births)
    assert labels[0] == labels[1] != labels[2] == labels[3]
    assert len(set(labels.tolist())) == 3  # 5 matches both about equally: neither
    # Without the births, as before: one person.
    assert len(set(engine._components(ids, links, dated).tolist())) == 1
    # A single record may join with a date of its own (one wrong date): 3 alone joins 1+2.
    alone = scored((1, 2, 0.99), (2, 3, 0.9))
    labels = engine._components(ids[:3], alone, dated[:3], births=births[:3])
    assert labels[0] == labels[1] == labels[2]
    # Evidence gathered by a group counts: 2 shares 13 with a third date, so it joins.
    births[2] = births[3] = [13, 0]
    labels = engine._components(ids, links, dated, births=births)
    assert labels[0] == labels[1] == labels[2] == labels[3]


def test_a_birth_date_slip_still_shares_birth_evidence() -> None:
    """The tokens say which birth dates one slip apart (a digit of the year, the day, the
    month, day and month swapped) and which are two people's."""
    from contracts.loader import load_agreement as load_spec

    dataset = load_spec(POLICE).dataset("police_victimizations")
    assert dataset is not None
    p = Pseudonymizer(dataset, InMemoryKeyStore.generate())
    # The first, then slips of it: a day, the year's digits, day and month swapped into another
    # year, a month; last, another person's.
    dates = ["1981-12-09", "1981-12-19", "1918-12-09", "1918-09-12", "1981-03-09", "2003-08-11"]
    rows = [make_police_row(i, victim_dob=d) for i, d in enumerate(dates, 1)]
    tokens = p.frame(pd.DataFrame(rows)).tokens
    exactly = {pa.int64(): pd.Int64Dtype()}.get  # through float64 a token would change
    frame = pd.DataFrame(
        {c: tokens[c].to_pandas(types_mapper=exactly) for c in engine.BIRTH_EVIDENCE}
    )
    births = engine._birth_evidence(frame)
    first, *slips, apart = ([i] for i in range(len(dates)))
    assert not any(engine._born_apart(births, first, slip) for slip in slips)
    assert all(engine._born_apart(births, x, apart) for x in (first, *slips))


def test_a_mistyped_letter_is_a_level_of_the_name_comparisons_when_halves_are_stored() -> None:
    """After Soundex, before the initial: one half of the name whole. Left out when no record
    has halves (records stored before they existed), as a level that never occurs."""

    def levels(present: set[str]) -> dict[str, list[str]]:
        out = {}
        for comparison in engine._comparisons(present):
            d = comparison.get_comparison("duckdb").as_dict()
            out[d["output_column_name"]] = [lv["label_for_charts"] for lv in d["comparison_levels"]]
        return out

    every = levels(set(TOKEN_COLUMNS))
    assert (
        every["first_name"].index("a letter mistyped")
        == every["first_name"].index("same Soundex") + 1
        == every["first_name"].index("same initial") - 1
    )
    assert every["surname"][-2:] == ["a letter mistyped", "All other comparisons"]
    before = levels(set(TOKEN_COLUMNS) - {"t_fh1", "t_fh2", "t_lh1", "t_lh2"})
    assert "a letter mistyped" not in before["first_name"] + before["surname"]


def test_fewer_than_two_records_need_no_model() -> None:
    frame = token_frame([("a", token_people(1, seed=1)[0])])
    result = engine.link(frame, set())
    assert result.cluster.tolist() == [0] and len(result.pairs) == 0


def test_a_few_distinct_people_are_kept_apart_without_a_model_to_learn_from() -> None:
    # No two records agree exactly, so the share of matches estimates at zero.
    frame = token_frame([("a", p) for p in token_people(30, seed=2)])
    result = engine.link(frame, set())
    assert len(set(result.cluster.tolist())) == 30


def test_records_with_neither_names_nor_birth_dates_stay_apart() -> None:
    people = token_people(5, seed=4)
    for p in people:
        p.update(dict.fromkeys(p, None) | {"t_sex": 8000})
    result = engine.link(token_frame([("a", p) for p in people * 2]), set())
    assert len(set(result.cluster.tolist())) == 10 and result.trained == "none"


def test_estimated_quality_reads_the_probabilities_as_expected_matches() -> None:
    (at_half,) = engine.estimated_quality([1.0, 0.9, 0.6, 0.1], thresholds=[0.5])
    assert at_half["pairs"] == 3
    assert at_half["precision"] == pytest.approx(2.5 / 3, abs=1e-4)
    assert at_half["recall"] == pytest.approx(2.5 / 2.6, abs=1e-4)


# --- stable person ids ------------------------------------------------------------------------


def key(rid: int) -> str:
    return f"k{rid:04d}"


def test_unchanged_clusters_keep_their_ids_and_new_records_join_them() -> None:
    previous = {1: "p-a", 2: "p-a", 3: "p-b"}
    ids, changes = assign_person_ids([[1, 2, 4], [3]], previous, key)
    assert ids == ["p-a", "p-b"] and changes == []


def test_a_merge_keeps_the_larger_id_and_is_recorded() -> None:
    previous = {1: "p-a", 2: "p-a", 3: "p-b"}
    ids, changes = assign_person_ids([[1, 2, 3]], previous, key)
    assert ids == ["p-a"]
    assert [(c.kind, c.person_id, c.other_person_id, c.records) for c in changes] == [
        ("merge", "p-a", "p-b", 1)
    ]


def test_a_split_gives_the_smaller_part_a_new_id_and_is_recorded() -> None:
    previous = {1: "p-a", 2: "p-a", 3: "p-a"}
    ids, changes = assign_person_ids([[1, 2], [3]], previous, key)
    assert ids[0] == "p-a" and ids[1] not in ("p-a", "")
    assert [(c.kind, c.person_id, c.other_person_id, c.records) for c in changes] == [
        ("split", "p-a", ids[1], 1)
    ]


def test_records_moving_to_another_kept_id_are_logged_as_a_split() -> None:
    previous = {1: "p-x", 2: "p-x", 3: "p-x", 4: "p-z"}
    ids, changes = assign_person_ids([[1, 2], [3, 4]], previous, key)
    assert ids == ["p-x", "p-z"]
    assert [(c.kind, c.person_id, c.other_person_id, c.records) for c in changes] == [
        ("split", "p-x", "p-z", 1)
    ]


def test_a_fresh_id_never_reuses_one_already_held() -> None:
    from hub.linkage.service import person_id

    taken = person_id([key(3)])
    ids, _ = assign_person_ids([[1], [3]], {1: taken}, key)
    assert ids[0] == taken and ids[1] != taken


@pytest.fixture
def linked_hub(hub: Hub, tmp_path: Path) -> Hub:
    return linked(hub, tmp_path)


def linked(hub: Hub, tmp_path: Path) -> Hub:
    """``hub`` with the synthetic population of 300 uploaded and linked once."""
    generate(tmp_path / "x", people=300, seed=5)
    upload_all(hub, tmp_path / "x")
    with hub.session() as s:
        run_linkage(s, "test", hub.today())
    return hub


def test_linkage_finds_people_across_agencies_with_high_quality(
    linked_hub: Hub, tmp_path: Path
) -> None:
    with linked_hub.session() as s:
        quality = evaluate(s, linked_hub.keys, tmp_path / "x" / "truth.csv")
    assert quality["precision"] > 0.98 and quality["recall"] > 0.9
    assert quality["f1"] > 0.95
    assert "police_victimizations~ed_injury_visits" in quality["by_dataset_pair"] or (
        "ed_injury_visits~police_victimizations" in quality["by_dataset_pair"]
    )


@pytest.mark.parametrize("one_per_person", [False, True])
def test_a_dataset_of_one_record_per_person_never_joins_two_of_its_rows(
    hub: Hub, one_per_person: bool
) -> None:
    """Victim 41 is victim 1 again (same name and birth date). Where the agreement says each
    person is in one row at most, the two stay two people; otherwise (the control) they are
    one."""
    data = make_agreement_data()
    data["datasets"][0]["one_record_per_person"] = one_per_person
    load_agreement(hub, Agreement.model_validate(data))
    make_actor(hub, "steward-police", Role.steward, "org:police")
    firsts = ["Marquise", "Dana", "Luis", "Keisha", "Omar", "Tanya", "Andre", "Rosa"]
    lasts = ["Whitfield", "Okafor", "Reyes", "Brooks", "Haddad"]
    rows = [
        make_police_row(
            i,
            victim_first_name=firsts[i % 8],
            victim_last_name=lasts[i % 5],
            victim_dob=f"{1970 + i}-0{1 + i % 9}-1{i % 10}",
        )
        for i in range(1, 41)
    ]
    same = ("victim_first_name", "victim_last_name", "victim_dob")
    rows.append(make_police_row(41, **{k: rows[0][k] for k in same}))
    upload_as_police_steward(hub, make_police_csv(rows))
    with hub.session() as s:
        run_linkage(s, "test", hub.today())
        person = dict(
            s.execute(
                select(Record.record_key, PersonLink.person_id).join(
                    PersonLink, PersonLink.record_id == Record.id
                )
            ).all()
        )
    assert len(person) == 41
    dataset = Agreement.model_validate(data).dataset("police_victimizations")
    assert dataset is not None
    first, again = (Pseudonymizer(dataset, hub.keys).record_key(f"V2026-{i:06d}") for i in (1, 41))
    assert (person[first] == person[again]) is not one_per_person
    assert len(set(person.values())) == (41 if one_per_person else 40)


def test_records_under_no_linkage_rules_keep_singleton_person_ids(linked_hub: Hub) -> None:
    with linked_hub.session() as s:
        links = s.execute(
            select(Record.no_linkage, Record.aggregate_only, PersonLink.person_id).join(
                PersonLink, PersonLink.record_id == Record.id
            )
        ).all()
    counts: dict[str, int] = {}
    for _, _, pid in links:
        counts[pid] = counts.get(pid, 0) + 1
    restricted = [pid for no_link, agg, pid in links if no_link or agg]
    assert restricted and all(counts[pid] == 1 for pid in restricted)


def amend(hub: Hub, agreement: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Activate version 1.1.0 of example ``agreement``, changed by ``change``."""
    data = make_agreement_data(AGREEMENTS_DIR / f"{agreement}.yaml")
    change(data)
    data["agreement"]["version"] = "1.1.0"
    data["amendments"].append({"version": "1.1.0", "date": "2026-01-01", "summary": "test"})
    load_agreement(hub, Agreement.model_validate(data))


def cvi_people(hub: Hub) -> list[tuple[str | None, str, int]]:
    """(exit date, person id, records of that person) of every CVI record."""
    with hub.session() as s:
        rows = s.execute(
            select(Record.values, Record.dataset_id, PersonLink.person_id).join(
                PersonLink, PersonLink.record_id == Record.id
            )
        ).all()
    size: dict[str, int] = {}
    for _, _, pid in rows:
        size[pid] = size.get(pid, 0) + 1
    return [
        (values.get("exit_date"), pid, size[pid])
        for values, ds, pid in rows
        if ds == "cvi_participants"
    ]


@pytest.mark.parametrize("which", ["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def test_records_whose_consent_has_ended_are_no_longer_linked(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Amended, the CVI agreement says a participant's consent ends on their exit date: from
    then on the record is not used, so the next run leaves it a person id of its own. One
    ending today is still in force; and the report's link rates count as linkable only what
    the run could link."""
    hub = linked(request.getfixturevalue(which), tmp_path)
    today = hub.today().isoformat()
    before = cvi_people(hub)
    ended = [(end, pid) for end, pid, n in before if end and end < today and n > 1]
    assert len(ended) > 1  # linked, until now
    # One of them ends today instead: the last day of consent is still in it.
    last_day = ended[0][1]
    with hub.session() as s:
        for record in s.scalars(
            select(Record)
            .join(PersonLink, PersonLink.record_id == Record.id)
            .where(Record.dataset_id == "cvi_participants", PersonLink.person_id == last_day)
        ):
            record.values = {**record.values, "exit_date": today}

    def consent_ends_at_exit(data: dict[str, Any]) -> None:
        data["consent"]["expiry_field"] = "exit_date"

    amend(hub, "dsa-cvi-participants", consent_ends_at_exit)
    admin = make_actor(hub, "admin", Role.admin)
    with hub.session() as s:
        summary = run_linkage(s, "test", hub.today())
    with hub.session() as s:
        rates = linkage_report(s, admin)["link_rates"]
    after = cvi_people(hub)
    assert summary.splits > 0 and len(after) == len(before)
    assert all(n == 1 for end, _, n in after if end and end < today)
    assert any(n > 1 for end, pid, n in after if end == today and pid == last_day)
    assert any(n > 1 for end, _, n in after if not end or end > today)  # the rest still link
    assert sum(r["records"] for r in rates["by_agency"]) == summary.linkable_records
    cvi = next(r for r in rates["by_agency"] if r["dataset"] == "cvi_participants")
    with hub.session() as s:
        usable = s.scalars(
            select(Record.values).where(
                Record.dataset_id == "cvi_participants", ~Record.no_linkage, ~Record.aggregate_only
            )
        ).all()
    in_force = [v for v in usable if not v.get("exit_date") or v["exit_date"] >= today]
    assert cvi["records"] == len(in_force) < len(usable)


@pytest.mark.parametrize(
    ("method", "permits"),
    [
        (None, True),
        ({"match_threshold": 0.9}, True),
        ({"type": "bloom_clk"}, False),
        ({"key_custody": "linkage_unit"}, False),
    ],
)
def test_a_linkage_method_the_hub_cannot_carry_out_permits_no_linkage(
    method: dict[str, Any] | None, permits: bool
) -> None:
    """Lint refuses these methods; an agreement stored before it did is still not linked."""
    link = Linkage.model_validate(
        {"permitted": True, "link_with": ["a", "b"], "prohibited_with": ["b"], "method": method}
    )
    assert linkage_terms(link) == (permits, {"a"})


def test_an_agreement_match_threshold_decides_its_links(linked_hub: Hub) -> None:
    with linked_hub.session() as s:
        loose = run_linkage(s, "test", linked_hub.today())

    def strict(data: dict[str, Any]) -> None:
        data["linkage"]["method"] = {"match_threshold": 0.999999}

    amend(linked_hub, "dsa-police-victimizations", strict)
    admin = make_actor(linked_hub, "admin", Role.admin)
    with linked_hub.session() as s:
        summary = run_linkage(s, "test", linked_hub.today())
        run = s.get(LinkageRun, summary.run_id)
        assert run is not None
        recorded = run.params["agreement_thresholds"]
        page = render_report(linkage_report(s, admin))
    assert recorded == {"police_victimizations": 0.999999}
    assert summary.agreement_thresholds == recorded  # and so in the linkage.run audit event
    assert summary.links < loose.links and summary.splits > 0
    # The report says so, beside the hub's own threshold.
    assert "<li><code>police_victimizations</code>: 0.999999</li>" in page


def test_every_record_gets_a_person_id_and_reruns_are_stable(linked_hub: Hub) -> None:
    def snapshot() -> dict[int, str]:
        with linked_hub.session() as s:
            return dict(s.execute(select(PersonLink.record_id, PersonLink.person_id)).all())

    first = snapshot()
    with linked_hub.session() as s:
        n_records = len(s.execute(select(Record.id)).all())
        run_linkage(s, "test", linked_hub.today())
    assert len(first) == n_records
    assert snapshot() == first


def test_an_agreement_out_of_force_stops_linkage_of_its_data(linked_hub: Hub) -> None:
    with linked_hub.session() as s:
        in_force, pairs = permitted_pairs(s, dt.date(2027, 7, 1))
    assert in_force == set() and pairs == set()
    # A run then gives every record a person of its own (invariant 6: nothing outside an
    # active agreement gets linked), and says which ids that changed.
    run = linked_hub.transact(lambda s: run_linkage(s, "test", dt.date(2027, 7, 1)))
    with linked_hub.session() as s:
        ids = list(s.execute(select(PersonLink.person_id)).scalars())
    assert run.linkable_records == 0 and len(ids) == len(set(ids)) == run.records
    assert run.ids_changed > 0


def test_evaluation_refuses_a_truth_file_without_the_needed_columns(
    linked_hub: Hub, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows([["dataset", "id"], ["x", "1"]])
    from hub.errors import InvalidRequest

    with linked_hub.session() as s, pytest.raises(InvalidRequest, match="lacks column"):
        evaluate(s, linked_hub.keys, bad)


def test_a_second_month_links_to_the_first_and_first_month_ids_change_only_as_logged(
    hub: Hub, tmp_path: Path
) -> None:
    generate(tmp_path / "x", people=300, seed=11)
    cutoff = "2026-09-01"
    upload_all(hub, tmp_path / "x", keep=("0000", cutoff))
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    with hub.session() as s:
        first = dict(s.execute(select(PersonLink.record_id, PersonLink.person_id)).all())
    upload_all(hub, tmp_path / "x", keep=(cutoff, "9999"), load=False)
    second = hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    with hub.session() as s:
        now = dict(s.execute(select(PersonLink.record_id, PersonLink.person_id)).all())
        changes = s.scalars(select(LinkageChange).where(LinkageChange.run_id == second.run_id))
        logged = {(c.kind, c.person_id, c.other_person_id) for c in changes}
        new_records = set(now) - set(first)
        joined = {now[r] for r in new_records} & set(first.values())
    assert new_records, "the second month added records"
    assert joined, "second-month records joined people known from the first month"
    for record, old in first.items():
        new = now[record]
        assert new == old or ("merge", new, old) in logged or ("split", old, new) in logged, record
    assert second.merges + second.splits == len(logged)
    # Most first-month people are untouched by a month of new data.
    assert sum(now[r] == old for r, old in first.items()) >= 0.97 * len(first)


def test_each_run_records_its_model_and_report_figures_and_is_audited(linked_hub: Hub) -> None:
    with linked_hub.session() as s:
        run = s.scalars(select(LinkageRun).order_by(LinkageRun.id.desc())).first()
        audited = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "linkage.run")
        )
    assert run is not None and run.status == "finished" and run.method == engine.METHOD
    params = run.params
    assert params["engine"]["threshold"] == engine.EngineSettings().threshold
    assert [c["output_column_name"] for c in params["model"]["comparisons"]][:3] == [
        "first_name",
        "surname",
        "birth_date",
    ]
    assert sum(b["pairs"] for b in params["histogram"]) == params["scored_pairs"] > 0
    assert {e["threshold"] for e in params["estimates"]} >= {0.8}
    assert set(params["timings"]) >= {"u", "m", "predict", "cluster"}
    assert audited == 1


@pytest.mark.parametrize("which", ["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def test_a_stale_person_id_is_put_right_by_the_next_run_and_counted(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    hub: Hub = request.getfixturevalue(which)
    generate(tmp_path / "x", people=60, seed=8)
    upload_all(hub, tmp_path / "x")
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    with hub.session() as s:
        before = dict(s.execute(select(PersonLink.record_id, PersonLink.person_id)).all())
        # A person of three or more records: the others outvote the stale one.
        shared = next(pid for pid in before.values() if list(before.values()).count(pid) > 2)
        record = min(r for r, pid in before.items() if pid == shared)
        s.execute(
            PersonLink.__table__.update()
            .where(PersonLink.record_id == record)
            .values(person_id="p-stale")
        )
    again = hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    with hub.session() as s:
        after = dict(s.execute(select(PersonLink.record_id, PersonLink.person_id)).all())
    assert after == before and again.ids_changed == 1


def _reference_person_ids(
    clusters: list[list[int]], previous: dict[int, str], key_of: Callable[[int], str]
) -> tuple[list[str], list[tuple[str, str, str, int]]]:
    """The rules of assign_person_ids written plainly, one cluster at a time (the
    implementation is vectorized over records)."""
    from collections import Counter

    from hub.linkage.service import person_id

    smallest = [min(key_of(r) for r in members) for members in clusters]
    order = sorted(range(len(clusters)), key=smallest.__getitem__)
    held = [Counter(previous[r] for r in members if r in previous) for members in clusters]
    heir: dict[str, int] = {}
    for i in order:
        for old, n in held[i].items():
            if old not in heir or n > held[heir[old]][old]:
                heir[old] = i
    ids = [""] * len(clusters)
    changes: list[tuple[str, str, str, int]] = []
    taken = set(previous.values())
    for i in order:
        inherited = sorted((o for o in held[i] if heir[o] == i), key=lambda o: (-held[i][o], o))
        if inherited:
            ids[i] = inherited[0]
            changes += [("merge", ids[i], o, held[i][o]) for o in inherited[1:]]
            changes += [("split", o, ids[i], n) for o, n in sorted(held[i].items()) if heir[o] != i]
            continue
        salt = 0
        while (candidate := person_id([smallest[i]], salt)) in taken:
            salt += 1
        ids[i] = candidate
        taken.add(candidate)
        changes += [("split", o, candidate, n) for o, n in sorted(held[i].items())]
    return ids, changes


@pytest.mark.parametrize("seed", range(40))
def test_person_ids_follow_the_rules_on_random_reclusterings(seed: int) -> None:
    import random

    rng = random.Random(seed)
    n = rng.randint(1, 60)
    records = list(range(1, n + 1))
    rng.shuffle(records)
    clusters: list[list[int]] = []
    while records:
        size = rng.choice([1, 1, 2, 3, 5])
        clusters.append(records[:size])
        records = records[size:]
    olds = [f"p-{c}" for c in "abcdefg"[: rng.randint(1, 7)]]
    previous = {r: rng.choice(olds) for r in range(1, n + 1) if rng.random() < 0.7}
    ids, changes = assign_person_ids(clusters, previous, key)
    assert (ids, [(c.kind, c.person_id, c.other_person_id, c.records) for c in changes]) == (
        _reference_person_ids(clusters, previous, key)
    )


@pytest.mark.postgres
def test_postgres_reads_records_for_linkage_as_sqlite_does(
    hub: Hub, pg_hub: Hub, tmp_path: Path
) -> None:
    """PostgreSQL's loader streams COPY output through pyarrow; it must give the engine what
    the SQLite path's row fetch gives (ids, keys, flags, person ids, every token, nulls)."""
    from hub.linkage.service import _load

    generate(tmp_path / "x", people=80, seed=3)
    pg_hub.keys = hub.keys  # the same tokens on both
    frames = []
    for h in (hub, pg_hub):
        with h.session() as s:
            assert len(_load(s)) == 0  # nothing stored yet: an empty frame, not an error
        upload_all(h, tmp_path / "x")
        h.transact(lambda s, h=h: run_linkage(s, "test", h.today()))
        with h.session() as s:
            loaded = _load(s)
            assert loaded["unique_id"].is_unique and loaded["unique_id"].dtype == np.int64
            # Ids differ (COPY stores a chunk in record-key order): compare by record.
            frames.append(
                loaded.drop(columns="unique_id")
                .sort_values(["source_dataset", "record_key"])
                .reset_index(drop=True)
            )
    sqlite, postgres = frames
    assert len(sqlite) > 100 and list(sqlite.columns) == list(postgres.columns)
    for column in sqlite.columns:
        if column == "person_id":  # drawn from record keys, which differ only by chance
            assert postgres[column].notna().all() and sqlite[column].notna().all()
            continue
        left, right = sqlite[column].astype(object), postgres[column].astype(object)
        assert left.where(left.notna(), None).tolist() == right.where(right.notna(), None).tolist()


def police_uploader(hub: Hub) -> Callable[[list[dict[str, str]]], object]:
    """Load the example agreements and make a police steward; returns an upload of rows."""
    from factories import load_examples, make_actor, make_police_csv, upload_as_police_steward
    from hub.auth.policies import Role

    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    return lambda rows: upload_as_police_steward(hub, make_police_csv(rows))


LINK_ORPHANS = (
    "SELECT count(*) FROM person_links l LEFT JOIN records r ON r.id = l.record_id "
    "WHERE r.id IS NULL"
)


@pytest.mark.parametrize("which", ["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def test_no_person_link_outlives_its_record(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """person_links has no foreign keys (a per-row check cost PostgreSQL 70% of writing them),
    so the code that deletes records must delete their links: a correction replacing linked
    records, then a retention purge of the whole dataset."""
    from sqlalchemy import text

    from factories import make_police_row
    from hub.agreements.lifecycle import transition
    from hub.agreements.service import get_version
    from hub.auth.service import actor_of, ensure_admin
    from hub.db.models import DestructionOrder
    from hub.retention import run_due_destruction

    hub: Hub = request.getfixturevalue(which)
    upload = police_uploader(hub)

    def count(sql: str) -> int:
        with hub.session() as s:
            return int(s.execute(text(sql)).scalar_one())

    upload([make_police_row(i) for i in range(1, 7)])
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    assert count("SELECT count(*) FROM person_links") == 6
    upload([make_police_row(1, victim_sex="F"), make_police_row(2, victim_sex="F")])
    assert count(LINK_ORPHANS) == 0
    assert count("SELECT count(*) FROM person_links") == 4  # the two replaced are unlinked
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    with hub.session() as s:
        admin = actor_of(ensure_admin(s))
        gov = get_version(s, "dsa-police-victimizations", "1.0.0")
        transition(s, gov.row, gov.spec, "terminated", admin, hub.today(), "ended")
        due = s.execute(select(DestructionOrder.due_on)).scalar_one()
    with hub.session() as s:
        assert run_due_destruction(s, due)[0]["records_destroyed"] == 6
    assert count("SELECT count(*) FROM records") == 0
    assert count("SELECT count(*) FROM person_links") == 0


@pytest.mark.postgres
def test_a_record_deleted_while_a_run_scores_gets_no_link(
    pg_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correction that replaces records after the run read them but before it writes its
    links (the engine can take minutes) must not leave links to records that are gone."""
    from sqlalchemy import text

    from factories import make_police_row

    hub = pg_hub
    upload = police_uploader(hub)

    upload([make_police_row(i, victim_first_name=f"Name{i}") for i in range(1, 7)])
    scoring = engine.link

    def link_while_a_correction_lands(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = scoring(*args, **kwargs)
        # Another connection, committed while the run still holds what it read.
        upload([make_police_row(1, victim_sex="F"), make_police_row(2, victim_sex="F")])
        return result

    monkeypatch.setattr(engine, "link", link_while_a_correction_lands)
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    with hub.session() as s:
        assert s.execute(text(LINK_ORPHANS)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(PersonLink)).scalar_one() == 4
