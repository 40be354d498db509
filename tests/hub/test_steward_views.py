"""The steward's views, over HTTP and on the command line: receipts, validation reports (JSON and
HTML), and which releases used the agency's data. A steward sees only their own agency's; admins
see all; analysts and legal staff are refused; no view holds a value from a file."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from factories import load_examples, make_actor
from hub import audit, context
from hub.api.app import create_app
from hub.auth.policies import Role
from hub.auth.service import get_user, issue_token
from hub.cli.main import app as cli
from hub.context import Hub

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

TODAY = dt.date(2026, 11, 15)
POLICE_AGREEMENT, POLICE = "dsa-police-victimizations", "police_victimizations"
HOSPITAL_AGREEMENT, HOSPITAL = "dsa-hospital-ed-injury", "ed_injury_visits"
USERS: dict[str, tuple[Role, str | None]] = {
    "steward-police": (Role.steward, "org:police"),
    "steward-hospital": (Role.steward, "org:hospital"),
    "analyst": (Role.analyst, None),
    "legal": (Role.legal, None),
    "admin": (Role.admin, None),
}
RAW_COLUMNS = ("victim_first_name", "victim_last_name", "victim_dob", "victim_home_address")


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hub.synth import generate

    out = tmp_path_factory.mktemp("steward-extracts")
    generate(out, people=150, seed=11)
    return out


def raw_values(extract: Path) -> set[str]:
    with extract.open(newline="", encoding="utf-8") as fh:
        return {row[c] for row in csv.DictReader(fh) for c in RAW_COLUMNS if len(row[c]) >= 6}


# --- over HTTP --------------------------------------------------------------------------------

Auth = dict[str, dict[str, str]]


@pytest.fixture
def served(hub: Hub) -> Iterator[tuple[TestClient, Auth]]:
    load_examples(hub)
    auth: Auth = {}
    for name, (role, party) in USERS.items():
        make_actor(hub, name, role, party)
        with hub.session() as s:
            event = audit.Event("test", "token.issue", f"user:{name}", {})
            token = issue_token(s, get_user(s, name), "test", event)
        auth[name] = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(hub)) as client:
        yield client, auth


@pytest.fixture
def uploaded(served: tuple[TestClient, Auth], extracts: Path) -> dict[str, dict[str, Any]]:
    """The police and the hospital extract uploaded by their stewards: receipts by agency."""
    client, auth = served
    receipts = {}
    for who, agreement, dataset in (
        ("steward-police", POLICE_AGREEMENT, POLICE),
        ("steward-hospital", HOSPITAL_AGREEMENT, HOSPITAL),
    ):
        response = client.put(
            f"/api/v1/uploads/{agreement}/{dataset}",
            headers={**auth[who], "Content-Type": "application/octet-stream"},
            content=(extracts / f"{dataset}.csv").read_bytes(),
        )
        assert response.status_code == 201, response.text
        receipts[who] = response.json()
    return receipts


def test_a_steward_sees_only_their_agencys_receipts_and_an_admin_sees_all(
    served: tuple[TestClient, Auth], uploaded: dict[str, dict[str, Any]]
) -> None:
    client, auth = served
    police, hospital = uploaded["steward-police"], uploaded["steward-hospital"]

    def listed(user: str) -> list[str]:
        response = client.get("/api/v1/uploads", headers=auth[user])
        assert response.status_code == 200
        return [r["upload_id"] for r in response.json()]

    assert listed("steward-police") == [police["upload_id"]]
    assert listed("steward-hospital") == [hospital["upload_id"]]
    assert sorted(listed("admin")) == sorted([police["upload_id"], hospital["upload_id"]])

    one = client.get(f"/api/v1/uploads/{police['upload_id']}", headers=auth["steward-police"])
    assert one.status_code == 200
    receipt = one.json()
    assert {k: police[k] for k in receipt if k not in ("created_at",)} == {
        k: v for k, v in receipt.items() if k != "created_at"
    }
    assert dt.datetime.fromisoformat(receipt["created_at"]).tzinfo is not None
    other = client.get(f"/api/v1/uploads/{police['upload_id']}", headers=auth["steward-hospital"])
    assert other.status_code == 404 and other.json()["error"] == "not_found"
    admin = client.get(f"/api/v1/uploads/{police['upload_id']}", headers=auth["admin"])
    assert admin.status_code == 200


@pytest.mark.parametrize("user", ["analyst", "legal"])
def test_analysts_and_legal_staff_get_403_for_every_steward_view(
    served: tuple[TestClient, Auth], uploaded: dict[str, dict[str, Any]], user: str
) -> None:
    client, auth = served
    upload_id = uploaded["steward-police"]["upload_id"]
    for path in (
        "/api/v1/uploads",
        f"/api/v1/uploads/{upload_id}",
        f"/api/v1/uploads/{upload_id}/report",
        f"/api/v1/uploads/{upload_id}/report.html",
        "/api/v1/uploads/releases",
        "/api/v1/uploads/jobs",
    ):
        response = client.get(path, headers=auth[user])
        assert response.status_code == 403, path
        assert response.json()["error"] == "not_allowed"


def test_the_validation_report_is_json_and_html_and_names_no_value(
    served: tuple[TestClient, Auth], uploaded: dict[str, dict[str, Any]], extracts: Path
) -> None:
    client, auth = served
    upload_id = uploaded["steward-police"]["upload_id"]
    base = f"/api/v1/uploads/{upload_id}/report"
    body = client.get(base, headers=auth["steward-police"]).json()
    assert body["upload_id"] == upload_id and body["dataset"] == POLICE
    report = body["report"]
    assert (
        report["ok"] is True
        and report["rows_checked"] == uploaded["steward-police"]["rows_received"]
    )
    assert {"findings", "row_rules"} <= set(report)
    page = client.get(f"{base}.html", headers=auth["steward-police"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE html>") and "Accepted" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get(f"{base}.html", headers=auth["steward-hospital"]).status_code == 404
    raw = raw_values(extracts / f"{POLICE}.csv")
    assert len(raw) > 50
    for text in (json.dumps(body), page.text):
        assert not [v for v in raw if v in text]


def test_a_report_with_findings_renders_each_with_its_message() -> None:
    from hub.ingest.views import render_report_html

    report = {
        "dataset": POLICE,
        "rows_checked": 6,
        "ok": False,
        "findings": [
            {
                "rule": "allowed_values",
                "column": "victim_sex",
                "severity": "error",
                "failing_rows": 1,
                "first_rows": [3],
                "message": "1 row has a victim_sex outside M, F, X, U; row 3. Use one of them.",
            }
        ],
        "row_rules": [
            {
                "rule": "row_rule:drop_test",
                "column": None,
                "severity": "warning",
                "failing_rows": 2,
                "first_rows": [1, 2],
                "message": "2 rows are tests <and> were dropped",
            }
        ],
    }
    page = render_report_html(report)
    assert "Rejected: 1 error(s), 1 warning(s)" in page
    assert "outside M, F, X, U; row 3" in page and "&lt;and&gt;" in page
    assert "6 data rows checked" in page


def test_a_steward_sees_which_releases_used_their_agencys_data(
    served: tuple[TestClient, Auth], uploaded: dict[str, dict[str, Any]]
) -> None:
    client, auth = served
    police_id = uploaded["steward-police"]["upload_id"]
    hospital_id = uploaded["steward-hospital"]["upload_id"]
    assert client.get("/api/v1/uploads/releases", headers=auth["steward-police"]).json() == []
    assert client.post("/api/v1/linkage/runs", headers=auth["admin"]).status_code == 201
    release = client.post(
        "/api/v1/releases", headers=auth["analyst"], json={"aggregate_id": "viol_monthly"}
    ).json()

    used = client.get("/api/v1/uploads/releases", headers=auth["steward-police"]).json()
    assert len(used) == 1
    assert used[0]["release_id"] == release["id"] and used[0]["aggregate_id"] == "viol_monthly"
    assert used[0]["uploads"] == [police_id] and used[0]["datasets"] == [POLICE]
    assert used[0]["recipient"] == "public" and used[0]["privacy_loss"] > 0
    assert used[0]["agreements"] == [f"{POLICE_AGREEMENT}@1.0.0"]
    assert "cells" not in used[0]
    assert client.get("/api/v1/uploads/releases", headers=auth["steward-hospital"]).json() == []
    everything = client.get("/api/v1/uploads/releases", headers=auth["admin"]).json()
    assert [r["release_id"] for r in everything] == [release["id"]]

    one = client.get(
        "/api/v1/uploads/releases",
        headers=auth["steward-police"],
        params={"upload_id": police_id},
    )
    assert [r["release_id"] for r in one.json()] == [release["id"]]
    foreign = client.get(
        "/api/v1/uploads/releases",
        headers=auth["steward-hospital"],
        params={"upload_id": police_id},
    )
    assert foreign.status_code == 404
    mine = client.get(
        "/api/v1/uploads/releases",
        headers=auth["steward-hospital"],
        params={"upload_id": hospital_id},
    )
    assert mine.json() == []


# --- on the command line ----------------------------------------------------------------------

Run = Callable[..., Result]
UPLOAD_POLICE = ("upload", "--agreement", POLICE_AGREEMENT, "--dataset", POLICE)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``ovphub`` on a SQLite hub in ``tmp_path`` with agreements set up and one user per role
    (the CLI builds its hub from ``HUB_*``; the clock is pinned to :data:`TODAY`)."""
    data = tmp_path / "var"
    monkeypatch.setenv("HUB_DATA_DIR", str(data))
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{data / 'hub.db'}")
    monkeypatch.setenv("HUB_KEY_FILE", str(tmp_path / "keys" / "hub.key"))
    monkeypatch.delenv("HUB_ENVIRONMENT", raising=False)
    build = context.build_hub

    def pinned(*args: Any, **kwargs: Any) -> Hub:
        hub = build(*args, **kwargs)
        hub.today = lambda: TODAY
        return hub

    monkeypatch.setattr(context, "build_hub", pinned)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, list(args))
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    invoke("agreements", "setup", "--signer-keys", str(Path(os.environ["HUB_DATA_DIR"]) / "keys"))
    for name, (role, party) in USERS.items():
        if name != "admin":
            invoke(
                "users", "add", name, "--role", role.value, *(["--party", party] if party else [])
            )
    return invoke


