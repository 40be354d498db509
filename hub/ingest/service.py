"""The upload pipeline: agreement gate → authorization → read → validate → row rules →
pseudonymize → store, all inside the caller's transaction.

Nothing is written until every check has passed, and everything is written in one transaction,
so a rejected or failed upload leaves no trace in any table. The same file uploaded twice
returns the first receipt; a corrected extract replaces the records whose record key it repeats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from hub import audit
from hub.agreements.service import check_in_force, governing_dataset
from hub.auth.policies import Actor, check_can_upload
from hub.db.models import LinkageToken, Record, Upload
from hub.errors import AgreementRefused, UploadRejected
from hub.ingest.reader import read_extract
from hub.keys import KeyStore
from hub.pseudonymize import Pseudonymizer

BATCH = 5_000


@dataclass(frozen=True)
class Receipt:
    upload_id: str
    status: str
    agreement: str
    dataset: str
    party: str
    uploader: str
    file_sha256: str
    file_bytes: int
    rows_received: int
    rows_accepted: int
    rows_dropped: int
    rows_added: int
    rows_replaced: int
    rows_aggregate_only: int
    rows_no_linkage: int
    created_at: str
    duplicate: bool = False
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _receipt(up: Upload, agreement_ref: str, uploader: str, duplicate: bool) -> Receipt:
    rep = up.report
    return Receipt(
        upload_id=up.id,
        status=up.status,
        agreement=agreement_ref,
        dataset=up.dataset_id,
        party=up.party_id,
        uploader=uploader,
        file_sha256=up.file_sha256,
        file_bytes=up.file_bytes,
        rows_received=up.rows_received,
        rows_accepted=up.rows_accepted,
        rows_dropped=up.rows_dropped,
        rows_added=up.rows_added,
        rows_replaced=up.rows_replaced,
        rows_aggregate_only=int(rep.get("rows_aggregate_only", 0)),
        rows_no_linkage=int(rep.get("rows_no_linkage", 0)),
        created_at=up.created_at.isoformat(),
        duplicate=duplicate,
        warnings=[
            f
            for f in rep.get("validation", {}).get("findings", [])
            if f.get("severity") == "warning"
        ],
    )


def upload_extract(
    session: Session,
    keys: KeyStore,
    actor: Actor,
    *,
    agreement_id: str,
    dataset_id: str,
    content: bytes,
    today: dt.date | None = None,
) -> Receipt:
    """Validate, pseudonymize and store one extract. Raises :class:`UploadRejected` (with the
    validation report, which never contains a value from the file) and stores nothing."""
    from validators import apply_row_rules, validate_extract  # great-expectations loads lazily

    today = today or dt.date.today()
    gov = governing_dataset(session, dataset_id)
    if gov.spec.id != agreement_id:
        raise AgreementRefused(
            f"dataset {dataset_id} is governed by {gov.spec.ref}, not by {agreement_id}"
        )
    check_in_force(gov, today, "uploaded", session)
    dataset = gov.spec.dataset(dataset_id)
    assert dataset is not None
    check_can_upload(actor, gov.spec, dataset)

    sha = hashlib.sha256(content).hexdigest()
    previous = session.execute(
        select(Upload).where(Upload.dataset_id == dataset_id, Upload.file_sha256 == sha)
    ).scalar_one_or_none()
    if previous is not None:
        return _receipt(previous, gov.spec.ref, actor.name, duplicate=True)

    frame = read_extract(content, dataset=dataset_id)
    report = validate_extract(dataset, frame)
    rules = apply_row_rules(dataset, frame)
    if not report.ok or rules.rejected.any():
        merged = report.to_dict()
        merged["row_rules"] = rules.findings_dict()
        n_bad = sum(1 for f in merged.get("findings", []) if f.get("severity") == "error")
        n_rules = len(merged["row_rules"])
        raise UploadRejected(
            f"{dataset_id}: the extract was rejected ({n_bad} validation rule(s) and {n_rules} "
            "row rule(s) failed); nothing was stored. Fix the rows listed and upload again.",
            report=merged,
        )

    keep = ~rules.drop
    kept = frame.loc[keep]
    linkable = ~(rules.aggregate_only | rules.no_linkage)
    pseudo = Pseudonymizer(dataset, keys)
    rows = pseudo.rows(_records(kept), linkable[keep].tolist())
    flags = list(
        zip(rules.aggregate_only[keep].tolist(), rules.no_linkage[keep].tolist(), strict=True)
    )

    upload_id = uuid.uuid4().hex
    replaced = _delete_existing(session, dataset_id, [r.record_key for r in rows])
    session.add(
        Upload(
            id=upload_id,
            dataset_id=dataset_id,
            agreement_version_id=gov.row.id,
            party_id=dataset.provider,
            uploader_id=actor.user_id,
            file_sha256=sha,
            file_bytes=len(content),
            status="accepted",
            rows_received=len(frame),
            rows_accepted=len(rows),
            rows_dropped=int((~keep).sum()),
            rows_added=len(rows) - replaced,
            rows_replaced=replaced,
            report={
                "validation": report.to_dict(),
                "row_rules": rules.findings_dict(),
                "rows_aggregate_only": int(rules.aggregate_only[keep].sum()),
                "rows_no_linkage": int(rules.no_linkage[keep].sum()),
            },
        )
    )
    session.flush()
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        ids = (
            session.execute(
                insert(Record).returning(Record.id, sort_by_parameter_order=True),
                [
                    {
                        "dataset_id": dataset_id,
                        "upload_id": upload_id,
                        "agreement_version_id": gov.row.id,
                        "record_key": r.record_key,
                        "key_id": pseudo.key_id,
                        "values": r.values,
                        "aggregate_only": agg,
                        "no_linkage": nolink,
                    }
                    for r, (agg, nolink) in zip(batch, flags[start : start + BATCH], strict=True)
                ],
            )
            .scalars()
            .all()
        )
        tokens = [
            {"record_id": rid, "kind": kind, "token": tok, "key_id": pseudo.key_id}
            for rid, r in zip(ids, batch, strict=True)
            for kind, tok in r.tokens
        ]
        if tokens:
            session.execute(insert(LinkageToken), tokens)
    up = session.get(Upload, upload_id)
    assert up is not None
    receipt = _receipt(up, gov.spec.ref, actor.name, duplicate=False)
    audit.append(
        session,
        audit.Event(
            actor.label,
            "upload.accept",
            f"upload:{upload_id}",
            {
                "agreement": gov.spec.ref,
                "dataset": dataset_id,
                "file_sha256": sha,
                "rows_accepted": receipt.rows_accepted,
                "rows_dropped": receipt.rows_dropped,
                "rows_replaced": replaced,
            },
        ),
    )
    return receipt


def _records(frame: pd.DataFrame) -> list[dict[str, str | None]]:
    return [
        {str(k): (v if isinstance(v, str) else None) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _delete_existing(session: Session, dataset_id: str, keys: list[str]) -> int:
    """Remove records this extract revises (same record key); tokens and links go with them."""
    replaced = 0
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        ids = (
            session.execute(
                select(Record.id).where(
                    Record.dataset_id == dataset_id, Record.record_key.in_(chunk)
                )
            )
            .scalars()
            .all()
        )
        if ids:
            session.execute(delete(Record).where(Record.id.in_(ids)))
            replaced += len(ids)
    return replaced


def list_receipts(session: Session, party_id: str | None) -> list[Upload]:
    query = select(Upload).order_by(Upload.created_at)
    if party_id is not None:
        query = query.where(Upload.party_id == party_id)
    return list(session.execute(query).scalars())
