"""The agreement lifecycle, signatures and enforcement at every door (issue 3, item 6)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from contracts.model import Agreement
from factories import (
    load_agreement,
    make_actor,
    make_agreement,
    make_agreement_data,
    make_police_csv,
    make_police_row,
)
from hub import audit
from hub.agreements.ceremony import ensure_signer, sign_approve_activate
from hub.agreements.lifecycle import add_duration, effective_status, expire_due, transition
from hub.agreements.service import get_version, register
from hub.agreements.signatures import sign_version, signature_status
from hub.auth.policies import Role
from hub.auth.service import actor_of, ensure_admin
from hub.context import Hub
from hub.db.models import AgreementVersion, DatasetRegistration, DestructionOrder, Record
from hub.errors import AgreementRefused, InvalidRequest, NotAllowed
from hub.ingest.service import upload_extract
from hub.retention import run_due_destruction

REF = ("dsa-police-victimizations", "1.0.0")


def admin(hub: Hub):
    with hub.session() as s:
        return actor_of(ensure_admin(s))


def register_draft(hub: Hub, agreement: Agreement | None = None) -> None:
    with hub.session() as s:
        register(s, agreement or make_agreement(status="draft"), admin(hub).label)


def upload_one(hub: Hub, i: int = 1):
    steward = make_actor(hub, f"steward-{i}", Role.steward, "org:police")
    return hub.transact(
        lambda s: upload_extract(
            s,
            hub.keys,
            steward,
            agreement_id=REF[0],
            dataset_id="police_victimizations",
            content=make_police_csv([make_police_row(i)]),
            today=hub.today(),
        )
    )


def test_a_new_version_starts_as_a_draft_whatever_its_yaml_says(hub: Hub) -> None:
    register_draft(hub, make_agreement(status="active"))
    with hub.session() as s:
        assert get_version(s, *REF).row.status == "draft"
        assert s.get(DatasetRegistration, "police_victimizations") is None


def test_activation_is_refused_until_every_party_signs_and_bodies_approve(
    hub: Hub, tmp_path: Path
) -> None:
    actor = admin(hub)
    register_draft(hub)
    actor = actor
    with hub.session() as s:
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "under_review", actor, hub.today())
    with hub.session() as s, pytest.raises(AgreementRefused) as info:
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "active", actor, hub.today())
    blockers = info.value.extra["blockers"]
    assert "no valid signature for org:police" in blockers
    assert "no valid signature for org:ovp" in blockers
    assert any("approval" in b for b in blockers) or not gov.spec.approvals_required
    with hub.session() as s:
        gov = get_version(s, *REF)
        key = ensure_signer(s, gov.spec, "org:police", tmp_path, actor)
        sign_version(s, gov.row, gov.spec, key, actor.label)
    with hub.session() as s, pytest.raises(AgreementRefused, match="org:ovp"):
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "active", actor, hub.today())
    with hub.session() as s:
        gov = get_version(s, *REF)
        sign_approve_activate(s, gov.row, gov.spec, tmp_path, actor, hub.today())
        assert gov.row.status == "active"
        assert s.get(DatasetRegistration, "police_victimizations") is not None


def test_an_edit_after_signing_invalidates_the_signatures_and_stops_everything(hub: Hub) -> None:
    load_agreement(hub, make_agreement())
    upload_one(hub)
    with hub.session() as s:
        row = get_version(s, *REF).row
        tampered = dict(row.spec)
        tampered["purposes"] = {**tampered["purposes"], "permitted": ["commercial_use"]}
        s.execute(
            update(AgreementVersion).where(AgreementVersion.id == row.id).values(spec=tampered)
        )
    with hub.session() as s:
        gov = get_version(s, *REF)
        status = signature_status(s, gov.row, gov.spec)
        assert status.invalid and not status.complete
    with pytest.raises(AgreementRefused, match="not fully signed"):
        upload_one(hub, 2)


def test_the_transitions_table_refuses_steps_it_does_not_list(hub: Hub) -> None:
    actor = admin(hub)
    register_draft(hub)
    with hub.session() as s, pytest.raises(InvalidRequest, match="cannot become active"):
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "active", actor, hub.today())
    data = make_agreement_data()
    data["agreement"]["version"] = "2.0.0"
    load_agreement(hub, Agreement.model_validate(data))
    with hub.session() as s, pytest.raises(InvalidRequest, match="by itself"):
        gov = get_version(s, REF[0], "2.0.0")
        transition(s, gov.row, gov.spec, "expired", actor, hub.today())


def test_only_legal_and_admin_change_agreements(hub: Hub) -> None:
    register_draft(hub)
    analyst = make_actor(hub, "analyst", Role.analyst)
    with hub.session() as s, pytest.raises(NotAllowed):
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "under_review", analyst, hub.today())


def test_expiry_happens_by_date_without_anyone_acting(hub: Hub) -> None:
    load_agreement(hub, make_agreement())
    later = dt.date(2027, 7, 1)
    with hub.session() as s:
        gov = get_version(s, *REF)
        assert effective_status(gov.row, gov.spec, later) == "expired"
        assert gov.row.status == "active"
    hub.today = lambda: later
    with pytest.raises(AgreementRefused, match="expired"):
        upload_one(hub)
    with hub.session() as s:
        assert expire_due(s, later) == ["dsa-police-victimizations@1.0.0"]
        assert expire_due(s, later) == []


@pytest.mark.parametrize("status", ["suspended", "terminated"])
def test_suspension_and_termination_stop_ingest_at_once(hub: Hub, status: str) -> None:
    actor = admin(hub)
    load_agreement(hub, make_agreement())
    upload_one(hub)
    with hub.session() as s:
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, status, actor, hub.today(), "test")
    with pytest.raises(AgreementRefused, match=status):
        upload_one(hub, 2)


def test_termination_schedules_destruction_and_retention_carries_it_out(hub: Hub) -> None:
    actor = admin(hub)
    load_agreement(hub, make_agreement())
    upload_one(hub)
    with hub.session() as s:
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "terminated", actor, hub.today(), "ended")
        order = s.execute(select(DestructionOrder)).scalar_one()
        assert order.datasets == ["police_victimizations"] and order.due_on > hub.today()
        assert run_due_destruction(s, hub.today()) == []
    with hub.session() as s:
        done = run_due_destruction(s, order.due_on)
        assert done[0]["records_destroyed"] == 1
        assert s.execute(select(func.count()).select_from(Record)).scalar_one() == 0
        assert audit.verify(s).ok


def test_a_destruction_deadline_in_hours_terminates_with_its_whole_days(hub: Hub) -> None:
    """``within: PT72H`` (destroy within 72 hours) passed the model but made terminating fail:
    the deadline arithmetic knew date durations only."""
    data = make_agreement_data()
    data["retention"]["destruction"]["within"] = "PT72H"
    load_agreement(hub, Agreement.model_validate(data))
    actor = admin(hub)
    with hub.session() as s:
        gov = get_version(s, *REF)
        transition(s, gov.row, gov.spec, "terminated", actor, hub.today(), "ended")
        order = s.execute(select(DestructionOrder)).scalar_one()
    assert order.due_on == hub.today() + dt.timedelta(days=3)


def test_activating_a_new_version_supersedes_the_old_and_binds_new_uploads(hub: Hub) -> None:
    load_agreement(hub, make_agreement())
    first = upload_one(hub)
    data = make_agreement_data()
    data["agreement"]["version"] = "1.1.0"
    load_agreement(hub, Agreement.model_validate(data))
    second = upload_one(hub, 2)
    assert first.agreement.endswith("@1.0.0") and second.agreement.endswith("@1.1.0")
    with hub.session() as s:
        assert get_version(s, REF[0], "1.0.0").row.status == "superseded"


def test_iso_durations_add_to_dates() -> None:
    assert add_duration(dt.date(2026, 1, 31), "P1M") == dt.date(2026, 2, 28)
    assert add_duration(dt.date(2026, 1, 1), "P30D") == dt.date(2026, 1, 31)
    assert add_duration(dt.date(2024, 2, 29), "P1Y") == dt.date(2025, 2, 28)
    # Time parts count in whole days, rounded down (a deadline never later than allowed).
    assert add_duration(dt.date(2026, 1, 1), "PT72H") == dt.date(2026, 1, 4)
    assert add_duration(dt.date(2026, 1, 1), "PT36H") == dt.date(2026, 1, 2)
    assert add_duration(dt.date(2026, 1, 1), "P1DT12H") == dt.date(2026, 1, 2)
    assert add_duration(dt.date(2026, 1, 1), "PT12H") == dt.date(2026, 1, 1)
    with pytest.raises(InvalidRequest):
        add_duration(dt.date(2026, 1, 1), "thirty days")
