"""Retention: carry out the destruction that terminated agreements scheduled.

A :class:`~hub.db.models.DestructionOrder` names the datasets of a terminated agreement and the
date by which their data must be gone. :func:`run_due_destruction` deletes every stored record
of those datasets that came in under that agreement (tokens go with them, and
:func:`~hub.db.records.delete_records` deletes their person links), marks the order done, and
writes an audit event with the count — the hub's certificate of destruction. Releases already
published are aggregates and stay.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import audit
from hub.db.models import AgreementVersion, DestructionOrder, Record, utcnow
from hub.db.records import delete_records, lock_datasets


def run_due_destruction(
    session: Session, today: dt.date, actor: str = "hub (retention)"
) -> list[dict[str, Any]]:
    done = []
    orders = session.execute(
        select(DestructionOrder).where(
            DestructionOrder.status == "scheduled", DestructionOrder.due_on <= today
        )
    ).scalars()
    due = list(orders)
    # Every dataset of every due order, locked once and in order, before anything is counted:
    # no upload can then add to or correct them until the purge commits.
    lock_datasets(session, [d for order in due for d in order.datasets])
    for order in due:
        versions = select(AgreementVersion.id).where(
            AgreementVersion.agreement_id == order.agreement_id
        )
        doomed = (
            Record.dataset_id.in_(order.datasets),
            Record.agreement_version_id.in_(versions),
        )
        count = session.execute(
            select(func.count()).select_from(Record).where(*doomed)
        ).scalar_one()
        delete_records(session, *doomed)
        order.status, order.records_destroyed, order.done_at = "done", count, utcnow()
        session.flush()
        certificate = {
            "order": order.id,
            "agreement": order.agreement_id,
            "datasets": order.datasets,
            "records_destroyed": count,
            "method": order.method,
            "due_on": order.due_on.isoformat(),
        }
        audit.append(
            session, audit.Event(actor, "retention.destroy", order.agreement_id, certificate)
        )
        done.append(certificate)
    return done
