"""What a data steward sees of their agency's uploads: one view for the CLI and the API.

- :func:`list_receipts_view` / :func:`receipt_view`: the receipts (the same fields as the
  receipt an upload returns, without ``duplicate``); :func:`upload_view`: one with its report;
- :func:`report_view` / :func:`report_html`: an accepted upload's validation report, as JSON or
  as the self-contained HTML page of ``validators.render_html`` (rejected uploads store nothing;
  their report is in the rejection itself, or in the upload job's result);
- :func:`releases_using`: which releases used the agency's uploads, and for what.

Visibility: admins see every agency's uploads, a steward only their own agency's
(``check_can_view_upload``); analysts and legal staff get :class:`~hub.errors.NotAllowed`.
An upload another agency made is :class:`~hub.errors.NotFound`, as if it did not exist. No view
holds a value from a file: receipts hold counts and hashes, reports rule names and row numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session

from hub.auth.policies import Actor, Permission, Role, can_view_upload, check_permission
from hub.db.models import AgreementVersion, Release, ReleaseSource, Upload, User, as_utc
from hub.errors import NotFound
from hub.ingest.service import receipt_of
from validators.html import render_html
from validators.report import Finding, ValidationReport


def visible_party(actor: Actor) -> str | None:
    """The agency whose uploads ``actor`` sees (``None``: every agency, for admins)."""
    check_permission(actor, Permission.uploads_read)
    return None if actor.role == Role.admin else actor.party_id or ""


def _receipt(up: Upload, agreement_ref: str, uploader: str) -> dict[str, Any]:
    out = receipt_of(up, agreement_ref, uploader).to_dict()
    del out["duplicate"]  # a property of one answer to an upload, not of the stored receipt
    return out


def _receipts_query(party: str | None) -> Any:
    query = (
        select(Upload, AgreementVersion.agreement_id, AgreementVersion.version, User.name)
        .join(AgreementVersion, AgreementVersion.id == Upload.agreement_version_id)
        .join(User, User.id == Upload.uploader_id)
        .order_by(Upload.created_at, Upload.id)
    )
    return query if party is None else query.where(Upload.party_id == party)


def list_receipts_view(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The receipts ``actor`` may see, oldest first."""
    party = visible_party(actor)
    rows = session.execute(_receipts_query(party)).all()
    return [_receipt(up, f"{aid}@{version}", name) for up, aid, version, name in rows]


def _get(session: Session, actor: Actor, upload_id: str) -> tuple[Upload, str, str]:
    check_permission(actor, Permission.uploads_read)
    row = session.execute(_receipts_query(None).where(Upload.id == upload_id)).first()
    if row is None or not can_view_upload(actor, row[0].party_id):
        raise NotFound(f"no upload {upload_id}; `ovphub uploads list` shows yours")
    up, aid, version, name = row
    return up, f"{aid}@{version}", name


def receipt_view(session: Session, actor: Actor, upload_id: str) -> dict[str, Any]:
    """One receipt."""
    return _receipt(*_get(session, actor, upload_id))


def report_view(session: Session, actor: Actor, upload_id: str) -> dict[str, Any]:
    """An upload's validation report: ``report`` has the shape of a rejection's report
    (``dataset``, ``rows_checked``, ``ok``, ``findings``, ``row_rules``)."""
    up, ref, _ = _get(session, actor, upload_id)
    return _report(up, ref)


def upload_view(session: Session, actor: Actor, upload_id: str) -> dict[str, Any]:
    """One receipt with its validation report under ``report`` (what ``ovphub uploads show``
    prints), from one read of the upload."""
    up, ref, uploader = _get(session, actor, upload_id)
    return {**_receipt(up, ref, uploader), "report": _report(up, ref)}


def _report(up: Upload, ref: str) -> dict[str, Any]:
    stored = dict(up.report or {})
    validation = stored.pop("validation", None)
    report = {**validation, "row_rules": stored.pop("row_rules", [])} if validation else {}
    return {
        "upload_id": up.id,
        "agreement": ref,
        "dataset": up.dataset_id,
        "status": up.status,
        "report": report,
        **stored,
    }


