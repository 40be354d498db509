"""The steward's views read what they show and no more: the releases that used an agency's
uploads are found in SQL (no other release is loaded), and one upload's receipt with its
report is one read of the upload. On SQLite and PostgreSQL (the upload lists are JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from factories import load_examples, make_actor, make_police_csv, make_police_row
from hub.auth.policies import Actor, Role
from hub.auth.service import actor_of, get_user
from hub.context import Hub
from hub.db.models import Release, ReleaseSource, Upload
from hub.ingest import views
from hub.ingest.service import upload_extract

ELSEWHERE = "e" * 32  # an upload of another agency


@pytest.fixture(params=["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def view_hub(request: pytest.FixtureRequest) -> Hub:
    hub: Hub = request.getfixturevalue(request.param)
    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    make_actor(hub, "steward-hospital", Role.steward, "org:hospital")
    make_actor(hub, "admin", Role.admin)
    return hub


def actor(hub: Hub, name: str) -> Actor:
    with hub.session() as s:
        return actor_of(get_user(s, name))


def police_upload(hub: Hub) -> str:
    steward = actor(hub, "steward-police")
    receipt = hub.transact(
        lambda s: upload_extract(
            s,
            hub.keys,
            steward,
            agreement_id="dsa-police-victimizations",
            dataset_id="police_victimizations",
            content=make_police_csv([make_police_row(1)]),
            today=hub.today(),
        )
    )
    return receipt.upload_id


def add_release(hub: Hub, release_id: str, upload_ids: list[str]) -> None:
    with hub.session() as s:
        up = s.execute(select(Upload)).scalars().first()
        assert up is not None
        s.add(
            Release(
                id=release_id,
                request_hash=release_id * 2,
                aggregate_id="viol_monthly",
                recipient="public",
                requested_by=get_user(s, "admin").id,
                privacy_model="zcdp",
                privacy_loss=0.1,
                manifest={"title": release_id, "agreements": ["dsa-police-victimizations@1.0.0"]},
            )
        )
        s.flush()
        s.add(
            ReleaseSource(
                release_id=release_id,
                agreement_version_id=up.agreement_version_id,
                upload_ids=upload_ids,
            )
        )


@contextmanager
def releases_loaded() -> Iterator[list[str]]:
    """The ids of the releases the ORM loads from the database meanwhile."""
    loaded: list[str] = []

    def record(release: Release, context: Any) -> None:
        loaded.append(release.id)

    event.listen(Release, "load", record)
    try:
        yield loaded
    finally:
        event.remove(Release, "load", record)


def test_releases_using_loads_only_the_releases_that_used_the_agencys_uploads(
    view_hub: Hub,
) -> None:
    mine = police_upload(view_hub)
    add_release(view_hub, "a" * 32, [mine])
    add_release(view_hub, "b" * 32, [ELSEWHERE])
    add_release(view_hub, "c" * 32, [ELSEWHERE, mine])
    expected = [("a" * 32, [mine]), ("c" * 32, [mine])]
    for name, upload_id, want in [
        ("steward-police", None, expected),
        ("steward-police", mine, expected),
        ("admin", None, expected),  # every release that used an upload the hub holds
        ("steward-hospital", None, []),
    ]:
        who = actor(view_hub, name)
        with view_hub.session() as s, releases_loaded() as loaded:
            used = views.releases_using(s, who, upload_id)
        assert [(r["release_id"], r["uploads"]) for r in used] == want, name
        assert sorted(loaded) == [rid for rid, _ in want], name
        assert all(r["datasets"] == ["police_victimizations"] for r in used)


@contextmanager
def reads_of_uploads(hub: Hub) -> Iterator[list[str]]:
    """The SQL statements run meanwhile that read the ``uploads`` table."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM uploads" in statement:
            seen.append(statement)

    event.listen(hub.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(hub.engine, "before_cursor_execute", record)


def test_an_upload_with_its_report_is_one_read_of_the_upload(view_hub: Hub) -> None:
    upload_id = police_upload(view_hub)
    steward = actor(view_hub, "steward-police")
    with view_hub.session() as s, reads_of_uploads(view_hub) as reads:
        shown = views.upload_view(s, steward, upload_id)
    assert len(reads) == 1
    with view_hub.session() as s:
        assert shown == {
            **views.receipt_view(s, steward, upload_id),
            "report": views.report_view(s, steward, upload_id),
        }
    assert shown["report"]["report"]["ok"]
