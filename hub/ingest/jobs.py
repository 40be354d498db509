"""Upload jobs: an extract validated and stored in the background, with progress.

An upload too large to answer within one HTTP request is spooled (encrypted, see
:mod:`hub.ingest.spool`) and handed to :class:`UploadJobs`, which runs it in a small thread pool
through :func:`hub.ingest.service.upload_extract` in its own transaction (``Hub.transact``),
exactly as a synchronous upload runs. Uploads of different agencies run side by side; the spool
is destroyed when the job ends, whatever the outcome.

A job's lifecycle is a transitions table and one gate (:meth:`UploadJob.move`)::

    queued ──▶ running ──▶ accepted   the receipt (``duplicate`` if the file was there already)
       │          ├──────▶ rejected   the rejection: the same JSON as a synchronous 422
       └──────────┴──────▶ failed     any other error, as ``{"error", "detail"}``

Limits (by design, documented): the registry lives in the memory of the process that took the
upload. With several server processes, a job is visible only through the one that runs it, and
a restart forgets every job: a queued or running job's spool key dies with the process, so its
file is unreadable and must be uploaded again. Finished jobs are kept for
:data:`KEEP_FINISHED` and then forgotten (the receipt stays in ``/uploads``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from hub.auth.policies import Actor, Permission, can_view_upload, check_permission
from hub.errors import HubError, NotFound, UploadRejected
from hub.ingest import service
from hub.ingest.spool import EncryptedSpool

if TYPE_CHECKING:
    from hub.context import Hub
    from hub.ingest.service import Receipt

log = logging.getLogger(__name__)

WORKERS = 4
"""Upload jobs that run at once per process (more wait, queued)."""
KEEP_FINISHED = dt.timedelta(hours=24)
"""How long a finished job stays visible."""

# --- jobs -------------------------------------------------------------------------------------


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    accepted = "accepted"
    rejected = "rejected"
    failed = "failed"


S = JobStatus
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.queued: frozenset({S.running, S.failed}),
    S.running: frozenset({S.accepted, S.rejected, S.failed}),
    S.accepted: frozenset(),
    S.rejected: frozenset(),
    S.failed: frozenset(),
}
FINISHED = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(eq=False)
class UploadJob:
    """One upload in the background. ``party_id`` is the uploader's agency: its stewards (and
    admins) may see the job. ``result`` is the receipt, the rejection or the error."""

    id: str
    agreement_id: str
    dataset_id: str
    party_id: str | None
    uploader: str
    file_bytes: int
    created_at: dt.datetime = field(default_factory=_now)
    status: JobStatus = JobStatus.queued
    rows_done: int = 0
    started: float | None = None
    finished: float | None = None
    finished_at: dt.datetime | None = None
    result: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def move(self, to: JobStatus, result: dict[str, Any] | None = None) -> None:
        """The one gate of the lifecycle: refuses a transition the table does not list."""
        with self._lock:
            if to not in TRANSITIONS[self.status]:
                raise ValueError(f"upload job {self.id} cannot go from {self.status} to {to}")
            self.status = to
            if to == JobStatus.running:
                self.started = time.monotonic()
            if to in FINISHED:
                self.finished = time.monotonic()
                self.finished_at = _now()
                self.result = result

    def progress(self, rows_done: int) -> None:
        """The service's progress callback: rows read so far."""
        self.rows_done = rows_done

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def view(self) -> dict[str, Any]:
        """The job as the API shows it: status, rows done and rows/s, and when finished the
        receipt (``receipt``), the rejection (``rejection``) or the error (``error``)."""
        with self._lock:
            elapsed = 0.0
            if self.started is not None:
                elapsed = (self.finished or time.monotonic()) - self.started
            out: dict[str, Any] = {
                "job_id": self.id,
                "status": self.status.value,
                "agreement_id": self.agreement_id,
                "dataset": self.dataset_id,
                "party": self.party_id,
                "uploader": self.uploader,
                "file_bytes": self.file_bytes,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "rows_done": self.rows_done,
                "elapsed_seconds": round(elapsed, 3),
                "rows_per_second": round(self.rows_done / elapsed, 1) if elapsed > 0 else 0.0,
            }
            if self.result is not None:
                key = {S.accepted: "receipt", S.rejected: "rejection"}.get(self.status, "error")
                out[key] = self.result
            return out


