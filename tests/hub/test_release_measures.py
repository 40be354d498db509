"""Releases of rates and means through the hub, and releases that read linked datasets.

One seed database per module: the example agreements, the synthetic population's police, ED,
CVI and referral extracts uploaded, linkage run; each test works on a copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from release_factories import TODAY, WINDOW, copied_hub, make_hub_at, make_request, release
from sqlalchemy import select

from contracts.model import Agreement
from factories import AGREEMENTS_DIR, load_agreement, make_actor, make_agreement_data, upload_all
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import BudgetAccount, BudgetDebit, Release, ReleaseSource
from hub.errors import AgreementRefused, BudgetExhausted
from hub.linkage.service import run_linkage
from hub.releases.service import preview_release
from hub.synth import generate

POLICE = "dsa-police-victimizations@1.0.0"
HOSPITAL = "dsa-hospital-ed-injury@1.0.0"
RHO = 0.1 * 0.5  # repeat_victimization_yr: budget_share 0.1 x per_period 0.5
EPSILON = math.sqrt(2 * RHO)  # the hospital agreement is pure DP: the release must be too


@pytest.fixture(scope="module")
def seed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("measures-seed")
    hub = make_hub_at(where / "hub.db", migrate=True)
    try:
        generate(where / "synth", people=400, seed=21)
        upload_all(hub, where / "synth")
        make_actor(hub, "analyst", Role.analyst)
        with hub.session() as s:
            run_linkage(s, "test", TODAY)
    finally:
        hub.engine.dispose()
    return where / "hub.db"


@pytest.fixture
def linked_hub(seed_db: Path, tmp_path: Path) -> Iterator[Hub]:
    with copied_hub(seed_db, tmp_path) as hub:
        yield hub


def accounts(hub: Hub) -> dict[tuple[str, str], tuple[str, float]]:
    with hub.session() as s:
        return {
            (a.agreement_id, a.period_key): (a.unit, a.spent)
            for a in s.execute(select(BudgetAccount)).scalars()
        }


def test_a_rate_over_linked_data_is_charged_to_both_agreements_each_in_its_own_unit(
    linked_hub: Hub,
) -> None:
    view = release(linked_hub, make_request("repeat_victimization_yr"))
    assert view["agreements"] == [POLICE, HOSPITAL]
    assert set(view["agreement_sha256"]) == {POLICE, HOSPITAL}
    assert view["privacy_model"] == "pure_dp" and view["mechanism"] == "discrete_laplace"
    assert view["privacy_loss_requested"] == pytest.approx(EPSILON)
    assert view["requires_linkage"] == ["ed_injury_visits"]
    assert view["numerator"]["linked"]["dataset"] == "ed_injury_visits"
    charged = {c["agreement"]: (c["unit"], c["amount"]) for c in view["charges"]}
    assert charged == {POLICE: ("rho", RHO), HOSPITAL: ("epsilon", pytest.approx(EPSILON))}
    spent = accounts(linked_hub)
    month = TODAY.strftime("%Y-%m")
    assert spent[("dsa-police-victimizations", month)] == ("rho", pytest.approx(RHO))
    assert spent[("dsa-police-victimizations", "lifetime")] == ("rho", pytest.approx(RHO))
    assert spent[("dsa-hospital-ed-injury", month)] == ("epsilon", pytest.approx(EPSILON))
    assert spent[("dsa-hospital-ed-injury", "lifetime")] == ("epsilon", pytest.approx(EPSILON))
    with linked_hub.session() as s:
        sources = s.execute(select(ReleaseSource)).scalars().all()
        debits = s.execute(select(BudgetDebit)).scalars().all()
    assert len(sources) == 2 and all(src.upload_ids for src in sources)
    assert len(debits) == 4
    for c in view["cells"]:
        assert c["suppressed"] or (
            0 <= c["lower"] <= c["value"] <= c["upper"] <= 1 and c["numerator"] <= c["denominator"]
        )


def test_an_identical_linked_request_is_served_from_the_cache_and_charges_nobody_again(
    linked_hub: Hub,
) -> None:
    first = release(linked_hub, make_request("repeat_victimization_yr"))
    before = accounts(linked_hub)
    again = release(linked_hub, make_request("repeat_victimization_yr"))
    assert again["cached"] and again["id"] == first["id"] and again["cells"] == first["cells"]
    assert accounts(linked_hub) == before


def test_when_the_linked_agreements_budget_is_spent_nothing_is_released_or_charged(
    linked_hub: Hub,
) -> None:
    with linked_hub.session() as s:
        s.add(
            BudgetAccount(
                agreement_id="dsa-hospital-ed-injury",
                period_key="lifetime",
                unit="epsilon",
                cap=24.0,
                spent=24.0,
            )
        )
        s.commit()
    before = accounts(linked_hub)
    with pytest.raises(BudgetExhausted, match="dsa-hospital-ed-injury"):
        release(linked_hub, make_request("repeat_victimization_yr"))
    assert accounts(linked_hub) == before
    with linked_hub.session() as s:
        assert s.execute(select(Release)).first() is None


def test_a_suspended_linked_agreement_stops_the_releases_that_read_its_data(
    linked_hub: Hub,
) -> None:
    data = make_agreement_data(AGREEMENTS_DIR / "dsa-hospital-ed-injury.yaml")
    data["agreement"].update(version="1.1.0", status="suspended")
    load_agreement(linked_hub, Agreement.model_validate(data))
    with pytest.raises(AgreementRefused, match="dsa-hospital-ed-injury@1.1.0 is suspended"):
        release(linked_hub, make_request("repeat_victimization_yr"))
    release(linked_hub, make_request("viol_monthly"))  # the police data alone still releases


def test_the_preview_of_a_linked_release_shows_what_each_agreement_would_pay(
    linked_hub: Hub,
) -> None:
    from release_factories import actor

    with linked_hub.session() as s:
        plan = preview_release(
            s, actor(linked_hub, "analyst"), make_request("repeat_victimization_yr"), TODAY
        )
    assert plan["fits"] is True
    assert (plan["cost"], plan["budget_unit"]) == (RHO, "rho")  # the police agreement's own
    assert plan["privacy_loss"] == pytest.approx(EPSILON) and plan["privacy_loss_unit"] == "epsilon"
    assert plan["budgets"][POLICE]["cost"] == RHO and plan["budgets"][POLICE]["unit"] == "rho"
    hospital = plan["budgets"][HOSPITAL]
    assert hospital["unit"] == "epsilon" and hospital["cost"] == pytest.approx(EPSILON)
    assert hospital["lifetime"]["remaining_after"] == pytest.approx(24.0 - EPSILON)
    assert accounts(linked_hub) == {}


@pytest.mark.parametrize("aggregate", ["referral_followup_qtr", "referral_days_to_service_qtr"])
def test_a_rate_and_a_mean_of_referrals_release_with_intervals(
    linked_hub: Hub, aggregate: str
) -> None:
    view = release(linked_hub, make_request(aggregate, window=WINDOW))
    assert view["agreements"] == ["dsa-referrals@1.0.0"]
    assert view["error_bound_95"] is None and "interval" in view["accuracy_note"]
    shown = [c for c in view["cells"] + view["totals"] if not c["suppressed"]]
    assert shown
    for c in shown:
        assert c["lower"] <= c["value"] <= c["upper"]


def test_the_catalogue_says_a_linked_aggregate_runs_pure_dp_and_charges_both_agreements(
    linked_hub: Hub,
) -> None:
    from hub.releases.views import catalogue_entries

    with linked_hub.session() as s:
        entries = {e["aggregate_id"]: e for e in catalogue_entries(s)}
    linked = entries["repeat_victimization_yr"]
    assert linked["privacy_model"] == "pure_dp"
    assert linked["privacy_loss_per_release"] == pytest.approx(EPSILON)
    assert [(c["agreement"], c["unit"]) for c in linked["charges"]] == [
        (POLICE, "rho"),
        (HOSPITAL, "epsilon"),
    ]
    assert linked["requires_linkage"] == ["ed_injury_visits"]
    own = entries["viol_monthly"]
    assert own["privacy_model"] == "zcdp" and len(own["charges"]) == 1
    assert entries["referral_days_to_service_qtr"]["value"]["bounds"] == [0, 90]


def test_the_hospital_steward_sees_the_police_release_that_read_its_visits(
    linked_hub: Hub,
) -> None:
    from release_factories import actor

    from hub.ingest.views import releases_using

    view = release(linked_hub, make_request("repeat_victimization_yr"))
    release(linked_hub, make_request("viol_monthly"))  # police data only
    with linked_hub.session() as s:
        seen = releases_using(s, actor(linked_hub, "steward-hospital-0000"))
    assert [r["release_id"] for r in seen] == [view["id"]]
    (used,) = seen
    assert used["datasets"] == ["ed_injury_visits"]
    assert {"agreement": HOSPITAL, "amount": pytest.approx(EPSILON), "unit": "epsilon"} in used[
        "charges"
    ]


def test_a_linked_aggregate_reads_only_records_that_can_be_linked(linked_hub: Hub) -> None:
    from sqlalchemy import func

    from hub.db.models import Record
    from hub.releases.service import release_rows

    with linked_hub.session() as s:
        everything = release_rows(s, "police_victimizations", ["incident_datetime"])
        linkable = release_rows(s, "police_victimizations", ["incident_datetime"], True)
        flagged = s.execute(
            select(func.count())
            .select_from(Record)
            .where(Record.dataset_id == "police_victimizations")
            .where(Record.no_linkage.is_(True) | Record.aggregate_only.is_(True))
        ).scalar_one()
    assert flagged > 0 and len(linkable) == len(everything) - flagged
    view = release(linked_hub, make_request("repeat_victimization_yr"))
    assert "no-linkage" in view["population_note"]


def test_rows_whose_consent_has_ended_are_not_read(linked_hub: Hub) -> None:
    """The victim-services agreement's consent ends on the date in consent_expiry; after it
    the row is not used. release_rows leaves such rows out (here the police incident day
    stands in for an end date: the mechanics are the same)."""
    import datetime as dt

    from contracts.loader import load_agreement as load_spec
    from hub.releases.service import _consent_ends, release_rows  # noqa: PLC2701

    with linked_hub.session() as s:
        everything = release_rows(s, "police_victimizations", ["incident_datetime"])
        day = sorted(everything["incident_datetime"])[len(everything) // 2]
        current = release_rows(
            s,
            "police_victimizations",
            ["incident_datetime"],
            consent_ends=("incident_datetime", dt.date.fromisoformat(day[:10])),
        )
    assert 0 < len(current) < len(everything)
    assert (current["incident_datetime"] >= day[:10]).all()
    assert (everything["incident_datetime"] < day[:10]).sum() == len(everything) - len(current)
    spec = load_spec(AGREEMENTS_DIR / "dsa-victim-services.yaml")
    today = dt.date(2026, 1, 5)
    assert _consent_ends(spec, "victim_services_contacts", today) == ("consent_expiry", today)
    police = load_spec(AGREEMENTS_DIR / "dsa-police-victimizations.yaml")
    assert _consent_ends(police, "police_victimizations", today) is None
