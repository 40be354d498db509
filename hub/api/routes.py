"""API routes, one block per domain noun (uploads in ``uploads.py``, agreements in
``agreements.py``). Each docstring is the route's OpenAPI text."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from hub.agreements.service import current_versions
from hub.auth.policies import Permission, Role, check_permission
from hub.linkage.report import linkage_report
from hub.linkage.report_page import report_html
from hub.linkage.service import engine_settings, run_linkage
from hub.releases.service import (
    ReleaseRequest,
    budget_status,
    get_release,
    list_releases,
    preview_release,
)
from hub.releases.views import (
    catalogue_entries,
    release_and_publish,
    release_csv,
    release_view,
)

from .deps import ActorDep, HubDep, LinkageJobsDep

router = APIRouter()


# --- agreements and catalogue -----------------------------------------------------------------


@router.get("/agreements", tags=["agreements"])
def list_agreements(hub: HubDep, actor: ActorDep) -> list[dict[str, Any]]:
    """Agreement versions in force per dataset (legal, admin, and stewards of a party to them)."""
    check_permission(actor, Permission.agreements_read)
    with hub.session() as s:
        out = []
        for gov in current_versions(s):
            parties = {p.id for p in gov.spec.parties}
            if actor.role == Role.steward and actor.party_id not in parties:
                continue
            out.append(
                {
                    "agreement": gov.spec.ref,
                    "status": gov.row.status,
                    "sha256": gov.row.sha256,
                    "title": gov.spec.agreement.title,
                    "datasets": [d.id for d in gov.spec.datasets],
                }
            )
        return out


@router.get("/catalogue", tags=["releases"])
def catalogue(hub: HubDep, actor: ActorDep) -> list[dict[str, Any]]:
    """Every aggregate the agreements approve, with its privacy cost per release."""
    check_permission(actor, Permission.releases_read)
    with hub.session() as s:
        return catalogue_entries(s)


# --- linkage ----------------------------------------------------------------------------------


@router.post(
    "/linkage/runs",
    status_code=status.HTTP_201_CREATED,
    tags=["linkage"],
    responses={202: {"description": "The run goes on as a job; poll /linkage/jobs/{job_id}"}},
)
def create_linkage_run(
    hub: HubDep,
    actor: ActorDep,
    jobs: LinkageJobsDep,
    request: Request,
    response: Response,
    run_async: Annotated[
        bool, Query(alias="async", description="Answer 202 with a job to poll for progress")
    ] = False,
) -> dict[str, Any]:
    """Link all permitted datasets into pseudonymous person ids (admin): 201 with the run's
    summary. With `?async=true`: 202 with a job (`job_id`, `status`, `progress`) to poll at
    `GET /linkage/jobs/{job_id}` until it is `finished` (with the summary) or `failed`; while a
    run is under way, a new request gets that run's job."""
    check_permission(actor, Permission.linkage_run)
    if run_async:
        job, _ = jobs.submit(actor)
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = str(request.url_for("linkage_job", job_id=job.id))
        return job.view()
    settings = engine_settings(hub.settings)
    return hub.transact(lambda s: run_linkage(s, actor.label, hub.today(), settings).to_dict())


@router.get("/linkage/jobs/{job_id}", name="linkage_job", tags=["linkage"])
def linkage_job(
    actor: ActorDep,
    jobs: LinkageJobsDep,
    job_id: Annotated[str, Path(description="A job id from a 202 answer to POST /linkage/runs")],
) -> dict[str, Any]:
    """A linkage job of this server process: status, progress so far, and at the end the run's
    summary or the error (admin)."""
    return jobs.get(actor, job_id).view()


RunId = Annotated[int, Path(description="A linkage run id, as POST /linkage/runs returns it")]


@router.get("/linkage/runs/{run_id}", tags=["linkage"])
def linkage_run(hub: HubDep, actor: ActorDep, run_id: RunId) -> dict[str, Any]:
    """What a finished linkage run did (admin): method, times, counts, the threshold and why,
    the model's own precision/recall estimates, m/u per comparison level, blocking rules, the
    match-weight histogram, merges and splits, and link rates by agency, age band, sex and race
    (groups under 10 records read `<10`). Counts only, no record or person id. 404 if there is
    no such run."""
    with hub.session() as s:
        return linkage_report(s, actor, run_id)


