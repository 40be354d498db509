"""Upload routes: sending extracts, following upload jobs, and the steward's views.

Two ways in, the same pipeline:

- ``POST /uploads``: a multipart form, read into memory (small files, browsers).
- ``PUT /uploads/{agreement_id}/{dataset_id}``: the file itself as the request body, streamed
  into an :class:`~hub.ingest.spool.EncryptedSpool` (never plaintext on disk). A body up to
  :data:`ASYNC_THRESHOLD` bytes is answered at once, like the form; a larger one (or
  ``?async=true``) gets 202 and an upload job to poll at ``/uploads/jobs/{job_id}``.

Both refuse a file over ``HUB_MAX_UPLOAD_BYTES`` with 413 as soon as it passes the limit.
Every refused upload, whenever it is refused (before the body is read, while it is read, or by
validation, here or in a job), stores nothing and appends one ``upload.reject`` audit event
(:mod:`hub.ingest.attempts`).
Receipts, reports and jobs are visible to the uploading agency's stewards and to admins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from hub.auth.policies import Permission, check_permission
from hub.context import Hub
from hub.errors import NotFound
from hub.ingest import service, views
from hub.ingest.attempts import UploadAttempt
from hub.ingest.spool import EncryptedSpool

from .deps import ActorDep, HubDep, JobsDep, SpoolDirDep
from .errors import MalformedRequest
from .forms import UPLOAD_FORM_OPENAPI, read_extract_form, too_large

router = APIRouter(tags=["uploads"])

ASYNC_THRESHOLD = 8 * 1024 * 1024
"""A streamed upload larger than this (bytes) runs as a job and is answered with 202."""

UploadId = Annotated[str, Path(description="An upload id from a receipt or GET /uploads")]
JobId = Annotated[str, Path(description="A job id from a 202 answer to PUT /uploads/...")]

RAW_BODY_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "The extract's bytes (CSV, XLSX or Parquet)",
                }
            }
        },
    }
}
HTML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "A self-contained HTML page"}
}


# --- sending extracts -------------------------------------------------------------------------


@router.post("/uploads", status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_FORM_OPENAPI)
async def create_upload(
    request: Request, hub: HubDep, actor: ActorDep, response: Response
) -> dict[str, Any]:
    """Upload an extract (multipart form: `file`, `agreement_id`, `dataset_id`) for one dataset
    of one agreement; stewards only, for their own agency's datasets. Returns the receipt (201).
    A rejected file gets 422 with a validation report naming rule, column, count and row numbers
    (never values), and nothing is stored. The same file twice returns the first receipt (200).
    A file over the hub's upload limit gets 413. The file is held in memory only, never written
    to disk; for large files use `PUT /uploads/{agreement_id}/{dataset_id}`."""
    attempt = UploadAttempt(actor, via="api")
    async with refusals_audited(hub, attempt):
        check_permission(actor, Permission.uploads_create)
        form = await read_extract_form(request, hub.settings.max_upload_bytes)
    attempt.agreement_id, attempt.dataset_id = form.agreement_id, form.dataset_id
    attempt.file_bytes = len(form.content)
    receipt = await run_in_threadpool(attempt.run, hub, form.content)
    if receipt.duplicate:
        response.status_code = status.HTTP_200_OK
    return receipt.to_dict()


@asynccontextmanager
async def refusals_audited(hub: Hub, attempt: UploadAttempt) -> AsyncIterator[None]:
    """Audit an upload refused before the service reads the file (permission, size limit, a
    malformed body, the agreement gate) as :meth:`UploadAttempt.run` audits the rest: one
    ``upload.reject`` event, written off the event loop, then the error goes on."""
    try:
        yield
    except Exception as exc:
        await run_in_threadpool(attempt.reject, hub, exc)
        raise


async def spool_body(request: Request, directory: FilePath | None, limit: int) -> EncryptedSpool:
    """The request body in an encrypted spool; :class:`UploadTooLarge` once it passes
    ``limit`` bytes (before reading, when ``Content-Length`` already says so)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    spool = EncryptedSpool(directory)
    try:
        async for chunk in request.stream():
            if spool.size + len(chunk) > limit:
                raise too_large(limit)
            spool.write(chunk)
        spool.finish()
    except BaseException:
        spool.close()
        raise
    if spool.size == 0:
        spool.close()
        raise MalformedRequest(
            "the request body is empty; send the extract's bytes as the body of the PUT"
        )
    return spool


