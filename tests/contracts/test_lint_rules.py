"""One scenario per lint rule: a change to a clean example that makes the rule fire (at the
right YAML path, with a sentence saying what to change), and a fix that makes it clean again.

The fix is often a different compliant spelling than the example's own (a VAWA provider
refusing rows with ``consent_to_share != WRITTEN`` instead of ``every row``), so the rule is
shown to accept every form it documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from contracts.lint import RULES
from tests.contracts.contract_factories import (
    delete_at,
    field_index,
    field_of,
    get_at,
    lint_data,
    make_example_data,
    set_at,
)

Edit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    example: str
    breaks: Edit
    fixes: Edit
    path: str | Callable[[dict[str, Any]], str]
    says: str

    def path_in(self, data: dict[str, Any]) -> str:
        return self.path(data) if callable(self.path) else self.path


def setting(path: str, value: Any) -> Edit:
    return lambda data: set_at(data, path, value)


def deleting(path: str) -> Edit:
    return lambda data: delete_at(data, path)


def appending(path: str, value: Any) -> Edit:
    return lambda data: get_at(data, path).append(value)


def both(*edits: Edit) -> Edit:
    def run(data: dict[str, Any]) -> None:
        for edit in edits:
            edit(data)

    return run


def field_edit(name: str, **changes: Any) -> Edit:
    def run(data: dict[str, Any]) -> None:
        field = field_of(data, name)
        for key, value in changes.items():
            if value is None:
                field.pop(key, None)
            else:
                field[key] = value

    return run


def field_path(name: str, key: str) -> Callable[[dict[str, Any]], str]:
    return lambda data: f"datasets[0].fields[{field_index(data, name)}].{key}"


def without_rule(when: str) -> Edit:
    def run(data: dict[str, Any]) -> None:
        rules = data["datasets"][0]["row_rules"]
        data["datasets"][0]["row_rules"] = [r for r in rules if r["when"] != when]

    return run


def measuring(index: int, measure: str, **parts: Any) -> Edit:
    """Make aggregate ``index`` a sum, mean or rate with its value or numerator."""

    def run(data: dict[str, Any]) -> None:
        aggregate = data["outputs"]["aggregates"][index]
        aggregate["measure"] = measure
        aggregate.update(parts)

    return run


def overspending(total: float) -> Edit:
    """Set the first aggregate's budget share so that all shares add up to ``total``."""

    def run(data: dict[str, Any]) -> None:
        aggregates = data["outputs"]["aggregates"]
        rest = sum(g["budget_share"] for g in aggregates[1:])
        aggregates[0]["budget_share"] = round(total - rest, 9)

    return run


JUVENILE = "juvenile_flag == true"
EVERY_ROW_CONSENT = "every row"
AGG = "outputs.aggregates"

