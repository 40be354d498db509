"""What callers see of an agreement version's lifecycle: one view for the CLI and the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from hub.agreements.lifecycle import allowed_next, effective_status
from hub.agreements.service import Governing
from hub.agreements.signatures import signature_status


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
    """The lifecycle view plus signatures (and whether each still verifies) and approvals."""
    sigs = signature_status(session, gov.row, gov.spec)
    return {
        **lifecycle_view(gov, today),
        "signatures": sigs.details,
        "unsigned_parties": sigs.unsigned_parties,
        "approvals_required": list(gov.spec.approvals_required),
    }
