"""Preview before spending: what a release would cost and how accurate it would be, with nothing
spent or stored — by the service, the API and the CLI."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from release_factories import (
    TODAY,
    actor,
    auth_header,
    copied_hub,
    make_request,
    make_seed_db,
    release,
)
from sqlalchemy import func, select
from typer.testing import CliRunner

from hub.auth.policies import Actor
from hub.context import Hub
from hub.db.models import Base
from hub.errors import HubError, NotAllowed
from hub.releases.service import ReleaseRequest, preview_release

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 and warns when it finds httpx; the lock pins httpx.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def row_counts(hub: Hub) -> dict[str, int]:
    """Rows in every table of the hub's schema."""
    with hub.session() as s:
        return {
            t.name: s.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def preview(hub: Hub, req: ReleaseRequest, who: str = "analyst") -> dict[str, Any]:
    caller = actor(hub, who)
    with hub.session() as s:
        return preview_release(s, caller, req, TODAY)


@pytest.fixture(scope="module")
def seed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Examples loaded, users made, a synthetic police extract uploaded and linked."""
    return make_seed_db(tmp_path_factory.mktemp("preview-seed"), people=120, seed=3)


@pytest.fixture
def linked_hub(seed_db: Path, tmp_path: Path) -> Iterator[Hub]:
    with copied_hub(seed_db, tmp_path) as hub:
        yield hub


def test_preview_spends_nothing_and_writes_nothing(linked_hub: Hub) -> None:
    before = row_counts(linked_hub)
    for _ in range(3):
        plan = preview(linked_hub, make_request())
    assert plan["cost"] == pytest.approx(0.2)
    assert row_counts(linked_hub) == before


def test_preview_numbers_match_the_release_made_afterwards(linked_hub: Hub) -> None:
    plan = preview(linked_hub, make_request())
    made = release(linked_hub, make_request())
    assert plan["cells"] == len(made["cells"])
    assert plan["error_bound_95"] == made["error_bound_95"]
    assert plan["total_error_bound_95"] == made["total_error_bound_95"]
    assert plan["noise_scale"] == made["noise_scale"]
    assert plan["privacy_loss"] == made["privacy_loss"]
    assert plan["mechanism"] == made["mechanism"]
    with linked_hub.session() as s:
        from hub.db.models import BudgetAccount

        spent = dict(s.execute(select(BudgetAccount.period_key, BudgetAccount.spent)).all())
    assert spent == {
        "2026-11": pytest.approx(plan["cost"]),
        "lifetime": pytest.approx(plan["cost"]),
    }
    assert plan["budget"]["period"]["remaining_after"] == pytest.approx(0.5 - plan["cost"])
    assert plan["budget"]["lifetime"]["remaining_after"] == pytest.approx(6.0 - plan["cost"])


def test_preview_shows_what_remains_after_earlier_releases(linked_hub: Hub) -> None:
    release(linked_hub, make_request())
    plan = preview(linked_hub, make_request("viol_demog_qtr"))
    assert plan["budget"]["period"] == {
        "period": "2026-11",
        "cap": 0.5,
        "spent": pytest.approx(0.2),
        "remaining": pytest.approx(0.3),
        "remaining_after": pytest.approx(0.1),
    }
    assert plan["fits"] is True
    release(linked_hub, make_request("viol_demog_qtr"))
    # 0.1 left this month; another 0.2 release would not fit, and the preview says so.
    plan = preview(linked_hub, make_request(recipient="org:ovp"))
    assert plan["fits"] is False
    assert plan["budget"]["period"]["remaining_after"] == 0.0


def test_preview_of_a_cached_request_costs_nothing(linked_hub: Hub) -> None:
    made = release(linked_hub, make_request())
    plan = preview(linked_hub, make_request())
    assert plan["cached"] is True
    assert plan["cached_release_id"] == made["id"]
    assert plan["cost"] == 0.0
    assert plan["cost_per_release"] == pytest.approx(0.2)


def test_preview_refuses_what_a_release_would_refuse(linked_hub: Hub) -> None:
    with pytest.raises(NotAllowed):
        preview(linked_hub, make_request(recipient="org:nobody"))
    with pytest.raises(HubError):
        preview(linked_hub, make_request(), who="steward-police")
    with pytest.raises(HubError):
        preview(linked_hub, make_request("no_such_aggregate"))


# --- channels -----------------------------------------------------------------------------------


def test_api_preview_for_analysts_writes_nothing(linked_hub: Hub) -> None:
    from hub.api.app import create_app

    before = row_counts(linked_hub)
    headers = auth_header(linked_hub, "analyst")
    steward = auth_header(linked_hub, "steward-police")
    after_tokens = row_counts(linked_hub)
    with TestClient(create_app(linked_hub)) as client:
        body = {"aggregate_id": "viol_monthly"}
        response = client.post("/api/v1/releases/preview", json=body, headers=headers)
        assert response.status_code == 200, response.text
        plan = response.json()
        assert plan["cells"] == 120 and plan["cost"] == pytest.approx(0.2)
        assert plan["window"] == {"start": "2024-11-01", "end": "2026-10-31"}
        refused = client.post("/api/v1/releases/preview", json=body, headers=steward)
        assert refused.status_code == 403
    assert row_counts(linked_hub) == after_tokens
    assert after_tokens["api_tokens"] == before["api_tokens"] + 2


def test_cli_release_preview_prints_the_plan(
    linked_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.cli.main as cli

    class Acting:
        def __enter__(self) -> tuple[Hub, Actor]:
            return linked_hub, actor(linked_hub, "analyst")

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(cli, "acting", Acting)
    before = row_counts(linked_hub)
    result = CliRunner().invoke(
        cli.app,
        ["release", "preview", "viol_monthly", "--start", "2025-01-01", "--end", "2025-12-31"],
    )
    assert result.exit_code == 0, result.output
    assert '"cells": 60' in result.output
    assert '"error_bound_95"' in result.output
    assert row_counts(linked_hub) == before
