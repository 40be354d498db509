"""The agreement lifecycle: a transitions table and one gate.

    draft --submit--> under_review --activate--> active --suspend--> suspended
    under_review --return--> draft          suspended --reinstate--> active
    active | suspended --terminate--> terminated
    active | suspended --expire--> expired        (by date; nobody acts)
    active | suspended --supersede--> superseded  (a newer version was activated)

:func:`transition` is the only way a version's status changes. It checks the table, the actor's
permission and the transition's gate (activation needs every party's valid signature, every
required approval and an unexpired date range), records the step, writes the audit event, and
applies the side effects: activation makes the version govern its datasets (superseding the
previous active version), termination schedules destruction as the retention section says.

:func:`effective_status` is what enforcement uses: an active or suspended version past its expiry
date *is* expired, whether or not :func:`expire_due` has recorded it yet.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.model import Agreement
from hub import audit
from hub.agreements.signatures import signature_status
from hub.auth.policies import Actor, Permission, check_permission
from hub.db.models import (
    AgreementApproval,
    AgreementTransition,
    AgreementVersion,
    DatasetRegistration,
    DestructionOrder,
)
from hub.errors import AgreementRefused, InvalidRequest

Gate = Callable[[Session, AgreementVersion, Agreement, dt.date], list[str]]


def no_gate(session: Session, row: AgreementVersion, spec: Agreement, today: dt.date) -> list[str]:
    return []


def required_approvals(spec: Agreement) -> list[str]:
    return list(getattr(spec, "approvals_required", ()) or ())


def activation_gate(
    session: Session, row: AgreementVersion, spec: Agreement, today: dt.date
) -> list[str]:
    """Everything that stands between this version and being active; empty means it may be."""
    missing: list[str] = []
    status = signature_status(session, row, spec)
    missing += [f"no valid signature for {party}" for party in status.unsigned_parties]
    missing += [f"signature by {s} does not match this text" for s in status.invalid]
    decided = {
        a.body: a.decision
        for a in session.execute(
            select(AgreementApproval).where(AgreementApproval.agreement_version_id == row.id)
        ).scalars()
    }
    for body in required_approvals(spec):
        if decided.get(body) != "approved":
            missing.append(f"no approval recorded from {body}")
    if today > spec.agreement.expiry_date:
        missing.append(f"it expired on {spec.agreement.expiry_date}")
    return missing


@dataclass(frozen=True)
class Transition:
    name: str
    permission: Permission | None  # None: only the hub itself (by date or as a side effect)
    gate: Gate = no_gate


TRANSITIONS: dict[tuple[str, str], Transition] = {
    ("draft", "under_review"): Transition("submit", Permission.agreements_write),
    ("under_review", "draft"): Transition("return", Permission.agreements_write),
    ("under_review", "active"): Transition(
        "activate", Permission.agreements_write, activation_gate
    ),
    ("active", "suspended"): Transition("suspend", Permission.agreements_write),
    ("suspended", "active"): Transition("reinstate", Permission.agreements_write, activation_gate),
    ("active", "terminated"): Transition("terminate", Permission.agreements_write),
    ("suspended", "terminated"): Transition("terminate", Permission.agreements_write),
    ("active", "expired"): Transition("expire", None),
    ("suspended", "expired"): Transition("expire", None),
    ("active", "superseded"): Transition("supersede", None),
    ("suspended", "superseded"): Transition("supersede", None),
}
ACTION_TARGET = {t.name: to for (_, to), t in TRANSITIONS.items()}


def effective_status(row: AgreementVersion, spec: Agreement, today: dt.date) -> str:
    if row.status in ("active", "suspended") and today > spec.agreement.expiry_date:
        return "expired"
    return row.status


def allowed_next(row: AgreementVersion) -> list[str]:
    return sorted(
        t.name for (frm, _), t in TRANSITIONS.items() if frm == row.status and t.permission
    )


def transition(
    session: Session,
    row: AgreementVersion,
    spec: Agreement,
    to_status: str,
    actor: Actor | None,
    today: dt.date,
    reason: str = "",
) -> AgreementVersion:
    """Move a version to ``to_status`` through the one gate. ``actor`` None means the hub itself."""
    step = TRANSITIONS.get((row.status, to_status))
    if step is None:
        raise InvalidRequest(
            f"{spec.ref} is {row.status}; it cannot become {to_status}. From {row.status} it "
            f"can: {', '.join(allowed_next(row)) or 'nothing (final state)'}"
        )
    if step.permission is None and actor is not None:
        raise InvalidRequest(f"{step.name} happens by itself; nobody can {step.name} {spec.ref}")
    if actor is not None and step.permission is not None:
        check_permission(actor, step.permission)
    blockers = step.gate(session, row, spec, today)
    if blockers:
        raise AgreementRefused(
            f"{spec.ref} cannot {step.name}: " + "; ".join(blockers), blockers=blockers
        )
    previous = row.status
    row.status = to_status
    who = actor.label if actor else "hub (by rule)"
    session.add(
        AgreementTransition(
            agreement_version_id=row.id,
            from_status=previous,
            to_status=to_status,
            actor=who,
            reason=reason,
        )
    )
    session.flush()
    audit.append(
        session,
        audit.Event(
            who,
            f"agreement.{step.name}",
            spec.ref,
            {"from": previous, "to": to_status, "reason": reason},
        ),
    )
    if to_status == "active":
        _govern(session, row, spec, today)
    elif to_status == "terminated":
        schedule_destruction(session, row, spec, today)
    return row


def _govern(session: Session, row: AgreementVersion, spec: Agreement, today: dt.date) -> None:
    """Point each dataset at this version; an older active version of it is superseded."""
    for ds in spec.datasets:
        reg = session.get(DatasetRegistration, ds.id)
        if reg is None:
            session.add(
                DatasetRegistration(
                    id=ds.id, agreement_version_id=row.id, provider_party_id=ds.provider
                )
            )
            continue
        old = session.get(AgreementVersion, reg.agreement_version_id)
        if old is not None and old.agreement_id != spec.id:
            raise InvalidRequest(
                f"dataset {ds.id} is governed by {old.agreement_id}; a dataset belongs to one "
                "agreement"
            )
        reg.agreement_version_id, reg.provider_party_id = row.id, ds.provider
        if old is not None and old.id != row.id and old.status in ("active", "suspended"):
            old_spec = Agreement.model_validate(old.spec)
            transition(session, old, old_spec, "superseded", None, today, f"by {spec.ref}")
    session.flush()


_DURATION = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)


def add_duration(day: dt.date, iso: str) -> dt.date:
    """``day`` plus an ISO-8601 duration (``P30D``, ``P1Y6M``, ``PT72H``); months clamp to month
    end. Days are whole: a time part counts only its whole days (``PT72H`` is 3 days, ``PT36H``
    1), so a deadline computed from it is never later than the duration allows."""
    match = _DURATION.match(iso.strip())
    if not match or not any(match.groups()):
        raise InvalidRequest(f"{iso!r} is not an ISO-8601 duration such as P30D or P3Y")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    days += (hours * 3600 + minutes * 60 + seconds) // 86_400
    month_index = day.month - 1 + months + 12 * years
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last)) + dt.timedelta(weeks=weeks, days=days)


def schedule_destruction(
    session: Session, row: AgreementVersion, spec: Agreement, today: dt.date
) -> DestructionOrder:
    """On termination, order destruction of the agreement's data within the retention window."""
    retention = spec.retention
    destruction = getattr(retention, "destruction", None)
    within = getattr(destruction, "within", None) or "P30D"
    method = getattr(destruction, "method", None) or "delete"
    order = DestructionOrder(
        agreement_id=spec.id,
        agreement_version_id=row.id,
        datasets=[d.id for d in spec.datasets],
        method=str(method),
        due_on=add_duration(today, str(within)),
    )
    session.add(order)
    session.flush()
    audit.append(
        session,
        audit.Event(
            "hub (by rule)",
            "retention.schedule",
            spec.ref,
            {
                "datasets": order.datasets,
                "due_on": order.due_on.isoformat(),
                "method": order.method,
            },
        ),
    )
    return order


def expire_due(session: Session, today: dt.date) -> list[str]:
    """Record the expiry of every active or suspended version past its date. Idempotent."""
    expired = []
    rows = session.execute(
        select(AgreementVersion).where(AgreementVersion.status.in_(("active", "suspended")))
    ).scalars()
    for row in list(rows):
        spec = Agreement.model_validate(row.spec)
        if today > spec.agreement.expiry_date:
            transition(session, row, spec, "expired", None, today, "expiry date passed")
            expired.append(spec.ref)
    return expired
