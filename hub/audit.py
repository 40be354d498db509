"""The hash-chained audit log.

Every state change appends one :class:`AuditEvent` in the same transaction as the change, so the
log and the data can never disagree. Event *n* stores ``hash = sha256(prev_hash + payload)`` where
``payload`` is canonical JSON of (seq, time, actor, action, subject, details) and ``prev_hash``
is event *n-1*'s hash; changing or removing any event breaks every hash after it.

Details must never carry identifier values: callers pass counts, ids and hashes only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hub.db.models import AuditEvent

GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    """What a state-changing service call records; services take one as an argument."""

    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def _lock_chain(session: Session) -> None:
    # Appends must be serial for the chain to stay linear. PostgreSQL: a transaction-scoped
    # advisory lock; SQLite serializes writers already.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7262001)"))


def append(session: Session, event: Event, *, now: dt.datetime | None = None) -> AuditEvent:
    _lock_chain(session)
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    payload = json.dumps(
        {
            "seq": seq,
            "at": (now or dt.datetime.now(dt.UTC)).isoformat(),
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "details": event.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    row = AuditEvent(
        seq=seq,
        action=event.action,
        actor=event.actor,
        subject=event.subject,
        payload=payload,
        prev_hash=prev,
        hash=hashlib.sha256((prev + payload).encode()).hexdigest(),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str


def verify(session: Session) -> ChainCheck:
    """Recompute every hash from the start; report the first event that does not fit."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars():
        count += 1
        if row.seq != expected_seq:
            return ChainCheck(False, count, row.seq, f"event {expected_seq} is missing")
        if row.prev_hash != prev:
            return ChainCheck(False, count, row.seq, "prev_hash does not match the event before")
        if hashlib.sha256((prev + row.payload).encode()).hexdigest() != row.hash:
            return ChainCheck(False, count, row.seq, "hash does not match the payload")
        if json.loads(row.payload).get("seq") != row.seq:
            return ChainCheck(False, count, row.seq, "payload seq does not match the row")
        prev, expected_seq = row.hash, expected_seq + 1
    return ChainCheck(True, count, None, "chain intact")


def count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
