"""Release channels over HTTP: the CSV download (formula-safe, suppressed cells without a number,
same visibility as the release) and the preview route's place beside it."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from hub.auth.service import actor_of, get_user
from hub.context import Hub
from hub.db.models import Release
from hub.releases.views import write_dashboard

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def make_release(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/releases", json={"aggregate_id": "viol_monthly", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def store_manifest(hub: Hub, manifest: dict[str, Any], recipient: str = "public") -> str:
    """A release row with a hand-made manifest (as if a key set or title were hostile)."""
    release_id = uuid.uuid4().hex
    with hub.session() as s:
        s.add(
            Release(
                id=release_id,
                request_hash=uuid.uuid4().hex,
                aggregate_id=str(manifest.get("aggregate_id")),
                recipient=recipient,
                requested_by=get_user(s, "analyst").id,
                privacy_model="zcdp",
                privacy_loss=0.2,
                manifest={"id": release_id, **manifest},
            )
        )
    return release_id


def test_csv_download_of_a_release_shows_suppressed_cells_without_a_number(
    linked: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    made = make_release(linked, auth["analyst"])
    response = linked.get(f"/api/v1/releases/{made['id']}/csv", headers=auth["analyst"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f"release-{made['id']}.csv" in response.headers["content-disposition"]
    rows = read_csv(response.text)
    assert rows[0] == ["month", "victimization_type", "count", "suppressed", "error_bound_95"]
    assert len(rows) == 1 + len(made["cells"])
    by_key = {(c["key"]["month"], c["key"]["victimization_type"]): c for c in made["cells"]}
    suppressed = 0
    for month, kind, count, flag, bound in rows[1:]:
        cell = by_key[(month, kind)]
        assert float(bound) == made["error_bound_95"]
        if cell["suppressed"]:
            suppressed += 1
            assert (count, flag) == ("<11", "true")
        else:
            assert (count, flag) == (str(cell["value"]), "false")
    assert suppressed > 0  # 150 synthetic people over 120 cells: most cells are small


def test_csv_download_neutralizes_formulas_in_keys_and_titles(
    api_hub: Hub, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    hostile = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1"]
    release_id = store_manifest(
        api_hub,
        {
            "aggregate_id": "=agg",
            "title": "=cmd|' /C calc'!A0",
            "dimensions": ["=dim", "area"],
            "error_bound_95": 22.0,
            "cells": [
                {
                    "key": {"=dim": bad, "area": "+" + str(i)},
                    "value": None if i % 2 else 12,
                    "display": "<11" if i % 2 else "12",
                    "suppressed": bool(i % 2),
                }
                for i, bad in enumerate(hostile)
            ],
        },
    )
    response = client.get(f"/api/v1/releases/{release_id}/csv", headers=auth["analyst"])
    assert response.status_code == 200
    rows = read_csv(response.text)
    fields = [field for row in rows for field in row]
    assert not [f for f in fields if f.startswith(FORMULA_STARTS)]
    assert rows[0][0] == "'=dim"
    assert [row[0] for row in rows[1:]] == ["'" + bad for bad in hostile]
    assert [row[1] for row in rows[1:]] == [f"'+{i}" for i in range(len(hostile))]
    assert [row[2] for row in rows[1:]] == ["12", "<11", "12", "<11", "12"]
    # The title never enters the CSV (only the dimensions, counts and bound do).
    assert "cmd" not in response.text


def test_csv_download_has_the_visibility_of_the_release(
    linked: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    made = make_release(linked, auth["analyst"], recipient="org:ovp")
    url = f"/api/v1/releases/{made['id']}/csv"
    assert linked.get(url, headers=auth["legal"]).status_code == 200
    assert linked.get(url, headers=auth["steward-hospital"]).status_code == 404
    assert linked.get(url).status_code == 401
    assert linked.get("/api/v1/releases/nope/csv", headers=auth["analyst"]).status_code == 404


def test_write_dashboard_writes_the_transparency_page_beside_it(
    api_hub: Hub, linked: TestClient, auth: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    public = make_release(linked, auth["analyst"])
    private = make_release(linked, auth["analyst"], recipient="org:ovp")
    with api_hub.session() as s:
        index = write_dashboard(s, actor_of(get_user(s, "analyst")), tmp_path / "site")
    page = (tmp_path / "site" / "transparency.html").read_text(encoding="utf-8")
    assert index == tmp_path / "site" / "index.html" and index.exists()
    assert public["id"] in page and "dsa-police-victimizations@1.0.0" in page
    assert private["id"] not in page  # only public releases go on the public pages
