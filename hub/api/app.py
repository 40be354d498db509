"""The FastAPI application. Routes are thin: they call the same services as the CLI, each in
its own transaction, and answer only after that transaction has committed.

``create_app(hub)`` serves a hub the caller built (tests, embedding); ``create_app()`` builds one
from ``HUB_*`` settings and disposes of its database engine when the server shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from hub.api import agreements, routes
from hub.api.errors import install_error_handlers
from hub.context import Hub, build_hub


def create_app(hub: Hub | None = None) -> FastAPI:
    owned = hub is None
    served = hub or build_hub()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
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
    install_error_handlers(app)

    @app.get("/api/v1/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness and database reachability. Needs no token."""
        with served.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": "ok"}

    app.include_router(routes.router, prefix="/api/v1")
    app.include_router(agreements.router, prefix="/api/v1")
    return app
