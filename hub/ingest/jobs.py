"""Upload jobs: an extract validated and stored in the background, with progress.

An upload too large to answer within one HTTP request is spooled (encrypted, see
:mod:`hub.ingest.spool`) and handed to :class:`UploadJobs`, which runs it in a small thread pool
through :meth:`hub.ingest.attempts.UploadAttempt.run_spool`, in its own transaction, exactly as a
synchronous upload runs (a refusal is audited as ``upload.reject`` the same way). Uploads of
different agencies run side by side; the spool is destroyed when the job ends, whatever the
outcome.

A job's lifecycle is a transitions table and one gate (:meth:`UploadJobs.move`, a conditional
``UPDATE``, so two processes can never both move the same job)::

    queued ──▶ running ──▶ accepted   the receipt (``duplicate`` if the file was there already)
       │          ├──────▶ rejected   the rejection: the same JSON as a synchronous 422
       └──────────┴──────▶ failed     any other error, as ``{"error", "detail"}``

What holds:

- Every job is a row of ``upload_jobs`` (:class:`~hub.db.models.UploadJobRow`): id, uploader
  and agency, agreement, dataset, status, rows done, created/started/finished times and the
  result. Status reads (``GET /uploads/jobs...``) read the table, so every server process sees
  every job, and a restart forgets none. No row holds a value from the file.
- Every write is a short transaction of its own, never the upload's: the job's row is inserted
  when it is queued and updated when it starts and ends. Progress (rows read) is written at
  most once per :data:`PROGRESS_EVERY` per job, on PostgreSQL. On SQLite (one writer at a time:
  the upload's transaction holds the database for its whole length) the rows done reach the
  table when the job ends; the running process holds them meanwhile (:class:`RunningJob`).
- A job's spool and its key live only in the memory of the process that runs it. If that
  process dies, the job cannot go on: :meth:`UploadJobs.recover` (run at start-up and before
  every status read) marks ``failed`` (``server_restarted``: upload the file again) each
  queued or running job whose process is gone — one on this host whose pid is no longer
  running or now belongs to another process, and on PostgreSQL any whose process has not
  touched its ``heartbeat_at`` for :data:`STALE_AFTER` (a running process touches its jobs
  every :data:`HEARTBEAT_EVERY`) — and deletes its spool file if it still has a name on disk.
- Finished jobs are kept for :data:`KEEP_FINISHED` and then deleted (the receipt stays in
  ``/uploads``, and a refusal in the audit log).

Limits: on SQLite only a process on the same host can be judged dead (there is no heartbeat:
it would wait for a running upload's lock); a SQLite file is not shared across hosts anyway.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Executable, delete, select, update
from sqlalchemy.orm import Session

from hub.auth.policies import Actor, Permission, can_view_upload, check_permission
from hub.db.models import UploadJobRow
from hub.errors import HubError, NotFound, UploadRejected
from hub.ingest.attempts import UploadAttempt
from hub.ingest.service import as_utc
from hub.ingest.spool import EncryptedSpool

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger(__name__)

WORKERS = 4
"""Upload jobs that run at once per process (more wait, queued)."""
KEEP_FINISHED = dt.timedelta(hours=24)
"""How long a finished job stays visible."""
PROGRESS_EVERY = 1.0
"""Seconds between two progress writes of one job, at least."""
HEARTBEAT_EVERY = 10.0
"""Seconds between two heartbeats of a process's running jobs (PostgreSQL)."""
STALE_AFTER = dt.timedelta(seconds=60)
"""A queued or running job whose heartbeat is older than this has lost its process
(PostgreSQL)."""

SERVER_RESTARTED = {
    "error": "server_restarted",
    "detail": "the hub server running this upload stopped (it was restarted) before the upload "
    "finished; nothing was stored, and the encrypted copy of the file could only be read by "
    "that server. Upload the file again",
}
SERVICE_STOPPING = {
    "error": "service_stopping",
    "detail": "the hub stopped before the upload ran; nothing was stored. Upload the file again",
}
INTERNAL_ERROR = {
    "error": "internal_error",
    "detail": "the upload failed; nothing was stored. Try again, and if it fails again tell "
    "the hub administrator the job id",
}
SPOOL_NAME = re.compile(r"ovphub-spool-[^/\\]*\.bin")
"""The only file names :meth:`UploadJobs.recover` deletes (a row cannot name any other file)."""

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
UNFINISHED = frozenset(JobStatus) - FINISHED


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_boot: tuple[int, str] = (os.getpid(), uuid.uuid4().hex[:12])


