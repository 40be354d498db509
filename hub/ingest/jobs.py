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
  result. Status reads (``GET /uploads/jobs...``) only read the table, so every server process
  sees every job, and a restart forgets none.
- No row holds a name or value from the file: a rejection's validation report is stored
  redacted (:func:`hub.ingest.attempts.redacted_report`: a column name the file's header gave,
  in ``unknown_column`` / ``duplicate_column`` findings, is dropped, as from the audit log). The
  full report stays in the memory of the process that ran the job, which shows it to the
  steward for :attr:`UploadJobs.keep_finished`; any other process shows the redacted one.
- ``accepted`` is written inside the upload's own transaction, as its last statement, and only
  if the job is still ``running`` and owned by this process: if recovery failed the job
  meanwhile, the upload rolls back, so a ``failed`` job has stored nothing. A progress write or
  heartbeat that finds the job no longer running here cancels the upload the same way.
- Every other write is a short transaction of its own. Progress (rows read) is written at most
  once per :data:`PROGRESS_EVERY` per job, on PostgreSQL. On SQLite (one writer at a time: the
  upload's transaction holds the database for its whole length) the rows done reach the table
  when the job ends; the running process holds them meanwhile (:class:`RunningJob`). A final
  ``rejected`` / ``failed`` write is retried a few times; if it still fails the row stays
  ``running`` under this process and the recovery sweep fails it (see below).
- A job's spool and its key live only in the memory of the process that runs it. If that
  process dies, the job cannot go on: :meth:`UploadJobs.recover` (run at start-up and every
  ``HUB_UPLOAD_JOB_SWEEP_SECONDS`` on a background thread; reads never write) marks ``failed``
  (``server_restarted``: upload the file again), in one conditional ``UPDATE`` that re-checks
  the status, each queued or running job whose process is gone — one on this host whose pid is
  no longer running, now belongs to another process, or ran under an earlier boot of the host;
  one of this process that none of its registries holds any more; and on PostgreSQL any whose
  process has not touched its ``heartbeat_at`` for :data:`STALE_AFTER` (heartbeats are written
  and compared in database time, so clocks of different hosts do not matter). Each job it fails
  gets an ``upload.abandon`` audit event, and its spool file is deleted if it still has a name
  in the spool directory. A job it did not fail (one that finished meanwhile) is untouched.
- Finished jobs are kept for :data:`KEEP_FINISHED` and then deleted (the receipt stays in
  ``/uploads``, and a refusal in the audit log).

Limits: on SQLite only a process on the same host can be judged dead (there is no heartbeat:
it would wait for a running upload's lock); a SQLite file is not shared across hosts anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Executable, and_, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from hub import audit
from hub.auth.policies import Actor, Permission, Role, can_view_upload, check_permission
from hub.db.models import UploadJobRow, User, as_utc
from hub.errors import HubError, NotFound, UploadRejected
from hub.ingest.attempts import UploadAttempt, redacted_error, redacted_report
from hub.ingest.service import Receipt
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
"""A queued or running job whose heartbeat is older than this (database time) has lost its
process (PostgreSQL)."""
SWEEP_EVERY = 30.0
"""Seconds between two recovery sweeps of a served app (``HUB_UPLOAD_JOB_SWEEP_SECONDS``)."""
FINAL_WRITE_BACKOFF = (0.1, 0.5, 2.0)
"""Waits before the retries of a failed final ``rejected`` / ``failed`` write."""
ABANDON = "upload.abandon"
"""The audit action of a job failed by recovery or shutdown."""

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


class JobAbandoned(HubError):
    """The job is no longer running under this process (recovery failed it): the upload stops
    and rolls back. Recovery audited it (``upload.abandon``), so the attempt does not audit it
    again as ``upload.reject``."""

    status_code = 409
    code = "job_abandoned"
    audited_elsewhere = True


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
_UNFINISHED = sorted(x.value for x in UNFINISHED)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _kernel_boot() -> str:
    """The first 8 hex digits of this host's boot id (Linux), or ``""``."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]
    return ""


_boot: tuple[int, str] = (os.getpid(), f"{_kernel_boot()}.{uuid.uuid4().hex[:12]}")


def process_owner() -> str:
    """This process as a job's ``owner``: ``host:pid:boot.token``, where ``boot`` is the host's
    boot id (where the kernel gives one) and ``token`` is new in every process (a restarted
    server may get the same pid, in a container nearly always)."""
    global _boot
    if _boot[0] != os.getpid():  # forked
        _boot = (os.getpid(), f"{_kernel_boot()}.{uuid.uuid4().hex[:12]}")
    return f"{socket.gethostname()}:{_boot[0]}:{_boot[1]}"


def owner_is_dead(owner: str, me: str) -> bool:
    """Whether the process ``owner`` is known to be gone, seen from another process ``me``: it
    ran on this host and under an earlier boot of it, or its pid is no longer running, or is
    ``me``'s pid under another token. A process on another host (or an owner we cannot read) is
    not known to be gone; ``me`` itself is judged by its registries, not here (False)."""
    my_host, my_pid, my_token = me.rsplit(":", 2)
    try:
        host, pid, token = owner.rsplit(":", 2)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != my_host or os.name != "posix" or owner == me:
        return False
    boot, my_boot = token.partition(".")[0], my_token.partition(".")[0]
    if "." in token and boot and my_boot and boot != my_boot:
        return True  # the host has rebooted since: the pid may be someone else's now
    if pid == my_pid:
        return True
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's), or we cannot tell
        return False
    return False


class _ProcessJobs:
    """The ids of the jobs some registry of this process holds (queued or running). A job of
    this process's ``owner`` that is not here has lost its registry (its final write failed, or
    the registry is gone) and recovery fails it."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._ids.add(job_id)

    def release(self, job_id: str) -> None:
        with self._lock:
            self._ids.discard(job_id)

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._ids


PROCESS_JOBS = _ProcessJobs()


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
    docstring). ``abandoned`` is set when a heartbeat finds the job no longer running here; the
    next progress report then stops the upload (:class:`JobAbandoned`)."""

    def __init__(
        self, jobs: UploadJobs, job_id: str, attempt: UploadAttempt, spool: EncryptedSpool
    ) -> None:
        self.jobs, self.id, self.attempt, self.spool = jobs, job_id, attempt, spool
        self.rows_done = 0
        self.abandoned = threading.Event()
        self._written_at: float | None = None

    def progress(self, rows_done: int) -> None:
        """The service's progress callback: rows read so far. Raises :class:`JobAbandoned`
        (inside the upload, which rolls back) once the job is no longer running here."""
        self.rows_done = rows_done
        if self.abandoned.is_set():
            raise JobAbandoned(f"upload job {self.id} was failed by another process")
        if not self.jobs.writes_progress:
            return
        now = time.monotonic()
        if self._written_at is None or now - self._written_at >= self.jobs.progress_every:
            self._written_at = now
            if not self.jobs.write_progress(self.id, rows_done):
                self.abandoned.set()
                raise JobAbandoned(f"upload job {self.id} was failed by another process")


@dataclass(frozen=True)
class Stale:
    """What a recovery sweep judged from its (unlocked) read: the unfinished jobs it saw, the
    owners it found dead, and this process's jobs no registry holds. :meth:`UploadJobs.fail`
    re-checks all of it in its one ``UPDATE``."""

    ids: tuple[str, ...]
    dead_owners: tuple[str, ...]
    orphans: tuple[str, ...]


class UploadJobs:
    """The upload jobs of one served app: this process's worker pool, over the table every
    process shares (see the module docstring). Thread-safe; one per served app. Spool files are
    deleted by recovery only inside ``spool_dir`` (default: the system temporary directory)."""

    def __init__(
        self,
        hub: Hub,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        workers: int = WORKERS,
        keep_finished: dt.timedelta = KEEP_FINISHED,
        progress_every: float = PROGRESS_EVERY,
        heartbeat_every: float = HEARTBEAT_EVERY,
        stale_after: dt.timedelta = STALE_AFTER,
        sweep_every: float | None = None,
    ) -> None:
        self.hub = hub
        self.spool_dir = Path(spool_dir or tempfile.gettempdir()).resolve()
        self.keep_finished = keep_finished
        self.progress_every = progress_every
        self.heartbeat_every = heartbeat_every
        self.stale_after = stale_after
        self.sweep_every = (
            sweep_every
            if sweep_every is not None
            else getattr(hub.settings, "upload_job_sweep_seconds", SWEEP_EVERY)
        )
        self.owner = process_owner()
        sqlite = hub.engine.dialect.name == "sqlite"
        self.writes_progress = not sqlite
        self.beats = not sqlite
        self._live: dict[str, RunningJob] = {}
        self._kept: dict[str, tuple[JobStatus, dict[str, Any], float]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._beating: threading.Thread | None = None
        self._sweep_stop = threading.Event()
        self._sweeping: threading.Thread | None = None
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
        with self._lock:  # held before its row exists: recovery never sees it unheld
            self._live[job_id] = live
            PROCESS_JOBS.hold(job_id)
        try:
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
                created_at=_now(),
                heartbeat_at=func.now(),
            )
            job = self.hub.transact(lambda s: _added(s, row))
            with self._lock:
                self._start_heartbeat()
            self._pool.submit(self._run, live)
        except BaseException:
            self._release(job_id)
            spool.close()
            with contextlib.suppress(Exception):
                self.move(job_id, JobStatus.failed, SERVICE_STOPPING)
            raise
        return job

    def get(self, actor: Actor, job_id: str) -> UploadJob:
        """A job ``actor`` may see (its agency's stewards, admins); :class:`NotFound` else.
        Reads only."""
        check_permission(actor, Permission.uploads_read)
        with self.hub.session() as s:
            row = s.get(UploadJobRow, job_id)
            job = UploadJob.of(row) if row is not None else None
        if job is None or self._expired(job) or not can_view_upload(actor, job.party_id):
            raise NotFound(
                f"no upload job {job_id} (jobs are kept for {self.keep_finished} after they end)"
            )
        return self._shown(job)

    def visible(self, actor: Actor) -> list[UploadJob]:
        """The jobs ``actor`` may see, oldest first. Reads only."""
        check_permission(actor, Permission.uploads_read)
        with self.hub.session() as s:
            rows = s.execute(select(UploadJobRow).order_by(UploadJobRow.created_at)).scalars()
            jobs = [UploadJob.of(r) for r in rows]
        return [
            self._shown(j)
            for j in jobs
            if not self._expired(j) and can_view_upload(actor, j.party_id)
        ]

    def live(self, job_id: str) -> RunningJob | None:
        """The job if this process holds it (queued or running here)."""
        with self._lock:
            return self._live.get(job_id)

    def _expired(self, job: UploadJob) -> bool:
        return job.finished_at is not None and job.finished_at < _now() - self.keep_finished

    def _shown(self, job: UploadJob) -> UploadJob:
        # The full result (an unredacted report) if this process ran the job to that end.
        with self._lock:
            kept = self._kept.get(job.id)
        if kept is None or kept[0] != job.status:
            return job
        return dataclasses.replace(job, result=kept[1])

    def _keep(self, job_id: str, status: JobStatus, result: dict[str, Any]) -> None:
        horizon = time.monotonic() - self.keep_finished.total_seconds()
        with self._lock:
            for old in [k for k, (_, _, at) in self._kept.items() if at < horizon]:
                del self._kept[old]
            self._kept[job_id] = (status, result, time.monotonic())

    def _release(self, job_id: str) -> None:
        with self._lock:
            self._live.pop(job_id, None)
            PROCESS_JOBS.release(job_id)

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
        status go there and this process owns it, in a transaction of its own. False if not
        (another process moved it first, or it is gone). ``result`` is stored as given: pass
        only what may be stored (see the module docstring)."""
        moved = self.hub.transact(
            lambda s: _rowcount(s, self._move_stmt(job_id, to, result, rows_done)), retries=0
        )
        if not moved:
            log.warning("upload job %s could not move to %s", job_id, to.value)
        return bool(moved)

    def _move_stmt(
        self, job_id: str, to: JobStatus, result: dict[str, Any] | None, rows_done: int | None
    ) -> Executable:
        sources = [s.value for s, nxt in TRANSITIONS.items() if to in nxt]
        values: dict[str, Any] = {"status": to.value, "heartbeat_at": func.now()}
        if to == JobStatus.running:
            values["started_at"] = _now()
        if to in FINISHED:
            values["finished_at"] = _now()
            values["result"] = result
        if rows_done is not None:
            values["rows_done"] = rows_done
        return (
            update(UploadJobRow)
            .execution_options(synchronize_session=False)
            .where(
                UploadJobRow.id == job_id,
                UploadJobRow.status.in_(sources),
                UploadJobRow.owner == self.owner,
            )
            .values(**values)
        )

    def write_progress(self, job_id: str, rows_done: int) -> bool:
        """Rows done so far, in a transaction of its own. False if the job is no longer running
        here (the caller stops the upload); a failure to write is logged, not raised, and
        counts as written (the upload goes on)."""
        stmt = (
            update(UploadJobRow)
            .execution_options(synchronize_session=False)
            .where(
                UploadJobRow.id == job_id,
                UploadJobRow.status == JobStatus.running.value,
                UploadJobRow.owner == self.owner,
            )
            .values(rows_done=rows_done, heartbeat_at=func.now())
        )
        try:
            return bool(self.hub.transact(lambda s: _rowcount(s, stmt), retries=0))
        except Exception as exc:
            log.warning("upload job %s: progress not written (%s)", job_id, type(exc).__name__)
            return True

    def judge(self) -> Stale:
        """The unfinished jobs as read now (no lock), with the owners found dead and this
        process's jobs no registry holds. On PostgreSQL every other process's unfinished job is
        a candidate: :meth:`fail` checks its heartbeat in the database."""
        with self.hub.session() as s:
            rows = s.execute(
                select(UploadJobRow.id, UploadJobRow.owner).where(
                    UploadJobRow.status.in_(_UNFINISHED)
                )
            ).all()
        dead = {o for _, o in rows if o != self.owner and owner_is_dead(o, self.owner)}
        orphans = [i for i, o in rows if o == self.owner and i not in PROCESS_JOBS]
        return Stale(
            ids=tuple(i for i, o in rows if o != self.owner or i in orphans),
            dead_owners=tuple(sorted(dead)),
            orphans=tuple(orphans),
        )

    def fail(self, stale: Stale) -> list[tuple[str, str | None]]:
        """Fail (``server_restarted``) the jobs ``stale`` judged lost, in one conditional
        ``UPDATE ... RETURNING``: only those still queued or running, and still with a dead
        owner, or orphaned here, or (PostgreSQL) a heartbeat older than ``stale_after`` in
        database time. Returns ``(id, spool_path)`` of the rows it changed, and nothing else:
        a job that finished since ``stale`` was read is untouched."""
        if not stale.ids:
            return []
        lost = [
            UploadJobRow.owner.in_(stale.dead_owners) if stale.dead_owners else false(),
            and_(UploadJobRow.owner == self.owner, UploadJobRow.id.in_(stale.orphans))
            if stale.orphans
            else false(),
        ]
        if self.beats:
            lost.append(
                and_(
                    UploadJobRow.owner != self.owner,
                    UploadJobRow.heartbeat_at < func.now() - self.stale_after,
                )
            )
        stmt = (
            update(UploadJobRow)
            .execution_options(synchronize_session=False)
            .where(
                UploadJobRow.id.in_(stale.ids),
                UploadJobRow.status.in_(_UNFINISHED),
                or_(*lost),
            )
            .values(status=JobStatus.failed.value, finished_at=_now(), result=SERVER_RESTARTED)
            .returning(
                UploadJobRow.id,
                UploadJobRow.spool_path,
                UploadJobRow.uploader,
                UploadJobRow.agreement_id,
                UploadJobRow.dataset_id,
            )
        )
        failed = self.hub.transact(lambda s: list(s.execute(stmt).all()), retries=0)
        for job_id, _, uploader, agreement_id, dataset_id in failed:
            self._audit_abandon(job_id, uploader, agreement_id, dataset_id, "server_restarted")
        return [(job_id, path) for job_id, path, *_ in failed]

    def recover(self) -> int:
        """Fail every queued or running job whose process is gone (:meth:`judge`, then
        :meth:`fail`), delete the spool files of those it failed, and delete finished jobs
        older than ``keep_finished``. Returns how many jobs were failed. Run at start-up and by
        the sweeper thread (:meth:`start_sweeping`); jobs a registry of this process holds are
        never touched."""
        cutoff = _now() - self.keep_finished
        self.hub.transact(
            _executes(
                delete(UploadJobRow).where(
                    UploadJobRow.status.in_([x.value for x in FINISHED]),
                    UploadJobRow.finished_at < cutoff,
                )
            ),
            retries=0,
        )
        failed = self.fail(self.judge())
        self._delete_spools(path for _, path in failed)
        if failed:
            log.warning("%d upload job(s) of a stopped server marked failed", len(failed))
        return len(failed)

    def sweep(self) -> None:
        """:meth:`recover`, logging (by type) any error instead of raising it."""
        try:
            self.recover()
        except Exception as exc:
            log.error("upload jobs: recovery sweep failed (%s)", type(exc).__name__)

    def start_sweeping(self) -> None:
        """Run :meth:`sweep` every ``sweep_every`` seconds on a daemon thread until
        :meth:`shutdown`."""
        with self._lock:
            if self._sweeping is not None or self.sweep_every <= 0:
                return
            self._sweeping = threading.Thread(
                target=self._sweep_loop, name="upload-job-sweeper", daemon=True
            )
            self._sweeping.start()

    def _sweep_loop(self) -> None:
        while not self._sweep_stop.wait(self.sweep_every):
            self.sweep()

    def _delete_spools(self, paths: Any) -> None:
        # Only a spool-named file directly in the spool directory; never raises.
        for path in paths:
            if path is None:
                continue
            spool = Path(path)
            try:
                if not SPOOL_NAME.fullmatch(spool.name) or spool.parent.resolve() != self.spool_dir:
                    log.warning("upload jobs: a job's spool path is outside the spool directory")
                    continue
                spool.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("upload jobs: a spool file not deleted (%s)", type(exc).__name__)

    def _audit_abandon(
        self, job_id: str, uploader: str, agreement_id: str, dataset_id: str, reason: str
    ) -> None:
        """One ``upload.abandon`` event, in a transaction of its own; never raises."""

        def append(s: Session) -> None:
            user = s.execute(select(User).where(User.name == uploader)).scalar_one_or_none()
            actor = Actor(user.id, user.name, Role(user.role), user.party_id) if user else None
            event = audit.Event(
                actor.label if actor else uploader,
                ABANDON,
                f"dataset:{dataset_id}",
                {"job": job_id, "agreement": agreement_id, "dataset": dataset_id, "reason": reason},
            )
            audit.append(s, event)

        try:
            self.hub.transact(append, retries=0)
        except Exception as exc:
            log.error("upload job %s: abandon not audited (%s)", job_id, type(exc).__name__)

    # --- running ----------------------------------------------------------------------------

    def shutdown(self, wait: bool = True) -> None:
        """Stop sweeping and taking jobs; queued jobs fail (``upload.abandon``, and drop their
        spool), running ones finish if ``wait``."""
        self._sweep_stop.set()
        if self._sweeping is not None:
            self._sweeping.join(timeout=30)
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._stopping.set()
        with self._lock:
            cancelled = list(self._live.values())
        for live in cancelled:
            live.spool.close()
            with contextlib.suppress(Exception):
                if self.move(live.id, JobStatus.failed, SERVICE_STOPPING):
                    attempt = live.attempt
                    self._audit_abandon(
                        live.id,
                        attempt.actor.name,
                        attempt.agreement_id or "",
                        attempt.dataset_id or "",
                        "service_stopping",
                    )
            self._release(live.id)

    def _run(self, live: RunningJob) -> None:
        try:
            self._run_job(live)
        except BaseException as exc:  # noqa: BLE001 - a worker thread: nothing above hears it
            log.error("upload job %s: %s escaped the job", live.id, type(exc).__name__)
        finally:
            live.spool.close()
            self._release(live.id)  # a row still unfinished now is failed by the sweep

    def _run_job(self, live: RunningJob) -> None:
        if live.spool.closed or not self.move(live.id, JobStatus.running):
            return  # the pool is shutting down, or another process failed the job
        try:
            receipt = live.attempt.run_spool(
                self.hub,
                live.spool,
                progress=live.progress,
                finish=lambda s, receipt: self._accept(s, live, receipt),
            )
        except JobAbandoned:
            return  # the row says why (server_restarted); the upload rolled back
        except UploadRejected as exc:
            self._finish(live, JobStatus.rejected, exc.to_dict())
        except HubError as exc:
            self._finish(live, JobStatus.failed, exc.to_dict())
        except Exception as exc:
            # The message of an unexpected error may quote the file; log its type only.
            log.error("upload job %s failed with %s", live.id, type(exc).__name__)
            self._finish(live, JobStatus.failed, dict(INTERNAL_ERROR))
        else:
            self._keep(live.id, JobStatus.accepted, receipt.to_dict())

    def _accept(self, session: Session, live: RunningJob, receipt: Receipt) -> None:
        # The upload's last statement, in its own transaction: no row, no upload.
        stmt = self._move_stmt(
            live.id,
            JobStatus.accepted,
            stored_receipt(receipt.to_dict()),
            max(live.rows_done, receipt.rows_received),
        )
        if _rowcount(session, stmt) != 1:
            raise JobAbandoned(f"upload job {live.id} is no longer running here")

    def _finish(self, live: RunningJob, to: JobStatus, result: dict[str, Any]) -> None:
        """Write a final ``rejected`` / ``failed`` (nothing was stored), retried after each wait
        of :data:`FINAL_WRITE_BACKOFF`; keeps the full ``result`` in memory and stores it
        redacted. If every try fails the row stays unfinished for the sweep to fail."""
        stored = redacted_error(result)
        for wait in (0.0, *FINAL_WRITE_BACKOFF):
            time.sleep(wait)
            try:
                if self.move(live.id, to, stored, rows_done=live.rows_done):
                    self._keep(live.id, to, result)
                return
            except Exception as exc:
                log.warning(
                    "upload job %s: final status not written (%s)", live.id, type(exc).__name__
                )
        log.error("upload job %s: final status never written; recovery will fail it", live.id)

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
            try:
                alive = set(self.beat(ids))
            except Exception as exc:
                log.warning("upload jobs: heartbeat not written (%s)", type(exc).__name__)
                continue
            with self._lock:
                for job_id in set(ids) - alive:
                    if (live := self._live.get(job_id)) is not None:
                        live.abandoned.set()
        with self._lock:
            self._beating = None

    def beat(self, ids: Sequence[str]) -> list[str]:
        """Touch ``heartbeat_at`` (database time) of the jobs among ``ids`` still queued or
        running under this process; returns their ids (any other has been failed meanwhile)."""
        stmt = (
            update(UploadJobRow)
            .execution_options(synchronize_session=False)
            .where(
                UploadJobRow.id.in_(ids),
                UploadJobRow.owner == self.owner,
                UploadJobRow.status.in_(_UNFINISHED),
            )
            .values(heartbeat_at=func.now())
            .returning(UploadJobRow.id)
        )
        return self.hub.transact(lambda s: list(s.execute(stmt).scalars()), retries=0)


def stored_receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt as ``upload_jobs`` stores it: its warnings redacted like a rejection's report
    (an ``unknown_column`` warning, under an agreement that drops unlisted columns, names a
    column from the file's header)."""
    warnings = redacted_report({"findings": receipt.get("warnings") or []})["findings"]
    return {**receipt, "warnings": warnings}


def _added(session: Session, row: UploadJobRow) -> UploadJob:
    session.add(row)
    session.flush()
    return UploadJob.of(row)


def _rowcount(session: Session, stmt: Executable) -> int:
    return cast("CursorResult[Any]", session.execute(stmt)).rowcount


def _executes(stmt: Executable) -> Callable[[Session], object]:
    return lambda session: session.execute(stmt)
