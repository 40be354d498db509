"""``/api/v1/agreements/...``: agreements for legal staff (write) and for everyone they concern
(read the plain-language form). Each docstring is the route's OpenAPI text."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from contracts.loader import AgreementInvalid, parse_agreement
from contracts.model import Agreement
from hub.agreements.lifecycle import transition
from hub.agreements.service import get_version, register
from hub.agreements.signatures import add_signature, record_approval
from hub.agreements.views import status_view
from hub.auth.policies import Actor, Permission, Role, check_permission
from hub.errors import InvalidRequest, NotAllowed

from .deps import ActorDep, HubDep

router = APIRouter(tags=["agreements"])
AgreementId = Annotated[str, Path(description="Agreement id, e.g. dsa-police-victimizations")]
Version = Annotated[str, Path(description="Semantic version, e.g. 1.0.0")]


def _readable(actor: Actor, spec: Agreement) -> None:
    """Legal and admin read everything; analysts read every agreement (releases draw on all);
    a steward reads the agreements their agency is a party to."""
    if actor.role == Role.steward and actor.party_id not in {p.id for p in spec.parties}:
        raise NotAllowed(f"{actor.label} is not a party to {spec.ref}")


@router.post("/agreements", status_code=status.HTTP_201_CREATED)
def create_version(
    hub: HubDep,
    actor: ActorDep,
    text: Annotated[str, Body(media_type="application/yaml", description="The agreement YAML")],
) -> dict[str, Any]:
    """Register a new draft version from its YAML (legal and admin). Every lint problem is
    returned at once, with YAML path and line, as a 422."""
    check_permission(actor, Permission.agreements_write)
    agreement, problems = parse_agreement(text, "upload.yaml")
    if problems or agreement is None:
        raise AgreementInvalid(problems)

    def work(s: Session) -> dict[str, Any]:
        row, created = register(s, agreement, actor.label)
        return {"agreement": agreement.ref, "status": row.status, "created": created}

    return hub.transact(work)


@router.get("/agreements/{agreement_id}/versions/{version}")
def version_status(
    hub: HubDep, actor: ActorDep, agreement_id: AgreementId, version: Version
) -> dict[str, Any]:
    """Lifecycle status (by date: past expiry is expired), signatures and whether each still
    verifies, required approvals, and the transitions possible next."""
    with hub.session() as s:
        gov = get_version(s, agreement_id, version)
        _readable(actor, gov.spec)
        return status_view(s, gov, hub.today())


@router.get("/agreements/{agreement_id}/versions/{version}/document", response_model=None)
def document(
    hub: HubDep,
    actor: ActorDep,
    agreement_id: AgreementId,
    version: Version,
    format: Annotated[Literal["html", "markdown"], Query(description="html or markdown")] = "html",
) -> HTMLResponse | PlainTextResponse:
    """The agreement in plain language: who shares what, for what, what may come out, who may
    see it, how long it is kept. Stewards read the agreements their agency is party to."""
    from contracts.readable import render_html, render_markdown

    with hub.session() as s:
        gov = get_version(s, agreement_id, version)
    _readable(actor, gov.spec)
    if format == "markdown":
        return PlainTextResponse(render_markdown(gov.spec), media_type="text/markdown")
    return HTMLResponse(render_html(gov.spec))


@router.get("/agreements/{agreement_id}/diff")
def diff(
    hub: HubDep,
    actor: ActorDep,
    agreement_id: AgreementId,
    v1: Annotated[str, Query(description="Older version")],
    v2: Annotated[str, Query(description="Newer version")],
) -> list[dict[str, Any]]:
    """What changed between two versions, each change as a plain-language sentence."""
    from contracts.readable import diff_agreements

    with hub.session() as s:
        old, new = get_version(s, agreement_id, v1), get_version(s, agreement_id, v2)
    _readable(actor, new.spec)
    return [c.as_dict() for c in diff_agreements(old.spec, new.spec)]


@router.get("/agreements/{agreement_id}/versions/{version}/odrl")
def odrl(
    hub: HubDep, actor: ActorDep, agreement_id: AgreementId, version: Version
) -> dict[str, Any]:
    """The version as an ODRL 2.2 JSON-LD Agreement."""
    from contracts.readable import to_odrl

    with hub.session() as s:
        gov = get_version(s, agreement_id, version)
    _readable(actor, gov.spec)
    return to_odrl(gov.spec)


@router.get("/agreements/{agreement_id}/versions/{version}/signing-form")
def signing_form(
    hub: HubDep, actor: ActorDep, agreement_id: AgreementId, version: Version
) -> dict[str, str]:
    """The exact bytes a signatory signs (Ed25519), as hex, with their SHA-256 (legal, admin)."""
    import hashlib

    check_permission(actor, Permission.agreements_write)
    with hub.session() as s:
        gov = get_version(s, agreement_id, version)
    _readable(actor, gov.spec)
    form = gov.spec.signing_form()
    return {
        "agreement": gov.spec.ref,
        "hex": form.hex(),
        "sha256": hashlib.sha256(form).hexdigest(),
    }


class SignatureBody(BaseModel):
    fingerprint: str = Field(description="The registered signer's key fingerprint")
    signature: str = Field(description="Ed25519 signature of the signing form, hex")


@router.post(
    "/agreements/{agreement_id}/versions/{version}/signatures",
    status_code=status.HTTP_201_CREATED,
)
def sign(
    hub: HubDep, actor: ActorDep, agreement_id: AgreementId, version: Version, body: SignatureBody
) -> dict[str, Any]:
    """Record a signatory's signature, made offline over the signing form; it is verified
    before it is stored (legal and admin)."""
    check_permission(actor, Permission.agreements_write)

    def work(s: Session) -> dict[str, Any]:
        gov = get_version(s, agreement_id, version)
        add_signature(s, gov.row, gov.spec, body.fingerprint, body.signature, actor.label)
        return status_view(s, gov, hub.today())

    return hub.transact(work)


class ApprovalBody(BaseModel):
    body: str = Field(description="Governance body, e.g. data_governance_board")
    decision: Literal["approved", "rejected", "deferred"] = Field(description="The decision")
    reference: str = Field(default="", description="Minutes or memo reference")


@router.post(
    "/agreements/{agreement_id}/versions/{version}/approvals",
    status_code=status.HTTP_201_CREATED,
)
def approve(
    hub: HubDep, actor: ActorDep, agreement_id: AgreementId, version: Version, body: ApprovalBody
) -> dict[str, Any]:
    """Record a governance body's decision (legal and admin)."""
    check_permission(actor, Permission.agreements_write)

    def work(s: Session) -> dict[str, Any]:
        gov = get_version(s, agreement_id, version)
        record_approval(s, gov.row, gov.spec, body.body, body.decision, body.reference, actor.label)
        return status_view(s, gov, hub.today())

    return hub.transact(work)


class TransitionBody(BaseModel):
    to: Literal["under_review", "draft", "active", "suspended", "terminated"] = Field(
        description="The status to move to; the lifecycle's gate decides"
    )
    reason: str = Field(default="", description="Why (kept in the audit log)")


@router.post("/agreements/{agreement_id}/versions/{version}/transitions")
def move(
    hub: HubDep, actor: ActorDep, agreement_id: AgreementId, version: Version, body: TransitionBody
) -> dict[str, Any]:
    """Move a version through its lifecycle (legal and admin). Activation is refused (409, with
    every blocker listed) unless all parties have signed and required approvals are recorded."""
    if body.to in ("suspended", "terminated") and not body.reason:
        raise InvalidRequest(f"say why the agreement is {body.to} (reason)")

    def work(s: Session) -> dict[str, Any]:
        gov = get_version(s, agreement_id, version)
        transition(s, gov.row, gov.spec, body.to, actor, hub.today(), body.reason)
        return status_view(s, gov, hub.today())

    return hub.transact(work)