@router.get(
    "/linkage/runs/{run_id}/report",
    tags=["linkage"],
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "A self-contained HTML page"}},
)
def linkage_run_report(hub: HubDep, actor: ActorDep, run_id: RunId) -> HTMLResponse:
    """The same as one self-contained HTML page (admin; no scripts, nothing loaded from the
    network)."""
    with hub.session() as s:
        return HTMLResponse(report_html(s, actor, run_id))


# --- releases ---------------------------------------------------------------------------------


class ReleaseBody(BaseModel):
    aggregate_id: str = Field(description="An approved aggregate id from /catalogue")
    window_start: dt.date | None = Field(default=None, description="Default: 24 months back")
    window_end: dt.date | None = Field(default=None, description="Default: end of last month")
    recipient: str = Field(default="public", description="Must be allowed by the agreement")


def _release_request(hub: HubDep, body: ReleaseBody) -> ReleaseRequest:
    return ReleaseRequest.with_default_window(
        hub.today(), body.aggregate_id, body.window_start, body.window_end, body.recipient
    )


@router.post("/releases", status_code=status.HTTP_201_CREATED, tags=["releases"])
def create_release(
    hub: HubDep, actor: ActorDep, body: ReleaseBody, response: Response
) -> dict[str, Any]:
    """Release an approved aggregate with differential privacy. The budget debit commits before
    the answer is sent; an identical request returns the stored release (200, no new spend);
    an exhausted budget gives 409 with what remains."""
    view = release_and_publish(hub, actor, _release_request(hub, body))
    if view["cached"]:
        response.status_code = status.HTTP_200_OK
    return view


@router.post("/releases/preview", tags=["releases"])
def preview(hub: HubDep, actor: ActorDep, body: ReleaseBody) -> dict[str, Any]:
    """What the same POST to /releases would publish and cost, without spending or storing
    anything: cells, the 95% error bound per cell and per total, the privacy loss it would
    spend (0 if an identical release exists: it would be returned from the cache) and what
    would remain in the agreement's period and lifetime budgets. Reads no data."""
    req = _release_request(hub, body)
    with hub.session() as s:
        return preview_release(s, actor, req, hub.today())


@router.get("/releases", tags=["releases"])
def releases(hub: HubDep, actor: ActorDep) -> list[dict[str, Any]]:
    """Every release, oldest first, as published: noisy cells, mechanism, privacy loss, accuracy
    and the agreements they came from. Nothing else leaves the hub."""
    with hub.session() as s:
        return [release_view(r, True) for r in list_releases(s, actor)]


@router.get("/releases/{release_id}", tags=["releases"])
def release(
    hub: HubDep,
    actor: ActorDep,
    release_id: Annotated[str, Path(description="A release id from POST or GET /releases")],
) -> dict[str, Any]:
    """One release by id, exactly as it was first published (404 if there is none)."""
    with hub.session() as s:
        return release_view(get_release(s, actor, release_id), True)


@router.get(
    "/releases/{release_id}/csv",
    tags=["releases"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The release's cells as CSV"}},
)
def release_csv_download(
    hub: HubDep,
    actor: ActorDep,
    release_id: Annotated[str, Path(description="A release id from POST or GET /releases")],
) -> Response:
    """One release's cells as a CSV download (same visibility as GET /releases/{id}): one
    column per dimension, the published count (`<N` for a suppressed cell, never a number),
    the suppressed flag and the 95% error bound. Any field a spreadsheet could run as a
    formula (starting with `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'`."""
    with hub.session() as s:
        found = get_release(s, actor, release_id)
        body, name = release_csv(found), f"release-{found.id}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/budget", tags=["releases"])
def budget(hub: HubDep, actor: ActorDep) -> list[dict[str, Any]]:
    """Privacy budget per agreement and period: cap, spent, remaining."""
    check_permission(actor, Permission.releases_read)
    with hub.session() as s:
        return budget_status(s)