def process_owner() -> str:
    """This process as a job's ``owner``: ``host:pid:boot``, where ``boot`` is new in every
    process (a restarted server may get the same pid, in a container nearly always)."""
    global _boot
    if _boot[0] != os.getpid():  # forked
        _boot = (os.getpid(), uuid.uuid4().hex[:12])
    return f"{socket.gethostname()}:{_boot[0]}:{_boot[1]}"


def owner_is_dead(owner: str, me: str) -> bool:
    """Whether the process ``owner`` is known to be gone, seen from process ``me``: it ran on
    this host and its pid is no longer running, or is this process's under another boot. A
    process on another host (or an owner we cannot read) is not known to be gone."""
    my_host, my_pid, _ = me.rsplit(":", 2)
    try:
        host, pid, _ = owner.rsplit(":", 2)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != my_host or os.name != "posix":
        return False
    if pid == my_pid:
        return owner != me
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's), or we cannot tell
        return False
    return False


@dataclass(frozen=True)
class UploadJob:
    """One upload job as its row says (a snapshot). ``party_id`` is the uploader's agency: its
    stewards (and admins) may see the job. ``result`` is the receipt, the rejection or the
    error."""

    id: str
    agreement_id: str
    dataset_id: str
    party_id: str | None
    uploader: str
    file_bytes: int
    status: JobStatus
    rows_done: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    result: dict[str, Any] | None

    @classmethod
    def of(cls, row: UploadJobRow) -> UploadJob:
        return cls(
            id=row.id,
            agreement_id=row.agreement_id,
            dataset_id=row.dataset_id,
            party_id=row.party_id,
            uploader=row.uploader,
            file_bytes=row.file_bytes,
            status=JobStatus(row.status),
            rows_done=row.rows_done,
            created_at=as_utc(row.created_at),
            started_at=as_utc(row.started_at) if row.started_at else None,
            finished_at=as_utc(row.finished_at) if row.finished_at else None,
            result=row.result,
        )

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def view(self) -> dict[str, Any]:
        """The job as the API shows it: status, rows done and rows/s, and when finished the
        receipt (``receipt``), the rejection (``rejection``) or the error (``error``)."""
        elapsed = 0.0
        if self.started_at is not None:
            elapsed = max(((self.finished_at or _now()) - self.started_at).total_seconds(), 0.0)
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


class RunningJob:
    """A job this process holds (queued or running): the actor, the spool, and the rows done,
    written to the table at most every ``every`` seconds (never on SQLite, see the module
    docstring)."""

    def __init__(
        self, jobs: UploadJobs, job_id: str, attempt: UploadAttempt, spool: EncryptedSpool
    ) -> None:
        self.jobs, self.id, self.attempt, self.spool = jobs, job_id, attempt, spool
        self.rows_done = 0
        self._written_at: float | None = None

    def progress(self, rows_done: int) -> None:
        """The service's progress callback: rows read so far."""
        self.rows_done = rows_done
        if not self.jobs.writes_progress:
            return
        now = time.monotonic()
        if self._written_at is None or now - self._written_at >= self.jobs.progress_every:
            self._written_at = now
            self.jobs.write_progress(self.id, rows_done)


