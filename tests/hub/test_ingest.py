from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, inspect, select, text

from factories import (
    assert_audit_chain_intact,
    assert_names_no_value_of,
    grown,
    load_agreement,
    load_examples,
    make_actor,
    make_agreement,
    make_police_csv,
    make_police_row,
    reject_events,
)
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import Record, Upload
from hub.errors import AgreementRefused, NotAllowed, UploadRejected
from hub.ingest.attempts import UploadAttempt
from hub.ingest.formats import ExtractUnreadable
from hub.ingest.service import upload_extract

AGREEMENT = "dsa-police-victimizations"
DATASET = "police_victimizations"


def table_counts(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}


def upload(hub: Hub, content: bytes, actor_name: str = "steward-police", **kw: object):
    """Upload as the CLI and the API do (:class:`UploadAttempt`: a refusal is audited)."""
    with hub.session() as s:
        from hub.auth.service import actor_of, get_user

        actor = actor_of(get_user(s, actor_name))
    if "today" in kw:
        hub = dataclasses.replace(hub, today=lambda: kw["today"])  # type: ignore[arg-type,return-value]
    attempt = UploadAttempt(
        actor,
        kw.get("agreement", AGREEMENT),  # type: ignore[arg-type]
        kw.get("dataset", DATASET),  # type: ignore[arg-type]
        via="cli",
    )
    return attempt.run(hub, content)


@pytest.fixture
def police_hub(hub: Hub) -> Hub:
    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    make_actor(hub, "steward-hospital", Role.steward, "org:hospital")
    return hub


def test_an_accepted_upload_stores_every_row_and_returns_a_receipt(police_hub: Hub) -> None:
    rows = [make_police_row(i) for i in range(1, 6)]
    receipt = upload(police_hub, make_police_csv(rows))
    assert receipt.status == "accepted" and receipt.rows_accepted == 5
    assert receipt.agreement == "dsa-police-victimizations@1.0.0"
    assert len(receipt.file_sha256) == 64 and receipt.uploader == "steward-police"
    with police_hub.session() as s:
        assert s.execute(select(func.count()).select_from(Record)).scalar_one() == 5
        tokens = s.execute(select(Record.t_fn, Record.t_ln, Record.t_dob, Record.t_by)).all()
    assert all(None not in row for row in tokens)


def test_a_rejected_upload_changes_no_table_and_names_rule_column_and_rows(police_hub: Hub) -> None:
    before = table_counts(police_hub)
    rows = [make_police_row(i) for i in range(1, 6)]
    rows[2]["victim_sex"] = "Q"  # not an allowed value
    rows[3]["victim_dob"] = "1999-02-31"  # not a date
    with pytest.raises(UploadRejected) as info:
        upload(police_hub, make_police_csv(rows))
    assert table_counts(police_hub) == grown(before, audit_log=1)  # the upload.reject event
    findings = info.value.extra["report"]["findings"]
    columns = {f["column"] for f in findings}
    assert {"victim_sex", "victim_dob"} <= columns
    sex = next(f for f in findings if f["column"] == "victim_sex")
    assert sex["failing_rows"] == 1 and sex["first_rows"] == [3]
    assert "Q" not in str(info.value.extra) and "1999-02-31" not in str(info.value.extra)


def test_an_unreadable_file_is_refused_with_where(police_hub: Hub) -> None:
    before = table_counts(police_hub)
    with pytest.raises(ExtractUnreadable, match="line 3"):
        upload(police_hub, make_police_csv([make_police_row(1)]) + b"a,b\n")
    with pytest.raises(ExtractUnreadable, match="empty"):
        upload(police_hub, b"")
    assert table_counts(police_hub) == grown(before, audit_log=2)
    errors = [e["details"]["error"] for e in reject_events(police_hub)]
    assert errors == ["extract_unreadable", "extract_unreadable"]


def test_the_same_file_twice_returns_the_same_receipt_and_no_new_rows(police_hub: Hub) -> None:
    content = make_police_csv([make_police_row(i) for i in range(1, 4)])
    first = upload(police_hub, content)
    counts = table_counts(police_hub)
    again = upload(police_hub, content)
    assert again.upload_id == first.upload_id and again.duplicate
    assert table_counts(police_hub) == counts
    assert f"already accepted on {first.created_at[:10]}" in again.notes[-1]
    assert "nothing changed" in again.notes[-1] and "later upload" not in again.notes[-1]


