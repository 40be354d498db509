"""An upload attempt: the one place every way in (API, ``ovphub upload``, upload jobs) runs an
upload in its own transaction, and audits it when it is refused.

A refused upload rolls its transaction back, so it stores nothing: records, uploads and links
are exactly as before. What it does leave is one ``upload.reject`` event in the audit log
(:mod:`hub.audit`), appended in a transaction of its *own*, after the upload's has rolled
back, so the refusal is on record without anything of the upload being kept::

    attempt = UploadAttempt(actor, agreement_id, dataset_id, via="cli")
    receipt = attempt.run(hub, path, progress=line)   # or raises; a refusal is audited first

Refusals that come before the service reads the file (the API's size limit, a malformed form,
a streamed upload for another agency's dataset) are audited by :meth:`UploadAttempt.reject`,
which the API calls for them; the attempt then has no file hash yet.

What an ``upload.reject`` event holds (its ``details``): the agreement and dataset asked for,
each only if it names a registered agreement / dataset and ``"unknown"`` otherwise (with
``agreement_known`` / ``dataset_known`` saying which resolved: an id comes from a URL or a form,
and any authenticated caller could otherwise write free text into the permanent log), the file's
SHA-256 and size once known, where it came from (``via``: ``api``, ``cli``,
``job``, and the ``job`` id), the error code and HTTP status, and for a rejection with a
validation report the number of failing rules and, per rule, its column and how many rows
failed. Never a value: not the error's sentence (a parse error names a line, but an unexpected
error's text may quote the file), not a row number list, and not the column name of a header
finding about a column the agreement does not list (``unknown_column``, ``duplicate_column``:
that name comes from the file, whose first line may be data). Any other exception than a
:class:`~hub.errors.HubError` is recorded as ``internal_error``.

An upload job that recovery failed while it ran (``server_restarted``) stops with an error
that is already on record as ``upload.abandon`` (:mod:`hub.ingest.jobs`); it is not audited a
second time as a refusal.

If the audit append itself fails (the database is down, say), the failure is logged by type
and the upload's own error is raised as it was: the steward learns why the upload failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.orm import Session

from hub import audit
from hub.auth.policies import Actor
from hub.db.models import AgreementRecord, DatasetRegistration
from hub.errors import HubError, InvalidRequest
from hub.ingest import service
from hub.ingest.formats import ExtractSource
from hub.ingest.service import Receipt
from hub.ingest.spool import EncryptedSpool

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger(__name__)

Via = Literal["api", "cli", "job"]
ACTION = "upload.reject"
NAME_FROM_FILE = frozenset({"unknown_column", "duplicate_column"})
"""Report rules whose ``column`` is a name from the file's header, not from the agreement."""
UNKNOWN = "unknown"
"""What an event records for an agreement or dataset id that names no registered one."""


@dataclass
class UploadAttempt:
    """Who is uploading what, and how; filled in as the upload learns more (the file's hash and
    size once it has been scanned)."""

    actor: Actor
    agreement_id: str | None = None
    dataset_id: str | None = None
    via: Via = "api"
    job_id: str | None = None
    file_sha256: str | None = None
    file_bytes: int | None = None

    def saw(self, sha256: str, size: int) -> None:
        """The service's callback once the file is scanned: its SHA-256 and size."""
        self.file_sha256, self.file_bytes = sha256, size

    def run(
        self,
        hub: Hub,
        content: ExtractSource,
        *,
        progress: Callable[[int], None] | None = None,
        max_bytes: int | None = None,
        finish: Callable[[Session, Receipt], None] | None = None,
    ) -> Receipt:
        """Upload ``content`` through :func:`hub.ingest.service.upload_extract` in a transaction
        of its own (``Hub.transact``) and return the receipt. If it raises, the transaction has
        rolled back (nothing stored), one ``upload.reject`` event is appended, and the error is
        raised again. ``progress(0)`` is called again if ``Hub.transact`` runs the upload a
        second time (the source is reread from the start). ``finish(session, receipt)`` runs
        last inside the upload's transaction (an upload job marks itself accepted there); if it
        raises, the upload rolls back like any refusal."""
        with self.audited(hub):
            if self.agreement_id is None or self.dataset_id is None:
                raise InvalidRequest("name the agreement and the dataset the extract is for")
            agreement_id, dataset_id = self.agreement_id, self.dataset_id
            runs = 0

            def work(session: Session) -> Receipt:
                nonlocal runs
                if runs and progress is not None:
                    progress(0)
                runs += 1
                receipt = service.upload_extract(
                    session,
                    hub.keys,
                    self.actor,
                    agreement_id=agreement_id,
                    dataset_id=dataset_id,
                    content=content,
                    today=hub.today(),
                    progress=progress,
                    max_bytes=max_bytes,
                    seen=self.saw,
                )
                if finish is not None:
                    finish(session, receipt)
                return receipt

            return hub.transact(work)

    def run_spool(
        self,
        hub: Hub,
        spool: EncryptedSpool,
        *,
        progress: Callable[[int], None] | None = None,
        finish: Callable[[Session, Receipt], None] | None = None,
    ) -> Receipt:
        """:meth:`run` on the contents of ``spool`` (a spool file changed on disk is refused, and
        audited, like any other refusal). The caller closes the spool."""
        with self.audited(hub):
            reader = spool.open()
        with reader:
            return self.run(hub, reader, progress=progress, finish=finish)

    def audited(self, hub: Hub) -> _Audited:
        """A ``with`` block whose exception (any :class:`Exception`) is audited by
        :meth:`reject` and raised again. Use it outside any transaction of the upload, so the
        event is written after that transaction has rolled back."""
        return _Audited(self, hub)

    def reject(self, hub: Hub, exc: BaseException) -> None:
        """Append the ``upload.reject`` event for ``exc`` in a transaction of its own. Never
        raises: a failure to audit is logged (by type) and the caller raises ``exc``."""
        try:
            hub.transact(lambda s: audit.append(s, self.event(exc, s)), retries=0)
        except Exception as failure:
            log.error(
                "could not audit a refused upload (%s): %s",
                self.error_code(exc),
                type(failure).__name__,
            )

    @staticmethod
    def error_code(exc: BaseException) -> str:
        return exc.code if isinstance(exc, HubError) else "internal_error"

    def event(self, exc: BaseException, session: Session) -> audit.Event:
        """The ``upload.reject`` event for ``exc`` (see the module docstring for what it holds
        and what it never holds); ``session`` resolves the agreement and dataset ids."""
        agreement, agreement_known = registered(session, AgreementRecord, self.agreement_id)
        dataset, dataset_known = registered(session, DatasetRegistration, self.dataset_id)
        details: dict[str, Any] = {
            "agreement": agreement,
            "dataset": dataset,
            "agreement_known": agreement_known,
            "dataset_known": dataset_known,
            "file_sha256": self.file_sha256,
            "file_bytes": self.file_bytes,
            "via": self.via,
            "error": self.error_code(exc),
            "status": exc.status_code if isinstance(exc, HubError) else 500,
        }
        if self.job_id is not None:
            details["job"] = self.job_id
        report = exc.extra.get("report") if isinstance(exc, HubError) else None
        if isinstance(report, dict):
            details.update(rules_failed(report))
        subject = f"dataset:{dataset}" if dataset_known else "upload"
        return audit.Event(self.actor.label, ACTION, subject, details)


