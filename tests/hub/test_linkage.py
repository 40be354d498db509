from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from factories import load_examples, make_actor
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import PersonLink, Record
from hub.ingest.service import upload_extract
from hub.linkage.evaluate import evaluate
from hub.linkage.service import RULES, cluster, permitted_pairs, run_linkage
from hub.synth import generate


def make_families(**fams: str) -> dict[str, set[str]]:
    return {k: set(v.split("|")) for k, v in fams.items()}


def test_records_agreeing_on_one_rule_are_linked_and_others_are_not() -> None:
    families = {
        1: make_families(fn="A", ln="B", dob="1", sex="M"),
        2: make_families(fn="A", ln="B", dob="1"),  # same person, other agency
        3: make_families(fn="A", ln="C", dob="2", sex="M"),  # someone else
    }
    uf, links = cluster(families, {1: "x", 2: "y", 3: "y"}, {frozenset(("x", "y"))})
    assert uf.find(1) == uf.find(2) != uf.find(3)
    assert links == 1


def test_datasets_whose_agreements_do_not_both_permit_are_never_compared() -> None:
    families = {
        1: make_families(fn="A", ln="B", dob="1"),
        2: make_families(fn="A", ln="B", dob="1"),
    }
    uf, _ = cluster(families, {1: "x", 2: "y"}, pairs=set())
    assert uf.find(1) != uf.find(2)


def test_a_record_without_birth_date_joins_only_an_unambiguous_name_group() -> None:
    families = {
        1: make_families(fn="A", ln="B", dob="1", by="1990"),
        2: make_families(fn="A", ln="B"),  # no birth date
        3: make_families(fn="A", ln="B", dob="2", by="1970"),  # same name, different person
    }
    uf, _ = cluster(families, dict.fromkeys(families, "x"), set())
    assert uf.find(2) not in (uf.find(1), uf.find(3))
    del families[3]
    uf, _ = cluster(families, dict.fromkeys(families, "x"), set())
    assert uf.find(1) == uf.find(2)


def test_every_rule_names_token_families_that_ingest_produces() -> None:
    produced = {"fn", "fi", "fsx", "ln", "lsx", "dob", "by", "md", "sex", "zip3", "mn"}
    assert all(set(rule) <= produced for rule in RULES)


def upload_all(hub: Hub, extracts: Path) -> None:
    load_examples(hub)
    actors = {
        p: make_actor(hub, f"steward-{p.split(':')[1]}", Role.steward, p)
        for p in ("org:police", "org:hospital", "org:cvi", "org:referral_network")
    }
    plan = {
        "police_victimizations": ("dsa-police-victimizations", "org:police"),
        "ed_injury_visits": ("dsa-hospital-ed-injury", "org:hospital"),
        "cvi_participants": ("dsa-cvi-participants", "org:cvi"),
        "referrals": ("dsa-referrals", "org:referral_network"),
    }
    for ds, (agreement, party) in plan.items():
        content = (extracts / f"{ds}.csv").read_bytes()
        hub.transact(
            lambda s, ds=ds, agreement=agreement, party=party, content=content: upload_extract(
                s,
                hub.keys,
                actors[party],
                agreement_id=agreement,
                dataset_id=ds,
                content=content,
                today=hub.today(),
            )
        )


@pytest.fixture
def linked_hub(hub: Hub, tmp_path: Path) -> Hub:
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


def test_evaluation_refuses_a_truth_file_without_the_needed_columns(
    linked_hub: Hub, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows([["dataset", "id"], ["x", "1"]])
    from hub.errors import InvalidRequest

    with linked_hub.session() as s, pytest.raises(InvalidRequest, match="lacks column"):
        evaluate(s, linked_hub.keys, bad)