def test_an_older_file_sent_after_a_newer_one_says_the_newer_revisions_stand(
    police_hub: Hub,
) -> None:
    """A steward who sends last month's file again, after this month's corrected it, is told
    that it was not applied and that the correction stands; nothing changes."""
    january = make_police_csv([make_police_row(i) for i in range(1, 4)])
    first = upload(police_hub, january)
    upload(police_hub, make_police_csv([make_police_row(3, victim_age="50")]))
    counts = table_counts(police_hub)
    again = upload(police_hub, january)
    assert again.upload_id == first.upload_id and again.duplicate
    assert table_counts(police_hub) == counts
    assert "1 later upload(s) of police_victimizations were accepted since" in again.notes[-1]
    assert "wherever they revised a record of this file, the revised values" in again.notes[-1]


def test_a_corrected_extract_replaces_the_records_it_revises(police_hub: Hub) -> None:
    first = upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 4)]))
    fixed = [
        make_police_row(2),  # resent as it was
        make_police_row(3, victim_age="50", victim_last_name="Corrected"),
        make_police_row(4),
    ]
    receipt = upload(police_hub, make_police_csv(fixed))
    assert (receipt.rows_added, receipt.rows_replaced, receipt.rows_unchanged) == (1, 1, 1)
    with police_hub.session() as s:
        sources = s.execute(select(Record.upload_id)).scalars().all()
        ages = s.execute(select(Record.values)).scalars().all()
    # the unchanged and the untouched records stay as first stored; the revised one is new
    assert sorted(sources) == sorted([first.upload_id] * 2 + [receipt.upload_id] * 2)
    assert sorted(v["victim_age"] for v in ages).count("45-64") == 1


def test_a_correction_that_changes_only_raw_detail_lost_in_transforms_is_unchanged(
    police_hub: Hub,
) -> None:
    upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 3)]))
    # A different narrative and another time on the same day store the same values. (Not an
    # exact age inside the same age band: the age is linked, as the birth years it allows.)
    fixed = [make_police_row(2, narrative="revised text", incident_datetime="2026-03-14T23:40:00")]
    receipt = upload(police_hub, make_police_csv(fixed))
    assert (receipt.rows_added, receipt.rows_replaced, receipt.rows_unchanged) == (0, 0, 1)


def test_a_steward_cannot_upload_another_agencys_dataset(police_hub: Hub) -> None:
    with pytest.raises(NotAllowed, match="org:police"):
        upload(police_hub, make_police_csv([make_police_row(1)]), actor_name="steward-hospital")


def test_an_admin_acts_for_no_agency_and_cannot_upload(police_hub: Hub) -> None:
    make_actor(police_hub, "admin", Role.admin)
    with pytest.raises(NotAllowed):
        upload(police_hub, make_police_csv([make_police_row(1)]), actor_name="admin")


def test_uploads_are_refused_outside_the_agreement_dates(police_hub: Hub) -> None:
    with pytest.raises(AgreementRefused, match="expired"):
        upload(police_hub, make_police_csv([make_police_row(1)]), today=dt.date(2027, 7, 1))


def test_uploads_are_refused_under_an_agreement_that_is_not_active(hub: Hub) -> None:
    load_agreement(hub, make_agreement(status="suspended"))
    make_actor(hub, "steward-police", Role.steward, "org:police")
    with pytest.raises(AgreementRefused, match="suspended"):
        upload(hub, make_police_csv([make_police_row(1)]))


def test_uploads_must_name_the_agreement_that_governs_the_dataset(police_hub: Hub) -> None:
    with pytest.raises(AgreementRefused, match="governed by"):
        upload(police_hub, make_police_csv([make_police_row(1)]), agreement="dsa-referrals")


def test_row_rules_flag_juvenile_and_domestic_rows(police_hub: Hub) -> None:
    rows = [
        make_police_row(1),
        make_police_row(2, juvenile_flag="true", victim_age="16"),
        make_police_row(3, domestic_related="true"),
    ]
    receipt = upload(police_hub, make_police_csv(rows))
    assert receipt.rows_aggregate_only == 1 and receipt.rows_no_linkage == 1
    with police_hub.session() as s:
        flagged = (
            s.execute(select(Record.id).where(Record.aggregate_only | Record.no_linkage))
            .scalars()
            .all()
        )
        tokens = s.execute(
            select(Record.t_fn, Record.t_ln, Record.t_dob, Record.t_sex).where(
                Record.id.in_(flagged)
            )
        ).all()
    assert len(flagged) == 2 and all(set(row) == {None} for row in tokens)