class UploadJobs:
    """The upload jobs of one served app: this process's worker pool, over the table every
    process shares (see the module docstring). Thread-safe; one per served app."""

    def __init__(
        self,
        hub: Hub,
        *,
        workers: int = WORKERS,
        keep_finished: dt.timedelta = KEEP_FINISHED,
        progress_every: float = PROGRESS_EVERY,
        heartbeat_every: float = HEARTBEAT_EVERY,
        stale_after: dt.timedelta = STALE_AFTER,
    ) -> None:
        self.hub = hub
        self.keep_finished = keep_finished
        self.progress_every = progress_every
        self.heartbeat_every = heartbeat_every
        self.stale_after = stale_after
        self.owner = process_owner()
        sqlite = hub.engine.dialect.name == "sqlite"
        self.writes_progress = not sqlite
        self.beats = not sqlite
        self._live: dict[str, RunningJob] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._beating: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload-job")

    # --- taking and reading jobs --------------------------------------------------------------

    def submit(
        self, actor: Actor, *, agreement_id: str, dataset_id: str, spool: EncryptedSpool
    ) -> UploadJob:
        """Queue the upload of ``spool``'s contents; the job owns the spool from now on and
        destroys it when it ends."""
        job_id = uuid.uuid4().hex
        attempt = UploadAttempt(actor, agreement_id, dataset_id, via="job", job_id=job_id)
        attempt.file_bytes = spool.size
        live = RunningJob(self, job_id, attempt, spool)
        try:
            now = _now()
            row = UploadJobRow(
                id=job_id,
                agreement_id=agreement_id,
                dataset_id=dataset_id,
                party_id=actor.party_id,
                uploader=actor.name,
                file_bytes=spool.size,
                status=JobStatus.queued.value,
                rows_done=0,
                owner=self.owner,
                spool_path=str(spool.path) if spool.path is not None else None,
                created_at=now,
                heartbeat_at=now,
            )
            job = self.hub.transact(lambda s: _added(s, row))
            with self._lock:
                self._live[job_id] = live
                self._start_heartbeat()
            self._pool.submit(self._run, live)
        except BaseException:
            with self._lock:
                self._live.pop(job_id, None)
            spool.close()
            with contextlib.suppress(Exception):
                self.move(job_id, JobStatus.failed, SERVICE_STOPPING)
            raise
        return job

    def get(self, actor: Actor, job_id: str) -> UploadJob:
        """A job ``actor`` may see (its agency's stewards, admins); :class:`NotFound` else."""
        check_permission(actor, Permission.uploads_read)
        self.recover()
        with self.hub.session() as s:
            row = s.get(UploadJobRow, job_id)
            job = UploadJob.of(row) if row is not None else None
        if job is None or self._expired(job) or not can_view_upload(actor, job.party_id):
            raise NotFound(
                f"no upload job {job_id} (jobs are kept for {self.keep_finished} after they end)"
            )
        return job

    def visible(self, actor: Actor) -> list[UploadJob]:
        """The jobs ``actor`` may see, oldest first."""
        check_permission(actor, Permission.uploads_read)
        self.recover()
        with self.hub.session() as s:
            rows = s.execute(select(UploadJobRow).order_by(UploadJobRow.created_at)).scalars()
            jobs = [UploadJob.of(r) for r in rows]
        return [j for j in jobs if not self._expired(j) and can_view_upload(actor, j.party_id)]

    def live(self, job_id: str) -> RunningJob | None:
        """The job if this process holds it (queued or running here)."""
        with self._lock:
            return self._live.get(job_id)

    def _expired(self, job: UploadJob) -> bool:
        return job.finished_at is not None and job.finished_at < _now() - self.keep_finished

    # --- the table --------------------------------------------------------------------------

    def move(
        self,
        job_id: str,
        to: JobStatus,
        result: dict[str, Any] | None = None,
        *,
        rows_done: int | None = None,
    ) -> bool:
        """The one gate of the lifecycle: move the job to ``to`` if the table lets its current
        status go there, in a transaction of its own. False if it was not in such a status
        (another process moved it first, or it is gone)."""
        sources = [s.value for s, nxt in TRANSITIONS.items() if to in nxt]
        now = _now()
        values: dict[str, Any] = {"status": to.value, "heartbeat_at": now}
        if to == JobStatus.running:
            values["started_at"] = now
        if to in FINISHED:
            values["finished_at"] = now
            values["result"] = result
        if rows_done is not None:
            values["rows_done"] = rows_done
        stmt = (
            update(UploadJobRow)
            .where(UploadJobRow.id == job_id, UploadJobRow.status.in_(sources))
            .values(**values)
        )
        moved = self.hub.transact(
            lambda s: cast("CursorResult[Any]", s.execute(stmt)).rowcount, retries=0
        )
        if not moved:
            log.warning("upload job %s could not move to %s", job_id, to.value)
        return bool(moved)

    def write_progress(self, job_id: str, rows_done: int) -> None:
        """Rows done so far, in a transaction of its own; a failure is logged, not raised (the
        upload goes on)."""
        stmt = (
            update(UploadJobRow)
            .where(UploadJobRow.id == job_id, UploadJobRow.status == JobStatus.running.value)
            .values(rows_done=rows_done, heartbeat_at=_now())
        )
        try:
            self.hub.transact(_executes(stmt), retries=0)
        except Exception as exc:
            log.warning("upload job %s: progress not written (%s)", job_id, type(exc).__name__)

    def recover(self) -> int:
        """Mark ``failed`` (``server_restarted``) every queued or running job whose process is
        gone, delete its spool file if it has a name on disk, and delete finished jobs older
        than ``keep_finished``. Returns how many jobs were failed. Run at start-up and before
        every status read; jobs of this process are never touched."""
        now = _now()
        stale = now - self.stale_after

        def sweep(s: Session) -> list[str | None]:
            cutoff = now - self.keep_finished
            s.execute(
                delete(UploadJobRow).where(
                    UploadJobRow.status.in_([x.value for x in FINISHED]),
                    UploadJobRow.finished_at < cutoff,
                )
            )
            candidates = s.execute(
                select(UploadJobRow).where(
                    UploadJobRow.status.in_([x.value for x in UNFINISHED]),
                    UploadJobRow.owner != self.owner,
                )
            ).scalars()
            lost: list[UploadJobRow] = [
                row
                for row in candidates
                if owner_is_dead(row.owner, self.owner)
                or (self.beats and as_utc(row.heartbeat_at) < stale)
            ]
            for row in lost:
                row.status = JobStatus.failed.value
                row.finished_at = now
                row.result = dict(SERVER_RESTARTED)
            return [row.spool_path for row in lost]

        spool_paths = self.hub.transact(sweep, retries=0)
        for path in spool_paths:
            if path is not None and SPOOL_NAME.fullmatch(Path(path).name):
                with contextlib.suppress(FileNotFoundError):
                    Path(path).unlink()
        if spool_paths:
            log.warning("%d upload job(s) of a stopped server marked failed", len(spool_paths))
        return len(spool_paths)

    # --- running ----------------------------------------------------------------------------

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking jobs; queued jobs fail (and drop their spool), running ones finish if
        ``wait``."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._stopping.set()
        with self._lock:
            cancelled = list(self._live.values())
            self._live.clear()
        for live in cancelled:
            live.spool.close()
            with contextlib.suppress(Exception):
                self.move(live.id, JobStatus.failed, SERVICE_STOPPING)

    def _run(self, live: RunningJob) -> None:
        spool = live.spool
        try:
            if spool.closed or not self.move(live.id, JobStatus.running):
                return  # the pool is shutting down, or another process failed the job
            receipt = live.attempt.run_spool(self.hub, spool, progress=live.progress)
            rows = max(live.rows_done, receipt.rows_received)
            self.move(live.id, JobStatus.accepted, receipt.to_dict(), rows_done=rows)
        except UploadRejected as exc:
            self.move(live.id, JobStatus.rejected, exc.to_dict(), rows_done=live.rows_done)
        except HubError as exc:
            self.move(live.id, JobStatus.failed, exc.to_dict(), rows_done=live.rows_done)
        except Exception as exc:
            # The message of an unexpected error may quote the file; log its type only.
            log.error("upload job %s failed with %s", live.id, type(exc).__name__)
            with contextlib.suppress(Exception):
                self.move(live.id, JobStatus.failed, dict(INTERNAL_ERROR))
        finally:
            spool.close()
            with self._lock:
                self._live.pop(live.id, None)

    def _start_heartbeat(self) -> None:
        # Under self._lock. One thread while this process holds jobs (PostgreSQL only).
        if self.beats and self._beating is None and not self._stopping.is_set():
            self._beating = threading.Thread(
                target=self._heartbeat, name="upload-job-heartbeat", daemon=True
            )
            self._beating.start()

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self.heartbeat_every):
            with self._lock:
                ids = list(self._live)
                if not ids:
                    self._beating = None
                    return
            stmt = (
                update(UploadJobRow)
                .where(UploadJobRow.id.in_(ids), UploadJobRow.owner == self.owner)
                .values(heartbeat_at=_now())
            )
            try:
                self.hub.transact(_executes(stmt), retries=0)
            except Exception as exc:
                log.warning("upload jobs: heartbeat not written (%s)", type(exc).__name__)
        with self._lock:
            self._beating = None


def _added(session: Session, row: UploadJobRow) -> UploadJob:
    session.add(row)
    session.flush()
    return UploadJob.of(row)


def _executes(stmt: Executable) -> Callable[[Session], object]:
    return lambda session: session.execute(stmt)
