"""Export of agreements to ODRL 2.2 JSON-LD (contracts.readable.odrl)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.model import Agreement
from contracts.readable import to_odrl
from contracts.readable.odrl import (
    ODRL_CONTEXT,
    aggregate_uid,
    dataset_uid,
    party_uid,
    policy_uid,
)
from tests.contracts.contract_factories import EXAMPLES, make_example, make_example_data

Rule = dict[str, Any]


def exported(agreement: Agreement) -> dict[str, Any]:
    """The export after a JSON round trip, as a partner would read it."""
    result: dict[str, Any] = json.loads(json.dumps(to_odrl(agreement), ensure_ascii=False))
    return result


def target_uid(rule: Rule) -> str:
    target = rule["target"]
    return str(target["uid"] if isinstance(target, dict) else target)


def constraint(rule: Rule, left: str) -> Any:
    """The right operand of the rule's constraint on ``left``."""
    found = [c["rightOperand"] for c in rule.get("constraint", []) if c["leftOperand"] == left]
    assert found, f"no {left} constraint in {rule['uid']}"
    return found[0]


def ids(operand: list[dict[str, str]]) -> list[str]:
    return [item["@id"] for item in operand]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_export_is_an_odrl_agreement_with_its_parties(name: str) -> None:
    agreement = make_example(name)
    policy = exported(agreement)
    assert policy["@context"][0] == ODRL_CONTEXT
    assert {"hub", "dpv"} <= set(policy["@context"][1])
    assert policy["@type"] == "Agreement"
    assert policy["uid"] == f"urn:ovphub:agreement:{agreement.id}@{agreement.version}"
    provider = next(p for p in agreement.parties if p.role == "data_provider")
    operator = next(p for p in agreement.parties if p.role == "hub_operator")
    assert policy["assigner"]["uid"] == party_uid(provider.id)
    assert policy["assignee"]["uid"] == party_uid(operator.id)
    assert policy["permission"] and policy["prohibition"]
    for rule in policy["permission"] + policy["prohibition"] + policy.get("obligation", []):
        assert rule["action"] and rule["target"] and rule["uid"]
    assert len(policy["dpv:hasLegalBasis"]) == len(agreement.legal_basis)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_approved_aggregate_has_a_distribute_permission(name: str) -> None:
    agreement = make_example(name)
    policy = exported(agreement)
    permissions = {target_uid(r): r for r in policy["permission"]}
    p = agreement.outputs.privacy
    for aggregate in agreement.outputs.aggregates:
        rule = permissions[aggregate_uid(agreement, aggregate.id)]
        assert rule["action"] == "distribute"
        assert rule["target"]["hub:derivedFrom"] == dataset_uid(aggregate.dataset)
        assert len(ids(constraint(rule, "recipient"))) == len(agreement.outputs.recipients_allowed)
        assert len(ids(constraint(rule, "purpose"))) == len(agreement.purposes.permitted)
        loss = "hub:rho" if p.model == "zcdp" else "hub:epsilon"
        assert constraint(rule, loss) == pytest.approx(aggregate.budget_share * p.budget.per_period)
        assert constraint(rule, "hub:minCellSize") == agreement.outputs.min_cell
        dates = [
            c["rightOperand"]["@value"]
            for c in rule["constraint"]
            if c["leftOperand"] == "dateTime"
        ]
        assert dates == [
            str(agreement.agreement.effective_date),
            str(agreement.agreement.expiry_date),
        ]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_prohibition_of_the_agreement_is_exported(name: str) -> None:
    agreement = make_example(name)
    policy = exported(agreement)
    prohibitions: list[Rule] = policy["prohibition"]
    data = f"{policy_uid(agreement)}:data"
    purposes = [
        constraint(r, "purpose")["@id"]
        for r in prohibitions
        if r["action"] == "use" and r.get("constraint")
    ]
    assert purposes == [f"hub:purpose:{p}" for p in agreement.purposes.prohibited]
    assert any(
        r["action"] == "distribute" and r["target"] == data and r.get("hub:recordLevel")
        for r in prohibitions
    )
    links = [r for r in prohibitions if r["action"] == "hub:link" and r.get("constraint")]
    if agreement.linkage.prohibited_with:
        assert ids(constraint(links[0], "hub:linkedWith")) == [
            dataset_uid(d) for d in agreement.linkage.prohibited_with
        ]
    denied = [
        r
        for r in prohibitions
        if any(c["leftOperand"] == "recipient" for c in r.get("constraint", []))
    ]
    if agreement.outputs.recipients_denied:
        assert ids(constraint(denied[0], "recipient")) == [
            f"hub:recipient:{r}" for r in agreement.outputs.recipients_denied
        ]
    else:
        assert denied == []
    assert any(r["action"] == "hub:reidentify" for r in prohibitions)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_dataset_may_be_used_with_anonymize_and_delete_duties(name: str) -> None:
    agreement = make_example(name)
    policy = exported(agreement)
    permissions = {target_uid(r): r for r in policy["permission"]}
    for dataset in agreement.datasets:
        rule = permissions[dataset_uid(dataset.id)]
        assert rule["action"] == "use"
        assert rule["assigner"] == party_uid(dataset.provider)
        anonymized = [
            d["action"][0]["refinement"][0]["rightOperand"]
            for d in rule["duty"]
            if isinstance(d["action"], list)
        ]
        assert anonymized == [f.name for f in dataset.fields if f.transform.kind != "keep"]
        deletes = [d for d in rule["duty"] if d["action"] == "delete"]
        assert agreement.retention is not None
        assert [constraint(d, "elapsedTime")["@value"] for d in deletes] == [
            agreement.retention.raw_upload,
            agreement.retention.pseudonymized_tables,
            agreement.retention.linkage_tokens,
        ]
        consent = [d for d in rule["duty"] if d["action"] == "obtainConsent"]
        assert len(consent) == (1 if agreement.consent.required else 0)


