"""Sums, means and rates: what each counts, the sensitivity each claims, and honest intervals.

With a huge budget the noise is far below one unit, so a release shows the exact bounded
statistic and the tests can check the arithmetic against a hand count. The sensitivity tests
remove one person (from every dataset) and check that no exact vector moves further than the
sensitivity the release is calibrated to.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from publishers.measures import components, mean_estimate, rate_estimate
from publishers.release import (
    _plan,
    bounded_statistics,
    compute_release,
    preview,
    release_terms,
)
from tests.publishers.factories import (
    HOSPITAL,
    POLICE,
    REFERRALS,
    agreement_declaring,
    make_agreement,
    make_agreement_with,
    make_linked_rows,
    make_rows,
    make_rows_for,
)

WINDOW = {"window_start": dt.date(2025, 1, 1), "window_end": dt.date(2025, 12, 31)}
HUGE = 1e9  # a budget so large that the noise never moves a value by one unit

ORGS = ["HOSPITAL", "CVI_CBO"]


def referrals_agreement(measure: str, *, per_period: float = HUGE, min_cell: int = 0, **parts):
    """The referrals agreement plus ``test_agg`` by quarter and receiving program type."""
    return make_agreement_with(
        make_agreement(REFERRALS),
        measure=measure,
        dataset="referrals",
        time_field="referral_date",
        dimensions=("quarter", "to_org_type"),
        filters={"to_org_type": tuple(ORGS)},
        per_period=per_period,
        min_cell=min_cell,
        **parts,
    )


def referral(person: str, on: str, to: str = "HOSPITAL", **dates: str | None) -> dict:
    return {"person_id": person, "referral_date": on, "to_org_type": to, **dates}


def cell(release, quarter: str, org: str = "HOSPITAL") -> dict:
    return next(c for c in release.cells if c["key"] == {"quarter": quarter, "to_org_type": org})


def release_of(agreement, rows: pd.DataFrame, **kwargs):
    return compute_release(agreement, "test_agg", rows, **WINDOW, seed=7, **kwargs)


# --- what each measure counts --------------------------------------------------------------------


def test_a_mean_of_days_between_clamps_each_value_and_leaves_out_rows_without_one():
    agreement = referrals_agreement(
        "mean", value={"days_between": ("referral_date", "first_service_date"), "bounds": (0, 30)}
    )
    rows = make_rows(
        [
            referral("a", "2025-01-10", first_service_date="2025-01-14"),  # 4 days
            referral("b", "2025-02-01", first_service_date="2025-02-11"),  # 10
            referral("c", "2025-03-01", first_service_date="2025-05-30"),  # 90 -> 30
            referral("d", "2025-03-02", first_service_date="2025-03-01"),  # -1 -> 0
            referral("e", "2025-03-03", first_service_date=None),  # no value: left out
        ]
    )
    release = release_of(agreement, rows)
    got = cell(release, "2025-Q1")
    assert got["count"] == 4
    assert got["value"] == pytest.approx((4 + 10 + 30 + 0) / 4, abs=0.01)
    assert got["lower"] <= got["value"] <= got["upper"]
    assert release.row_counts.missing_value == 1
    assert cell(release, "2025-Q2")["suppressed"] is True  # no rows: no mean to show


def test_a_sum_of_an_integer_field_adds_clamped_values_and_keeps_k_rows_per_person():
    agreement = make_agreement_with(
        make_agreement(HOSPITAL),
        measure="sum",
        dataset="ed_injury_visits",
        time_field="arrival_datetime",
        dimensions=("year",),
        value={"field": "age_years", "bounds": (0, 50)},
        per_period=HUGE,
        min_cell=0,
    )  # the hospital agreement bounds each person to 3 rows a year
    rows = make_rows(
        [
            {"person_id": "p", "arrival_datetime": f"2025-0{m}-01", "age_years": "20"}
            for m in range(1, 6)
        ]
        + [{"person_id": "q", "arrival_datetime": "2025-06-01", "age_years": "80"}]
    )
    release = release_of(agreement, rows)
    (only,) = release.cells
    assert only["value"] == 3 * 20 + 50  # p: 3 of 5 rows kept; q: 80 clamped to 50
    assert only["count"] == 4
    assert release.row_counts.dropped_by_bounding == 2


def test_a_rate_of_rows_counts_follow_ups_within_the_days_given():
    agreement = referrals_agreement(
        "rate_rows",
        numerator={"days_between": ("referral_date", "followup_done_date"), "at_most_days": 7},
    )
    rows = make_rows(
        [
            referral("a", "2025-01-10", followup_done_date="2025-01-10"),  # same day: in
            referral("b", "2025-01-10", followup_done_date="2025-01-17"),  # 7 days: in
            referral("c", "2025-01-10", followup_done_date="2025-01-18"),  # 8 days: out
            referral("d", "2025-01-10", followup_done_date="2025-01-09"),  # before: out
            referral("e", "2025-01-10", followup_done_date=None),  # never: out
        ]
    )
    got = cell(release_of(agreement, rows), "2025-Q1")
    assert (got["numerator"], got["denominator"]) == (2, 5)
    assert got["value"] == pytest.approx(0.4)
    assert got["display"] == "40.0%"


def test_a_rate_of_persons_counts_a_person_once_in_a_cell_and_in_the_numerator_if_any_row_is():
    agreement = referrals_agreement(
        "rate_persons", numerator={"filters": {"status": ("ENGAGED", "COMPLETED")}}
    )
    rows = make_rows(
        [
            referral("a", "2025-01-10", status="SENT"),
            referral("a", "2025-02-10", status="ENGAGED"),  # a: in the numerator
            referral("b", "2025-01-11", status="SENT"),
            referral("b", "2025-03-11", status="REJECTED"),  # b: in the denominator only
            referral("c", "2025-04-01", status="COMPLETED"),  # another quarter
        ]
    )
    release = release_of(agreement, rows)
    q1, q2 = cell(release, "2025-Q1"), cell(release, "2025-Q2")
    assert (q1["numerator"], q1["denominator"]) == (1, 2)
    assert (q2["numerator"], q2["denominator"]) == (1, 1)
    totals = {t["key"]["quarter"]: t for t in release.totals}
    assert (totals["2025-Q1"]["numerator"], totals["2025-Q1"]["denominator"]) == (1, 2)


def test_a_linked_condition_looks_for_the_same_person_in_the_other_dataset_within_the_window():
    police = make_agreement(POLICE)
    agreement = make_agreement_with(
        police,
        measure="rate_persons",
        dimensions=("year",),
        per_period=HUGE,
        min_cell=0,
        requires_linkage=("ed_injury_visits",),
        numerator={
            "linked": {
                "dataset": "ed_injury_visits",
                "time_field": "arrival_datetime",
                "filters": {"injury_intent": ("ASSAULT",)},
                "days_from": -365,
                "days_to": -1,
            }
        },
    )
    victims = make_rows(
        [
            {
                "person_id": p,
                "incident_datetime": "2025-06-15",
                "victimization_type": "ROBBERY_INJURY",
            }
            for p in ("before", "long_before", "same_day", "not_assault", "other_person", "none")
        ]
    )
    visits = make_rows(
        [
            {"person_id": "before", "arrival_datetime": "2024-06-15", "injury_intent": "ASSAULT"},
            {
                "person_id": "long_before",
                "arrival_datetime": "2024-06-14",
                "injury_intent": "ASSAULT",
            },
            {"person_id": "same_day", "arrival_datetime": "2025-06-15", "injury_intent": "ASSAULT"},
            {
                "person_id": "not_assault",
                "arrival_datetime": "2025-01-01",
                "injury_intent": "SELF_HARM",
            },
            {"person_id": "stranger", "arrival_datetime": "2025-01-01", "injury_intent": "ASSAULT"},
        ]
    )
    hospital = make_agreement(HOSPITAL)
    no_floor = hospital.model_copy(
        update={"outputs": hospital.outputs.model_copy(update={"min_cell": 0})}
    )
    terms = release_terms(agreement, "test_agg", [no_floor])
    release = release_of(agreement, victims, linked={"ed_injury_visits": visits}, terms=terms)
    (only,) = release.cells
    # only "before": 365 days earlier is in the window, 366 is not, the same day is not
    assert (only["numerator"], only["denominator"]) == (1, 6)


def test_a_linked_condition_without_the_linked_rows_is_refused_by_name():
    from publishers.errors import RowsMismatch

    agreement = make_agreement(POLICE)
    rows = make_rows_for(agreement, "repeat_victimization_yr", 50, persons=20)
    with pytest.raises(RowsMismatch, match="ed_injury_visits"):
        compute_release(agreement, "repeat_victimization_yr", rows, **WINDOW)


# --- the privacy terms of a release over several agreements --------------------------------------


def test_one_model_everywhere_charges_each_agreement_the_aggregates_own_cost():
    police = make_agreement(POLICE)
    referrals = make_agreement(REFERRALS)  # zCDP too
    agreement = make_agreement_with(police, per_period=0.5, budget_share=0.2)
    terms = release_terms(agreement, "test_agg", [referrals])
    assert terms.privacy_model == "zcdp" and terms.loss == pytest.approx(0.1)
    assert [(c.agreement, c.amount, c.unit) for c in terms.charges] == [
        (police.ref, pytest.approx(0.1), "rho"),
        (referrals.ref, pytest.approx(0.1), "rho"),
    ]


def test_a_pure_dp_agreement_makes_the_release_pure_dp_and_each_is_charged_in_its_own_unit():
    police, hospital = make_agreement(POLICE), make_agreement(HOSPITAL)
    terms = release_terms(police, "repeat_victimization_yr", [hospital])
    rho = 0.1 * 0.5
    assert terms.privacy_model == "pure_dp"
    assert terms.loss**2 / 2 <= rho and terms.loss == pytest.approx(math.sqrt(2 * rho))
    charged = {c.agreement: (c.amount, c.unit) for c in terms.charges}
    assert charged[police.ref] == (rho, "rho")
    assert terms.min_cell == max(police.outputs.min_cell, hospital.outputs.min_cell)
    assert charged[hospital.ref] == (terms.loss, "epsilon")
    # and the other way round: a pure-DP aggregate reading zCDP data charges rho = eps^2 / 2
    back = release_terms(hospital, "ed_assault_monthly", [police])
    eps = back.loss
    assert back.privacy_model == "pure_dp"
    assert dict((c.agreement, c.amount) for c in back.charges)[police.ref] >= eps**2 / 2


def test_a_release_spends_no_more_than_its_terms_across_all_its_noisy_parts():
    for measure, parts in [
        (
            "mean",
            {"value": {"days_between": ("referral_date", "first_service_date"), "bounds": (0, 90)}},
        ),
        (
            "sum",
            {"value": {"days_between": ("referral_date", "first_service_date"), "bounds": (0, 90)}},
        ),
        ("rate_rows", {"numerator": {"filters": {"status": ("ENGAGED",)}}}),
    ]:
        agreement = referrals_agreement(measure, per_period=0.5, **parts)
        plan = _plan(agreement, "test_agg", WINDOW["window_start"], WINDOW["window_end"], None)
        assert plan.loss <= 0.5 * 0.2 + 1e-15
        assert sum(p.share for p in plan.parts) == pytest.approx(1.0)


# --- sensitivity: one person moves each exact vector no further than claimed ---------------------


NEIGHBOUR_CASES = [
    (
        "sum",
        {"value": {"days_between": ("referral_date", "first_service_date"), "bounds": (0, 90)}},
    ),
    (
        "mean",
        {"value": {"days_between": ("referral_date", "first_service_date"), "bounds": (3, 90)}},
    ),
    (
        "rate_rows",
        {"numerator": {"days_between": ("referral_date", "followup_done_date"), "at_most_days": 7}},
    ),
    ("rate_persons", {"numerator": {"filters": {"status": ("ENGAGED", "COMPLETED")}}}),
]


@pytest.mark.parametrize(("measure", "parts"), NEIGHBOUR_CASES, ids=[c[0] for c in NEIGHBOUR_CASES])
def test_removing_any_one_person_moves_each_exact_vector_within_its_sensitivity(measure, parts):
    agreement = referrals_agreement(measure, per_period=0.5, **parts)
    aggregate = agreement.aggregate("test_agg")
    rng = np.random.default_rng(11)
    n = 400
    start = dt.date(2025, 1, 1)
    days = rng.integers(0, 365, n)
    people = np.array([f"p{i}" for i in range(25)], dtype=object)[rng.integers(0, 25, n)]
    rows = pd.DataFrame(
        {
            "person_id": people,
            "referral_date": [(start + dt.timedelta(int(d))).isoformat() for d in days],
            "first_service_date": [
                (start + dt.timedelta(int(d + g))).isoformat()
                for d, g in zip(days, rng.integers(-5, 120, n), strict=True)
            ],
            "followup_done_date": [
                (start + dt.timedelta(int(d + g))).isoformat()
                for d, g in zip(days, rng.integers(0, 15, n), strict=True)
            ],
            "to_org_type": np.array(ORGS, dtype=object)[rng.integers(0, 2, n)],
            "status": np.array(["SENT", "ENGAGED", "COMPLETED"], dtype=object)[
                rng.integers(0, 3, n)
            ],
        },
        dtype=object,
    )
    plan = _plan(agreement, "test_agg", WINDOW["window_start"], WINDOW["window_end"], None)
    bound = agreement.outputs.privacy.contribution_bound
    full, _ = bounded_statistics(plan.space, rows, bound, 5, {})
    for person in sorted(set(people)):
        less, _ = bounded_statistics(plan.space, rows[rows.person_id != person], bound, 5, {})
        for part in plan.parts:
            diff = (full[part.name] - less[part.name]).astype(np.float64)
            assert np.abs(diff).sum() <= part.sensitivity.l1 + 1e-9, (person, part.name)
            assert math.sqrt((diff**2).sum()) <= part.sensitivity.l2 + 1e-9, (person, part.name)
    assert aggregate is not None


def test_a_linked_person_moves_the_rate_within_its_sensitivity_when_removed_from_both_datasets():
    police = make_agreement(POLICE)
    aggregate_id = "repeat_victimization_yr"
    rows = make_rows_for(police, aggregate_id, 600, persons=40, seed=2)
    linked = make_linked_rows(police, aggregate_id, rows, seed=2)
    plan = _plan(police, aggregate_id, dt.date(2025, 7, 1), dt.date(2026, 6, 30), None)
    bound = police.outputs.privacy.contribution_bound
    full, _ = bounded_statistics(plan.space, rows, bound, 1, linked)
    (part,) = plan.parts
    for person in sorted(set(rows.person_id)):
        less, _ = bounded_statistics(
            plan.space,
            rows[rows.person_id != person],
            bound,
            1,
            {k: v[v.person_id != person] for k, v in linked.items()},
        )
        diff = (full["split"] - less["split"]).astype(np.float64)
        assert np.abs(diff).sum() <= part.sensitivity.l1
        assert math.sqrt((diff**2).sum()) <= part.sensitivity.l2 + 1e-9


def test_a_rate_costs_no_more_sensitivity_than_the_plain_count_and_a_sum_scales_by_the_bound():
    bound = make_agreement(REFERRALS).outputs.privacy.contribution_bound
    count = referrals_agreement("count_rows")
    rate = referrals_agreement("rate_rows", numerator={"filters": {"status": ("ENGAGED",)}})
    summed = referrals_agreement(
        "sum", value={"days_between": ("referral_date", "first_service_date"), "bounds": (-10, 90)}
    )
    mean = referrals_agreement(
        "mean", value={"days_between": ("referral_date", "first_service_date"), "bounds": (-10, 90)}
    )
    args = (bound, WINDOW["window_start"], WINDOW["window_end"], 8)
    (c,) = components(count.aggregate("test_agg"), *args)
    (r,) = components(rate.aggregate("test_agg"), *args)
    s, s_count = components(summed.aggregate("test_agg"), *args)
    m, _ = components(mean.aggregate("test_agg"), *args)
    assert r.sensitivity == c.sensitivity and r.share == 1.0
    assert s.sensitivity.l1 == 90 * c.sensitivity.l1 and s_count.sensitivity == c.sensitivity
    assert m.sensitivity.l1 == 50 * c.sensitivity.l1  # centred at 40: |v - 40| <= 50


# --- accuracy statements -------------------------------------------------------------------------


def test_rate_and_mean_intervals_span_every_ratio_the_noise_bounds_allow():
    est = rate_estimate(30.0, 70.0, 10.0)
    assert est.value == pytest.approx(0.3)
    assert est.lower == pytest.approx(20 / (20 + 80)) and est.upper == pytest.approx(40 / (40 + 60))
    wide = rate_estimate(2.0, 3.0, 10.0)
    assert (wide.lower, wide.upper) == (0.0, 1.0)
    from contracts.model import Value

    value = Value(days_between=("a", "b"), bounds=(0, 100))  # centre 50
    m = mean_estimate(-1000.0, 100.0, 200.0, 10.0, value)
    assert m.value == pytest.approx(40.0)
    assert m.lower == pytest.approx(50 + (-1200) / 90) and m.upper == pytest.approx(
        50 + (-800) / 110
    )


@pytest.mark.parametrize("measure", ["rate_rows", "mean"])
def test_stated_intervals_cover_the_true_value_at_least_95_percent_of_the_time(measure):
    parts = (
        {"numerator": {"days_between": ("referral_date", "followup_done_date"), "at_most_days": 7}}
        if measure == "rate_rows"
        else {"value": {"days_between": ("referral_date", "first_service_date"), "bounds": (0, 60)}}
    )
    noisy = referrals_agreement(measure, per_period=0.02, **parts)
    exact = referrals_agreement(measure, per_period=HUGE, **parts)
    rows = make_rows_for(
        noisy,
        "test_agg",
        1500,
        persons=900,
        start=dt.date(2025, 1, 1),
        end=dt.date(2025, 12, 31),
        seed=3,
    )
    truth = {tuple(c["key"].values()): c["value"] for c in release_of(exact, rows).cells}
    covered = total = 0
    for _ in range(150):
        for c in release_of(noisy, rows).cells:
            if c["suppressed"] or truth[tuple(c["key"].values())] is None:
                continue
            total += 1
            covered += c["lower"] - 1e-9 <= truth[tuple(c["key"].values())] <= c["upper"] + 1e-9
    assert total > 500
    assert covered / total >= 0.95


def test_a_rate_is_suppressed_when_its_numerator_or_denominator_is_small_and_shows_no_numbers():
    agreement = referrals_agreement(
        "rate_rows", min_cell=11, numerator={"filters": {"status": ("ENGAGED",)}}
    )
    rows = make_rows(
        [referral(f"p{i}", "2025-01-10", status="ENGAGED" if i < 3 else "SENT") for i in range(40)]
        + [referral(f"q{i}", "2025-04-10", status="ENGAGED") for i in range(30)]
        + [referral(f"r{i}", "2025-04-10", status="SENT") for i in range(20)]
    )
    release = release_of(agreement, rows)
    q1, q2 = cell(release, "2025-Q1"), cell(release, "2025-Q2")
    assert q1["suppressed"] and q1["display"] == "n<11"
    assert q1["value"] is q1["numerator"] is q1["denominator"] is q1["lower"] is None
    assert not q2["suppressed"] and q2["value"] == 0.6
    # Q1's total would give back the suppressed cell's numbers, since the only other cell is
    # empty and suppressed too (two suppressed: the total stands, but is itself small here).
    totals = {t["key"]["quarter"]: t for t in release.totals}
    assert totals["2025-Q1"]["suppressed"]


def test_a_total_is_withheld_when_exactly_one_cell_of_its_row_is_suppressed():
    agreement = make_agreement_with(
        make_agreement(REFERRALS),
        measure="rate_rows",
        dataset="referrals",
        time_field="referral_date",
        dimensions=("quarter", "urgency"),  # ROUTINE, URGENT, CRISIS
        numerator={"filters": {"status": ("ENGAGED",)}},
        per_period=HUGE,
        min_cell=11,
    )
    rows = make_rows(
        [
            {"person_id": f"{u}{i}", "referral_date": "2025-01-10", "urgency": u, "status": s}
            for u, n in (("ROUTINE", 40), ("URGENT", 40), ("CRISIS", 3))
            for i in range(n)
            for s in ["ENGAGED" if i % 2 else "SENT"]
        ]
    )
    release = release_of(agreement, rows)
    q1 = {c["key"]["urgency"]: c for c in release.cells if c["key"]["quarter"] == "2025-Q1"}
    assert not q1["ROUTINE"]["suppressed"] and not q1["URGENT"]["suppressed"]
    assert q1["CRISIS"]["suppressed"]
    total = next(t for t in release.totals if t["key"] == {"quarter": "2025-Q1"})
    assert total["display"] == "withheld" and total["value"] is None and total["numerator"] is None
    q2 = next(t for t in release.totals if t["key"] == {"quarter": "2025-Q2"})
    assert q2["display"] == "n<11"  # no rows at all: small, not withheld


def test_the_preview_of_a_mean_states_each_noisy_part_and_no_single_cell_bound():
    agreement = referrals_agreement(
        "mean",
        per_period=0.5,
        value={"days_between": ("referral_date", "first_service_date"), "bounds": (0, 90)},
    )
    plan = preview(agreement, "test_agg", **WINDOW)
    assert plan["measure"] == "mean" and plan["error_bound_95"] is None
    assert [p["name"] for p in plan["noisy_parts"]] == ["sum", "count"]
    assert sum(p["privacy_loss"] for p in plan["noisy_parts"]) <= plan["cost"] + 1e-15
    assert "interval" in plan["accuracy_note"]


def test_every_agreement_declaring_a_linked_dataset_is_found():
    assert agreement_declaring("ed_injury_visits").id == make_agreement(HOSPITAL).id


@pytest.mark.parametrize("measure", ["sum", "mean"])
def test_which_values_bounding_keeps_never_depends_on_the_order_rows_arrive_in(measure):
    """A person with eight referrals in one cell, four of them 0 days and four 90, keeps four
    (k = 4 a year): which four must not depend on row order, or the order of other people's
    rows could swing the sum by more than its sensitivity."""
    agreement = referrals_agreement(
        measure,
        value={"days_between": ("referral_date", "first_service_date"), "bounds": (0, 90)},
    )
    rows = make_rows(
        [referral("a", "2025-01-10", first_service_date="2025-01-10") for _ in range(4)]
        + [referral("a", "2025-01-10", first_service_date="2025-04-10") for _ in range(4)]
        + [referral(f"b{i}", "2025-02-01", first_service_date="2025-02-05") for i in range(5)]
    )
    plan = _plan(agreement, "test_agg", WINDOW["window_start"], WINDOW["window_end"], None)
    bound = agreement.outputs.privacy.contribution_bound
    for seed in range(20):
        sums = {
            int(bounded_statistics(plan.space, order, bound, seed, {})[0]["sum"].sum())
            for order in (rows, rows.iloc[::-1], rows.sample(frac=1, random_state=seed))
        }
        assert len(sums) == 1, (seed, sums)


def test_a_rate_is_suppressed_when_the_rest_of_its_denominator_is_small():
    """98% of 100 would give away the two people who were not followed up."""
    agreement = referrals_agreement(
        "rate_rows", min_cell=11, numerator={"filters": {"status": ("ENGAGED",)}}
    )
    rows = make_rows(
        [referral(f"p{i}", "2025-01-10", status="ENGAGED" if i > 1 else "SENT") for i in range(100)]
    )
    q1 = cell(release_of(agreement, rows), "2025-Q1")
    assert q1["suppressed"] and q1["value"] is None and q1["numerator"] is None


def test_the_strictest_small_cell_rule_of_the_agreements_involved_applies():
    police = make_agreement(POLICE)
    lenient = police.model_copy(
        update={"outputs": police.outputs.model_copy(update={"min_cell": 3})}
    )
    strict = make_agreement(HOSPITAL).model_copy(
        update={"outputs": make_agreement(HOSPITAL).outputs.model_copy(update={"min_cell": 20})}
    )
    assert release_terms(lenient, "repeat_victimization_yr", [strict]).min_cell == 20
    assert release_terms(lenient, "repeat_victimization_yr").min_cell == 3
