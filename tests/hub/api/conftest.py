"""Fixtures for the HTTP API: a hub with the example agreements and one user per role, a
bearer token for each, a TestClient on ``create_app(hub, spool_dir=...)``, and small synthetic
extracts.

The agreements and users are set up once per session (``api_seed``) and each test's hub gets a
copy of that database and of the signers' keys beside it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from factories import copy_hub, load_examples, make_actor, make_seed
from hub import audit
from hub.api.app import create_app
from hub.auth.policies import Role
from hub.auth.service import get_user, issue_token
from hub.context import Hub

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 and warns when it finds httpx; the lock pins httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

POLICE_AGREEMENT = "dsa-police-victimizations"
POLICE = "police_victimizations"
USERS: dict[str, tuple[Role, str | None]] = {
    "steward-police": (Role.steward, "org:police"),
    "steward-hospital": (Role.steward, "org:hospital"),
    "analyst": (Role.analyst, None),
    "legal": (Role.legal, None),
    "admin": (Role.admin, None),
}

Upload = Callable[..., httpx.Response]


def issue(hub: Hub, name: str) -> str:
    with hub.session() as s:
        event = audit.Event("test", "token.issue", f"user:{name}", {})
        return issue_token(s, get_user(s, name), "test", event)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic extracts for the four example partners (150 people), written once."""
    from hub.synth import generate

    out = tmp_path_factory.mktemp("extracts")
    generate(out, people=150, seed=5)
    return out


@pytest.fixture
def police_csv(extracts: Path) -> bytes:
    return (extracts / f"{POLICE}.csv").read_bytes()


def add_examples_and_users(hub: Hub) -> None:
    load_examples(hub)
    for name, (role, party) in USERS.items():
        make_actor(hub, name, role, party)


@pytest.fixture(scope="session")
def api_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub folder with the example agreements loaded and :data:`USERS` created, built once."""
    return make_seed(tmp_path_factory.mktemp("api-seed") / "hub", add_examples_and_users)


@pytest.fixture
def api_hub(hub: Hub, api_seed: Path) -> Hub:
    """``hub`` with the example agreements (signed and active) and one user per role."""
    copy_hub(api_seed, hub)
    return hub


@pytest.fixture
def auth(api_hub: Hub) -> dict[str, dict[str, str]]:
    """``Authorization`` headers by user name."""
    return {name: bearer(issue(api_hub, name)) for name in USERS}


@pytest.fixture
def header_for() -> Callable[[Hub, str], dict[str, str]]:
    """``header_for(hub, name)``: an ``Authorization`` header with a new token for ``name``."""
    return lambda hub, name: bearer(issue(hub, name))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """Where the app spools streamed uploads (encrypted); empty whenever no upload is running."""
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def client(api_hub: Hub, spool_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_hub, spool_dir=spool_dir)) as c:
        yield c


@pytest.fixture
def upload(client: TestClient, auth: dict[str, dict[str, str]]) -> Upload:
    """POST an extract as a user: ``upload(content, as_="steward-police", dataset=...)``."""

    def post(
        content: bytes,
        as_: str = "steward-police",
        agreement: str = POLICE_AGREEMENT,
        dataset: str = POLICE,
    ) -> httpx.Response:
        return client.post(
            "/api/v1/uploads",
            headers=auth[as_],
            files={"file": (f"{dataset}.csv", content, "text/csv")},
            data={"agreement_id": agreement, "dataset_id": dataset},
        )

    return post


@pytest.fixture
def linked(
    client: TestClient, auth: dict[str, dict[str, str]], upload: Upload, police_csv: bytes
) -> TestClient:
    """The police extract uploaded and linked: releases of police aggregates can be made."""
    assert upload(police_csv).status_code == 201
    assert client.post("/api/v1/linkage/runs", headers=auth["admin"]).status_code == 201
    return client