def test_an_agreement_without_linkage_prohibits_all_linkage() -> None:
    policy = exported(make_example("victim_services"))
    assert not any(r["action"] == "hub:link" for r in policy["permission"])
    assert any(r["action"] == "hub:link" and not r.get("constraint") for r in policy["prohibition"])


def test_dpv_terms_from_the_spec_are_used_for_purposes() -> None:
    policy = exported(make_example("schools"))
    use = next(r for r in policy["permission"] if r["action"] == "use")
    assert "dpv:ServiceOptimisation" in ids(constraint(use, "purpose"))


def test_several_providers_become_a_party_collection() -> None:
    data = make_example_data("police")
    data["parties"].append(
        {"id": "org:sheriff", "role": "data_provider", "legal_name": "Example Sheriff"}
    )
    policy = exported(Agreement.model_validate(data))
    assigner = policy["assigner"]
    assert assigner["@type"] == "PartyCollection"
    assert [m["uid"] for m in assigner["hub:member"]] == [
        party_uid("org:police"),
        party_uid("org:sheriff"),
    ]
    assert all(m["partOf"] == assigner["uid"] for m in assigner["hub:member"])


def test_a_mean_and_a_rate_state_their_value_and_numerator() -> None:
    referrals = make_example("referrals")
    targets = {target_uid(r): r["target"] for r in exported(referrals)["permission"]}
    mean = targets[aggregate_uid(referrals, "referral_days_to_service_qtr")]
    assert mean["hub:measure"] == "mean"
    assert mean["hub:value"] == {
        "hub:bounds": [0, 90],
        "hub:daysBetween": ["referral_date", "first_service_date"],
    }
    rate = targets[aggregate_uid(referrals, "referral_followup_qtr")]
    assert rate["hub:numerator"] == {
        "hub:daysBetween": ["referral_date", "followup_done_date"],
        "hub:atMostDays": 7,
    }
    assert "hub:value" not in rate
    police = make_example("police")
    targets = {target_uid(r): r["target"] for r in exported(police)["permission"]}
    linked = targets[aggregate_uid(police, "repeat_victimization_yr")]["hub:numerator"]
    assert linked == {
        "hub:linkedEvent": {
            "hub:dataset": dataset_uid("ed_injury_visits"),
            "hub:timeField": "arrival_datetime",
            "hub:daysFrom": -365,
            "hub:daysTo": -1,
            "hub:filter": {"injury_intent": ["ASSAULT"]},
        }
    }