@router.put(
    "/uploads/{agreement_id}/{dataset_id}",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=RAW_BODY_OPENAPI,
    responses={202: {"description": "The upload runs as a job; poll /uploads/jobs/{job_id}"}},
)
async def stream_upload(
    request: Request,
    hub: HubDep,
    actor: ActorDep,
    jobs: JobsDep,
    spool_dir: SpoolDirDep,
    response: Response,
    agreement_id: Annotated[str, Path(description="Agreement id, e.g. dsa-police-victimizations")],
    dataset_id: Annotated[str, Path(description="Dataset id, e.g. police_victimizations")],
    run_async: Annotated[
        bool,
        Query(alias="async", description="Answer 202 with a job id even for a small file"),
    ] = False,
) -> dict[str, Any]:
    """Upload an extract sent as the raw request body (`Content-Type: application/octet-stream`;
    CSV, XLSX or Parquet) for one dataset of one agreement; stewards only, for their own
    agency's datasets, checked before the body is read. The body is streamed into an encrypted
    temporary file (AES-256-GCM under a key held only in memory; the file is deleted as soon
    as the upload ends) and refused with 413 once it passes the hub's upload limit.

    A body up to 8 MiB is answered as `POST /uploads` answers: 201 with the receipt, 200 for a
    file already uploaded, 422 with the validation report. A larger body, or `?async=true`,
    gets 202 with an upload job (`job_id`, `status`); poll `GET /uploads/jobs/{job_id}` for
    rows done, rows/s, and at the end the receipt or the rejection."""
    attempt = UploadAttempt(actor, agreement_id, dataset_id, via="api")
    async with refusals_audited(hub, attempt):
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
            raise MalformedRequest(
                "this route takes the file itself as the body (application/octet-stream); send "
                "a multipart form to POST /uploads instead"
            )
        today = hub.today()
        await run_in_threadpool(
            hub.transact, lambda s: service.upload_gate(s, actor, agreement_id, dataset_id, today)
        )
        spool = await spool_body(request, spool_dir, hub.settings.max_upload_bytes)
    if run_async or spool.size > ASYNC_THRESHOLD:
        job = await run_in_threadpool(
            jobs.submit, actor, agreement_id=agreement_id, dataset_id=dataset_id, spool=spool
        )
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = str(request.url_for("upload_job", job_id=job.id))
        return job.view()
    attempt.file_bytes = spool.size
    with spool:
        receipt = await run_in_threadpool(attempt.run_spool, hub, spool)
    if receipt.duplicate:
        response.status_code = status.HTTP_200_OK
    return receipt.to_dict()


# --- upload jobs ------------------------------------------------------------------------------


@router.get("/uploads/jobs")
def list_upload_jobs(actor: ActorDep, jobs: JobsDep) -> list[dict[str, Any]]:
    """Upload jobs the caller may see (their agency's; admins: all), oldest first, whichever
    server process took them. A job is forgotten 24 hours after it ends; one a restarted server
    had queued or running is reported failed (`server_restarted`: upload the file again)."""
    return [job.view() for job in jobs.visible(actor)]


@router.get("/uploads/jobs/{job_id}", name="upload_job")
def upload_job(actor: ActorDep, jobs: JobsDep, job_id: JobId) -> dict[str, Any]:
    """One upload job: `status` (queued, running, accepted, rejected, failed), `rows_done`,
    `rows_per_second`, and when it has ended `receipt` (accepted), `rejection` (rejected: the
    same JSON as a 422 from a synchronous upload, with the validation report) or `error`
    (failed; `server_restarted` if the server running it stopped: upload the file again).
    Visible to the uploading agency's stewards and to admins; 404 for anyone else."""
    return jobs.get(actor, job_id).view()


@router.get(
    "/uploads/jobs/{job_id}/report.html", response_class=HTMLResponse, responses=HTML_RESPONSE
)
def upload_job_report_html(actor: ActorDep, jobs: JobsDep, job_id: JobId) -> HTMLResponse:
    """The validation report of a rejected upload job as a self-contained HTML page (404 until
    the job has been rejected: accepted uploads have theirs at /uploads/{id}/report.html)."""
    job = jobs.get(actor, job_id)
    report = (job.view().get("rejection") or {}).get("report")
    if report is None:
        raise NotFound(f"upload job {job_id} has no rejection report ({job.status})")
    return HTMLResponse(views.render_report_html(report, job.dataset_id))


# --- the steward's views ----------------------------------------------------------------------


@router.get("/uploads")
def list_uploads(hub: HubDep, actor: ActorDep) -> list[dict[str, Any]]:
    """Receipts, oldest first: a steward sees their own agency's; admins see all."""
    with hub.session() as s:
        return views.list_receipts_view(s, actor)


@router.get("/uploads/releases")
def releases_using_uploads(
    hub: HubDep,
    actor: ActorDep,
    upload_id: Annotated[
        str | None, Query(description="Only releases that used this upload")
    ] = None,
) -> list[dict[str, Any]]:
    """Which releases used the caller's agency's data (admins: every release), oldest first:
    aggregate, recipient, privacy loss, agreements, and the agency's uploads each one used."""
    with hub.session() as s:
        return views.releases_using(s, actor, upload_id)


@router.get("/uploads/{upload_id}")
def upload_receipt(hub: HubDep, actor: ActorDep, upload_id: UploadId) -> dict[str, Any]:
    """One receipt (404 if it is another agency's)."""
    with hub.session() as s:
        return views.receipt_view(s, actor, upload_id)


@router.get("/uploads/{upload_id}/report")
def upload_report(hub: HubDep, actor: ActorDep, upload_id: UploadId) -> dict[str, Any]:
    """The validation report an accepted upload passed with: warnings, row rules applied, rows
    kept aggregate-only or out of linkage. Rule names and row numbers, never values."""
    with hub.session() as s:
        return views.report_view(s, actor, upload_id)


@router.get(
    "/uploads/{upload_id}/report.html", response_class=HTMLResponse, responses=HTML_RESPONSE
)
def upload_report_html(hub: HubDep, actor: ActorDep, upload_id: UploadId) -> HTMLResponse:
    """The same report as a self-contained HTML page (no external assets)."""
    with hub.session() as s:
        return HTMLResponse(views.report_html(s, actor, upload_id))