CASES = [
    # --- structure --------------------------------------------------------------------------
    Case(
        "expiry_not_after_effective",
        "check_dates",
        "police",
        setting("agreement.expiry_date", "2024-01-01"),
        setting("agreement.expiry_date", "2027-06-30"),
        "agreement.expiry_date",
        "is not after the effective date",
    ),
    Case(
        "supersedes_a_later_version",
        "check_dates",
        "police",
        setting("agreement.supersedes", "1.0.0"),
        setting("agreement.supersedes", "0.9.0"),
        "agreement.supersedes",
        "must have a higher number",
    ),
    Case(
        "no_hub_operator",
        "check_parties",
        "police",
        setting("parties[1].role", "data_recipient"),
        setting("parties[1].role", "hub_operator"),
        "parties",
        "no party has role hub_operator",
    ),
    Case(
        "provider_without_signatory",
        "check_signatories",
        "police",
        deleting("signatories[0]"),
        appending("signatories", {"party": "org:police", "name": "A Chief", "title": "Chief"}),
        "parties[0]",
        "org:police (data_provider) has no signatory",
    ),
    Case(
        "hub_operator_without_signatory",
        "check_signatories",
        "hospital",
        deleting("signatories[1]"),
        appending("signatories", {"party": "org:ovp", "name": "A Director", "title": "Director"}),
        "parties[1]",
        "org:ovp (hub_operator) has no signatory",
    ),
    Case(
        "signatory_for_a_stranger",
        "check_signatories",
        "police",
        appending("signatories", {"party": "org:mayor", "name": "A Mayor", "title": "Mayor"}),
        deleting("signatories[2]"),
        "signatories[2].party",
        "org:mayor is not a party to this agreement",
    ),
    Case(
        "record_key_not_a_field",
        "check_datasets",
        "police",
        setting("datasets[0].record_key", "victim_id"),
        setting("datasets[0].record_key", "victimization_id"),
        "datasets[0].record_key",
        "record key victim_id is not one of the fields",
    ),
    Case(
        "direct_identifier_kept",
        "check_datasets",
        "police",
        field_edit("victim_first_name", transform="keep"),
        field_edit("victim_first_name", transform="drop", use="none", link_as=None),
        field_path("victim_first_name", "transform"),
        "victim_first_name is a direct identifier but is kept (keep); use drop, keyed_hash or "
        "linkage_token",
    ),
    Case(
        "direct_identifier_hashed_is_fine_but_kept_date_is_not",
        "check_datasets",
        "hospital",
        field_edit("patient_dob", transform={"truncate": "month"}, use="analysis", link_as=None),
        field_edit("patient_dob", transform="keyed_hash", use="internal_join"),
        field_path("patient_dob", "transform"),
        "patient_dob is a direct identifier but is kept (truncate)",
    ),
    Case(
        "age_linked_without_its_date",
        "check_datasets",
        "police",
        field_edit("victim_age", age_at=None),
        field_edit("victim_age", age_at="incident_datetime"),
        field_path("victim_age", "age_at"),
        "victim_age is linked as an age; name the date it was taken on with age_at",
    ),
    Case(
        "community_area_linked_without_its_keyset",
        "check_datasets",
        "cvi",
        field_edit("home_community_area", keyset=None),
        field_edit("home_community_area", keyset="community_area"),
        field_path("home_community_area", "keyset"),
        "home_community_area is linked as a community area, compared with ZIPs through the "
        "areas the hub ships; set keyset: community_area",
    ),
    Case(
        "age_at_names_no_date",
        "check_datasets",
        "police",
        field_edit("victim_age", age_at="victim_sex"),
        field_edit("victim_age", age_at="incident_datetime"),
        field_path("victim_age", "age_at"),
        "age_at names victim_sex, a string field; name a date or datetime field",
    ),
    Case(
        "age_at_names_no_field",
        "check_datasets",
        "police",
        field_edit("victim_age", age_at="event_day"),
        field_edit("victim_age", age_at="incident_datetime"),
        field_path("victim_age", "age_at"),
        "event_day is not a field of dataset police_victimizations",
    ),
    Case(
        "age_at_without_an_age",
        "check_datasets",
        "police",
        field_edit("victim_sex", age_at="incident_datetime"),
        field_edit("victim_sex", age_at=None),
        field_path("victim_sex", "age_at"),
        "age_at is for link_as: age, but victim_sex is not linked as an age",
    ),
    Case(
        "age_linked_but_not_whole_years",
        "check_datasets",
        "police",
        field_edit("victim_age", type="number"),
        field_edit("victim_age", type="integer"),
        field_path("victim_age", "type"),
        "victim_age is linked as an age, so it must be an integer field",
    ),
    Case(
        "coarsened_to_an_area_the_hub_cannot_place",
        "check_datasets",
        "police",
        field_edit("victim_home_zip", transform={"geo_coarsen": "community_area"}),
        field_edit("victim_home_zip", transform={"geo_coarsen": "zip3"}),
        field_path("victim_home_zip", "transform"),
        "victim_home_zip cannot be coarsened to community_area at ingest: the hub ships no "
        "community_area boundaries or geocoder",
    ),
    Case(
        "a_field_never_used_is_kept",
        "check_datasets",
        "police",
        field_edit("victim_race", use="none"),
        field_edit("victim_race", use="analysis"),
        field_path("victim_race", "transform"),
        "victim_race has use none, so its transform must be drop, not keep",
    ),
    Case(
        "a_location_for_geocoding_is_kept_whole",
        "check_datasets",
        "police",
        field_edit("block_address", use="geocode_only", transform="keep"),
        field_edit("block_address", use="geocode_only", transform="drop"),
        field_path("block_address", "transform"),
        "block_address has use geocode_only, so its transform must be drop or geo_coarsen, "
        "not keep",
    ),
    Case(
        "free_text_kept",
        "check_datasets",
        "police",
        field_edit("narrative", transform="keep"),
        field_edit("narrative", transform="drop"),
        field_path("narrative", "transform"),
        "narrative is free text and may name people; its transform must be drop",
    ),
    Case(
        "ordering_operator_on_text",
        "check_datasets",
        "police",
        setting("datasets[0].row_rules[0].when", "victim_sex < 18"),
        setting("datasets[0].row_rules[0].when", "victim_age < 18"),
        "datasets[0].row_rules[0].when",
        "`<` compares numbers, but victim_sex is string",
    ),
    Case(
        "requires_consent_without_field",
        "check_datasets",
        "victim_services",
        deleting("datasets[0].row_rules[0].consent_field"),
        setting("datasets[0].row_rules[0].consent_field", "consent_to_share"),
        "datasets[0].row_rules[0].consent_field",
        "requires_consent needs consent_field",
    ),
    Case(
        "check_on_an_unknown_field",
        "check_dataset_checks",
        "police",
        setting("datasets[0].checks[1].fields", ["victim_dobb", "incident_datetime"]),
        setting("datasets[0].checks[1].fields", ["victim_dob", "incident_datetime"]),
        "datasets[0].checks[1].fields[0]",
        "victim_dobb is not a field of dataset police_victimizations",
    ),
    Case(
        "check_on_a_field_of_the_wrong_type",
        "check_dataset_checks",
        "police",
        setting("datasets[0].checks[0].fields", ["victim_race"]),
        setting("datasets[0].checks[0].fields", ["incident_datetime"]),
        "datasets[0].checks[0].fields[0]",
        "not_in_future reads a date, from a date or datetime field, but victim_race is string",
    ),
    Case(
        "check_with_too_few_fields",
        "check_dataset_checks",
        "police",
        setting("datasets[0].checks[1].fields", ["victim_dob"]),
        setting("datasets[0].checks[1].fields", ["victim_dob", "incident_datetime"]),
        "datasets[0].checks[1].fields",
        "dates_in_order takes 2 fields (the earlier date, the later date), but 1 is listed",
    ),
    Case(
        "dates_in_order_on_one_field_twice",
        "check_dataset_checks",
        "police",
        setting("datasets[0].checks[1].fields", ["victim_dob", "victim_dob"]),
        setting("datasets[0].checks[1].fields", ["victim_dob", "incident_datetime"]),
        "datasets[0].checks[1].fields",
        "victim_dob is listed more than once",
    ),
    Case(
        "check_condition_on_an_unknown_field",
        "check_dataset_checks",
        "hospital",
        setting("datasets[0].checks[2].when", "injury_intnet == ASSAULT"),
        setting("datasets[0].checks[2].when", "injury_intent == ASSAULT"),
        "datasets[0].checks[2].when",
        "the condition names injury_intnet, which is not a field",
    ),
    Case(
        "check_declared_twice",
        "check_dataset_checks",
        "police",
        appending(
            "datasets[0].checks", {"check": "not_in_future", "fields": ["incident_datetime"]}
        ),
        deleting("datasets[0].checks[2]"),
        "datasets[0].checks[2]",
        "not_in_future on incident_datetime is declared twice",
    ),
    Case(
        "budget_shares_over_one",
        "check_outputs",
        "police",
        overspending(1.1),
        overspending(1.0),
        AGG,
        "budget shares add up to 1.1; they must add up to at most 1",
    ),
    Case(
        "aggregate_on_a_prohibited_dimension",
        "check_outputs",
        "hospital",
        setting(f"{AGG}[0].dimensions", ["month", "facility_id"]),
        setting(f"{AGG}[0].dimensions", ["month", "injury_mechanism"]),
        f"{AGG}[0].dimensions[1]",
        "facility_id is a prohibited dimension in this agreement",
    ),
    Case(
        "aggregate_on_a_field_the_dataset_lacks",
        "check_outputs",
        "police",
        setting(f"{AGG}[0].dimensions", ["month", "weapon_type"]),
        setting(f"{AGG}[0].dimensions", ["month", "weapon_code"]),
        f"{AGG}[0].dimensions[1]",
        "weapon_type is not a field of dataset police_victimizations",
    ),
    Case(
        "time_field_truncated_past_a_month",
        "check_outputs",
        "police",
        field_edit("incident_datetime", transform={"truncate": "week"}),
        field_edit("incident_datetime", transform={"truncate": "day"}),
        f"{AGG}[0].time_field",
        "incident_datetime is stored truncated to week, so its rows cannot be placed in the months",
    ),
    Case(
        "aggregate_filter_on_a_field_not_kept",
        "check_outputs",
        "police",
        setting(f"{AGG}[0].filters", {"block_address": ["100 MAIN ST"]}),
        deleting(f"{AGG}[0].filters"),
        f"{AGG}[0].filters.block_address",
        "block_address is not kept for analysis (transform drop)",
    ),
    Case(
        "aggregate_filter_on_a_boolean_spelled_otherwise",
        "check_outputs",
        "police",
        setting(f"{AGG}[0].filters", {"domestic_related": ["yes"]}),
        setting(f"{AGG}[0].filters", {"domestic_related": ["true"]}),
        f"{AGG}[0].filters.domestic_related",
        "domestic_related is stored as true or false, so filter on those values, not ['yes']",
    ),
    Case(
        "boolean_values_spelled_otherwise",
        "check_datasets",
        "police",
        field_edit("fatal", values=["Y", "N"]),
        field_edit("fatal", values=None),
        field_path("fatal", "values"),
        "fatal is a boolean field: its type already allows true/false, yes/no, y/n and 1/0",
    ),
    # referrals: aggregate 2 is a rate_rows (numerator days_between), 3 a mean (value
    # days_between); police: aggregate 2 is a rate_persons with a linked numerator.
    Case(
        "value_days_between_not_a_field",
        "check_outputs",
        "referrals",
        setting(f"{AGG}[3].value.days_between", ["referral_date", "first_seen_date"]),
        setting(f"{AGG}[3].value.days_between", ["referral_date", "first_service_date"]),
        f"{AGG}[3].value.days_between[1]",
        "first_seen_date is not a field of dataset referrals",
    ),
    Case(
        "value_days_between_not_a_date",
        "check_outputs",
        "referrals",
        setting(f"{AGG}[3].value.days_between", ["urgency", "first_service_date"]),
        setting(f"{AGG}[3].value.days_between", ["followup_due_date", "first_service_date"]),
        f"{AGG}[3].value.days_between[0]",
        "urgency is a string field, not a date field; days_between needs date fields",
    ),
    Case(
        "value_days_between_a_date_kept_to_the_month",
        "check_outputs",
        "referrals",
        field_edit("first_service_date", transform={"truncate": "month"}),
        field_edit("first_service_date", transform="keep"),
        f"{AGG}[3].value.days_between[1]",
        "first_service_date is kept only to the month, so days_between cannot count days from "
        "it; truncate it to day",
    ),
    Case(
        "value_days_between_the_same_field_twice",
        "check_outputs",
        "referrals",
        setting(f"{AGG}[3].value.days_between", ["referral_date", "referral_date"]),
        setting(f"{AGG}[3].value.days_between", ["referral_date", "followup_done_date"]),
        f"{AGG}[3].value.days_between",
        "days_between names referral_date twice",
    ),
    Case(
        "value_field_not_a_field",
        "check_outputs",
        "schools",
        measuring(1, "sum", value={"field": "days_absent", "bounds": [0, 31]}),
        setting(f"{AGG}[1].value.field", "days_unexcused"),
        f"{AGG}[1].value.field",
        "days_absent is not a field of dataset school_attendance",
    ),
    Case(
        "value_field_not_a_number",
        "check_outputs",
        "schools",
        measuring(1, "mean", value={"field": "attendance_month", "bounds": [0, 31]}),
        setting(f"{AGG}[1].value.field", "days_unexcused"),
        f"{AGG}[1].value.field",
        "attendance_month is a date field; a sum or mean adds up an integer or number field; "
        "to add up the days between two dates, use days_between",
    ),
    Case(
        "value_field_not_kept",
        "check_outputs",
        "schools",
        both(
            measuring(1, "mean", value={"field": "tardies", "bounds": [0, 31]}),
            field_edit("tardies", transform="drop", use="none"),
        ),
        field_edit("tardies", transform="keep", use="analysis"),
        f"{AGG}[1].value.field",
        "tardies is not kept for analysis (transform drop), so there is no number to add up",
    ),
    Case(
        "value_field_stored_as_a_band",
        "check_outputs",
        "schools",
        both(
            measuring(1, "sum", value={"field": "tardies", "bounds": [0, 31]}),
            field_edit("tardies", transform={"bin": [0, 5, 32]}),
        ),
        field_edit("tardies", transform={"top_code": 20}),
        f"{AGG}[1].value.field",
        "tardies is stored only as a band (transform bin), so there is no number to add up",
    ),
    Case(
        "numerator_days_between_a_hashed_date",
        "check_outputs",
        "referrals",
        field_edit("followup_done_date", transform="keyed_hash"),
        field_edit("followup_done_date", transform={"truncate": "day"}),
        f"{AGG}[2].numerator.days_between[1]",
        "followup_done_date is not kept for analysis (transform keyed_hash), so days_between "
        "cannot read it",
    ),
    Case(
        "numerator_filter_on_a_field_the_dataset_lacks",
        "check_outputs",
        "referrals",
        setting(f"{AGG}[2].numerator.filters", {"priority": ["HIGH"]}),
        setting(f"{AGG}[2].numerator.filters", {"urgency": ["URGENT", "CRISIS"]}),
        f"{AGG}[2].numerator.filters.priority",
        "priority is not a field of dataset referrals",
    ),
    Case(
        "numerator_filter_value_not_allowed",
        "check_outputs",
        "police",
        setting(f"{AGG}[2].numerator.filters", {"gunshot_injury": ["Y"]}),
        setting(f"{AGG}[2].numerator.filters", {"gunshot_injury": ["YES"]}),
        f"{AGG}[2].numerator.filters.gunshot_injury",
        "values ['Y'] are not allowed for gunshot_injury",
    ),
    Case(
        "linked_numerator_without_time_field",
        "check_outputs",
        "police",
        both(deleting(f"{AGG}[2].time_field"), setting(f"{AGG}[2].dimensions", [])),
        both(
            setting(f"{AGG}[2].time_field", "incident_datetime"),
            setting(f"{AGG}[2].dimensions", ["year"]),
        ),
        f"{AGG}[2].numerator.linked",
        "a linked condition counts days from this row's date, but repeat_victimization_yr has "
        "no time_field; set time_field to a date field of police_victimizations",
    ),
    Case(
        "linked_numerator_on_a_date_kept_to_the_month",
        "check_outputs",
        "police",
        field_edit("incident_datetime", transform={"truncate": "month"}),
        field_edit("incident_datetime", transform={"truncate": "day"}),
        f"{AGG}[2].time_field",
        "incident_datetime is kept only to the month, so a linked condition cannot count days "
        "from it",
    ),
    Case(
        "linked_numerator_on_its_own_dataset",
        "check_outputs",
        "police",
        setting(f"{AGG}[2].numerator.linked.dataset", "police_victimizations"),
        setting(f"{AGG}[2].numerator.linked.dataset", "ed_injury_visits"),
        f"{AGG}[2].numerator.linked.dataset",
        "a linked condition looks for the person in another dataset, not in "
        "police_victimizations itself",
    ),
    Case(
        "recipient_allowed_and_denied",
        "check_outputs",
        "cvi",
        appending("outputs.recipients_allowed", "law_enforcement"),
        setting("outputs.recipients_allowed", ["public", "org:ovp"]),
        "outputs.recipients_allowed",
        "law_enforcement is both allowed and denied",
    ),
    Case(
        "aggregate_needs_linkage_not_permitted",
        "check_aggregate_linkage",
        "police",
        setting(f"{AGG}[0].requires_linkage", ["school_attendance"]),
        setting(f"{AGG}[0].requires_linkage", ["ed_injury_visits"]),
        f"{AGG}[0].requires_linkage[0]",
        "needs linkage with school_attendance",
    ),
    Case(
        "linked_numerator_without_requires_linkage",
        "check_aggregate_linkage",
        "police",
        deleting(f"{AGG}[2].requires_linkage"),
        setting(f"{AGG}[2].requires_linkage", ["ed_injury_visits", "referrals"]),
        f"{AGG}[2].numerator.linked.dataset",
        "repeat_victimization_yr counts rows of ed_injury_visits, which it can see only through "
        "linkage; add ed_injury_visits to its requires_linkage",
    ),
    Case(
        "linkage_permitted_without_partners",
        "check_linkage",
        "police",
        setting("linkage.link_with", []),
        # Without linkage, the aggregate that counts linked hospital visits must go too.
        both(setting("linkage.permitted", False), deleting(f"{AGG}[2]")),
        "linkage.link_with",
        "linkage is permitted but link_with names no dataset",
    ),
    Case(
        "link_with_and_prohibited_with_clash",
        "check_linkage",
        "police",
        appending("linkage.prohibited_with", "referrals"),
        setting("linkage.prohibited_with", ["school_attendance"]),
        "linkage.link_with",
        "referrals is both in link_with and prohibited_with",
    ),
    Case(
        "linkage_method_the_hub_cannot_run",
        "check_linkage",
        "police",
        setting("linkage.method", {"type": "bloom_clk"}),
        setting("linkage.method", {"type": "keyed_hash_tokens", "match_threshold": 0.9}),
        "linkage.method.type",
        "the hub links keyed hash tokens only and cannot use bloom_clk; set "
        "type: keyed_hash_tokens",
    ),
    Case(
        "linkage_keys_held_elsewhere",
        "check_linkage",
        "police",
        setting("linkage.method", {"key_custody": "linkage_unit"}),
        setting("linkage.method", {"key_custody": "hub"}),
        "linkage.method.key_custody",
        "the hub makes tokens with keys it holds itself and has no linkage_unit to hand them "
        "to; set key_custody: hub",
    ),
    Case(
        "purpose_permitted_and_prohibited",
        "check_purposes",
        "police",
        appending("purposes.prohibited", "program_evaluation"),
        lambda d: d["purposes"]["prohibited"].remove("program_evaluation"),
        "purposes.permitted[2]",
        "program_evaluation is both permitted and prohibited",
    ),
    Case(
        "consent_required_but_rows_without_it_get_in",
        "check_consent",
        "cvi",
        without_rule("consent_to_share == NONE"),
        appending(
            "datasets[0].row_rules",
            {
                "when": "every row",
                "handling": "requires_consent",
                "consent_field": "consent_to_share",
            },
        ),
        "datasets[0].row_rules",
        "consent is required but cvi_participants lets rows without it in",
    ),
    Case(
        "destruction_certificate_to_a_stranger",
        "check_retention",
        "police",
        setting("retention.destruction.certificate_to", "org:sheriff"),
        setting("retention.destruction.certificate_to", "org:police"),
        "retention.destruction.certificate_to",
        "org:sheriff is not a party",
    ),
    Case(
        "incident_contact_of_a_stranger",
        "check_incidents",
        "police",
        setting("incidents.contacts[0]", "org:sheriff.security"),
        setting("incidents.contacts[0]", "org:police.security"),
        "incidents.contacts[0]",
        "org:sheriff is not a party",
    ),
    Case(
        "no_amendment_for_this_version",
        "check_amendments",
        "police",
        setting("agreement.version", "1.1.0"),
        appending("amendments", {"version": "1.1.0", "date": "2025-09-01", "summary": "x"}),
        "amendments",
        "add an amendment for 1.1.0",
    ),
    Case(
        "amendment_later_than_this_version",
        "check_amendments",
        "police",
        setting("amendments[0].version", "1.2.0"),
        setting("agreement.version", "1.2.0"),
        "amendments[0].version",
        "amendment 1.2.0 is later than this agreement's version 1.0.0",
    ),
    Case(
        "approval_body_listed_twice",
        "check_approvals",
        "police",
        setting("approvals_required", ["data_governance_board", "data_governance_board"]),
        setting("approvals_required", ["data_governance_board", "legal_counsel"]),
        "approvals_required",
        "data_governance_board is listed more than once",
    ),
    # --- law --------------------------------------------------------------------------------
    Case(
        "vawa_rows_without_a_per_row_consent_rule",
        "check_vawa",
        "victim_services",
        without_rule(EVERY_ROW_CONSENT),
        appending(
            "datasets[0].row_rules",
            {"when": "consent_to_share != WRITTEN", "handling": "reject"},
        ),
        "datasets[0].row_rules",
        "org:victim_services is vawa_funded: VAWA 34 U.S.C. 12291(b)(2) forbids sharing a "
        "survivor's record, even hashed, without consent recorded for that row",
    ),
    Case(
        "vawa_dropping_rows_is_not_refusing_them",
        "check_vawa",
        "victim_services",
        both(
            without_rule(EVERY_ROW_CONSENT),
            appending(
                "datasets[0].row_rules",
                {"when": "consent_to_share == NONE", "handling": "drop_row"},
            ),
        ),
        setting("datasets[0].row_rules[1].handling", "reject"),
        "datasets[0].row_rules",
        "without consent recorded for that row",
    ),
    Case(
        "vawa_consent_not_required",
        "check_vawa",
        "victim_services",
        setting("consent", {"required": False}),
        setting(
            "consent",
            {
                "required": True,
                "field": "consent_to_share",
                "valid_values": ["WRITTEN"],
                "expiry_field": "consent_expiry",
            },
        ),
        "consent",
        "set consent.required: true",
    ),
    Case(
        "vawa_consent_not_time_limited",
        "check_vawa",
        "victim_services",
        deleting("consent.expiry_field"),
        setting("consent.expiry_field", "consent_expiry"),
        "consent.expiry_field",
        "without consent that is time-limited",
    ),
    Case(
        "vawa_consent_expiry_optional",
        "check_vawa",
        "victim_services",
        field_edit("consent_expiry", required=False),
        field_edit("consent_expiry", required=True),
        field_path("consent_expiry", "required"),
        "make consent_expiry required so every row says when its consent ends",
    ),
    Case(
        "voca_alone_needs_the_same",
        "check_vawa",
        "victim_services",
        both(
            setting("parties[0].regime_flags", ["voca_funded"]),
            without_rule(EVERY_ROW_CONSENT),
        ),
        appending(
            "datasets[0].row_rules",
            {
                "when": "every row",
                "handling": "requires_consent",
                "consent_field": "consent_to_share",
            },
        ),
        "datasets[0].row_rules",
        "is voca_funded: VOCA 28 CFR 94.115",
    ),
    Case(
        "part2_program_at_record_level",
        "check_part2",
        "referrals",
        setting("parties[0].regime_flags", ["part2_program"]),
        appending("datasets[0].row_rules", {"when": "every row", "handling": "aggregate_only"}),
        "datasets[0].row_rules",
        "org:referral_network is a 42 CFR Part 2 program",
    ),
    Case(
        "ferpa_without_destruction_date",
        "check_ferpa",
        "schools",
        deleting("datasets[0].ferpa.destruction_date"),
        setting("datasets[0].ferpa.destruction_date", "2028-08-31"),
        "datasets[0].ferpa.destruction_date",
        "FERPA requires a date by which school_attendance is destroyed",
    ),
    Case(
        "ferpa_terms_missing",
        "check_ferpa",
        "schools",
        deleting("datasets[0].ferpa"),
        setting(
            "datasets[0].ferpa",
            {
                "basis": "audit_evaluation",
                "destruction_date": "2028-08-31",
                "authorized_representative": "org:ovp",
            },
        ),
        "datasets[0]",
        "add ferpa: {basis: audit_evaluation, destruction_date: YYYY-MM-DD}",
    ),
    Case(
        "ferpa_destruction_before_effective",
        "check_ferpa",
        "schools",
        setting("datasets[0].ferpa.destruction_date", "2025-01-31"),
        setting("datasets[0].ferpa.destruction_date", "2028-08-31"),
        "datasets[0].ferpa.destruction_date",
        "is not after the effective date",
    ),
    Case(
        "ferpa_legal_basis_only_still_needs_a_destruction_date",
        "check_ferpa",
        "schools",
        both(setting("parties[0].regime_flags", []), deleting("datasets[0].ferpa")),
        setting(
            "datasets[0].ferpa",
            {
                "basis": "audit_evaluation",
                "destruction_date": "2028-08-31",
                "authorized_representative": "org:ovp",
            },
        ),
        "datasets[0]",
        "holds student records under FERPA",
    ),
    Case(
        "ferpa_basis_without_its_legal_basis",
        "check_ferpa",
        "schools",
        setting("datasets[0].ferpa.basis", "studies"),
        setting("legal_basis[0].pathway", "studies"),
        "datasets[0].ferpa.basis",
        "legal_basis has no FERPA studies entry",
    ),
    Case(
        "ferpa_audit_without_authorized_representative",
        "check_ferpa",
        "schools",
        deleting("datasets[0].ferpa.authorized_representative"),
        setting("datasets[0].ferpa.authorized_representative", "org:ovp"),
        "datasets[0].ferpa.authorized_representative",
        "needs the educational authority to designate its authorized representative",
    ),
    Case(
        "ferpa_linkage_outside_audit_or_studies",
        "check_ferpa",
        "schools",
        both(
            setting("datasets[0].ferpa.basis", "de_identified"),
            setting("legal_basis[0].pathway", "de_identified"),
        ),
        both(setting("linkage.permitted", False), setting("linkage.link_with", [])),
        "datasets[0].ferpa.basis",
        "student records may be linked only under FERPA audit_evaluation or studies",
    ),
    Case(
        "cjis_agency_without_cjis_profile",
        "check_cjis",
        "police",
        setting("security.profile", "hipaa"),
        setting("security.profile", "cjis"),
        "security.profile",
        "org:police is a CJIS agency",
    ),
    Case(
        "cjis_agency_without_security_section",
        "check_cjis",
        "police",
        deleting("security"),
        setting(
            "security",
            {
                "profile": "cjis",
                "hosting": "on_premises",
                "encryption_at_rest": "fips_140_validated",
                "mfa_required": True,
                "personnel": {
                    "background_check": "fingerprint",
                    "training": ["cjis_security_awareness"],
                },
            },
        ),
        "security",
        "set security.profile: cjis",
    ),
    Case(
        "cjis_profile_below_its_minimums",
        "check_cjis_profile",
        "police",
        setting("security.encryption_at_rest", "aes_256"),
        setting("security.encryption_at_rest", "fips_140_validated"),
        "security.encryption_at_rest",
        "the cjis profile needs encryption_at_rest: fips_140_validated",
    ),
    Case(
        "juvenile_rows_linked",
        "check_juvenile",
        "police",
        setting("datasets[0].row_rules[0].handling", "no_linkage"),
        setting("datasets[0].row_rules[0].handling", "aggregate_only"),
        "datasets[0].row_rules",
        "org:police holds juvenile records",
    ),
    Case(
        "juvenile_rows_by_age",
        "check_juvenile",
        "police",
        without_rule(JUVENILE),
        appending(
            "datasets[0].row_rules",
            {"when": "victim_age < 18", "handling": "aggregate_only", "cite": "705 ILCS 405/1-7"},
        ),
        "datasets[0].row_rules",
        'add {when: "juvenile_flag == true", handling: aggregate_only',
    ),
    Case(
        "hipaa_record_level_under_safe_harbor",
        "check_hipaa",
        "hospital",
        setting("legal_basis[0].pathway", "de_identified_safe_harbor"),
        setting("legal_basis[0].pathway", "limited_data_set_dua"),
        "legal_basis[0].pathway",
        "record-level HIPAA data may come only under public_health_authority or "
        "limited_data_set_dua, not de_identified_safe_harbor",
    ),
    Case(
        "hipaa_covered_entity_without_hipaa_basis",
        "check_hipaa",
        "hospital",
        setting("legal_basis", [{"regime": "CONTRACT", "pathway": "data_use_agreement"}]),
        appending(
            "legal_basis",
            {"regime": "HIPAA", "pathway": "public_health_authority", "citation": "164.512(b)"},
        ),
        "legal_basis",
        "org:hospital is a HIPAA covered entity sending record-level data",
    ),
]


def test_every_rule_has_a_scenario() -> None:
    assert {r.name for r in RULES} <= {c.rule for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_rule_fires_at_its_path_and_says_what_to_change(case: Case) -> None:
    data = make_example_data(case.example)
    case.breaks(data)
    problems = lint_data(data)
    path = case.path_in(data)
    hits = [p for p in problems if p.path == path and case.says in p.message]
    assert hits, [str(p) for p in problems]
    assert all(p.line is not None for p in hits)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_fixed_agreement_lints_clean(case: Case) -> None:
    data = make_example_data(case.example)
    case.breaks(data)
    case.fixes(data)
    assert lint_data(data) == []
