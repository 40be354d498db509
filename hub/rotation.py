"""Key rotation: re-key every stored token without the raw data.

Tokens are layered HMACs (:class:`hub.keys.Hasher`): after rotation to key ``k2``, a stored
token ``t`` becomes ``HMAC(k2, t)``, which is exactly what an upload under the chain
``[k1, k2]`` computes from the raw value. So rotation needs the stored tokens only, and records
uploaded before and after it still link and still replace each other by record key.

What a rotation protects against: a copy of the database taken after it, together with a leak of
the old key alone, no longer lets anyone test guesses against tokens (they need every key of the
chain). The old keys stay in the key file, because new uploads must apply the whole chain.

Steps, each safe to repeat (``ovphub keys rotate``):

1. the new key is written to the key file as *pending* (not yet used by uploads);
2. one database transaction re-keys every record still under the old head (record keys,
   keyed-hash values, linkage tokens) and sets its ``key_id`` to the new key;
3. the key file makes the pending key active.

A crash between 2 and 3 leaves records under the pending key and the file not yet switched:
running the command again finds no record left under the old head and only does step 3.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub import audit
from hub.agreements.service import current_versions, in_force_versions, spec_of
from hub.db.models import (
    AgreementVersion,
    AuditEvent,
    DatasetRegistration,
    Record,
    Upload,
    as_utc,
)
from hub.db.records import lock_datasets
from hub.keys import KeyStore, KeyStoreError, rekey_hex, rekey_int64
from hub.pseudonymize import LINKAGE_PURPOSE, TOKEN_COLUMNS, record_purpose

BATCH = 5_000


@dataclass(frozen=True)
class RotationSummary:
    old_key_id: str
    new_key_id: str
    records: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_key_id": self.old_key_id,
            "new_key_id": self.new_key_id,
            "records": self.records,
        }


def _keyed_fields(session: Session) -> dict[tuple[int, str], list[str]]:
    """Per (agreement version, dataset), the fields stored as keyed hashes (the record-key
    field among them: its stored value is the record key's own hash)."""
    out: dict[tuple[int, str], list[str]] = {}
    for row in session.execute(select(AgreementVersion)).scalars():
        for ds in spec_of(row).datasets:
            out[(row.id, ds.id)] = [f.name for f in ds.fields if f.transform.kind == "keyed_hash"]
    return out


def rekey_records(
    session: Session, store: KeyStore, old_key_id: str, new_key_id: str, actor: str
) -> RotationSummary:
    """Re-key every record whose tokens are under ``old_key_id`` (the chain head before the
    rotation) with the new key ``new_key_id`` (known to ``store``). Caller commits."""
    lock_all_datasets(session)  # no upload runs while tokens change keys
    link = rekey_int64(store, LINKAGE_PURPOSE, new_key_id)
    record_steps: dict[str, Any] = {}
    keyed = _keyed_fields(session)
    total = 0
    columns = [getattr(Record, c) for c in TOKEN_COLUMNS]
    while True:
        batch = session.execute(
            select(
                Record.id,
                Record.dataset_id,
                Record.agreement_version_id,
                Record.record_key,
                Record.values,
                *columns,
            )
            .where(Record.key_id == old_key_id)
            .order_by(Record.id)
            .limit(BATCH)
        ).all()
        if not batch:
            break
        updates = []
        for rid, dataset_id, version_id, record_key, values, *tokens in batch:
            step = record_steps.get(dataset_id)
            if step is None:
                step = record_steps[dataset_id] = rekey_hex(
                    store, record_purpose(dataset_id), new_key_id
                )
            new_values = dict(values)
            for name in keyed.get((version_id, dataset_id), ()):
                if new_values.get(name) is not None:
                    new_values[name] = step(new_values[name])
            row: dict[str, Any] = {
                "id": rid,
                "record_key": step(record_key),
                "values": new_values,
                "key_id": new_key_id,
            }
            for column, token in zip(TOKEN_COLUMNS, tokens, strict=True):
                row[column] = None if token is None else link(token)
            updates.append(row)
        session.execute(update(Record), updates)
        total += len(updates)
    audit.append(
        session,
        audit.Event(
            actor,
            "keys.rotate",
            f"key:{new_key_id}",
            {"old_key_id": old_key_id, "new_key_id": new_key_id, "records": total},
        ),
    )
    return RotationSummary(old_key_id, new_key_id, total)


def lock_all_datasets(session: Session) -> None:
    """Wait for uploads, purges and linkage runs' link writing in progress, and hold new ones
    (they lock their datasets' rows) until this transaction ends: every dataset, locked in id
    order as :func:`~hub.db.records.lock_datasets` always locks. SQLite serializes every
    writer anyway."""
    lock_datasets(session, session.execute(select(DatasetRegistration.id)).scalars().all())


def _last_rotation(session: Session) -> dict[str, Any] | None:
    """The audit payload of the last committed rotation (None: never rotated); every rotation
    writes one in its transaction."""
    payload = session.execute(
        select(AuditEvent.payload)
        .where(AuditEvent.action == "keys.rotate")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if payload is None else dict(json.loads(payload))


def current_head(session: Session) -> str | None:
    """The key id the last committed rotation made the head of the chain (None: never
    rotated)."""
    last = _last_rotation(session)
    return None if last is None else str(last["details"]["new_key_id"])


def check_key_current(session: Session, store: KeyStore) -> None:
    """Refuse to write tokens under a key chain older than the stored ones (a process started
    before ``ovphub keys rotate``): they would not match, and corrections and linkage would
    silently fail. A key file is re-read once first, so a running server picks up a rotation."""
    head = current_head(session)
    if head is None or head == store.active_key_id:
        return
    reload = getattr(store, "reload", None)
    if reload is not None:
        reload()
        if head == store.active_key_id:
            return
    raise KeyStoreError(
        f"the stored tokens are under key {head}, but this process holds key "
        f"{store.active_key_id}. If a rotation was interrupted, run `ovphub keys rotate` to "
        "finish it; otherwise restart this process with the current key file"
    )


@dataclass(frozen=True)
class RotationDue:
    """When an agreement in force wants the keys rotated (``linkage.key_rotation_days``)."""

    agreement: str  # id@version
    every_days: int
    due_on: dt.date
    overdue: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement,
            "every_days": self.every_days,
            "due_on": self.due_on.isoformat(),
            "overdue": self.overdue,
        }


def keys_in_use_since(session: Session) -> dt.date | None:
    """The day the head of the key chain began keying stored tokens: the last rotation's, or,
    never rotated, the first accepted upload's (None: no token is stored yet)."""
    last = _last_rotation(session)
    if last is not None:
        return dt.datetime.fromisoformat(last["at"]).astimezone(dt.UTC).date()
    first = session.execute(
        select(func.min(Upload.created_at)).where(Upload.status == "accepted")
    ).scalar_one_or_none()
    return None if first is None else as_utc(first).date()


def rotation_due(session: Session, today: dt.date) -> list[RotationDue]:
    """Per agreement in force that sets ``linkage.key_rotation_days``: the day the keys in use
    must be rotated by, counted from :func:`keys_in_use_since`, and whether that has passed.
    Nothing while no token is stored."""
    since = keys_in_use_since(session)
    if since is None:
        return []
    wanting = [g for g in current_versions(session) if g.spec.linkage.key_rotation_days]
    out = []
    for gov in in_force_versions(session, today, "keyed", wanting):
        days = gov.spec.linkage.key_rotation_days or 0
        due = since + dt.timedelta(days=days)
        out.append(RotationDue(gov.spec.ref, days, due, today > due))
    return sorted(out, key=lambda r: (r.due_on, r.agreement))


def records_under(session: Session, key_id: str) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Record).where(Record.key_id == key_id)
        ).scalar_one()
    )


def rotate(hub: Any, actor: str) -> RotationSummary:
    """The whole rotation (steps 1–3 of the module docstring) for a hub with a key file."""
    from hub.keys import FileKeyStore

    store = hub.keys
    if not isinstance(store, FileKeyStore):
        raise KeyStoreError("key rotation needs a key file (HUB_KEY_FILE)")
    old = store.active_key_id
    new = store.pending or store.add_pending()

    def work(session: Session) -> RotationSummary:
        return rekey_records(session, store, old, new, actor)

    summary: RotationSummary = hub.transact(work)
    store.promote_pending()
    return summary
