"""The agreements API: legal staff write and move versions; everyone concerned reads them."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient

from contracts import signing
from contracts.loader import AGREEMENTS_DIR
from hub.agreements.ceremony import ensure_signer
from hub.agreements.service import get_version
from hub.auth.service import actor_of, ensure_admin
from hub.context import Hub

POLICE_YAML = (AGREEMENTS_DIR / "dsa-police-victimizations.yaml").read_text()
BASE = "/api/v1/agreements/dsa-police-victimizations/versions"


def new_version_text(version: str) -> str:
    data = yaml.safe_load(POLICE_YAML)
    data["agreement"]["version"] = version
    data["amendments"].append({"version": version, "date": "2026-11-01", "summary": "test"})
    return yaml.safe_dump(data)


def post_yaml(client: TestClient, text: str, headers: dict[str, str]):
    return client.post(
        "/api/v1/agreements",
        content=text,
        headers={**headers, "Content-Type": "application/yaml"},
    )


def test_legal_staff_register_a_draft_and_others_may_not(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    text = new_version_text("2.0.0")
    assert post_yaml(client, text, auth["analyst"]).status_code == 403
    created = post_yaml(client, text, auth["legal"])
    assert created.status_code == 201 and created.json()["status"] == "draft"


def test_a_broken_agreement_returns_every_problem_with_its_line(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    text = new_version_text("2.0.0").replace("budget_share: 0.4", "budget_share: 0.9")
    response = post_yaml(client, text, auth["legal"])
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "agreement_invalid"
    assert any("budget shares" in p["message"] and p["line"] for p in body["problems"])


def test_the_whole_lifecycle_over_http_with_an_offline_signature(
    client: TestClient, auth: dict[str, dict[str, str]], api_hub: Hub, tmp_path
) -> None:
    legal = auth["legal"]
    assert post_yaml(client, new_version_text("2.0.0"), legal).status_code == 201
    url = f"{BASE}/2.0.0"
    submit = client.post(f"{url}/transitions", json={"to": "under_review"}, headers=legal)
    assert submit.status_code == 200
    refused = client.post(f"{url}/transitions", json={"to": "active"}, headers=legal)
    assert refused.status_code == 409 and "no valid signature" in refused.json()["detail"]
    form = bytes.fromhex(client.get(f"{url}/signing-form", headers=legal).json()["hex"])
    with api_hub.session() as s:
        admin = actor_of(ensure_admin(s))
    for party in ("org:police", "org:ovp"):
        with api_hub.session() as s:
            gov = get_version(s, "dsa-police-victimizations", "2.0.0")
            key_path = ensure_signer(s, gov.spec, party, tmp_path, admin)
        key = signing.load_private_key(key_path)
        body = {
            "fingerprint": signing.fingerprint(signing.raw_public_key(key)),
            "signature": signing.sign(key, form).hex(),
        }
        assert client.post(f"{url}/signatures", json=body, headers=legal).status_code == 201
    forged = {"fingerprint": body["fingerprint"], "signature": "00" * 64}
    assert client.post(f"{url}/signatures", json=forged, headers=legal).status_code == 400
    status = client.get(url, headers=legal).json()
    assert status["unsigned_parties"] == []
    for approval_body in status["approvals_required"]:
        approval = {"body": approval_body, "decision": "approved"}
        assert client.post(f"{url}/approvals", json=approval, headers=legal).status_code == 201
    active = client.post(f"{url}/transitions", json={"to": "active"}, headers=legal)
    assert active.status_code == 200 and active.json()["status"] == "active"
    old = client.get(f"{BASE}/1.0.0", headers=legal).json()
    assert old["status"] == "superseded"


def test_stewards_read_their_own_agreements_in_plain_language_only(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    own = client.get(f"{BASE}/1.0.0/document", headers=auth["steward-police"])
    assert own.status_code == 200 and "police_victimizations" in own.text
    other = client.get(
        "/api/v1/agreements/dsa-hospital-ed-injury/versions/1.0.0/document",
        headers=auth["steward-police"],
    )
    assert other.status_code == 403
    markdown = client.get(f"{BASE}/1.0.0/document?format=markdown", headers=auth["analyst"])
    assert markdown.status_code == 200 and markdown.text.startswith("#")


def test_diff_and_odrl_over_http(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    text = new_version_text("1.1.0").replace("min_cell: 11", "min_cell: 20")
    assert post_yaml(client, text, auth["legal"]).status_code == 201
    changes = client.get(
        "/api/v1/agreements/dsa-police-victimizations/diff?v1=1.0.0&v2=1.1.0",
        headers=auth["legal"],
    ).json()
    assert any("20" in c["sentence"] for c in changes)
    odrl = client.get(f"{BASE}/1.0.0/odrl", headers=auth["legal"]).json()
    assert odrl["@type"] == "Agreement"


def test_suspension_over_http_needs_a_reason_and_stops_uploads(
    client: TestClient, auth: dict[str, dict[str, str]], police_csv: bytes
) -> None:
    url = f"{BASE}/1.0.0/transitions"
    assert client.post(url, json={"to": "suspended"}, headers=auth["legal"]).status_code == 400
    ok = client.post(url, json={"to": "suspended", "reason": "audit"}, headers=auth["legal"])
    assert ok.status_code == 200 and ok.json()["status"] == "suspended"
    upload = client.post(
        "/api/v1/uploads",
        files={"file": ("p.csv", police_csv, "text/csv")},
        data={"agreement_id": "dsa-police-victimizations", "dataset_id": "police_victimizations"},
        headers=auth["steward-police"],
    )
    assert upload.status_code == 409 and "suspended" in upload.json()["detail"]
