"""The API on PostgreSQL: identical release requests sent at once through HTTP give one
release, one budget debit, and every caller the same numbers (invariants 3 and 4)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from factories import load_examples, make_actor
from hub.api.app import create_app
from hub.auth.policies import Role
from hub.context import Hub

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_client(pg_hub: Hub) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient  # imported by conftest already: no warning

    load_examples(pg_hub)
    for name, role, party in (
        ("steward-police", Role.steward, "org:police"),
        ("analyst", Role.analyst, None),
        ("admin", Role.admin, None),
    ):
        make_actor(pg_hub, name, role, party)
    with TestClient(create_app(pg_hub)) as client:
        yield client


def test_concurrent_identical_releases_give_one_release_and_one_debit(
    pg_client: TestClient,
    pg_hub: Hub,
    police_csv: bytes,
    header_for: Callable[[Hub, str], dict[str, str]],
) -> None:
    steward, analyst, admin = (
        header_for(pg_hub, n) for n in ("steward-police", "analyst", "admin")
    )
    upload = pg_client.post(
        "/api/v1/uploads",
        headers=steward,
        files={"file": ("p.csv", police_csv, "text/csv")},
        data={"agreement_id": "dsa-police-victimizations", "dataset_id": "police_victimizations"},
    )
    assert upload.status_code == 201
    assert pg_client.post("/api/v1/linkage/runs", headers=admin).status_code == 201

    def request(_: int) -> tuple[int, str, object]:
        r = pg_client.post(
            "/api/v1/releases", headers=analyst, json={"aggregate_id": "viol_monthly"}
        )
        return r.status_code, r.json()["id"], r.json()["cells"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(request, range(4)))
    assert sorted(code for code, _, _ in answers) == [200, 200, 200, 201]
    assert len({rid for _, rid, _ in answers}) == 1
    assert all(cells == answers[0][2] for _, _, cells in answers)
    budget = pg_client.get("/api/v1/budget", headers=analyst).json()
    loss = pg_client.get(f"/api/v1/releases/{answers[0][1]}", headers=analyst).json()
    assert [b["spent"] for b in budget] == pytest.approx([loss["privacy_loss"]] * 2)
