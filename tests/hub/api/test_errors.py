"""Every error the API gives is ``{"error": <code>, "detail": <sentence>}``, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hub.api.app import create_app
from hub.context import Hub

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Auth = dict[str, dict[str, str]]


def assert_error(body: object, code: str) -> None:
    assert isinstance(body, dict), body
    assert body["error"] == code
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10


@pytest.mark.parametrize(
    ("method", "path", "user", "json", "status", "code"),
    [
        ("GET", "/api/v1/budget", None, None, 401, "unauthenticated"),
        ("GET", "/api/v1/uploads", "analyst", None, 403, "not_allowed"),
        ("POST", "/api/v1/releases", "analyst", {"aggregate_id": "nope"}, 404, "not_found"),
        ("GET", "/api/v1/no-such-route", "analyst", None, 404, "not_found"),
        ("DELETE", "/api/v1/budget", "analyst", None, 405, "method_not_allowed"),
        ("POST", "/api/v1/releases", "analyst", {"window_end": "2026-01-01"}, 422, None),
        (
            "POST",
            "/api/v1/releases",
            "analyst",
            {"aggregate_id": "viol_monthly", "window_start": "not-a-date"},
            422,
            None,
        ),
    ],
)
def test_errors_render_as_error_and_detail(
    client: TestClient,
    auth: Auth,
    method: str,
    path: str,
    user: str | None,
    json: dict[str, str] | None,
    status: int,
    code: str | None,
) -> None:
    headers = auth[user] if user else {}
    response = client.request(method, path, headers=headers, json=json)
    assert response.status_code == status
    assert_error(response.json(), code or "malformed_request")


def test_a_malformed_body_names_the_field_and_does_not_echo_the_input(
    client: TestClient, auth: Auth
) -> None:
    body = {"aggregate_id": "viol_monthly", "window_start": "Marquise-Whitfield"}
    response = client.post("/api/v1/releases", headers=auth["analyst"], json=body)
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [p["where"] for p in problems] == ["body.window_start"]
    assert "Marquise" not in response.text


def test_invalid_json_is_422_malformed_request(client: TestClient, auth: Auth) -> None:
    headers = {**auth["analyst"], "Content-Type": "application/json"}
    response = client.post("/api/v1/releases", headers=headers, content=b"{not json")
    assert response.status_code == 422
    assert_error(response.json(), "malformed_request")


def test_an_unexpected_failure_is_500_internal_error_without_a_traceback(
    api_hub: Hub, auth: Auth, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi.testclient import TestClient  # imported by conftest already: no warning

    from hub.api import routes

    secret = "hunter" + "2"  # not spelled out on the raising line, which the stack shows

    def broken(*args: object) -> None:
        raise RuntimeError(f"database password is {secret}")

    monkeypatch.setattr(routes, "budget_status", broken)
    with TestClient(create_app(api_hub), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/budget", headers=auth["analyst"])
    assert response.status_code == 500
    assert_error(response.json(), "internal_error")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    # The log names the error and where it was raised, for the administrator, but not its
    # message: an error's text can quote a value from an uploaded file.
    assert "RuntimeError" in caplog.text and "in broken" in caplog.text
    assert "hunter2" not in caplog.text
