"""What callers see of an agreement version's lifecycle: one view for the CLI and the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.agreements.lifecycle import TRANSITIONS, activation_gate, allowed_next, effective_status
from hub.agreements.service import Governing
from hub.agreements.signatures import signature_status
from hub.db.models import AgreementApproval, as_utc


def lifecycle_view(gov: Governing, today: dt.date) -> dict[str, Any]:
    """Status by date (past expiry it is expired), the recorded status, hash, next steps."""
    return {
        "agreement": gov.spec.ref,
        "status": effective_status(gov.row, gov.spec, today),
        "recorded_status": gov.row.status,
        "sha256": gov.row.sha256,
        "next": allowed_next(gov.row),
    }


def status_view(session: Session, gov: Governing, today: dt.date) -> dict[str, Any]:
    """The lifecycle view plus signatures (and whether each still verifies), the approvals
    required and those recorded, and, where the version could next become active (activate or
    reinstate), what still stands in the way (empty: nothing)."""
    sigs = signature_status(session, gov.row, gov.spec)
    recorded = session.execute(
        select(AgreementApproval)
        .where(AgreementApproval.agreement_version_id == gov.row.id)
        .order_by(AgreementApproval.decided_at, AgreementApproval.id)
    ).scalars()
    view = {
        **lifecycle_view(gov, today),
        "signatures": sigs.details,
        "unsigned_parties": sigs.unsigned_parties,
        "approvals_required": list(gov.spec.approvals_required),
        "approvals": [
            {
                "body": a.body,
                "decision": a.decision,
                "reference": a.reference,
                "recorded_by": a.recorded_by,
                "decided_at": as_utc(a.decided_at).isoformat(),
            }
            for a in recorded
        ],
    }
    if TRANSITIONS.get((gov.row.status, "active")) is not None:
        view["activation_blockers"] = activation_gate(session, gov.row, gov.spec, today)
    return view
