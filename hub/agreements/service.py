"""Register agreement versions and find the version that governs a dataset or an aggregate.

A version is immutable: registering the same id and version with different content is refused
(bump the version instead). Loading the identical file again is a no-op.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.loader import AgreementInvalid, parse_agreement
from contracts.model import Agreement, AgreementStatus
from hub import audit
from hub.db.models import AgreementRecord, AgreementVersion, DatasetRegistration, Party
from hub.errors import AgreementRefused, InvalidRequest, NotFound


@dataclass(frozen=True)
class Governing:
    """An agreement version together with its parsed spec."""

    row: AgreementVersion
    spec: Agreement


def spec_of(row: AgreementVersion) -> Agreement:
    return Agreement.model_validate(row.spec)


def register(session: Session, agreement: Agreement, actor: str) -> tuple[AgreementVersion, bool]:
    """Store a version (and its parties and datasets). Returns (row, created)."""
    existing = session.execute(
        select(AgreementVersion).where(
            AgreementVersion.agreement_id == agreement.id,
            AgreementVersion.version == agreement.version,
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.sha256 != agreement.sha256():
            raise InvalidRequest(
                f"{agreement.ref} is already registered with different content; versions are "
                "immutable, so give the changed agreement a new version number"
            )
        return existing, False
    for party in agreement.parties:
        if session.get(Party, party.id) is None:
            session.add(Party(id=party.id, legal_name=party.legal_name))
    if session.get(AgreementRecord, agreement.id) is None:
        session.add(AgreementRecord(id=agreement.id, title=agreement.agreement.title))
    session.flush()
    row = AgreementVersion(
        agreement_id=agreement.id,
        version=agreement.version,
        status="draft",  # the lifecycle is the hub's; the YAML status is the author's note
        sha256=agreement.sha256(),
        spec=agreement.model_dump(mode="json", by_alias=True),
        effective_date=agreement.agreement.effective_date,
        expiry_date=agreement.agreement.expiry_date,
    )
    session.add(row)
    session.flush()
    for ds in agreement.datasets:
        reg = session.get(DatasetRegistration, ds.id)
        current = session.get(AgreementVersion, reg.agreement_version_id) if reg else None
        if current is not None and current.agreement_id != agreement.id:
            raise InvalidRequest(
                f"dataset {ds.id} is already governed by {current.agreement_id}; "
                "a dataset belongs to one agreement"
            )
    audit.append(
        session,
        audit.Event(
            actor,
            "agreement.register",
            agreement.ref,
            {
                "sha256": row.sha256,
                "status": row.status,
                "datasets": [d.id for d in agreement.datasets],
            },
        ),
    )
    return row, True


def register_file(session: Session, path: Path, actor: str) -> tuple[AgreementVersion, bool]:
    agreement, problems = parse_agreement(path.read_text(encoding="utf-8"), str(path))
    if problems or agreement is None:
        raise AgreementInvalid(problems)
    return register(session, agreement, actor)


def check_in_force(gov: Governing, today: dt.date, doing: str, session: Session) -> None:
    """Refuse unless the version is active (by its effective status: past expiry it is
    expired), today lies within its dates, and every party's signature still verifies against
    its text (invariant 6: nothing outside an active, signed agreement)."""
    from hub.agreements.lifecycle import effective_status
    from hub.agreements.signatures import signature_status

    spec = gov.spec
    status = effective_status(gov.row, spec, today)
    if status != AgreementStatus.active.value:
        why = f" (it expired on {spec.agreement.expiry_date})" if status == "expired" else ""
        raise AgreementRefused(
            f"{spec.ref} is {status}{why}, not active: nothing may be {doing} under it"
        )
    sigs = signature_status(session, gov.row, spec)
    if not sigs.complete:
        missing = sigs.unsigned_parties + [f"invalid: {x}" for x in sigs.invalid]
        raise AgreementRefused(
            f"{spec.ref} is not fully signed ({'; '.join(missing)}): nothing may be {doing} "
            "under it"
        )
    if not spec.in_force_on(today):
        raise AgreementRefused(
            f"{spec.ref} is in force from {spec.agreement.effective_date} to "
            f"{spec.agreement.expiry_date}; on {today} nothing may be {doing} under it"
        )


def governing_dataset(session: Session, dataset_id: str) -> Governing:
    reg = session.get(DatasetRegistration, dataset_id)
    if reg is None:
        raise NotFound(f"no agreement declares a dataset {dataset_id!r}")
    row = session.get(AgreementVersion, reg.agreement_version_id)
    assert row is not None
    return Governing(row, spec_of(row))


def get_version(session: Session, agreement_id: str, version: str | None = None) -> Governing:
    query = select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
    if version:
        query = query.where(AgreementVersion.version == version)
    rows = session.execute(query).scalars().all()
    if not rows:
        what = f"{agreement_id}@{version}" if version else agreement_id
        raise NotFound(f"no agreement {what}; load it with `ovphub agreements load`")
    row = max(rows, key=lambda r: tuple(int(x) for x in r.version.split(".")))
    return Governing(row, spec_of(row))


def current_versions(session: Session) -> list[Governing]:
    """The version that currently governs each dataset (one per agreement)."""
    regs = session.execute(select(DatasetRegistration)).scalars().all()
    ids = sorted({r.agreement_version_id for r in regs})
    rows = [session.get(AgreementVersion, i) for i in ids]
    return [Governing(r, spec_of(r)) for r in rows if r is not None]


def in_force_versions(
    session: Session, today: dt.date, doing: str, versions: Iterable[Governing] | None = None
) -> list[Governing]:
    """Those of ``versions`` (default: the current ones) that pass :func:`check_in_force`
    today; the rest are skipped, not refused: what is not in force takes no part."""
    out = []
    for gov in current_versions(session) if versions is None else versions:
        try:
            check_in_force(gov, today, doing, session)
        except AgreementRefused:
            continue
        out.append(gov)
    return out


def governing_aggregate(session: Session, aggregate_id: str) -> Governing:
    for gov in current_versions(session):
        if gov.spec.aggregate(aggregate_id) is not None:
            return gov
    raise NotFound(f"no agreement approves an aggregate {aggregate_id!r}; see `ovphub catalogue`")
