from __future__ import annotations

from sqlalchemy import update

from hub import audit
from hub.context import Hub
from hub.db.models import AuditEvent


def make_events(hub: Hub, n: int) -> None:
    with hub.session() as s:
        for i in range(n):
            audit.append(s, audit.Event("tester", "thing.happen", f"thing:{i}", {"i": i}))


def test_a_clean_chain_verifies(hub: Hub) -> None:
    make_events(hub, 5)
    with hub.session() as s:
        check = audit.verify(s)
    assert check.ok and check.events == 5


def test_editing_an_event_breaks_the_chain_at_that_event(hub: Hub) -> None:
    make_events(hub, 5)
    with hub.session() as s:
        s.execute(
            update(AuditEvent).where(AuditEvent.seq == 3).values(payload=AuditEvent.payload + " ")
        )
    with hub.session() as s:
        check = audit.verify(s)
    assert not check.ok and check.first_bad_seq == 3


def test_deleting_an_event_breaks_the_chain(hub: Hub) -> None:
    make_events(hub, 4)
    with hub.session() as s:
        s.query(AuditEvent).filter(AuditEvent.seq == 2).delete()
    with hub.session() as s:
        check = audit.verify(s)
    assert not check.ok and "missing" in check.reason
