"""The whole signing ceremony in one call, for the demo, tests and first-time setup.

In production each signatory runs ``ovphub agreements sign`` with their own key; here the hub
creates one key per party in ``keys_dir`` (the private keys stay in that folder, outside the
database), signs with each, records the required approvals and activates the version — through
exactly the same services and gate as the separate commands.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import signing
from contracts.model import Agreement
from hub import audit
from hub.agreements.lifecycle import transition
from hub.agreements.signatures import (
    parties_that_must_sign,
    record_approval,
    register_signer,
    sign_version,
)
from hub.auth.policies import Actor
from hub.db.models import AgreementVersion, Signer


def party_key_path(keys_dir: Path, party_id: str) -> Path:
    return keys_dir / f"{party_id.replace(':', '_')}.pem"


def ensure_signer(
    session: Session, spec: Agreement, party_id: str, keys_dir: Path, actor: Actor
) -> Path:
    path = party_key_path(keys_dir, party_id)
    if path.exists():
        public = signing.raw_public_key(signing.load_private_key(path))
    else:
        public = signing.new_private_key(path)
    fp = signing.fingerprint(public)
    if session.execute(select(Signer).where(Signer.fingerprint == fp)).scalar_one_or_none() is None:
        who = next((s for s in spec.signatories if s.party == party_id), None)
        name = who.name if who else f"signatory of {party_id}"
        title = who.title if who else ""
        event = audit.Event(
            actor.label, "signer.register", f"signer:{name}", {"party": party_id, "fingerprint": fp}
        )
        register_signer(session, party_id, name, title, public, event)
    return path


def sign_approve_activate(
    session: Session,
    row: AgreementVersion,
    spec: Agreement,
    keys_dir: Path,
    actor: Actor,
    today: dt.date,
) -> AgreementVersion:
    for party_id in parties_that_must_sign(spec):
        key = ensure_signer(session, spec, party_id, keys_dir, actor)
        sign_version(session, row, spec, key, actor.label)
    for body in spec.approvals_required:
        record_approval(session, row, spec, body, "approved", "recorded at setup", actor.label)
    if row.status == "draft":
        transition(session, row, spec, "under_review", actor, today, "setup")
    return transition(session, row, spec, "active", actor, today, "setup")