def test_uploads_list_and_show_on_the_command_line(
    run: Run, extracts: Path, tmp_path: Path
) -> None:
    path = str(extracts / f"{POLICE}.csv")
    receipt = json.loads(
        run("--as", "steward-police", *UPLOAD_POLICE[:1], path, *UPLOAD_POLICE[1:]).stdout
    )
    listed = json.loads(run("--as", "steward-police", "uploads", "list").stdout)
    assert [r["upload_id"] for r in listed] == [receipt["upload_id"]]
    assert json.loads(run("--as", "steward-hospital", "uploads", "list").stdout) == []
    assert len(json.loads(run("uploads", "list").stdout)) == 1  # the admin

    page = tmp_path / "report.html"
    shown = run(
        "--as", "steward-police", "uploads", "show", receipt["upload_id"], "--html", str(page)
    )
    detail = json.loads(shown.stdout)
    assert detail["upload_id"] == receipt["upload_id"] and detail["report"]["report"]["ok"]
    assert "Accepted" in page.read_text(encoding="utf-8") and str(page) in shown.stderr
    raw = raw_values(extracts / f"{POLICE}.csv")
    assert not [v for v in raw if v in shown.stdout or v in page.read_text(encoding="utf-8")]

    hidden = run("--as", "steward-hospital", "uploads", "show", receipt["upload_id"], code=1)
    assert f"no upload {receipt['upload_id']}" in hidden.stderr
    for user in ("analyst", "legal"):
        refused = run("--as", user, "uploads", "list", code=1)
        assert "may not uploads read" in refused.stderr


def test_uploads_releases_on_the_command_line(run: Run, extracts: Path) -> None:
    path = str(extracts / f"{POLICE}.csv")
    receipt = json.loads(
        run("--as", "steward-police", *UPLOAD_POLICE[:1], path, *UPLOAD_POLICE[1:]).stdout
    )
    run("link", "run")
    release = json.loads(run("--as", "analyst", "release", "viol_monthly").stdout)
    used = json.loads(run("--as", "steward-police", "uploads", "releases").stdout)
    assert [(r["release_id"], r["uploads"]) for r in used] == [
        (release["id"], [receipt["upload_id"]])
    ]
    only = run("--as", "steward-police", "uploads", "releases", "--upload", receipt["upload_id"])
    assert json.loads(only.stdout) == used
    assert json.loads(run("--as", "steward-hospital", "uploads", "releases").stdout) == []
    assert "may not uploads read" in run("--as", "legal", "uploads", "releases", code=1).stderr
