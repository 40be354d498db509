"""Plain-language diffs between agreement versions (contracts.readable.diff)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.model import Agreement
from contracts.readable import Change, diff_agreements, format_diff
from tests.contracts.contract_factories import EXAMPLES, make_example, make_example_data

Data = dict[str, Any]


def make(data: Data) -> Agreement:
    return Agreement.model_validate(data)


def field_named(data: Data, name: str) -> Data:
    fields: list[Data] = data["datasets"][0]["fields"]
    return next(f for f in fields if f["name"] == name)


def sentences(old: Data, new: Data) -> list[str]:
    return [c.sentence for c in diff_agreements(make(old), make(new))]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_identical_agreements_have_no_changes(name: str) -> None:
    assert diff_agreements(make_example(name), make_example(name)) == []


# --- the examples ------------------------------------------------------------------------


def test_adding_a_field_names_its_class_and_transform() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    old["datasets"][0]["fields"].remove(field_named(old, "victim_home_zip"))
    changes = diff_agreements(make(old), make(new))
    assert [c.sentence for c in changes] == [
        "adds field victim_home_zip (quasi-identifier, kept as ZIP3)"
    ]
    assert changes[0].kind == "added"
    assert changes[0].path == "datasets[police_victimizations].fields[victim_home_zip]"


def test_raising_the_budget_says_from_what_to_what() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    old["outputs"]["privacy"]["budget"]["per_period"] = 0.05
    new["outputs"]["privacy"]["budget"]["per_period"] = 0.1
    assert sentences(old, new) == ["raises the monthly budget from ρ=0.05 to 0.1"]
    assert sentences(new, old) == ["lowers the monthly budget from ρ=0.1 to 0.05"]


def test_removing_a_recipient_names_it_in_words() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    old["outputs"]["recipients_allowed"].append("law_enforcement")
    assert sentences(old, new) == ["removes law enforcement from the recipients"]


# --- more kinds of change ------------------------------------------------------------------------


def test_changing_the_expiry_date() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    new["agreement"]["expiry_date"] = dt.date(2028, 6, 30)
    assert sentences(old, new) == ["changes the expiry date from 2027-06-30 to 2028-06-30"]


def test_adding_an_aggregate_describes_it() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    del old["outputs"]["aggregates"][0]
    assert sentences(old, new) == [
        "adds aggregate viol_monthly (count of rows by month and victimization type)"
    ]


def test_removing_a_dataset() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    extra = dict(old["datasets"][0], id="police_arrests", title="Arrests")
    old["datasets"].append(extra)
    assert sentences(old, new) == ["removes dataset police_arrests"]


def test_stopping_linkage_with_a_dataset() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    new["linkage"]["link_with"].remove("referrals")
    new["linkage"]["prohibited_with"].append("referrals")
    assert sentences(old, new) == [
        "stops allowing linkage with referrals",
        "forbids linkage with referrals",
    ]


def test_making_a_field_required() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    field_named(new, "victim_age")["required"] = True
    assert sentences(old, new) == ["makes field victim_age a required field"]


def test_changing_a_transform() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    field_named(new, "victim_race")["transform"] = "drop"
    field_named(new, "incident_datetime")["transform"] = {"truncate": "month"}
    assert sentences(old, new) == [
        "changes the transform of incident_datetime from truncate to day to truncate to month",
        "changes the transform of victim_race from keep to drop",
    ]


def test_a_transform_argument_its_kind_ignores_is_still_reported() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    field_named(new, "victim_race")["transform"] = {"kind": "keep", "bin": [1, 2]}
    assert sentences(old, new) == [
        "changes the transform of victim_race from (kind keep) to (kind keep; bin 1, 2)"
    ]


def test_row_rules_are_compared_by_their_condition() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    new["datasets"][0]["row_rules"][1]["handling"] = "drop_row"
    new["datasets"][0]["row_rules"].append(
        {"when": "victim_age < 13", "handling": "reject", "cite": "policy"}
    )
    assert sentences(old, new) == [
        "adds the rule: rows where victim_age is less than 13 are refused: the whole upload is "
        "rejected until they are removed (policy)",
        "changes what happens to rows where domestic_related is true: from never linked to dropped",
    ]


def test_items_are_compared_by_identity_not_position() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    del new["datasets"][0]["fields"][0]
    new["parties"].reverse()
    changes = diff_agreements(make(old), make(new))
    assert [c.sentence for c in changes] == [
        "changes the order of the parties",
        "removes field victimization_id (record identifier, replaced by a keyed hash)",
    ]


def test_a_party_a_purpose_and_a_legal_basis() -> None:
    old, new = make_example_data("hospital"), make_example_data("hospital")
    new["parties"].append(
        {"id": "org:health", "role": "data_recipient", "legal_name": "Example Health Department"}
    )
    new["purposes"]["prohibited"].append("individual_risk_scoring")
    new["legal_basis"].append({"regime": "HIPAA", "pathway": "health_oversight"})
    assert sentences(old, new) == [
        "adds party Example Health Department (org:health) as recipient of outputs",
        "adds the legal basis HIPAA — health oversight (45 CFR 164.512(d))",
        "adds individual risk scoring to the prohibited purposes",
    ]


def test_retention_and_incident_notice_read_as_durations() -> None:
    old, new = make_example_data("cvi"), make_example_data("cvi")
    new["retention"]["pseudonymized_tables"] = "P5Y"
    new["incidents"]["notify_provider_within"] = "PT24H"
    assert sentences(old, new) == [
        "changes how long pseudonymized records are kept from 3 years to 5 years",
        "changes the incident notice to providers from 72 hours to 24 hours",
    ]


def test_a_change_without_its_own_sentence_names_the_path_in_words() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    new["datasets"][0]["delivery"]["frequency"] = "weekly"
    new["security"]["audit_log_retention"] = "P7Y"
    new["agreement"]["title"] = "P1D"  # free text that looks like a duration stays as written
    assert sentences(old, new) == [
        "changes the title from “Police shooting and homicide victimizations to the OVP hub” "
        "to “P1D”",
        "changes the delivery frequency of dataset police_victimizations from daily to weekly",
        "changes the security audit log retention from 6 years to 7 years",
    ]


def test_format_diff_prints_one_sentence_a_line() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    new["outputs"]["min_cell"] = 20
    new["agreement"]["version"] = "1.1.0"
    assert format_diff(diff_agreements(make(old), make(new))) == (
        "- changes the version from 1.0.0 to 1.1.0\n- raises the minimum cell size from 11 to 20\n"
    )
    assert format_diff([]) == "No changes.\n"


def test_a_change_carries_its_values() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    new["outputs"]["min_cell"] = 20
    (change,) = diff_agreements(make(old), make(new))
    assert change == Change(
        "outputs.min_cell", "changed", "raises the minimum cell size from 11 to 20", 11, 20
    )
    assert change.as_dict()["path"] == "outputs.min_cell"


# --- sums, means and rates -----------------------------------------------------------------------


def aggregate_named(data: Data, aggregate_id: str) -> Data:
    aggregates: list[Data] = data["outputs"]["aggregates"]
    return next(a for a in aggregates if a["id"] == aggregate_id)


MEAN, RATE, LINKED = (
    "referral_days_to_service_qtr",
    "referral_followup_qtr",
    "repeat_victimization_yr",
)


def test_changing_the_bounds_of_a_mean() -> None:
    old, new = make_example_data("referrals"), make_example_data("referrals")
    aggregate_named(new, MEAN)["value"]["bounds"] = [0, 120]
    assert sentences(old, new) == [f"widens the bounds of aggregate {MEAN} from 0–90 to 0–120 days"]
    assert sentences(new, old) == [
        f"narrows the bounds of aggregate {MEAN} from 0–120 to 0–90 days"
    ]
    aggregate_named(new, MEAN)["value"]["bounds"] = [-10, 80]
    assert sentences(old, new) == [
        f"moves the bounds of aggregate {MEAN} from 0–90 to -10 to 80 days"
    ]


def test_changing_the_dates_a_mean_counts_days_between() -> None:
    old, new = make_example_data("referrals"), make_example_data("referrals")
    aggregate_named(new, MEAN)["value"]["days_between"] = ["referral_date", "followup_done_date"]
    assert sentences(old, new) == [
        f"makes aggregate {MEAN} add up the days from referral_date to followup_done_date "
        "instead of from referral_date to first_service_date"
    ]


def test_a_count_becoming_a_mean_says_what_it_adds_up() -> None:
    old, new = make_example_data("schools"), make_example_data("schools")
    aggregate = new["outputs"]["aggregates"][1]
    aggregate["measure"] = "mean"
    aggregate["value"] = {"field": "days_unexcused", "bounds": [0, 31]}
    assert sentences(old, new) == [
        "makes aggregate chronic_absence_by_sex_qtr a mean instead of a count of distinct people",
        "makes aggregate chronic_absence_by_sex_qtr add up days_unexcused (clamped to 0–31)",
    ]
    assert sentences(new, old)[1] == (
        "makes aggregate chronic_absence_by_sex_qtr stop adding up days_unexcused"
    )


def test_changing_the_time_limit_of_a_rate() -> None:
    old, new = make_example_data("referrals"), make_example_data("referrals")
    aggregate_named(new, RATE)["numerator"]["at_most_days"] = 14
    assert sentences(old, new) == [
        f"extends the window of the share of aggregate {RATE} from 7 to 14 days after referral_date"
    ]
    assert sentences(new, old) == [
        f"shortens the window of the share of aggregate {RATE} from 14 to 7 days after "
        "referral_date"
    ]


def test_a_condition_added_to_the_numerator_of_a_rate() -> None:
    old, new = make_example_data("referrals"), make_example_data("referrals")
    aggregate_named(new, RATE)["numerator"]["filters"] = {"urgency": ["URGENT", "CRISIS"]}
    assert sentences(old, new) == [
        f"makes the share of aggregate {RATE} count only rows where urgency is URGENT or CRISIS"
    ]
    assert sentences(new, old) == [
        f"makes the share of aggregate {RATE} stop limiting rows to those where urgency is "
        "URGENT or CRISIS"
    ]


def test_a_count_becoming_a_rate_says_what_its_share_counts() -> None:
    old, new = make_example_data("referrals"), make_example_data("referrals")
    aggregate = new["outputs"]["aggregates"][0]
    aggregate["measure"] = "rate_rows"
    aggregate["numerator"] = {"filters": {"status": ["ENGAGED", "COMPLETED"]}}
    assert sentences(old, new) == [
        "makes aggregate referral_flow_qtr a share of rows instead of a count of rows",
        "makes aggregate referral_flow_qtr the share of rows where status is ENGAGED or COMPLETED",
    ]


def test_moving_the_window_of_a_linked_condition() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    linked = aggregate_named(new, LINKED)["numerator"]["linked"]
    linked["days_from"], linked["days_to"] = -730, 0
    assert sentences(old, new) == [
        f"widens the window for ed_injury_visits rows in the share of aggregate {LINKED} to "
        "start 730 days before incident_datetime instead of 365 days before",
        f"widens the window for ed_injury_visits rows in the share of aggregate {LINKED} to end "
        "on the day of incident_datetime instead of 1 day before",
    ]


def test_changing_the_linked_dataset_and_its_values() -> None:
    old, new = make_example_data("police"), make_example_data("police")
    aggregate = aggregate_named(new, LINKED)
    aggregate["numerator"]["linked"]["dataset"] = "cvi_participants"
    aggregate["numerator"]["linked"]["filters"]["injury_intent"].append("SELF_HARM")
    aggregate["requires_linkage"] = ["cvi_participants"]
    assert sentences(old, new) == [
        f"makes aggregate {LINKED} no longer need linkage with ed_injury_visits",
        f"makes aggregate {LINKED} need linkage with cvi_participants",
        f"makes the share of aggregate {LINKED} look for the person's rows in cvi_participants "
        "instead of ed_injury_visits",
        f"makes the share of aggregate {LINKED} also count cvi_participants rows where "
        "injury_intent is SELF_HARM",
    ]


def test_adding_and_removing_a_linked_condition() -> None:
    old, new = make_example_data("referrals"), make_example_data("referrals")
    aggregate_named(new, RATE)["numerator"]["linked"] = {
        "dataset": "police_victimizations",
        "time_field": "incident_datetime",
        "days_from": -90,
        "days_to": 0,
    }
    assert sentences(old, new) == [
        f"makes the share of aggregate {RATE} require that the same person has a row in "
        "police_victimizations with incident_datetime within 90 days before the row's "
        "referral_date"
    ]
    assert sentences(new, old) == [
        f"makes the share of aggregate {RATE} stop looking for the person's rows in "
        "police_victimizations"
    ]


# --- every difference is reported ---------------------------------------------------------------

Loc = tuple[str | int, ...]


def leaves(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, Any]]:
    """Every leaf of a dump: scalars, None, and empty lists and mappings."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*loc, key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from leaves(item, (*loc, i))
    else:
        yield loc, value


