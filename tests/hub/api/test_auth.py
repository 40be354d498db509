"""Who may call the API at all: tokens, the one open route, and the documentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import inspect, text

from hub.context import Hub

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

OPEN = {"/api/v1/health"}


def protected_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the OpenAPI document lists, except the open ones."""
    paths = client.get("/openapi.json").json()["paths"]
    routes = [
        (method.upper(), path.replace("{release_id}", "0" * 32))
        for path, operations in paths.items()
        if path not in OPEN
        for method in operations
    ]
    assert len(routes) >= 9  # the scan has something to scan
    return routes


def test_health_needs_no_token(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_every_other_route_is_401_without_a_token(client: TestClient) -> None:
    for method, path in protected_routes(client):
        response = client.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthenticated"
        assert "Bearer" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ovp_not-a-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "ovp_no-scheme",
    ],
)
def test_every_other_route_is_401_with_a_bad_token(client: TestClient, header: str) -> None:
    for method, path in protected_routes(client):
        response = client.request(method, path, headers={"Authorization": header})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthenticated"


def test_a_token_of_a_deactivated_user_is_401(
    client: TestClient, api_hub: Hub, auth: dict[str, dict[str, str]]
) -> None:
    assert client.get("/api/v1/catalogue", headers=auth["analyst"]).status_code == 200
    with api_hub.engine.begin() as conn:
        conn.execute(text("UPDATE users SET active = false WHERE name = 'analyst'"))
    assert client.get("/api/v1/catalogue", headers=auth["analyst"]).status_code == 401


def test_docs_and_openapi_are_served_without_a_token(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["info"]["title"] == "OVP Hub"


def test_every_route_and_every_input_has_a_description(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    undocumented = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if len(op.get("description", "")) < 20:
                undocumented.append(f"{method.upper()} {path}")
            for param in op.get("parameters", []):
                if not param.get("description"):
                    undocumented.append(f"{method.upper()} {path} parameter {param['name']}")
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                schema = media["schema"]
                if "$ref" in schema:
                    schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
                for name, prop in schema.get("properties", {}).items():
                    if not prop.get("description"):
                        undocumented.append(f"{method.upper()} {path} body field {name}")
    assert not undocumented
    upload = spec["paths"]["/api/v1/uploads"]["post"]["requestBody"]["content"]
    assert set(upload["multipart/form-data"]["schema"]["required"]) == {
        "file",
        "agreement_id",
        "dataset_id",
    }


def test_tokens_are_stored_only_as_their_hash(
    api_hub: Hub, auth: dict[str, dict[str, str]], client: TestClient
) -> None:
    import hashlib

    token = auth["analyst"]["Authorization"].removeprefix("Bearer ")
    assert client.get("/api/v1/budget", headers=auth["analyst"]).status_code == 200
    with api_hub.engine.connect() as conn:
        dump = "\n".join(
            " ".join(str(v) for v in row)
            for table in inspect(conn).get_table_names()
            for row in conn.execute(text(f'SELECT * FROM "{table}"'))
        )
        stored = conn.execute(text("SELECT token_sha256 FROM api_tokens")).scalars().all()
    assert token.startswith("ovp_") and len(token) > 40
    assert token not in dump and token.removeprefix("ovp_") not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in stored