def registered(
    session: Session, model: type[AgreementRecord] | type[DatasetRegistration], id_: str | None
) -> tuple[str | None, bool]:
    """``(id_, True)`` if ``id_`` names a row of ``model``; ``(None, False)`` if none was given;
    else ``(UNKNOWN, False)``: an id asked for but not registered is never recorded, since it is
    free text from a URL or a form."""
    if id_ is None:
        return None, False
    if len(id_) <= 100 and session.get(model, id_) is not None:
        return id_, True
    return UNKNOWN, False


def rules_failed(report: dict[str, Any]) -> dict[str, Any]:
    """From a rejection's report: how many rules failed (validation errors and row rules), and
    per rule its column and failing-row count. Warnings are left out; so are row numbers,
    messages and any column name that comes from the file (see :data:`NAME_FROM_FILE`)."""
    findings = [f for f in report.get("findings", []) if f.get("severity") == "error"]
    findings += list(report.get("row_rules", []))
    rules = [
        {
            "rule": str(f.get("rule")),
            "column": None if f.get("rule") in NAME_FROM_FILE else f.get("column"),
            "failing_rows": int(f.get("failing_rows") or 0),
        }
        for f in findings
    ]
    return {"failed_rules": len(rules), "rules": rules}


NAME_HIDDEN = {
    "unknown_column": "The file has a column the agreement does not list (its name, taken from "
    "the file, is not stored). Remove it from the extract.",
    "duplicate_column": "The file's header names a column more than once (the name, taken from "
    "the file, is not stored). Keep one column per name.",
}


def redacted_report(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` as it may be stored: the same policy as the audit events, so every finding
    keeps its rule, severity, counts, row numbers and the column *as the agreement declares it*,
    but a finding whose column name comes from the file (:data:`NAME_FROM_FILE`) loses the name
    from its ``column`` and its ``message`` (which quotes it)."""
    out = dict(report)
    for key in ("findings", "row_rules"):
        if isinstance(report.get(key), list):
            out[key] = [_redacted(f) for f in report[key]]
    return out


def _redacted(finding: Any) -> Any:
    if not isinstance(finding, dict) or finding.get("rule") not in NAME_FROM_FILE:
        return finding
    return {**finding, "column": None, "message": NAME_HIDDEN[str(finding["rule"])]}


def redacted_error(error: dict[str, Any]) -> dict[str, Any]:
    """An error's JSON (``HubError.to_dict()``) with its ``report``, if any, redacted."""
    if isinstance(error.get("report"), dict):
        return {**error, "report": redacted_report(error["report"])}
    return error


class _Audited:
    def __init__(self, attempt: UploadAttempt, hub: Hub) -> None:
        self.attempt, self.hub = attempt, hub

    def __enter__(self) -> UploadAttempt:
        return self.attempt

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        # An error that says it is on record already (an upload job that recovery failed, and
        # audited as upload.abandon) is not audited twice.
        if isinstance(exc, Exception) and not getattr(exc, "audited_elsewhere", False):
            self.attempt.reject(self.hub, exc)