SHAPES: list[Any] = [
    {"name": "X"},
    {"project": "x"},
    {"business": {"name": "X"}},
    {"basis": "studies"},
    {"type": "bloom_clk"},
    {"state": "IL"},
    {"body": "board", "decision": "approved", "date": "2025-01-01"},
    {"version": "0.9.0", "date": "2025-01-01", "summary": "x"},
    {"party": "org:x", "name": "X", "title": "T"},
    {"regime": "HIPAA", "max": "P60D"},
    {"when": "every row", "handling": "reject"},
    {"annual_attestation": True},
    {"allowed": True},
    {"field": "x", "bounds": [0, 1]},
    {"filters": {"x": ["y"]}},
    {"dataset": "x", "time_field": "t", "days_from": 0, "days_to": 1},
]
"""Smallest valid values of the optional sections, to fill an empty slot with."""
SEQUENCES: list[Any] = [
    ["x"],
    [1.0, 2.0],
    ["org:x"],
    [{"regime": "HIPAA", "max": "P60D"}],
    ["x", "y"],
]


def first_guesses(value: Any) -> list[Any]:
    """Values to try in place of a leaf before asking the model what it accepts."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value / 2, value * 2, value + 0.5]
    if isinstance(value, str):
        guesses: list[Any] = [value + "x", value[::-1], "ZZ"]
        with contextlib.suppress(ValueError):
            guesses.insert(0, str(dt.date.fromisoformat(value) + dt.timedelta(days=1)))
        if value.count(".") == 2 and value.replace(".", "").isdigit():
            guesses.insert(0, value[: value.rindex(".") + 1] + "9")
        if value.startswith("P"):
            guesses.insert(0, "P9D")
        return guesses
    if value == {}:
        return [{"x": ["y"]}, {"x": "y"}]
    if value == []:
        return list(SEQUENCES)
    return ["x"]  # None: the errors say what the slot takes


def suggestions(error: Any) -> list[Any]:
    """Values a validation error says would fit."""
    kind, ctx, message = error["type"], error.get("ctx") or {}, error["msg"]
    if kind in ("enum", "literal_error"):
        return re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    if "use one of:" in message:
        return [v.strip() for v in message.split("use one of:")[1].split(",")]
    if kind.startswith(("int", "float")):
        return [1, 0.5]
    if kind.startswith("bool"):
        return [True]
    if kind.startswith("date"):
        return ["2025-01-02"]
    if kind.startswith(("model", "dict")):
        return list(SHAPES)
    if kind.startswith(("tuple", "list")):
        return list(SEQUENCES)
    if kind == "string_pattern_mismatch":
        return ["0.9.0", "P9D", "org:x", "ZZ", "x"]
    return []


def set_at(data: Any, loc: Loc, value: Any) -> None:
    for part in loc[:-1]:
        data = data[part]
    data[loc[-1]] = value


COUPLED: dict[tuple[str, str], dict[str, Any]] = {
    ("aggregates", "value"): {"measure": "mean", "numerator": None},
    ("aggregates", "numerator"): {"measure": "rate_rows", "value": None},
    ("value", "field"): {"days_between": None},
    ("value", "days_between"): {"field": None},
    ("numerator", "days_between"): {"at_most_days": 7},
    ("numerator", "at_most_days"): {"days_between": ["x", "y"]},
}
"""Leaves that change only together with a sibling, keyed by (the name of what holds the leaf,
the leaf): an aggregate's value or numerator with its measure (a count has neither), a value's
field with its days_between (one or the other), a numerator's days_between with at_most_days
(both or neither). The siblings are set to these values along with the leaf."""


def coupled(loc: Loc) -> dict[str, Any]:
    holder = next((part for part in reversed(loc[:-1]) if isinstance(part, str)), "")
    return COUPLED.get((holder, str(loc[-1])), {})


def mutate(data: Data, loc: Loc, value: Any, canonical: str) -> Agreement | None:
    """The agreement with the leaf at ``loc`` changed to some valid different value, if any
    (with the siblings it is :data:`COUPLED` to changed along, when it is one of those)."""
    queue, tried = first_guesses(value), 0
    parent: Any = data
    for part in loc[:-1]:
        parent = parent[part]
    # The coupling binds only when the leaf is being set: a value already set changes alone.
    siblings = coupled(loc) if isinstance(parent, dict) and value is None else {}
    saved = {key: parent.get(key) for key in siblings}
    while queue and tried < 60:
        candidate = queue.pop(0)
        tried += 1
        set_at(data, loc, candidate)
        for key, sibling in siblings.items():
            parent[key] = sibling
        try:
            mutated = Agreement.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                where = tuple(error["loc"])
                if where == (*loc, 0):  # an item of an empty list: suggest one-item lists
                    queue += [[s] for s in suggestions(error)]
                elif where[: len(loc)] == loc or loc[: len(where)] == where:
                    queue += [s for s in suggestions(error) if s != value]
            continue
        finally:
            set_at(data, loc, value)
            for key, sibling in saved.items():
                parent[key] = sibling
        if mutated.canonical_json() != canonical:
            return mutated
    return None


def mutations(name: str) -> Iterator[tuple[Loc, Agreement | None]]:
    """Each leaf of the example's canonical dump, with the agreement that leaf changed to a
    valid different value (None for leaves that admit no other value, such as
    ``spec_version``)."""
    base = make_example(name)
    data = base.model_dump(mode="json", by_alias=True)
    canonical = base.canonical_json()
    for loc, value in list(leaves(data)):
        yield loc, mutate(data, loc, value, canonical)


SINGLE_VALUED = {
    ("spec_version",),
    ("linkage", "reidentification"),
    ("outputs", "record_level_release"),
    ("outputs", "privacy", "unit"),
}
"""Leaves the model allows only one value for."""


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_changed_leaf_is_reported_in_a_sentence(name: str) -> None:
    base = make_example(name)
    unchangeable, silent = [], []
    for loc, mutated in mutations(name):
        if mutated is None:
            unchangeable.append(loc)
            continue
        forward, backward = diff_agreements(base, mutated), diff_agreements(mutated, base)
        if not forward or not backward or not all(c.sentence for c in forward + backward):
            silent.append(loc)
    assert silent == []
    # A transform's unused argument slots (bin of a `keep`, ...) cannot change on their own.
    unchangeable = [loc for loc in unchangeable if loc[-2:-1] != ("transform",)]
    assert set(unchangeable) <= SINGLE_VALUED
