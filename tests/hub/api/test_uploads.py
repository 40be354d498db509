"""Uploads over HTTP: the one authorization layer, receipts, rejections, duplicates, limits."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import inspect, text

from factories import (
    assert_audit_chain_intact,
    assert_names_no_value_of,
    grown,
    make_police_csv,
    make_police_row,
    reject_events,
)
from hub.context import Hub

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Upload = Callable[..., httpx.Response]  # the `upload` fixture
POLICE, POLICE_AGREEMENT = "police_victimizations", "dsa-police-victimizations"

RECEIPT_FIELDS = {
    "upload_id",
    "status",
    "agreement",
    "dataset",
    "party",
    "uploader",
    "file_sha256",
    "rows_received",
    "rows_accepted",
    "rows_dropped",
    "duplicate",
}


def table_counts(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}


def test_a_steward_uploads_for_their_own_agency_and_gets_a_receipt(
    upload: Upload, police_csv: bytes
) -> None:
    response = upload(police_csv)
    assert response.status_code == 201
    receipt = response.json()
    assert set(receipt) >= RECEIPT_FIELDS
    assert receipt["status"] == "accepted" and receipt["duplicate"] is False
    assert receipt["agreement"] == "dsa-police-victimizations@1.0.0"
    assert receipt["party"] == "org:police" and receipt["uploader"] == "steward-police"
    assert receipt["rows_received"] == police_csv.count(b"\n") - 1
    assert receipt["rows_accepted"] + receipt["rows_dropped"] == receipt["rows_received"]


def test_a_steward_gets_403_for_another_agencys_dataset(
    upload: Upload, police_csv: bytes, api_hub: Hub
) -> None:
    before = table_counts(api_hub)
    response = upload(police_csv, as_="steward-hospital")
    assert response.status_code == 403
    assert response.json()["error"] == "not_allowed"
    assert "org:police" in response.json()["detail"]
    assert table_counts(api_hub) == grown(before, audit_log=1)
    (event,) = reject_events(api_hub)
    assert event["actor"].startswith("steward-hospital") and event["subject"] == f"dataset:{POLICE}"
    assert event["details"]["error"] == "not_allowed" and event["details"]["status"] == 403


@pytest.mark.parametrize("user", ["analyst", "legal", "admin"])
def test_only_stewards_can_upload(upload: Upload, police_csv: bytes, user: str) -> None:
    response = upload(police_csv, as_=user)
    assert response.status_code == 403
    assert response.json()["error"] == "not_allowed"


def test_an_analyst_cannot_list_uploads(
    client: TestClient, auth: dict[str, dict[str, str]], upload: Upload, police_csv: bytes
) -> None:
    upload(police_csv)
    response = client.get("/api/v1/uploads", headers=auth["analyst"])
    assert response.status_code == 403 and response.json()["error"] == "not_allowed"


def test_a_steward_lists_only_their_own_agencys_uploads(
    client: TestClient, auth: dict[str, dict[str, str]], upload: Upload, police_csv: bytes
) -> None:
    upload_id = upload(police_csv).json()["upload_id"]
    mine = client.get("/api/v1/uploads", headers=auth["steward-police"]).json()
    assert [u["upload_id"] for u in mine] == [upload_id]
    assert client.get("/api/v1/uploads", headers=auth["steward-hospital"]).json() == []
    assert len(client.get("/api/v1/uploads", headers=auth["admin"]).json()) == 1


def test_a_rejected_upload_is_422_with_a_report_that_names_no_value_and_stores_nothing(
    upload: Upload, api_hub: Hub
) -> None:
    rows = [make_police_row(i) for i in range(1, 7)]
    rows[2]["victim_sex"] = "Q"
    rows[4]["victim_dob"] = "1999-02-31"
    rows[5]["victimization_id"] = rows[0]["victimization_id"]  # a repeated record id
    before = table_counts(api_hub)
    response = upload(make_police_csv(rows))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "upload_rejected" and "nothing was stored" in body["detail"]
    findings = body["report"]["findings"]
    assert all({"rule", "column", "failing_rows", "first_rows"} <= set(f) for f in findings)
    sex = next(f for f in findings if f["column"] == "victim_sex")
    assert sex["failing_rows"] == 1 and sex["first_rows"] == [3]
    assert {"victim_dob", "victimization_id"} <= {f["column"] for f in findings}
    for value in ("Q", "1999-02-31", rows[0]["victimization_id"], "Marquise", "Whitfield"):
        assert f'"{value}"' not in response.text and f"'{value}'" not in response.text
    assert rows[0]["victimization_id"] not in response.text
    assert "Whitfield" not in response.text and "1999-04-17" not in response.text
    assert table_counts(api_hub) == grown(before, audit_log=1)


def test_the_same_file_twice_is_200_with_the_first_upload_id(
    upload: Upload, police_csv: bytes, api_hub: Hub
) -> None:
    first = upload(police_csv)
    counts = table_counts(api_hub)
    again = upload(police_csv)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["upload_id"] == first.json()["upload_id"]
    assert again.json()["duplicate"] is True
    assert table_counts(api_hub) == counts


def test_an_upload_over_the_size_limit_is_413_and_stores_nothing(
    upload: Upload, police_csv: bytes, api_hub: Hub
) -> None:
    api_hub.settings.max_upload_bytes = len(police_csv) - 1
    before = table_counts(api_hub)
    response = upload(police_csv)
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "upload_too_large" and body["limit"] == len(police_csv) - 1
    assert "upload limit" in body["detail"] and "nothing was stored" in body["detail"]
    assert table_counts(api_hub) == grown(before, audit_log=1)
    (event,) = reject_events(api_hub)
    assert event["details"]["error"] == "upload_too_large" and event["details"]["status"] == 413
    api_hub.settings.max_upload_bytes = len(police_csv)
    assert upload(police_csv).status_code == 201


def multipart(boundary: str, content: bytes, chunk: int = 4096) -> Iterator[bytes]:
    """A multipart upload form sent in chunks without a Content-Length (chunked encoding)."""
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in (
            ("agreement_id", "dsa-police-victimizations"),
            ("dataset_id", "police_victimizations"),
        )
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    )
    yield head.encode()
    for start in range(0, len(content), chunk):
        yield content[start : start + chunk]
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_streamed_upload_is_cut_off_once_it_passes_the_limit(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    police_csv: bytes,
    api_hub: Hub,
) -> None:
    api_hub.settings.max_upload_bytes = 10_000
    sent: list[int] = []

    def counting(body: Iterator[bytes]) -> Iterator[bytes]:
        for part in body:
            sent.append(len(part))
            yield part

    big = police_csv * 4
    headers = {**auth["steward-police"], "Content-Type": "multipart/form-data; boundary=xyz"}
    response = client.post(
        "/api/v1/uploads", headers=headers, content=counting(multipart("xyz", big))
    )
    assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
    api_hub.settings.max_upload_bytes = len(big)
    response = client.post("/api/v1/uploads", headers=headers, content=multipart("xyz", police_csv))
    assert response.status_code == 201, response.text


def test_an_upload_never_writes_the_file_to_a_temporary_file(
    upload: Upload, police_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette spools form files over 1 MiB to disk; the hub must keep extracts in memory."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the upload wrote a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    big = police_csv * (2 * 1024 * 1024 // len(police_csv) + 1)  # over 2 MiB
    # Refused after the form is read (another agency's dataset): nothing may reach the disk.
    assert upload(big, as_="steward-hospital").status_code == 403
    assert upload(police_csv).status_code == 201


@pytest.mark.parametrize(
    ("files", "data", "missing"),
    [
        (
            {"attachment": ("p.csv", b"a\n1\n")},
            {"agreement_id": "dsa-police-victimizations", "dataset_id": "x"},
            "file",
        ),
        (
            {"file": ("p.csv", b"a\n1\n")},
            {"agreement_id": "dsa-police-victimizations"},
            "dataset_id",
        ),
    ],
)
def test_an_incomplete_upload_form_is_422_naming_what_is_missing(
    client: TestClient,
    auth: dict[str, dict[str, str]],
    files: dict[str, Any],
    data: dict[str, str],
    missing: str,
) -> None:
    response = client.post(
        "/api/v1/uploads", headers=auth["steward-police"], files=files, data=data
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "malformed_request" and missing in body["missing"]
    assert missing in body["detail"]


def test_an_upload_that_is_not_a_form_is_422(
    client: TestClient, auth: dict[str, dict[str, str]], police_csv: bytes
) -> None:
    response = client.post("/api/v1/uploads", headers=auth["steward-police"], content=police_csv)
    assert response.status_code == 422
    assert "multipart" in response.json()["detail"]


def test_an_upload_for_an_unknown_dataset_is_404(upload: Upload, police_csv: bytes) -> None:
    response = upload(police_csv, dataset="no_such_dataset")
    assert response.status_code == 404 and "no_such_dataset" in response.json()["detail"]


# --- refused uploads are audited --------------------------------------------------------------


def test_a_rejected_upload_appends_one_upload_reject_event_that_names_no_value(
    upload: Upload, api_hub: Hub
) -> None:
    import hashlib
    import json

    rows = [
        make_police_row(i, victim_first_name=f"Zebulon{i}", victim_last_name=f"Quackenbush{i}")
        for i in range(1, 7)
    ]
    rows[2]["victim_sex"] = "Q"
    rows[4]["victim_dob"] = "1999-02-31"
    rows[5]["victim_sex"] = "Q"
    content = make_police_csv(rows)
    before = table_counts(api_hub)
    assert upload(content).status_code == 422
    assert table_counts(api_hub) == grown(before, audit_log=1)
    (event,) = reject_events(api_hub)
    assert event["action"] == "upload.reject"
    assert event["actor"] == "steward-police (steward, org:police)"
    details = event["details"]
    assert details["agreement"] == POLICE_AGREEMENT and details["dataset"] == POLICE
    assert details["agreement_known"] is True and details["dataset_known"] is True
    assert details["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert details["file_bytes"] == len(content) and details["via"] == "api"
    assert (details["error"], details["status"]) == ("upload_rejected", 422)
    rules = {(r["rule"], r["column"]): r["failing_rows"] for r in details["rules"]}
    assert details["failed_rules"] == len(details["rules"]) == 2
    assert rules[("allowed_values", "victim_sex")] == 2 and rules[("type:date", "victim_dob")] == 1
    text = json.dumps(event)
    assert_names_no_value_of(rows, text)
    assert "1999-02-31" not in text and "first_rows" not in text and "message" not in text
    assert_audit_chain_intact(api_hub)


def test_an_unlisted_column_is_audited_without_its_name(upload: Upload, api_hub: Hub) -> None:
    """A header name the agreement does not list comes from the file (its first line may be
    data): the report names it to the steward; the audit log does not."""
    lines = make_police_csv([make_police_row(1)]).decode().splitlines()
    content = f"{lines[0]},Zebulon\n{lines[1]},x\n".encode()
    assert upload(content).status_code == 422
    (event,) = reject_events(api_hub)
    assert {"rule": "unknown_column", "column": None, "failing_rows": 0} in event["details"][
        "rules"
    ]
    assert "Zebulon" not in str(event)


def test_a_refused_form_is_audited_with_what_was_known(
    client: TestClient, auth: dict[str, dict[str, str]], api_hub: Hub
) -> None:
    response = client.post(
        "/api/v1/uploads", headers=auth["steward-police"], data={"agreement_id": "x"}
    )
    assert response.status_code == 422
    (event,) = reject_events(api_hub)
    details = event["details"]
    assert details["error"] == "malformed_request" and details["dataset"] is None
    assert details["file_sha256"] is None and event["subject"] == "upload"


def test_ids_that_name_no_registered_agreement_or_dataset_are_not_written_to_the_audit_log(
    client: TestClient, auth: dict[str, dict[str, str]], api_hub: Hub
) -> None:
    """Ids come from the URL: any caller with a token could otherwise write free text into the
    permanent, hash-chained log. An id is recorded only if it names a registered agreement or
    dataset; else ``unknown``, with a flag that it did not resolve."""
    free_text = "Marquise-Whitfield-DOB-1990-01-01-" + "x" * 150
    response = client.put(
        f"/api/v1/uploads/{free_text}/{free_text}-data",
        headers={**auth["steward-police"], "Content-Type": "application/octet-stream"},
        content=b"a,b\n1,2\n",
    )
    assert response.status_code >= 400
    response = client.put(
        f"/api/v1/uploads/{POLICE_AGREEMENT}/{free_text}",
        headers={**auth["steward-police"], "Content-Type": "application/octet-stream"},
        content=b"a,b\n1,2\n",
    )
    assert response.status_code >= 400
    unknown, known_agreement = (e["details"] for e in reject_events(api_hub))
    assert (unknown["agreement"], unknown["dataset"]) == ("unknown", "unknown")
    assert unknown["agreement_known"] is False and unknown["dataset_known"] is False
    assert (known_agreement["agreement"], known_agreement["dataset"]) == (
        POLICE_AGREEMENT,
        "unknown",
    )
    assert known_agreement["agreement_known"] is True
    assert known_agreement["dataset_known"] is False
    with api_hub.engine.connect() as conn:
        log = " ".join(conn.execute(text("SELECT payload FROM audit_log")).scalars())
    assert "Marquise" not in log
    assert_audit_chain_intact(api_hub)


def test_an_accepted_or_repeated_upload_appends_no_reject_event(
    upload: Upload, police_csv: bytes, api_hub: Hub
) -> None:
    assert upload(police_csv).status_code == 201
    assert upload(police_csv).status_code == 200
    assert reject_events(api_hub) == []
