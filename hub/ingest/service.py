"""The upload pipeline: agreement gate → authorization → read → validate → row rules →
pseudonymize → store, all inside the caller's transaction.

The extract is read in chunks; each chunk is validated, then pseudonymized and written while the
next is read. Everything happens in one savepoint of the caller's transaction: the first failing
chunk stops the writing (the rest is still validated, so the report is complete), and any
rejection or error rolls the savepoint back, so a rejected or failed upload leaves no trace in
any table (its audit event, ``upload.reject``, is appended afterwards in a transaction of its
own by :mod:`hub.ingest.attempts`, through which every way in runs an upload). The same file
uploaded twice returns the first receipt; a corrected extract replaces the records whose record
key it repeats (and records it repeats unchanged under a newer agreement version move to it;
see :mod:`hub.ingest.store`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts.model import Dataset
from hub import audit
from hub.agreements.service import Governing, check_in_force, governing_dataset
from hub.auth.policies import Actor, check_can_upload
from hub.db.models import Upload, as_utc
from hub.db.records import lock_datasets
from hub.errors import AgreementRefused, UploadRejected
from hub.ingest.formats import Extract, ExtractSource, open_extract
from hub.ingest.store import Chunk, RecordWriter
from hub.keys import KeyStore
from hub.pseudonymize import Pseudonymizer
from hub.rotation import check_key_current

CHUNK_ROWS = 100_000


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
    rows_unchanged: int
    rows_aggregate_only: int
    rows_no_linkage: int
    created_at: str
    duplicate: bool = False
    warnings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def receipt_of(up: Upload, agreement_ref: str, uploader: str, duplicate: bool = False) -> Receipt:
    """The receipt of a stored upload (as first given, or for a repeat of the same file)."""
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
        rows_unchanged=int(rep.get("rows_unchanged", 0)),
        rows_aggregate_only=int(rep.get("rows_aggregate_only", 0)),
        rows_no_linkage=int(rep.get("rows_no_linkage", 0)),
        created_at=as_utc(up.created_at).isoformat(),
        duplicate=duplicate,
        warnings=[
            f
            for f in rep.get("validation", {}).get("findings", [])
            if f.get("severity") == "warning"
        ],
        notes=list(rep.get("notes", [])),
    )


def upload_extract(
    session: Session,
    keys: KeyStore,
    actor: Actor,
    *,
    agreement_id: str,
    dataset_id: str,
    content: ExtractSource,
    today: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    max_bytes: int | None = None,
    seen: Callable[[str, int], None] | None = None,
) -> Receipt:
    """Validate, pseudonymize and store one extract, chunk by chunk, in the caller's
    transaction. Raises :class:`UploadRejected` (with the validation report, which never
    contains a value from the file); the caller then rolls back, so nothing is stored.

    ``content`` is the file's bytes, a path, or a readable binary file; it is read in chunks
    of ``chunk_rows`` rows, and ``progress(rows_done)`` is called after each. The writes run
    in a savepoint, so a rejected upload leaves nothing even if the caller then commits.
    ``seen(sha256, size)`` is called once the file has been scanned, before any row is read
    (:class:`~hub.ingest.attempts.UploadAttempt` records them in a rejection's audit event)."""
    today = today or dt.date.today()
    gov, dataset = upload_gate(session, actor, agreement_id, dataset_id, today)
    extract = open_extract(content, dataset=dataset_id, max_bytes=max_bytes)
    if seen is not None:
        seen(extract.sha256, extract.size)
    lock_datasets(session, [dataset_id])  # after the scan: the lock is held only to store
    check_key_current(session, keys)
    sha = extract.sha256
    previous = session.execute(
        select(Upload).where(Upload.dataset_id == dataset_id, Upload.file_sha256 == sha)
    ).scalar_one_or_none()
    if previous is not None:
        receipt = receipt_of(previous, gov.spec.ref, actor.name, duplicate=True)
        return replace(receipt, notes=[*receipt.notes, _repeat_note(session, previous)])

    savepoint = session.begin_nested()
    try:
        receipt = _store(session, keys, actor, gov, dataset, extract, today, progress, chunk_rows)
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return receipt


def _repeat_note(session: Session, previous: Upload) -> str:
    """What a steward sending a file again needs to know: it was not applied again, and, when
    later uploads of the dataset were accepted since, that their revisions stand."""
    said = (
        f"This file was already accepted on {as_utc(previous.created_at):%Y-%m-%d %H:%M} UTC "
        f"(upload {previous.id}); it was not applied again and nothing changed."
    )
    later = session.execute(
        select(func.count(), func.max(Upload.created_at)).where(
            Upload.dataset_id == previous.dataset_id, Upload.created_at > previous.created_at
        )
    ).one()
    if not later[0]:
        return said
    return (
        f"{said} {later[0]} later upload(s) of {previous.dataset_id} were accepted since (the "
        f"latest on {as_utc(later[1]):%Y-%m-%d}): wherever they revised a record of this "
        "file, the revised values stand."
    )


def _store(
    session: Session,
    keys: KeyStore,
    actor: Actor,
    gov: Governing,
    dataset: Dataset,
    extract: Extract,
    today: dt.date,
    progress: Callable[[int], None] | None,
    chunk_rows: int,
) -> Receipt:
    from validators import (  # great-expectations loads lazily
        RecordKeyTracker,
        ValidationReport,
        apply_row_rules,
        validate_extract,
    )

    dataset_id, sha = dataset.id, extract.sha256
    upload_id = uuid.uuid4().hex
    upload = Upload(
        id=upload_id,
        dataset_id=dataset_id,
        agreement_version_id=gov.row.id,
        party_id=dataset.provider,
        uploader_id=actor.user_id,
        file_sha256=sha,
        file_bytes=extract.size,
        status="accepted",
        rows_received=0,
        rows_accepted=0,
        rows_dropped=0,
        report={},
    )
    session.add(upload)
    session.flush()

    pseudo = Pseudonymizer(dataset, keys)
    writer = RecordWriter(
        session,
        dataset_id=dataset_id,
        upload_id=upload_id,
        version_id=gov.row.id,
        key_id=pseudo.key_id,
    )
    report = ValidationReport.empty(dataset_id)
    rule_report = ValidationReport.empty(dataset_id)
    tracker = RecordKeyTracker()
    rows = dropped = aggregate_only = no_linkage = 0
    clock = StageClock()
    try:
        for chunk in clock.timed_iter("read", extract.chunks(chunk_rows)):  # index from 0
            with clock("validate"):
                report = report.merge(
                    validate_extract(
                        dataset, chunk, row_offset=rows, record_keys=tracker, today=today
                    )
                )
                rules = apply_row_rules(
                    dataset, chunk, row_offset=rows, consent=gov.spec.consent, today=today
                )
                rule_report = rule_report.merge(
                    ValidationReport(dataset_id, len(chunk), tuple(rules.findings))
                )
            rows += len(chunk)
            if report.ok and not rule_report.findings:
                keep = ~rules.drop
                agg, nolink = rules.aggregate_only[keep], rules.no_linkage[keep]
                with clock("pseudonymize"):
                    kept = chunk.loc[keep].reset_index(drop=True)
                    frame = pseudo.frame(kept, ~(agg | nolink))
                with clock("store"):
                    writer.write(Chunk(frame, agg, nolink))
                dropped += int((~keep).sum())
                aggregate_only += int(agg.sum())
                no_linkage += int(nolink.sum())
            if progress is not None:
                progress(rows)
        if not report.ok or rule_report.findings:
            merged = report.to_dict()
            merged["row_rules"] = [f.to_dict() for f in rule_report.findings]
            n_bad = sum(1 for f in merged["findings"] if f.get("severity") == "error")
            raise UploadRejected(
                f"{dataset_id}: the extract was rejected ({n_bad} validation rule(s) and "
                f"{len(merged['row_rules'])} row rule(s) failed); nothing was stored. Fix the "
                "rows listed and upload again.",
                report=merged,
            )
        with clock("store"):
            counts = writer.finish()
    except BaseException as exc:
        writer.abort(exc)
        raise

    upload.rows_received = rows
    upload.rows_accepted = rows - dropped
    upload.rows_dropped = dropped
    upload.rows_added = counts.added
    upload.rows_replaced = counts.replaced
    upload.report = {
        "validation": report.to_dict(),
        "row_rules": [f.to_dict() for f in rule_report.findings],
        "rows_aggregate_only": aggregate_only,
        "rows_no_linkage": no_linkage,
        "rows_unchanged": counts.unchanged,
        "format": str(extract.format),
        "encoding": extract.encoding,
        "notes": list(extract.notes),
        "seconds": clock.seconds(),
    }
    session.flush()
    receipt = receipt_of(upload, gov.spec.ref, actor.name)
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
                "rows_added": counts.added,
                "rows_replaced": counts.replaced,
                "rows_unchanged": counts.unchanged,
            },
        ),
    )
    return receipt