def test_receipts_record_the_agreement_version_and_file_hash(police_hub: Hub) -> None:
    receipt = upload(police_hub, make_police_csv([make_police_row(1)]))
    with police_hub.session() as s:
        up = s.get(Upload, receipt.upload_id)
        assert up is not None and up.agreement_version_id is not None
        assert up.file_sha256 == receipt.file_sha256


def test_an_undeclared_column_is_refused_unless_the_agreement_says_drop(police_hub: Hub) -> None:
    before = table_counts(police_hub)
    content = make_police_csv([make_police_row(1)]).decode().splitlines()
    content = [content[0] + ",ssn", content[1] + ",123-45-6789"]
    with pytest.raises(UploadRejected) as info:
        upload(police_hub, ("\n".join(content) + "\n").encode())
    findings = info.value.extra["report"]["findings"]
    assert any(f["rule"] == "unknown_column" and f["column"] == "ssn" for f in findings)
    assert "123-45-6789" not in str(info.value.extra)
    assert table_counts(police_hub) == grown(before, audit_log=1)
    (event,) = reject_events(police_hub)
    assert "ssn" not in str(event) and "123-45-6789" not in str(event)


def test_an_undeclared_column_is_dropped_unread_when_the_agreement_says_drop(hub: Hub) -> None:
    from contracts.model import Agreement
    from factories import make_agreement_data

    data = make_agreement_data()
    data["datasets"][0]["unlisted_fields"] = "drop"
    load_agreement(hub, Agreement.model_validate(data))
    make_actor(hub, "steward-police", Role.steward, "org:police")
    content = make_police_csv([make_police_row(1)]).decode().splitlines()
    content = [content[0] + ",ssn", content[1] + ",123-45-6789"]
    receipt = upload(hub, ("\n".join(content) + "\n").encode())
    assert receipt.rows_accepted == 1
    assert any(w["column"] == "ssn" for w in receipt.warnings)
    with hub.session() as s:
        values = s.execute(select(Record.values)).scalar_one()
    assert "ssn" not in values and "123-45-6789" not in str(values)


def test_can_upload_answers_the_same_question_as_check_can_upload(police_hub: Hub) -> None:
    from contracts.loader import load_agreement as load_file
    from factories import POLICE
    from hub.auth.policies import Actor, can_upload

    spec = load_file(POLICE)
    dataset = spec.dataset(DATASET)
    assert dataset is not None
    assert can_upload(Actor(1, "s", Role.steward, "org:police"), spec, dataset)
    assert not can_upload(Actor(2, "h", Role.steward, "org:hospital"), spec, dataset)
    assert not can_upload(Actor(3, "a", Role.analyst, None), spec, dataset)


def test_every_record_belongs_to_a_stored_upload_of_its_dataset(police_hub: Hub) -> None:
    # records carry no database foreign keys (see hub.db.models.Record); the writer keeps them
    # consistent, which this checks after first uploads, corrections and a rejected upload.
    from sqlalchemy import text

    upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 5)]))
    upload(police_hub, make_police_csv([make_police_row(2, victim_sex="F"), make_police_row(9)]))
    with pytest.raises(UploadRejected):
        upload(police_hub, make_police_csv([make_police_row(10, victim_sex="Q")]))
    with police_hub.session() as s:
        orphans = s.execute(
            text(
                "SELECT count(*) FROM records r LEFT JOIN uploads u ON u.id = r.upload_id "
                "AND u.dataset_id = r.dataset_id "
                "AND u.agreement_version_id = r.agreement_version_id WHERE u.id IS NULL"
            )
        ).scalar_one()
        total = s.execute(select(func.count()).select_from(Record)).scalar_one()
    assert total == 5 and orphans == 0


