"""The spec model: signing form, JSON Schema for editors, vocabularies that parse strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from contracts.loader import parse_agreement
from contracts.model import SIGNING_FORM_HEADER, Agreement
from tests.contracts.contract_factories import (
    EXAMPLES,
    lint_data,
    make_example,
    make_example_data,
    set_at,
    to_yaml,
)


def signing_form_of(data: dict[str, Any]) -> bytes:
    return Agreement.model_validate(data).signing_form()


# --- signing form ---------------------------------------------------------------------------


def test_signing_form_leaves_out_the_lifecycle_state_the_hub_manages() -> None:
    data = make_example_data("police")
    before = signing_form_of(data)
    data["agreement"]["status"] = "draft"
    for signatory in data["signatories"]:
        signatory.pop("signed_on")
    data.pop("approvals")
    assert signing_form_of(data) == before
    # The canonical hash still covers the whole document.
    assert Agreement.model_validate(data).sha256() != make_example("police").sha256()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("agreement.title", "Police victimizations"),
        ("agreement.expiry_date", "2027-06-29"),
        ("datasets[0].fields[8].transform", "keep"),
        ("datasets[0].row_rules[0].handling", "no_linkage"),
        ("outputs.min_cell", 10),
        ("outputs.aggregates[0].budget_share", 0.3),
        ("purposes.prohibited", ["commercial_use"]),
        ("signatories[0].name", "Someone Else"),
        ("approvals_required", ["data_governance_board", "city_council"]),
        ("retention.pseudonymized_tables", "P4Y"),
        ("unlisted_fields_of_dataset", None),
    ],
)
def test_any_edit_to_the_text_changes_the_signing_form(path: str, value: Any) -> None:
    data = make_example_data("police")
    before = signing_form_of(data)
    if path == "unlisted_fields_of_dataset":
        data["datasets"][0]["unlisted_fields"] = "drop"
    else:
        set_at(data, path, value)
    assert signing_form_of(data) != before


def test_signing_form_ignores_yaml_spelling_and_explicit_defaults() -> None:
    before = signing_form_of(make_example_data("police"))
    respelled = yaml.safe_load(yaml.safe_dump(make_example_data("police"), sort_keys=True))
    respelled["linkage"]["method"] = None  # defaults, written out
    respelled["consent"] = {"required": False}
    respelled["datasets"][0]["fields"][7]["required"] = False
    assert signing_form_of(respelled) == before


def test_signing_form_is_labelled_canonical_json() -> None:
    form = make_example("police").signing_form()
    assert form.startswith(SIGNING_FORM_HEADER)
    body = form.removeprefix(SIGNING_FORM_HEADER).decode("utf-8")
    data = json.loads(body)
    assert body == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert "status" not in data["agreement"] and "approvals" not in data
    assert all("signed_on" not in s for s in data["signatories"])


# --- JSON Schema ----------------------------------------------------------------------------


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for owner, node in [("Agreement", schema), *schema.get("$defs", {}).items()]:
        for name, prop in node.get("properties", {}).items():
            found.append((f"{owner}.{name}", prop))
    return found


def test_every_field_in_the_json_schema_has_a_description() -> None:
    schema = Agreement.model_json_schema(by_alias=True)
    props = _properties(schema)
    assert len(props) > 150
    missing = [name for name, prop in props if not prop.get("description")]
    assert missing == []
    for name, node in schema["$defs"].items():
        assert node.get("description"), name


def test_the_json_schema_uses_the_authored_spelling() -> None:
    schema = Agreement.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    assert "class" in defs["DatasetField"]["properties"]
    transform = defs["Transform"]
    assert {"type": "string", "enum": ["drop", "keep", "keyed_hash", "linkage_token"]} in (
        transform["anyOf"]
    )
    flags = defs["RegimeFlag"]["enum"]
    assert flags == [
        "hipaa_covered",
        "part2_program",
        "ferpa_agency",
        "cjis_agency",
        "vawa_funded",
        "voca_funded",
        "juvenile_records",
    ]
    assert "limited_data_set_dua" in defs["LegalBasis"]["properties"]["pathway"]["description"]


def test_every_example_validates_against_the_json_schema() -> None:
    """What an editor checks as legal staff type: the examples pass, a typo does not."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(Agreement.model_json_schema(by_alias=True))
    for name in EXAMPLES:
        document = json.loads(json.dumps(make_example_data(name), default=str))
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], (name, errors)
    broken = json.loads(json.dumps(make_example_data("police"), default=str))
    broken["datasets"][0]["fields"][8]["transform"] = {"truncate": "fortnight"}
    assert list(validator.iter_errors(broken))


# --- vocabularies ---------------------------------------------------------------------------


def test_an_unknown_regime_flag_is_a_structural_problem() -> None:
    data = make_example_data("police")
    data["parties"][0]["regime_flags"].append("cjis")
    problems = lint_data(data)
    assert [p.path for p in problems] == ["parties[0].regime_flags[2]"]
    assert "should be 'hipaa_covered'" in problems[0].message


def test_a_pathway_must_belong_to_its_regime() -> None:
    data = make_example_data("hospital")
    data["legal_basis"][0]["pathway"] = "audit_evaluation"
    problems = lint_data(data)
    assert [p.path for p in problems] == ["legal_basis[0]"]
    assert problems[0].message.startswith("audit_evaluation is not a HIPAA pathway; use one of")


def test_state_statute_consent_and_contract_take_any_pathway_name() -> None:
    data = make_example_data("police")
    data["legal_basis"][0]["pathway"] = "juvenile_court_order"
    assert lint_data(data) == []


@pytest.mark.parametrize("bad", ["3 years", "P", "PT", "P3", "P1YT"])
def test_retention_periods_are_iso_8601_durations(bad: str) -> None:
    data = make_example_data("police")
    data["retention"]["linkage_tokens"] = bad
    assert [p.path for p in lint_data(data)] == ["retention.linkage_tokens"]


def test_aggregates_may_be_kept_indefinitely_or_for_a_duration() -> None:
    data = make_example_data("police")
    data["retention"]["aggregates"] = "P10Y"
    assert lint_data(data) == []
    data["retention"]["aggregates"] = "forever"
    assert [p.path for p in lint_data(data)] == ["retention.aggregates"]


def test_a_first_cut_agreement_without_the_new_sections_still_parses() -> None:
    """Agreements written before the full spec (no incidents, consent, amendments,
    approvals_required, security details) stay valid."""
    data = make_example_data("referrals")
    for key in ("incidents", "subcontractors", "amendments", "approvals_required"):
        data.pop(key, None)
    data["security"] = {"profile": "baseline"}
    data["retention"] = {"pseudonymized_tables": "P3Y", "linkage_tokens": "P3Y"}
    for party in data["parties"]:
        party.pop("org_type")
    agreement, problems = parse_agreement(to_yaml(data))
    assert agreement is not None and problems == []
    assert agreement.approvals_required == () and agreement.consent.required is False