def report_html(session: Session, actor: Actor, upload_id: str) -> str:
    """An upload's validation report as one self-contained HTML page."""
    view = report_view(session, actor, upload_id)
    return render_report_html(view["report"], view["dataset"])


def render_report_html(report: dict[str, Any], dataset: str = "") -> str:
    """``validators.render_html`` of a report in its JSON form (stored with an upload, or in a
    rejection): findings and row-rule findings, with the messages the steward was shown."""
    findings = [*report.get("findings", []), *report.get("row_rules", [])]
    rebuilt = ValidationReport(
        dataset=str(report.get("dataset") or dataset),
        rows_checked=int(report.get("rows_checked", 0)),
        findings=tuple(StoredFinding.of(f) for f in findings),
    )
    return render_html(rebuilt)


@dataclass(frozen=True)
class StoredFinding(Finding):
    """A finding read back from its JSON form. The JSON keeps the message the finding was shown
    with, not the subject and fix it was written from, so the message is kept as it was."""

    stored_message: str = ""

    @property
    def message(self) -> str:
        return self.stored_message

    @classmethod
    def of(cls, data: dict[str, Any]) -> StoredFinding:
        return cls(
            rule=str(data.get("rule", "")),
            column=data.get("column"),
            severity="warning" if data.get("severity") == "warning" else "error",
            subject="",
            fix="",
            failing_rows=int(data.get("failing_rows", 0)),
            first_rows=tuple(int(r) for r in data.get("first_rows", [])),
            stored_message=str(data.get("message", "")),
        )


def releases_using(
    session: Session, actor: Actor, upload_id: str | None = None
) -> list[dict[str, Any]]:
    """Every release that used the agency's uploads (admins: every release with its uploads),
    oldest first: what was released, to whom, at what privacy loss, from which uploads. Only
    the manifest's description, never its cells. ``upload_id`` narrows to one upload."""
    party = visible_party(actor)
    if upload_id is not None:
        _get(session, actor, upload_id)
    query = select(Upload.id, Upload.dataset_id)
    if party is not None:
        query = query.where(Upload.party_id == party)
    if upload_id is not None:
        query = query.where(Upload.id == upload_id)
    datasets = {uid: ds for uid, ds in session.execute(query).all()}
    used: dict[str, list[str]] = {}
    releases: dict[str, Release] = {}
    sources = session.execute(
        select(ReleaseSource, Release)
        .join(Release, Release.id == ReleaseSource.release_id)
        .where(_lists_any_of(session, query.with_only_columns(Upload.id)))
        .order_by(Release.created_at, Release.id)
    ).all()
    for source, release in sources:
        releases[release.id] = release
        used.setdefault(release.id, []).extend(u for u in source.upload_ids if u in datasets)
    out = []
    for rid, release in releases.items():
        manifest = release.manifest or {}
        uploads = sorted(set(used[rid]))
        out.append(
            {
                "release_id": rid,
                "aggregate_id": release.aggregate_id,
                "title": manifest.get("title", ""),
                "recipient": release.recipient,
                "released_at": as_utc(release.created_at).isoformat(),
                "privacy_model": release.privacy_model,
                "privacy_loss": release.privacy_loss,
                "agreements": manifest.get("agreements", []),
                # What each agreement paid, in its own unit (a release over linked data
                # charges every agreement whose data it read).
                "charges": manifest.get("charges", []),
                "datasets": sorted({datasets[u] for u in uploads}),
                "uploads": uploads,
            }
        )
    return out


def _lists_any_of(session: Session, upload_ids: Select[tuple[str]]) -> ColumnElement[bool]:
    """Whether a release source's ``upload_ids`` (a JSON array) holds any id ``upload_ids``
    selects: so only the releases that used them are read, not every release."""
    if session.get_bind().dialect.name == "postgresql":
        listed = func.jsonb_array_elements_text(ReleaseSource.upload_ids).table_valued("value")
    else:
        listed = func.json_each(ReleaseSource.upload_ids).table_valued("value")
    return exists(select(1).select_from(listed).where(listed.c.value.in_(upload_ids)))