def test_a_rejection_leaves_nothing_even_when_the_caller_commits(police_hub: Hub) -> None:
    from hub.auth.service import actor_of, get_user

    before = table_counts(police_hub)
    rows = [make_police_row(i) for i in range(1, 6)]
    rows[4]["victim_sex"] = "Q"  # in the last chunk, after two stored chunks
    with police_hub.session() as s:
        actor = actor_of(get_user(s, "steward-police"))
        with pytest.raises(UploadRejected):
            upload_extract(
                s,
                police_hub.keys,
                actor,
                agreement_id=AGREEMENT,
                dataset_id=DATASET,
                content=make_police_csv(rows),
                today=police_hub.today(),
                chunk_rows=2,
            )
        s.commit()
    assert table_counts(police_hub) == before


def test_every_refusal_appends_one_upload_reject_event_naming_no_value(police_hub: Hub) -> None:
    import json

    from hub.errors import HubError

    rows = [
        make_police_row(i, victim_first_name=f"Zebulon{i}", victim_last_name=f"Quackenbush{i}")
        for i in range(1, 5)
    ]
    rows[1]["victim_dob"] = "1999-02-31"
    content = make_police_csv(rows)
    before = table_counts(police_hub)
    refusals: list[tuple[type[HubError], dict[str, object]]] = [
        (UploadRejected, {}),
        (NotAllowed, {"actor_name": "steward-hospital"}),
        (AgreementRefused, {"today": dt.date(2027, 7, 1)}),
        (AgreementRefused, {"agreement": "dsa-someone-else"}),
    ]
    for error, options in refusals:
        with pytest.raises(error):
            upload(police_hub, content, **options)  # type: ignore[arg-type]
    assert table_counts(police_hub) == grown(before, audit_log=len(refusals))
    events = reject_events(police_hub)
    assert [e["details"]["error"] for e in events] == [
        "upload_rejected",
        "not_allowed",
        "agreement_refused",
        "agreement_refused",
    ]
    assert [e["details"]["via"] for e in events] == ["cli"] * 4
    rejected = events[0]["details"]
    assert rejected["failed_rules"] == 1 and rejected["rules"] == [
        {"rule": "type:date", "column": "victim_dob", "failing_rows": 1}
    ]
    assert rejected["file_bytes"] == len(content) and len(rejected["file_sha256"]) == 64
    assert events[1]["details"]["file_sha256"] is None  # refused before the file was read
    text = json.dumps(events)
    assert_names_no_value_of(rows, text)
    assert "1999-02-31" not in text
    assert_audit_chain_intact(police_hub)


def test_rows_whose_consent_has_ended_reject_the_upload_and_store_nothing(hub: Hub) -> None:
    """Victim-service rows may be shared only while the survivor's written consent lasts
    (VAWA): a row whose consent_expiry is before the upload day is refused."""
    from contracts.model import Agreement
    from factories import AGREEMENTS_DIR, TODAY, make_agreement_data

    data = make_agreement_data(AGREEMENTS_DIR / "dsa-victim-services.yaml")
    data["agreement"]["status"] = "active"  # the example is a draft
    load_agreement(hub, Agreement.model_validate(data))
    make_actor(hub, "steward-vs", Role.steward, "org:victim_services")
    header = (
        "contact_id,client_ref,contact_date,service_type,victimization_type,referral_source,"
        "client_age,client_sex,home_zip,consent_to_share,consent_signed_date,consent_expiry,"
        "case_notes"
    )
    day = TODAY - dt.timedelta(days=30)

    def row(i: int, consent: str, expiry: dt.date) -> str:
        return (
            f"C{i:08d},S{i:06d},{day},HOTLINE,STALKING,SELF,30,F,60651,{consent},"
            f"{day - dt.timedelta(days=10)},{expiry},"
        )

    def send(*rows: str) -> object:
        content = "\n".join([header, *rows]).encode() + b"\n"
        return upload(
            hub,
            content,
            "steward-vs",
            agreement="dsa-victim-services",
            dataset="victim_services_contacts",
        )

    before = table_counts(hub)
    with pytest.raises(UploadRejected) as info:
        send(row(1, "WRITTEN", TODAY), row(2, "WRITTEN", TODAY - dt.timedelta(days=1)))
    assert table_counts(hub) == grown(before, audit_log=1)
    found = info.value.extra["report"]["row_rules"]
    (ended,) = [f for f in found if f["rule"] == "consent_expired"]
    assert ended["column"] == "consent_expiry" and ended["first_rows"] == [2]
    receipt = send(row(3, "WRITTEN", TODAY), row(4, "WRITTEN", TODAY + dt.timedelta(days=90)))
    assert receipt.status == "accepted" and receipt.rows_accepted == 2
