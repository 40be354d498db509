"""Catalogue, linkage runs and DP releases over HTTP, as an analyst and an admin use them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from hub.context import Hub

Upload = Callable[..., httpx.Response]  # the `upload` fixture

Auth = dict[str, dict[str, str]]
MONTHLY = {"aggregate_id": "viol_monthly"}


def spent(client: TestClient, auth: Auth, agreement: str = "dsa-police-victimizations") -> float:
    rows = client.get("/api/v1/budget", headers=auth["analyst"]).json()
    return sum(r["spent"] for r in rows if r["agreement"] == agreement)


def test_an_analyst_lists_the_catalogue_with_privacy_costs(client: TestClient, auth: Auth) -> None:
    response = client.get("/api/v1/catalogue", headers=auth["analyst"])
    assert response.status_code == 200
    entries = {e["aggregate_id"]: e for e in response.json()}
    assert {"viol_monthly", "ed_assault_monthly", "referral_flow_qtr"} <= set(entries)
    assert entries["viol_monthly"]["privacy_loss_per_release"] > 0
    assert entries["viol_monthly"]["agreement"] == "dsa-police-victimizations@1.0.0"


def test_an_analyst_requests_a_release_and_gets_201(linked: TestClient, auth: Auth) -> None:
    response = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    assert response.status_code == 201
    release = response.json()
    assert release["cached"] is False and release["aggregate_id"] == "viol_monthly"
    assert release["mechanism"] and release["privacy_loss"] > 0 and release["cells"]
    assert release["agreements"] == ["dsa-police-victimizations@1.0.0"]
    assert spent(linked, auth) == pytest.approx(2 * release["privacy_loss"])  # period+lifetime
    fetched = linked.get(f"/api/v1/releases/{release['id']}", headers=auth["analyst"])
    assert fetched.status_code == 200 and fetched.json()["cells"] == release["cells"]


def test_the_identical_request_returns_the_stored_release_and_spends_nothing(
    linked: TestClient, auth: Auth
) -> None:
    first = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    budget = linked.get("/api/v1/budget", headers=auth["analyst"]).json()
    again = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["cached"] is True
    assert again.json()["cells"] == first.json()["cells"]
    assert linked.get("/api/v1/budget", headers=auth["analyst"]).json() == budget
    assert len(linked.get("/api/v1/releases", headers=auth["analyst"]).json()) == 1


def test_a_release_to_a_recipient_the_agreement_does_not_allow_is_403(
    linked: TestClient, auth: Auth
) -> None:
    body = {**MONTHLY, "recipient": "law_enforcement"}
    response = linked.post("/api/v1/releases", headers=auth["analyst"], json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "not_allowed"
    assert "public" in response.json()["detail"]  # says who is allowed
    assert spent(linked, auth) == 0


def test_an_unknown_aggregate_is_404(client: TestClient, auth: Auth) -> None:
    body = {"aggregate_id": "no_such_aggregate"}
    response = client.post("/api/v1/releases", headers=auth["analyst"], json=body)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and "catalogue" in response.json()["detail"]


def test_an_unknown_release_id_is_404(client: TestClient, auth: Auth) -> None:
    response = client.get("/api/v1/releases/" + "f" * 32, headers=auth["analyst"])
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_a_release_before_linkage_ran_is_400_saying_to_run_linkage(
    client: TestClient, auth: Auth, upload: Upload, police_csv: bytes
) -> None:
    assert upload(police_csv).status_code == 201
    response = client.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "link run" in response.json()["detail"]
    assert spent(client, auth) == 0


def test_a_window_that_ends_before_it_starts_is_400(client: TestClient, auth: Auth) -> None:
    body = {**MONTHLY, "window_start": "2026-06-01", "window_end": "2026-01-31"}
    response = client.post("/api/v1/releases", headers=auth["analyst"], json=body)
    assert response.status_code == 400 and "before it starts" in response.json()["detail"]


@pytest.mark.parametrize("user", ["analyst", "steward-police", "legal"])
def test_only_an_admin_can_run_linkage(client: TestClient, auth: Auth, user: str) -> None:
    response = client.post("/api/v1/linkage/runs", headers=auth[user])
    assert response.status_code == 403 and response.json()["error"] == "not_allowed"


def test_an_admin_runs_linkage_and_gets_the_summary(
    client: TestClient, auth: Auth, upload: Upload, police_csv: bytes
) -> None:
    records = upload(police_csv).json()["rows_accepted"]
    response = client.post("/api/v1/linkage/runs", headers=auth["admin"])
    assert response.status_code == 201
    summary = response.json()
    assert summary["records"] == records and 0 < summary["persons"] <= records


@pytest.mark.parametrize("user", ["steward-police", "legal"])
def test_only_analysts_and_admins_can_request_releases(
    linked: TestClient, auth: Auth, user: str
) -> None:
    response = linked.post("/api/v1/releases", headers=auth[user], json=MONTHLY)
    assert response.status_code == 403


def test_a_refusal_from_the_release_engine_is_400_release_refused(
    linked: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publishers import release as engine
    from publishers.errors import ReleaseRefused

    def refuse(*args: object, **kwargs: object) -> None:
        raise ReleaseRefused("Dimension x has an empty key set; declare its values first.")

    monkeypatch.setattr(engine, "compute_release", refuse)
    response = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    assert response.status_code == 400
    assert response.json() == {
        "error": "release_refused",
        "detail": "Dimension x has an empty key set; declare its values first.",
    }
    assert spent(linked, auth) == 0


def test_a_new_public_release_regenerates_the_public_pages_and_a_cached_one_does_not(
    linked: TestClient, auth: Auth, api_hub: Hub
) -> None:
    pages = api_hub.settings.data_dir / "dashboard"
    first = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY).json()
    dashboard, transparency = pages / "index.html", pages / "transparency.html"
    assert first["id"] in dashboard.read_text() and first["id"] in transparency.read_text()
    stamp = dashboard.stat().st_mtime_ns
    again = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY).json()
    assert again["cached"] and dashboard.stat().st_mtime_ns == stamp
    internal = {**MONTHLY, "window_start": "2025-01-01", "recipient": "org:ovp"}
    made = linked.post("/api/v1/releases", headers=auth["analyst"], json=internal)
    assert made.status_code == 201 and made.json()["id"] not in dashboard.read_text()
    assert dashboard.stat().st_mtime_ns == stamp
    assert not list(pages.glob(".*.tmp"))  # pages are staged and renamed, none left behind


def test_a_release_stands_when_its_public_pages_cannot_be_written(
    linked: TestClient, auth: Auth, api_hub: Hub
) -> None:
    (api_hub.settings.data_dir / "dashboard").write_text("not a directory")
    made = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    assert made.status_code == 201 and made.json()["cells"]
    again = linked.post("/api/v1/releases", headers=auth["analyst"], json=MONTHLY)
    assert again.json()["cached"] and again.json()["id"] == made.json()["id"]
