"""Invariant 2 over HTTP: an analyst gets differentially private releases and catalogue
metadata, never a row, a token, a record key or a person id."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from hub.context import Hub

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Auth = dict[str, dict[str, str]]
HEX64 = re.compile(r"[0-9a-f]{64}")
RAW_COLUMNS = (
    "victimization_id",
    "case_number",
    "victim_first_name",
    "victim_last_name",
    "victim_dob",
    "victim_home_address",
    "block_address",
    "narrative",
)


def stored_tokens(conn: Connection) -> set[str]:
    """Every linkage token: the ``t_*`` columns of ``records`` (or the older ``linkage_tokens``
    table, where the schema still has it), as strings an answer could contain."""
    if "linkage_tokens" in inspect(conn).get_table_names():
        return {str(t) for t in conn.execute(text("SELECT token FROM linkage_tokens")).scalars()}
    columns = [c["name"] for c in inspect(conn).get_columns("records") if c["name"][:2] == "t_"]
    assert columns, "records has no token columns: update this scan to the schema"
    found: set[str] = set()
    for column in columns:
        found |= {
            str(t)
            for t in conn.execute(text(f'SELECT "{column}" FROM records')).scalars()
            if t is not None
        }
    return found


def stored_secrets(hub: Hub) -> set[str]:
    """Tokens, record keys, keyed-hash values and person ids the hub holds."""
    with hub.engine.connect() as conn:
        found = stored_tokens(conn)
        found |= set(conn.execute(text("SELECT record_key FROM records")).scalars())
        found |= set(conn.execute(text("SELECT person_id FROM person_links")).scalars())
        for values in conn.execute(text('SELECT "values" FROM records')).scalars():
            found |= set(HEX64.findall(str(values)))
    return found


def raw_values(extract: Path) -> set[str]:
    with extract.open(newline="", encoding="utf-8") as fh:
        return {row[c] for row in csv.DictReader(fh) for c in RAW_COLUMNS if len(row[c]) >= 6}


def agreement_hashes(client: TestClient, auth: Auth) -> set[str]:
    return {a["sha256"] for a in client.get("/api/v1/agreements", headers=auth["admin"]).json()}


def analyst_get_paths(client: TestClient, release_id: str, upload_id: str) -> list[str]:
    """Every GET route in the OpenAPI document, with a real release, upload and linkage run id
    filled in."""
    paths = client.get("/openapi.json").json()["paths"]
    fill = {
        "{release_id}": release_id,
        "{upload_id}": upload_id,
        "{agreement_id}": "dsa-police-victimizations",
        "{version}": "1.0.0",
        "{run_id}": "1",  # the `linked` fixture's linkage run
        "{job_id}": "any",  # linkage jobs are for admins: refused before the id is looked up
    }
    out = []
    for path, ops in paths.items():
        if "get" not in ops:
            continue
        for key, value in fill.items():
            path = path.replace(key, value)
        out.append(path + ("?v1=1.0.0&v2=1.0.0" if path.endswith("/diff") else ""))
    return out


def test_no_get_route_gives_an_analyst_a_record_value_token_or_person_id(
    linked: TestClient, auth: Auth, api_hub: Hub, extracts: Path
) -> None:
    release = linked.post(
        "/api/v1/releases", headers=auth["analyst"], json={"aggregate_id": "viol_demog_qtr"}
    )
    assert release.status_code == 201
    secrets = stored_secrets(api_hub)
    raw = raw_values(extracts / "police_victimizations.csv")
    assert len(secrets) > 500 and len(raw) > 100  # the scan has something to find
    public_hashes = agreement_hashes(linked, auth)

    upload_id = linked.get("/api/v1/uploads", headers=auth["admin"]).json()[0]["upload_id"]
    answers = {"POST /api/v1/releases": release.text}
    for path in analyst_get_paths(linked, release.json()["id"], upload_id):
        response = linked.get(path, headers=auth["analyst"])
        assert response.status_code in (200, 403), (path, response.status_code)
        if response.status_code == 403:
            assert (
                path.startswith("/api/v1/uploads")
                or path == "/api/v1/agreements"
                or path.startswith("/api/v1/linkage/")  # runs' reports and jobs: admins only
                or path.endswith("/signing-form")
            ), path
        answers[f"GET {path}"] = response.text
    assert {"GET /api/v1/catalogue", "GET /api/v1/budget", "GET /api/v1/releases"} <= set(answers)

    for where, body in answers.items():
        assert not [s for s in secrets if s in body], where
        assert not [v for v in raw if v in body], where
        assert set(HEX64.findall(body)) <= public_hashes, where
        assert not re.search(r"\bp[0-9a-f]{23}\b", body), where  # person id shape


def test_the_scan_would_catch_a_token_in_an_answer(
    linked: TestClient, auth: Auth, api_hub: Hub
) -> None:
    """Guard for the guard: the stored secrets are the strings the database really holds."""
    secrets = stored_secrets(api_hub)
    with api_hub.engine.connect() as conn:
        token = next(iter(stored_tokens(conn)))
        person = conn.execute(text("SELECT person_id FROM person_links LIMIT 1")).scalar_one()
    assert token in secrets and person in secrets
    assert re.search(r"\bp[0-9a-f]{23}\b", f'{{"person": "{person}"}}')
