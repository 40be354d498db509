"""Rules across agreements linted together: link_with names datasets that exist and that name
this agreement back, a dataset belongs to one agreement, a party has one legal name."""

from __future__ import annotations

from typing import Any

from contracts.loader import Problem, lint_agreements, parse_agreement
from tests.contracts.contract_factories import EXAMPLES, make_example, make_example_data, to_yaml


def lint_set(**data: dict[str, Any]) -> list[Problem]:
    """Lint example agreements together, with the given ones replaced by edited data."""
    sources = [
        (f"{name}.yaml", to_yaml(data[name] if name in data else make_example_data(name)))
        for name in EXAMPLES
    ]
    return lint_agreements(sources)


def test_the_examples_lint_clean_as_a_set() -> None:
    assert lint_set() == []


def test_link_with_names_a_dataset_no_agreement_declares() -> None:
    police = make_example_data("police")
    police["linkage"]["link_with"].append("ed_visits")
    problems = lint_set(police=police)
    assert [(p.file, p.path) for p in problems] == [("police.yaml", "linkage.link_with[3]")]
    assert "ed_visits is not a dataset of any agreement" in problems[0].message
    assert problems[0].line is not None


def test_one_file_may_name_datasets_of_agreements_linted_apart() -> None:
    text = to_yaml(make_example_data("police"))
    assert parse_agreement(text, "police.yaml")[1] == []
    # Linted as a set of one, its partners are unknown: lint every agreement together.
    alone = lint_agreements([("police.yaml", text)])
    assert [p.path for p in alone] == [f"linkage.link_with[{k}]" for k in range(3)]


def test_link_with_that_is_not_returned_is_reported() -> None:
    hospital = make_example_data("hospital")
    hospital["linkage"]["link_with"].remove("police_victimizations")
    problems = lint_set(hospital=hospital)
    assert [(p.file, p.path) for p in problems] == [("police.yaml", "linkage.link_with[0]")]
    assert "dsa-hospital-ed-injury does not permit linkage with police_victimizations" in (
        problems[0].message
    )


def test_linking_with_a_dataset_whose_agreement_prohibits_it_is_reported() -> None:
    schools = make_example_data("schools")
    schools["linkage"]["link_with"].append("police_victimizations")
    schools["linkage"]["prohibited_with"].remove("police_victimizations")
    problems = lint_set(schools=schools)
    messages = {(p.file, p.message) for p in problems}
    assert (
        "schools.yaml",
        "dsa-police-victimizations prohibits linking police_victimizations with "
        "school_attendance; remove police_victimizations from link_with",
    ) in messages


def test_a_dataset_belongs_to_one_agreement() -> None:
    referrals = make_example_data("referrals")
    referrals["datasets"][0]["id"] = "cvi_participants"
    problems = lint_set(referrals=referrals)
    owners = {(p.file, p.path) for p in problems if "also declared by" in p.message}
    assert owners == {("cvi.yaml", "datasets[0].id"), ("referrals.yaml", "datasets[0].id")}


def test_the_same_version_twice_is_reported() -> None:
    police = make_example_data("police")
    sources = [("a.yaml", to_yaml(police)), ("b.yaml", to_yaml(police))]
    problems = [p for p in lint_agreements(sources) if p.path == "agreement.version"]
    assert [p.file for p in problems] == ["b.yaml"]


def test_a_party_has_one_legal_name() -> None:
    cvi = make_example_data("cvi")
    cvi["parties"][1]["legal_name"] = "Office of Violence Prevention"
    problems = lint_set(cvi=cvi)
    assert [(p.file, p.path) for p in problems] == [("cvi.yaml", "parties[1].legal_name")]


def test_a_broken_file_in_the_set_still_takes_part() -> None:
    police = make_example_data("police")
    police["agreement"]["titel"] = "typo"
    police["linkage"]["link_with"].append("ed_visits")
    problems = lint_set(police=police)
    assert {p.path for p in problems} == {"agreement.titel", "linkage.link_with[3]"}


def test_parsed_agreements_can_be_linted_together_too() -> None:
    police = make_example("police")
    hospital = make_example_data("hospital")
    hospital["linkage"]["link_with"].remove("police_victimizations")
    problems = lint_agreements([police, ("hospital.yaml", to_yaml(hospital))])
    police_problems = [p for p in problems if p.file == police.ref]
    assert police_problems and all(p.line is None for p in police_problems)
    assert any("does not permit linkage with police_victimizations" in p.message for p in problems)


LINKED = "outputs.aggregates[2].numerator.linked"
"""The police rate whose numerator counts ED visits (dsa-hospital-ed-injury's dataset)."""


def test_a_linked_condition_names_a_date_the_linked_dataset_lacks() -> None:
    police = make_example_data("police")
    police["outputs"]["aggregates"][2]["numerator"]["linked"]["time_field"] = "arrival_date"
    problems = lint_set(police=police)
    assert [(p.file, p.path) for p in problems] == [("police.yaml", f"{LINKED}.time_field")]
    assert problems[0].message == (
        "arrival_date is not a field of dataset ed_injury_visits (dsa-hospital-ed-injury); "
        "name its date field"
    )
    assert problems[0].line is not None


def test_a_linked_condition_needs_the_other_date_kept_to_the_day() -> None:
    hospital = make_example_data("hospital")
    arrival = next(f for f in hospital["datasets"][0]["fields"] if f["name"] == "arrival_datetime")
    arrival["transform"] = {"truncate": "month"}
    problems = lint_set(hospital=hospital)
    assert [(p.file, p.path) for p in problems] == [("police.yaml", f"{LINKED}.time_field")]
    assert problems[0].message.startswith(
        "in dataset ed_injury_visits (dsa-hospital-ed-injury), arrival_datetime is kept only to "
        "the month, so a linked condition cannot count days from it"
    )


def test_a_linked_condition_filters_on_values_the_linked_dataset_allows() -> None:
    police = make_example_data("police")
    police["outputs"]["aggregates"][2]["numerator"]["linked"]["filters"] = {
        "injury_intent": ["ASSAULT", "HOMICIDE"],
        "triage_level": ["1"],
    }
    problems = lint_set(police=police)
    assert [(p.path, p.message) for p in problems] == [
        (
            f"{LINKED}.filters.injury_intent",
            "values ['HOMICIDE'] are not allowed for injury_intent",
        ),
        (
            f"{LINKED}.filters.triage_level",
            "triage_level is not a field of dataset ed_injury_visits",
        ),
    ]


def test_a_linked_dataset_of_no_agreement_is_reported_once_at_link_with() -> None:
    police = make_example_data("police")
    police["linkage"]["link_with"] = ["ed_visits"]
    police["outputs"]["aggregates"][2]["requires_linkage"] = ["ed_visits"]
    police["outputs"]["aggregates"][2]["numerator"]["linked"]["dataset"] = "ed_visits"
    problems = [p for p in lint_set(police=police) if p.file == "police.yaml"]
    assert [p.path for p in problems] == ["linkage.link_with[0]"]
