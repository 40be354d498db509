"""Signers, signatures and approvals of agreement versions.

The hub stores signers' public keys and the signatures they make over a version's signing form
(:meth:`contracts.model.Agreement.signing_form`); private keys stay with the signatories. A
signature counts for a party when its signer belongs to that party, is not revoked, and the
signature verifies against the version's current signing form — so any edit to the text after
signing makes :func:`signature_status` report it invalid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts import signing
from contracts.model import Agreement, PartyRole
from hub import audit
from hub.db.models import (
    AgreementApproval,
    AgreementSignature,
    AgreementVersion,
    Party,
    Signer,
)
from hub.errors import InvalidRequest, NotFound

SIGNING_ROLES = (PartyRole.data_provider, PartyRole.hub_operator)


def parties_that_must_sign(spec: Agreement) -> list[str]:
    return sorted(p.id for p in spec.parties if p.role in SIGNING_ROLES)


def register_signer(
    session: Session, party_id: str, name: str, title: str, public_key: bytes, event: audit.Event
) -> Signer:
    if session.get(Party, party_id) is None:
        raise NotFound(f"no party {party_id!r}; load an agreement that names it first")
    fp = signing.fingerprint(public_key)
    if session.execute(select(Signer).where(Signer.fingerprint == fp)).scalar_one_or_none():
        raise InvalidRequest(f"a signer with key {fp} is already registered")
    signer = Signer(
        party_id=party_id, name=name, title=title, public_key=public_key.hex(), fingerprint=fp
    )
    session.add(signer)
    session.flush()
    audit.append(session, event)
    return signer


def sign_version(
    session: Session, row: AgreementVersion, spec: Agreement, key_path: Path, actor_label: str
) -> AgreementSignature:
    """Sign ``row`` with the private key at ``key_path``; its public key must be registered."""
    try:
        key = signing.load_private_key(key_path)
    except signing.SigningError as exc:
        raise InvalidRequest(str(exc)) from None
    fp = signing.fingerprint(signing.raw_public_key(key))
    signature = signing.sign(key, spec.signing_form()).hex()
    return add_signature(session, row, spec, fp, signature, actor_label)


def add_signature(
    session: Session,
    row: AgreementVersion,
    spec: Agreement,
    fingerprint: str,
    signature_hex: str,
    actor_label: str,
) -> AgreementSignature:
    """Record a signature made offline (over :meth:`Agreement.signing_form`) by a registered
    signer; it is verified before it is stored."""
    signer = session.execute(
        select(Signer).where(Signer.fingerprint == fingerprint)
    ).scalar_one_or_none()
    if signer is None or signer.revoked_at is not None:
        raise NotFound(f"no active signer with key {fingerprint}")
    if signer.party_id not in parties_that_must_sign(spec):
        raise InvalidRequest(
            f"{signer.name} signs for {signer.party_id}, not a party to {spec.ref}"
        )
    if row.status not in ("draft", "under_review"):
        raise InvalidRequest(
            f"{spec.ref} is {row.status}; only drafts and versions under review are signed"
        )
    form = spec.signing_form()
    try:
        raw = bytes.fromhex(signature_hex)
    except ValueError:
        raise InvalidRequest("the signature must be hex-encoded") from None
    if not signing.verify(bytes.fromhex(signer.public_key), form, raw):
        raise InvalidRequest(
            f"the signature does not verify against {spec.ref}'s signing form with key "
            f"{fingerprint}; sign the exact bytes from the signing-form endpoint"
        )
    existing = session.execute(
        select(AgreementSignature).where(
            AgreementSignature.agreement_version_id == row.id,
            AgreementSignature.signer_id == signer.id,
        )
    ).scalar_one_or_none()
    if existing is not None:
        session.delete(existing)
        session.flush()
    sig = AgreementSignature(
        agreement_version_id=row.id,
        signer_id=signer.id,
        party_id=signer.party_id,
        signed_sha256=hashlib.sha256(form).hexdigest(),
        signature=signature_hex,
    )
    session.add(sig)
    session.flush()
    audit.append(
        session,
        audit.Event(
            actor_label,
            "agreement.sign",
            spec.ref,
            {
                "signer": signer.name,
                "party": signer.party_id,
                "fingerprint": fingerprint,
                "signed_sha256": sig.signed_sha256,
            },
        ),
    )
    return sig


@dataclass
class SignatureStatus:
    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    unsigned_parties: list[str] = field(default_factory=list)
    details: list[dict[str, object]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.invalid and not self.unsigned_parties


def signature_status(session: Session, row: AgreementVersion, spec: Agreement) -> SignatureStatus:
    form = spec.signing_form()
    out = SignatureStatus()
    signed_parties: set[str] = set()
    rows = session.execute(
        select(AgreementSignature, Signer)
        .join(Signer, Signer.id == AgreementSignature.signer_id)
        .where(AgreementSignature.agreement_version_id == row.id)
    ).all()
    for sig, signer in rows:
        ok = signer.revoked_at is None and signing.verify(
            bytes.fromhex(signer.public_key), form, bytes.fromhex(sig.signature)
        )
        label = f"{signer.name} ({signer.party_id})"
        (out.valid if ok else out.invalid).append(label)
        if ok:
            signed_parties.add(signer.party_id)
        out.details.append(
            {
                "signer": signer.name,
                "party": signer.party_id,
                "fingerprint": signer.fingerprint,
                "signed_at": sig.signed_at.isoformat(),
                "valid": ok,
                "reason": ""
                if ok
                else ("signer revoked" if signer.revoked_at else "the text changed after signing"),
            }
        )
    out.unsigned_parties = [p for p in parties_that_must_sign(spec) if p not in signed_parties]
    return out


def record_approval(
    session: Session,
    row: AgreementVersion,
    spec: Agreement,
    body: str,
    decision: str,
    reference: str,
    actor_label: str,
) -> AgreementApproval:
    if decision not in ("approved", "rejected", "deferred"):
        raise InvalidRequest("decision must be approved, rejected or deferred")
    if row.status not in ("draft", "under_review"):
        raise InvalidRequest(
            f"{spec.ref} is {row.status}; approvals are recorded before activation"
        )
    existing = session.execute(
        select(AgreementApproval).where(
            AgreementApproval.agreement_version_id == row.id, AgreementApproval.body == body
        )
    ).scalar_one_or_none()
    if existing is not None:
        session.delete(existing)
        session.flush()
    approval = AgreementApproval(
        agreement_version_id=row.id,
        body=body,
        decision=decision,
        reference=reference,
        recorded_by=actor_label,
    )
    session.add(approval)
    session.flush()
    audit.append(
        session,
        audit.Event(
            actor_label,
            "agreement.approval",
            spec.ref,
            {"body": body, "decision": decision, "reference": reference},
        ),
    )
    return approval