class UploadJobs:
    """The process-level registry and worker pool of upload jobs (see the module docstring for
    its limits). Thread-safe; one per served app."""

    def __init__(
        self, hub: Hub, *, workers: int = WORKERS, keep_finished: dt.timedelta = KEEP_FINISHED
    ) -> None:
        self.hub = hub
        self.keep_finished = keep_finished
        self._jobs: dict[str, UploadJob] = {}
        self._spools: dict[str, EncryptedSpool] = {}  # of jobs not yet ended
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload-job")

    def submit(
        self, actor: Actor, *, agreement_id: str, dataset_id: str, spool: EncryptedSpool
    ) -> UploadJob:
        """Queue the upload of ``spool``'s contents; the job owns the spool from now on and
        destroys it when it ends."""
        job = UploadJob(
            id=uuid.uuid4().hex,
            agreement_id=agreement_id,
            dataset_id=dataset_id,
            party_id=actor.party_id,
            uploader=actor.name,
            file_bytes=spool.size,
        )
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
            self._spools[job.id] = spool
        try:
            self._pool.submit(self._run, job, actor)
        except BaseException:
            with self._lock:
                self._jobs.pop(job.id, None)
                self._spools.pop(job.id, None)
            spool.close()
            raise
        return job

    def get(self, actor: Actor, job_id: str) -> UploadJob:
        """A job ``actor`` may see (its agency's stewards, admins); :class:`NotFound` else."""
        check_permission(actor, Permission.uploads_read)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not can_view_upload(actor, job.party_id):
            raise NotFound(
                f"no upload job {job_id} (jobs are kept for {self.keep_finished} after they end)"
            )
        return job

    def visible(self, actor: Actor) -> list[UploadJob]:
        """The jobs ``actor`` may see, oldest first."""
        check_permission(actor, Permission.uploads_read)
        with self._lock:
            self._forget_old()
            jobs = list(self._jobs.values())
        return [j for j in jobs if can_view_upload(actor, j.party_id)]

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking jobs; queued jobs fail (and drop their spool), running ones finish if
        ``wait``."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            cancelled = [(self._jobs[i], s) for i, s in self._spools.items() if i in self._jobs]
            self._spools.clear()
        for job, spool in cancelled:
            spool.close()
            if job.status == JobStatus.queued:
                job.move(
                    JobStatus.failed,
                    {
                        "error": "service_stopping",
                        "detail": "the hub stopped before the upload ran; nothing was stored. "
                        "Upload the file again",
                    },
                )

    def _forget_old(self) -> None:
        cutoff = _now() - self.keep_finished
        for job_id in [
            j.id for j in self._jobs.values() if j.finished_at and j.finished_at < cutoff
        ]:
            del self._jobs[job_id]

    def _run(self, job: UploadJob, actor: Actor) -> None:
        hub = self.hub
        with self._lock:
            spool = self._spools.get(job.id)
        if spool is None or spool.closed:  # the pool is shutting down
            return
        try:
            job.move(JobStatus.running)
            with spool.open() as extract:

                def work(session: Session) -> Receipt:
                    job.progress(0)  # ``Hub.transact`` may run this twice; the source rereads
                    return service.upload_extract(
                        session,
                        hub.keys,
                        actor,
                        agreement_id=job.agreement_id,
                        dataset_id=job.dataset_id,
                        content=extract,
                        today=hub.today(),
                        progress=job.progress,
                    )

                receipt = hub.transact(work)
            job.progress(max(job.rows_done, receipt.rows_received))
            job.move(JobStatus.accepted, receipt.to_dict())
        except UploadRejected as exc:
            job.move(JobStatus.rejected, exc.to_dict())
        except HubError as exc:
            job.move(JobStatus.failed, exc.to_dict())
        except Exception as exc:
            # The message of an unexpected error may quote the file; log its type only.
            log.error("upload job %s failed with %s", job.id, type(exc).__name__)
            job.move(
                JobStatus.failed,
                {
                    "error": "internal_error",
                    "detail": "the upload failed; nothing was stored. Try again, and if it "
                    "fails again tell the hub administrator the job id",
                },
            )
        finally:
            spool.close()
            with self._lock:
                self._spools.pop(job.id, None)
