"""Streamed uploads (``PUT /uploads/{agreement}/{dataset}``) and upload jobs: the body goes to an
encrypted spool, large ones run in the background with progress, the answer is the same receipt
or rejection as a synchronous upload, only the uploading agency sees the job, and no spool file
outlives its upload."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from factories import (
    assert_audit_chain_intact,
    grown,
    load_examples,
    make_actor,
    make_police_csv,
    make_police_row,
    reject_events,
)
from hub.api import uploads as upload_routes
from hub.api.app import create_app
from hub.auth.policies import Role
from hub.context import Hub
from hub.ingest import jobs as jobs_module
from hub.ingest import service
from hub.ingest import spool as spool_module
from hub.ingest.spool import EncryptedSpool
from hub.keys import KeyStore

from .conftest import POLICE, POLICE_AGREEMENT, bearer, issue
from .test_uploads import table_counts

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Auth = dict[str, dict[str, str]]
PUT_POLICE = f"/api/v1/uploads/{POLICE_AGREEMENT}/{POLICE}"
HOSPITAL_AGREEMENT, HOSPITAL = "dsa-hospital-ed-injury", "ed_injury_visits"
FINISHED = {"accepted", "rejected", "failed"}


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> list[EncryptedSpool]:
    """Every spool the app makes, keeping its file name until it is closed (as on Windows,
    where an open file cannot be unlinked), so the spool directory shows what is left."""
    made: list[EncryptedSpool] = []
    init = EncryptedSpool.__init__

    def recording(self: EncryptedSpool, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(EncryptedSpool, "__init__", recording)
    monkeypatch.setattr(spool_module, "_detach", lambda path: False)
    return made


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The service reads 40 rows per chunk; returns the progress reports, in order."""
    if "chunk_rows" not in inspect.signature(service.upload_extract).parameters:
        pytest.skip("upload_extract does not read in chunks of a given size")
    reported: list[int] = []
    real = service.upload_extract

    @functools.wraps(real)
    def chunked(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        def record(rows: int) -> None:
            reported.append(rows)
            if progress is not None:
                progress(rows)

        return real(*args, progress=record, chunk_rows=40, **kwargs)

    monkeypatch.setattr(service, "upload_extract", chunked)
    return reported


def put(
    client: TestClient,
    headers: dict[str, str],
    content: bytes | Iterator[bytes],
    *,
    path: str = PUT_POLICE,
    run_async: bool = False,
) -> httpx.Response:
    return client.put(
        path + ("?async=true" if run_async else ""),
        headers={**headers, "Content-Type": "application/octet-stream"},
        content=content,
    )


def wait_for(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    """Poll the job until it has ended (at most 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        response = client.get(f"/api/v1/uploads/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in FINISHED:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def same_receipt(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal, reading ``created_at`` as UTC (SQLite returns it without its time zone)."""

    def utc(receipt: dict[str, Any]) -> dict[str, Any]:
        at = dt.datetime.fromisoformat(receipt["created_at"])
        return {**receipt, "created_at": at.replace(tzinfo=at.tzinfo or dt.UTC)}

    return utc(a) == utc(b)


def bad_police_csv() -> bytes:
    rows = [make_police_row(i) for i in range(1, 7)]
    rows[2]["victim_sex"] = "Q"
    rows[4]["victim_dob"] = "1999-02-31"
    return make_police_csv(rows)


# --- jobs -------------------------------------------------------------------------------------


def test_an_async_upload_is_202_with_a_job_that_ends_with_the_same_receipt_as_a_sync_upload(
    client: TestClient, auth: Auth, police_csv: bytes, upload: Callable[..., httpx.Response]
) -> None:
    steward = auth["steward-police"]
    response = put(client, steward, police_csv, run_async=True)
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] in ("queued", "running", "accepted") and started["job_id"]
    assert response.headers["location"].endswith(f"/api/v1/uploads/jobs/{started['job_id']}")
    assert started["file_bytes"] == len(police_csv) and started["party"] == "org:police"

    job = wait_for(client, steward, started["job_id"])
    assert job["status"] == "accepted", job
    receipt = job["receipt"]
    assert receipt["status"] == "accepted" and receipt["duplicate"] is False
    assert receipt["file_bytes"] == len(police_csv)
    assert job["rows_done"] == receipt["rows_received"] == police_csv.count(b"\n") - 1
    assert job["rows_per_second"] > 0 and job["finished_at"]

    sync = upload(police_csv)  # the same file through the multipart route
    assert sync.status_code == 200 and sync.json()["duplicate"] is True
    again = sync.json()  # the first receipt, with a note that the file came again
    assert "already accepted" in again["notes"][-1]
    assert same_receipt({**again, "duplicate": False, "notes": again["notes"][:-1]}, receipt)
    stored = client.get(f"/api/v1/uploads/{receipt['upload_id']}", headers=steward).json()
    assert same_receipt(stored, {k: receipt[k] for k in stored})


def test_a_body_over_the_threshold_runs_as_a_job_without_asking(
    client: TestClient, auth: Auth, police_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_routes, "ASYNC_THRESHOLD", len(police_csv) - 1)
    response = put(client, auth["steward-police"], police_csv)
    assert response.status_code == 202
    job = wait_for(client, auth["steward-police"], response.json()["job_id"])
    assert job["status"] == "accepted"


def test_a_job_reports_rows_done_after_each_chunk(
    client: TestClient,
    auth: Auth,
    police_csv: bytes,
    small_chunks: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen from the process running the job while it runs (on SQLite an HTTP poll would wait
    for the job's write lock, and the table gets the rows done when the job ends), then over
    HTTP once it has ended. PostgreSQL: see test_upload_jobs_shared.py."""
    steward = auth["steward-police"]
    first_chunk, go_on = threading.Event(), threading.Event()
    progress = jobs_module.RunningJob.progress

    def pausing(job: jobs_module.RunningJob, rows: int) -> None:
        progress(job, rows)
        if rows > 0 and not first_chunk.is_set():
            first_chunk.set()
            assert go_on.wait(30)

    monkeypatch.setattr(jobs_module.RunningJob, "progress", pausing)
    job_id = put(client, steward, police_csv, run_async=True).json()["job_id"]
    assert first_chunk.wait(30)
    registry: jobs_module.UploadJobs = client.app.state.upload_jobs  # type: ignore[attr-defined]
    running = registry.live(job_id)
    assert running is not None and running.rows_done == 40
    go_on.set()

    job = wait_for(client, steward, job_id)
    total = police_csv.count(b"\n") - 1
    assert small_chunks == [*range(40, total, 40), total]
    assert job["status"] == "accepted" and job["rows_done"] == total


def test_a_rejected_job_carries_the_same_report_as_a_sync_rejection_and_stores_nothing(
    client: TestClient, auth: Auth, api_hub: Hub, upload: Callable[..., httpx.Response]
) -> None:
    steward = auth["steward-police"]
    bad = bad_police_csv()
    before = table_counts(api_hub)
    job = wait_for(client, steward, put(client, steward, bad, run_async=True).json()["job_id"])
    assert job["status"] == "rejected" and "receipt" not in job
    sync = upload(bad)
    assert sync.status_code == 422
    assert job["rejection"] == sync.json()
    assert job["rejection"]["error"] == "upload_rejected"
    assert "Whitfield" not in str(job) and "1999-02-31" not in str(job)
    # the job's row and two refusals (the job's and the synchronous one); no data
    assert table_counts(api_hub) == grown(before, upload_jobs=1, audit_log=2)
    by_job, by_form = reject_events(api_hub)
    assert by_job["details"]["via"] == "job" and by_job["details"]["job"] == job["job_id"]
    assert by_form["details"]["via"] == "api" and "job" not in by_form["details"]
    assert by_job["details"]["file_sha256"] == by_form["details"]["file_sha256"]
    assert by_job["details"]["rules"] == by_form["details"]["rules"]
    assert "Whitfield" not in str(by_job) and "1999-02-31" not in str(by_job)
    assert_audit_chain_intact(api_hub)

    page = client.get(f"/api/v1/uploads/jobs/{job['job_id']}/report.html", headers=steward)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Rejected" in page.text and "victim_sex" in page.text
    assert "1999-02-31" not in page.text


class KeyStoreDown:
    """The hub's key store, failing as an unreachable key service might, with an error whose
    text quotes a value from the file (an unexpected error's message may)."""

    def __init__(self, keys: KeyStore) -> None:
        self.active_key_id = keys.active_key_id
        self.chain = keys.chain

    def master_key(self, key_id: str) -> bytes:
        raise RuntimeError("Whitfield,1999-04-17: the key service did not answer")


def test_a_job_that_fails_says_so_and_drops_its_spool(
    api_hub: Hub,
    auth: Auth,
    police_csv: bytes,
    spool_dir: Path,
    spools: list[EncryptedSpool],
) -> None:
    from fastapi.testclient import TestClient

    broken = dataclasses.replace(api_hub, keys=KeyStoreDown(api_hub.keys))
    before = table_counts(api_hub)
    steward = auth["steward-police"]
    with TestClient(create_app(broken, spool_dir=spool_dir)) as client:
        job_id = put(client, steward, police_csv, run_async=True).json()["job_id"]
        job = wait_for(client, steward, job_id)
    assert job["status"] == "failed" and job["error"]["error"] == "internal_error"
    assert "Whitfield" not in str(job) and "1999-04-17" not in str(job)
    assert spools and all(s.closed for s in spools)
    assert list(spool_dir.iterdir()) == []
    assert table_counts(api_hub) == grown(before, upload_jobs=1, audit_log=1)
    (event,) = reject_events(api_hub)
    assert event["details"]["error"] == "internal_error" and event["details"]["status"] == 500
    assert "Whitfield" not in str(event) and "1999-04-17" not in str(event)


# --- who sees a job ---------------------------------------------------------------------------


def test_only_the_uploading_agency_and_admins_see_a_job(
    client: TestClient, auth: Auth, police_csv: bytes
) -> None:
    job_id = put(client, auth["steward-police"], police_csv, run_async=True).json()["job_id"]
    wait_for(client, auth["steward-police"], job_id)
    path = f"/api/v1/uploads/jobs/{job_id}"
    assert client.get(path, headers=auth["admin"]).status_code == 200
    other = client.get(path, headers=auth["steward-hospital"])
    assert other.status_code == 404 and job_id in other.json()["detail"]
    for user in ("analyst", "legal"):
        assert client.get(path, headers=auth[user]).status_code == 403
    listed = {
        user: [j["job_id"] for j in client.get("/api/v1/uploads/jobs", headers=auth[user]).json()]
        for user in ("steward-police", "steward-hospital", "admin")
    }
    assert listed == {"steward-police": [job_id], "steward-hospital": [], "admin": [job_id]}
    assert client.get("/api/v1/uploads/jobs", headers=auth["analyst"]).status_code == 403


# --- the spool --------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["accepted", "rejected"])
def test_no_spool_file_outlives_its_job(
    client: TestClient,
    auth: Auth,
    police_csv: bytes,
    spool_dir: Path,
    spools: list[EncryptedSpool],
    outcome: str,
) -> None:
    content = police_csv if outcome == "accepted" else bad_police_csv()
    steward = auth["steward-police"]
    job = wait_for(client, steward, put(client, steward, content, run_async=True).json()["job_id"])
    assert job["status"] == outcome
    assert len(spools) == 1 and spools[0].closed
    assert list(spool_dir.iterdir()) == []


def test_a_spool_file_holds_no_plaintext_while_the_job_waits(
    client: TestClient,
    auth: Auth,
    police_csv: bytes,
    spool_dir: Path,
    spools: list[EncryptedSpool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read what is on disk while the job is held before it starts."""
    release = threading.Event()
    run = jobs_module.UploadJobs._run

    def held(self: jobs_module.UploadJobs, *args: Any) -> None:
        assert release.wait(30)
        run(self, *args)

    monkeypatch.setattr(jobs_module.UploadJobs, "_run", held)
    job_id = put(client, auth["steward-police"], police_csv, run_async=True).json()["job_id"]
    (on_disk,) = spool_dir.iterdir()
    sealed = on_disk.read_bytes()
    assert len(sealed) > len(police_csv)
    first_data_row = police_csv.splitlines()[1]
    for needle in (police_csv[:40], first_data_row[:30], b"victim_last_name"):
        assert needle not in sealed
    release.set()
    assert wait_for(client, auth["steward-police"], job_id)["status"] == "accepted"
    assert list(spool_dir.iterdir()) == []


def test_a_sync_put_leaves_no_spool_either(
    client: TestClient, auth: Auth, police_csv: bytes, spool_dir: Path, spools: list[EncryptedSpool]
) -> None:
    steward = auth["steward-police"]
    assert put(client, steward, bad_police_csv()).status_code == 422
    assert put(client, steward, police_csv).status_code == 201
    assert len(spools) == 2 and all(s.closed for s in spools)
    assert list(spool_dir.iterdir()) == []


# --- synchronous streamed uploads -------------------------------------------------------------


def test_a_small_streamed_upload_answers_like_the_form(
    client: TestClient, auth: Auth, police_csv: bytes, upload: Callable[..., httpx.Response]
) -> None:
    steward = auth["steward-police"]
    first = put(client, steward, police_csv)
    assert first.status_code == 201, first.text
    again = put(client, steward, police_csv)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["upload_id"] == first.json()["upload_id"]
    assert upload(police_csv).json() == again.json()
    rejected = put(client, steward, bad_police_csv())
    assert rejected.status_code == 422 and rejected.json() == upload(bad_police_csv()).json()


def test_a_streamed_upload_for_another_agency_is_refused_before_the_body_is_read(
    client: TestClient,
    auth: Auth,
    police_csv: bytes,
    spools: list[EncryptedSpool],
    api_hub: Hub,
) -> None:
    response = put(client, auth["steward-hospital"], police_csv)
    assert response.status_code == 403 and "org:police" in response.json()["detail"]
    wrong = put(client, auth["steward-police"], police_csv, path=f"/api/v1/uploads/x/{POLICE}")
    assert wrong.status_code == 409 and POLICE_AGREEMENT in wrong.json()["detail"]
    for user in ("analyst", "admin"):
        assert put(client, auth[user], police_csv).status_code == 403
    assert spools == []
    refused = [(e["details"]["error"], e["details"]["status"]) for e in reject_events(api_hub)]
    assert refused == [
        ("not_allowed", 403),
        ("agreement_refused", 409),
        ("not_allowed", 403),
        ("not_allowed", 403),
    ]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("multipart/form-data; boundary=x", b"--x--"), ("application/octet-stream", b"")],
)
def test_a_form_or_an_empty_body_is_422(
    client: TestClient, auth: Auth, content_type: str, body: bytes
) -> None:
    headers = {**auth["steward-police"], "Content-Type": content_type}
    response = client.put(PUT_POLICE, headers=headers, content=body)
    assert response.status_code == 422 and response.json()["error"] == "malformed_request"


# --- the size limit ---------------------------------------------------------------------------


def test_a_streamed_upload_over_the_limit_is_413_and_stores_nothing(
    client: TestClient,
    auth: Auth,
    police_csv: bytes,
    api_hub: Hub,
    spool_dir: Path,
    spools: list[EncryptedSpool],
) -> None:
    limit = len(police_csv) - 1
    api_hub.settings.max_upload_bytes = limit
    before = table_counts(api_hub)
    declared = put(client, auth["steward-police"], police_csv, run_async=True)
    assert declared.status_code == 413 and declared.json()["limit"] == limit
    assert spools == []  # Content-Length said so: refused before reading

    def chunked(content: bytes, size: int = 4096) -> Iterator[bytes]:
        for start in range(0, len(content), size):
            yield content[start : start + size]

    streamed = put(client, auth["steward-police"], chunked(police_csv * 3), run_async=True)
    assert streamed.status_code == 413 and streamed.json()["error"] == "upload_too_large"
    assert "nothing was stored" in streamed.json()["detail"]
    assert len(spools) == 1 and spools[0].closed and spools[0].size <= limit
    assert list(spool_dir.iterdir()) == []
    assert table_counts(api_hub) == grown(before, audit_log=2)
    assert [e["details"]["error"] for e in reject_events(api_hub)] == ["upload_too_large"] * 2
    assert client.get("/api/v1/uploads/jobs", headers=auth["steward-police"]).json() == []


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
def test_uploads_of_two_agencies_run_at_the_same_time(
    pg_hub: Hub, extracts: Path, small_chunks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job waits after its first chunk until the other has reached its own: a pool that
    ran one upload at a time would time out at the barrier."""
    from fastapi.testclient import TestClient

    load_examples(pg_hub)
    make_actor(pg_hub, "steward-police", Role.steward, "org:police")
    make_actor(pg_hub, "steward-hospital", Role.steward, "org:hospital")
    both = threading.Barrier(2, timeout=30)
    progress = jobs_module.RunningJob.progress

    def meeting(job: jobs_module.RunningJob, rows: int) -> None:
        progress(job, rows)
        if rows == 40:
            both.wait()

    monkeypatch.setattr(jobs_module.RunningJob, "progress", meeting)
    police, hospital = (bearer(issue(pg_hub, n)) for n in ("steward-police", "steward-hospital"))
    with TestClient(create_app(pg_hub)) as client:
        ids = [
            put(client, police, (extracts / f"{POLICE}.csv").read_bytes(), run_async=True),
            put(
                client,
                hospital,
                (extracts / f"{HOSPITAL}.csv").read_bytes(),
                path=f"/api/v1/uploads/{HOSPITAL_AGREEMENT}/{HOSPITAL}",
                run_async=True,
            ),
        ]
        finished = [
            wait_for(client, who, r.json()["job_id"])
            for who, r in zip((police, hospital), ids, strict=True)
        ]
    assert [j["status"] for j in finished] == ["accepted", "accepted"], finished
    assert not both.broken
