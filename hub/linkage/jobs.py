"""Linkage runs in the background, with progress (``POST /linkage/runs?async=true``).

A run over a million records takes minutes, longer than an HTTP request should wait, so the API
can answer at once with a job whose progress (each stage and scoring chunk, as ``ovphub link
run`` prints them) is polled at ``GET /linkage/jobs/{job_id}``.

One run at a time per process: a request while a run is queued or running gets that run's job
(a second run at once would only redo the first's work). The run itself is the same
:func:`~hub.linkage.service.run_linkage` in its own transaction, recorded in ``linkage_runs`` and
audited as any run is. Like upload jobs (:mod:`hub.ingest.jobs`), the registry lives in this
process's memory: a restart forgets the jobs (the runs that finished stay recorded), and the
last :data:`KEEP` jobs are kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.auth.policies import Actor, Permission, check_permission
from hub.errors import HubError, NotFound
from hub.linkage.service import engine_settings, run_linkage

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger(__name__)

KEEP = 50
"""Jobs kept in memory (the oldest finished ones go first)."""
ACTIVE = frozenset({"queued", "running"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(eq=False)
class LinkageJob:
    """One linkage run in the background: ``queued``, ``running``, then ``finished`` (with the
    run's summary) or ``failed`` (with the error)."""

    id: str
    requested_by: str
    created_at: dt.datetime = field(default_factory=_now)
    status: str = "queued"
    progress: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    finished_at: dt.datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def say(self, message: str) -> None:
        """The run's progress callback."""
        with self._lock:
            self.progress.append(message)

    def move(self, status: str, **outcome: dict[str, Any]) -> None:
        with self._lock:
            self.status = status
            if status not in ACTIVE:
                self.finished_at = _now()
                self.summary = outcome.get("summary")
                self.error = outcome.get("error")

    def view(self) -> dict[str, Any]:
        with self._lock:
            return {
                "job_id": self.id,
                "status": self.status,
                "requested_by": self.requested_by,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "progress": list(self.progress),
                "summary": self.summary,
                "error": self.error,
            }


class LinkageJobs:
    """The linkage jobs of one server process (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linkage")
        self._jobs: dict[str, LinkageJob] = {}
        self._lock = threading.Lock()

    def submit(self, actor: Actor) -> tuple[LinkageJob, bool]:
        """The job for a new run, or the one already queued or running; and whether it is new."""
        check_permission(actor, Permission.linkage_run)
        with self._lock:
            active = next((j for j in self._jobs.values() if j.status in ACTIVE), None)
            if active is not None:
                return active, False
            job = LinkageJob(uuid.uuid4().hex, actor.label)
            self._jobs[job.id] = job
            for old in [j for j in self._jobs.values() if j.status not in ACTIVE][:-KEEP]:
                del self._jobs[old.id]
        self._pool.submit(self._run, job, actor)
        return job, True

    def get(self, actor: Actor, job_id: str) -> LinkageJob:
        check_permission(actor, Permission.linkage_run)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no linkage job {job_id} in this server process")
        return job

    def _run(self, job: LinkageJob, actor: Actor) -> None:
        job.move("running")
        hub = self.hub
        try:
            settings = engine_settings(hub.settings)
            summary = hub.transact(
                lambda s: run_linkage(s, actor.label, hub.today(), settings, job.say)
            )
        except HubError as exc:
            job.move("failed", error={"error": exc.code, "detail": exc.detail})
        except Exception:  # the job must end; the server log has the traceback
            log.exception("linkage job %s failed", job.id)
            job.move(
                "failed",
                error={"error": "internal_error", "detail": "the run failed; see the server log"},
            )
        else:
            job.move("finished", summary=summary.to_dict())

    def shutdown(self, wait: bool = True) -> None:
        """Drop queued runs; let a running one finish when ``wait``."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
