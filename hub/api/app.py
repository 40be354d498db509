"""The FastAPI application. Routes are thin: they call the same services as the CLI, each in
its own transaction, and answer only after that transaction has committed.

``create_app(hub)`` serves a hub the caller built (tests, embedding); ``create_app()`` builds one
from ``HUB_*`` settings and disposes of its database engine when the server shuts down.

Each app has its own pool of upload jobs (:class:`~hub.ingest.jobs.UploadJobs`, whose state is
in the database: every server process sees every upload job, and at start-up the jobs a stopped
server left queued or running are marked failed, then again every
``HUB_UPLOAD_JOB_SWEEP_SECONDS`` on a background thread; status reads never write) and of
linkage jobs
(:class:`~hub.linkage.jobs.LinkageJobs`, kept in this process's memory), and spools streamed
uploads, encrypted, in ``spool_dir`` (default: the system temporary directory). At shutdown
queued jobs are dropped and running ones finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from hub.api import agreements, routes, uploads
from hub.api.errors import install_error_handlers
from hub.context import Hub, build_hub
from hub.ingest.jobs import UploadJobs
from hub.linkage.jobs import LinkageJobs


def create_app(hub: Hub | None = None, *, spool_dir: Path | None = None) -> FastAPI:
    owned = hub is None
    served = hub or build_hub()
    jobs = UploadJobs(served, spool_dir=spool_dir)
    linkage_jobs = LinkageJobs(served)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(jobs.sweep)  # upload jobs a stopped server left behind
        jobs.start_sweeping()
        yield
        jobs.shutdown(wait=True)
        linkage_jobs.shutdown(wait=True)
        if owned:
            served.engine.dispose()

    app = FastAPI(
        title="OVP Hub",
        version="0.1.0",
        description=(
            "Privacy-preserving data sharing for Offices of Violence Prevention. Stewards upload "
            "extracts under data-sharing agreements; analysts and the public receive only "
            "differentially private aggregates. Every route except `/api/v1/health` needs an "
            "API token (`ovphub users token NAME`) sent as `Authorization: Bearer <token>`. "
            'Errors are JSON: `{"error": <code>, "detail": <what was wrong and what to do>}`.'
        ),
        lifespan=lifespan,
    )
    app.state.hub = served
    app.state.upload_jobs = jobs
    app.state.linkage_jobs = linkage_jobs
    app.state.spool_dir = spool_dir
    install_error_handlers(app)

    @app.get("/api/v1/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness and database reachability. Needs no token."""
        with served.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": "ok"}

    app.include_router(uploads.router, prefix="/api/v1")
    app.include_router(routes.router, prefix="/api/v1")
    app.include_router(agreements.router, prefix="/api/v1")
    return app
