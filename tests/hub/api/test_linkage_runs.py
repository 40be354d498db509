"""A linkage run's report over HTTP: JSON and HTML for admins, 403 for everyone else."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Auth = dict[str, dict[str, str]]


@pytest.fixture
def run_id(linked: TestClient, auth: Auth) -> int:
    """The run the ``linked`` fixture made (the police extract alone)."""
    runs = linked.post("/api/v1/linkage/runs", headers=auth["admin"])
    assert runs.status_code == 201
    return int(runs.json()["run_id"])


def test_an_admin_gets_a_runs_report_as_json(linked: TestClient, auth: Auth, run_id: int) -> None:
    response = linked.get(f"/api/v1/linkage/runs/{run_id}", headers=auth["admin"])
    assert response.status_code == 200
    report = response.json()
    assert report["run"]["id"] == run_id and report["run"]["latest"] is True
    assert report["threshold"]["probability"] > 0 and report["threshold"]["why"]
    assert report["estimates"] and report["comparisons"] and report["histogram"]
    (police,) = report["link_rates"]["by_agency"]
    # Alone, the police data links to no other dataset.
    assert police["dataset"] == "police_victimizations" and police["rate"] == 0
    earlier = linked.get(f"/api/v1/linkage/runs/{run_id - 1}", headers=auth["admin"])
    assert earlier.status_code == 200 and earlier.json()["run"]["latest"] is False


def test_an_admin_gets_the_html_page(linked: TestClient, auth: Auth, run_id: int) -> None:
    response = linked.get(f"/api/v1/linkage/runs/{run_id}/report", headers=auth["admin"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert f"<h1>Linkage report: run {run_id}</h1>" in page
    assert "police_victimizations" in page and "default-src 'none'" in page


@pytest.mark.parametrize("user", ["analyst", "legal", "steward-police"])
def test_no_one_but_an_admin_sees_a_runs_report(
    linked: TestClient, auth: Auth, run_id: int, user: str
) -> None:
    for path in (f"/api/v1/linkage/runs/{run_id}", f"/api/v1/linkage/runs/{run_id}/report"):
        response = linked.get(path, headers=auth[user])
        assert response.status_code == 403, path
        assert response.json()["error"] == "not_allowed"


def test_an_unknown_run_is_404(client: TestClient, auth: Auth) -> None:
    for path in ("/api/v1/linkage/runs/7", "/api/v1/linkage/runs/7/report"):
        response = client.get(path, headers=auth["admin"])
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
        assert "no linkage run 7" in response.json()["detail"]


def poll(client: TestClient, auth: Auth, url: str) -> dict[str, object]:
    for _ in range(600):
        job = client.get(url, headers=auth["admin"]).json()
        if job["status"] not in ("queued", "running"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"the linkage job at {url} did not end")


def test_an_async_run_answers_202_with_a_job_whose_progress_ends_in_the_summary(
    linked: TestClient, auth: Auth
) -> None:
    started = linked.post("/api/v1/linkage/runs?async=true", headers=auth["admin"])
    assert started.status_code == 202
    job = started.json()
    assert job["status"] in ("queued", "running") and job["requested_by"]
    done = poll(linked, auth, started.headers["location"])
    assert done["status"] == "finished" and done["error"] is None
    summary = done["summary"]
    assert isinstance(summary, dict) and summary["records"] > 0
    progress = done["progress"]
    assert isinstance(progress, list) and any("predict done" in p for p in progress)
    # The run is recorded like any other: its report is there.
    report = linked.get(f"/api/v1/linkage/runs/{summary['run_id']}", headers=auth["admin"])
    assert report.status_code == 200


def test_linkage_jobs_are_for_admins_and_an_unknown_one_is_404(
    linked: TestClient, auth: Auth
) -> None:
    refused = linked.post("/api/v1/linkage/runs?async=true", headers=auth["analyst"])
    assert refused.status_code == 403
    missing = linked.get("/api/v1/linkage/jobs/nope", headers=auth["admin"])
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
