"""The FastAPI application. Routes are thin: they call the same services as the CLI, each in
its own transaction, and answer only after that transaction has committed."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hub.api import routes
from hub.context import Hub, build_hub
from hub.errors import HubError


def create_app(hub: Hub | None = None) -> FastAPI:
    app = FastAPI(
        title="OVP Hub",
        version="0.1.0",
        description=(
            "Privacy-preserving data sharing for Offices of Violence Prevention. Stewards upload "
            "extracts under data-sharing agreements; analysts and the public receive only "
            "differentially private aggregates."
        ),
    )
    app.state.hub = hub or build_hub()

    @app.exception_handler(HubError)
    async def _hub_error(_: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=exc.to_dict())

    @app.get("/api/v1/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness and database reachability. Needs no token."""
        with app.state.hub.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": "ok"}

    app.include_router(routes.router, prefix="/api/v1")
    return app