T = TypeVar("T")


class StageClock:
    """Wall time per pipeline stage (read, validate, pseudonymize, store), for the receipt's
    report and the ingest benchmark."""

    def __init__(self) -> None:
        self._spent: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._spent[stage] = self._spent.get(stage, 0.0) + time.perf_counter() - start

    def timed_iter(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, with the time spent producing each counted to ``stage``."""
        it = iter(items)
        while True:
            try:
                with self(stage):
                    item = next(it)
            except StopIteration:
                return
            yield item

    def seconds(self) -> dict[str, float]:
        out = {k: round(v, 3) for k, v in self._spent.items()}
        out["total"] = round(time.perf_counter() - self._start, 3)
        return out


def upload_gate(
    session: Session, actor: Actor, agreement_id: str, dataset_id: str, today: dt.date
) -> tuple[Governing, Dataset]:
    """What must hold before a byte is read: the dataset is governed by that agreement, which
    is in force for uploads today, and the actor's agency provides the dataset."""
    gov = governing_dataset(session, dataset_id)
    if gov.spec.id != agreement_id:
        raise AgreementRefused(
            f"dataset {dataset_id} is governed by {gov.spec.ref}, not by {agreement_id}"
        )
    check_in_force(gov, today, "uploaded", session)
    dataset = gov.spec.dataset(dataset_id)
    assert dataset is not None
    check_can_upload(actor, gov.spec, dataset)
    return gov, dataset
