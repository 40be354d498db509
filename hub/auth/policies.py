"""Who may do what: pure functions in pairs, ``check_*`` raises with the reason, ``can_*`` answers.

Every API route and CLI command goes through :func:`check_permission`; rules that depend on the
object (a steward uploads only for the agency that provides the dataset) have their own pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.model import Agreement, Dataset
from hub.errors import NotAllowed


class Role(StrEnum):
    steward = "steward"
    analyst = "analyst"
    legal = "legal"
    admin = "admin"


class Permission(StrEnum):
    agreements_read = "agreements:read"
    agreements_write = "agreements:write"
    uploads_create = "uploads:create"
    uploads_read = "uploads:read"
    linkage_run = "linkage:run"
    linkage_evaluate = "linkage:evaluate"
    linkage_read = "linkage:read"
    releases_create = "releases:create"
    releases_read = "releases:read"
    users_manage = "users:manage"
    audit_read = "audit:read"
    retention_run = "retention:run"
    keys_rotate = "keys:rotate"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.steward: frozenset({P.uploads_create, P.uploads_read, P.agreements_read, P.releases_read}),
    Role.analyst: frozenset({P.releases_create, P.releases_read}),
    Role.legal: frozenset({P.agreements_read, P.agreements_write, P.releases_read, P.audit_read}),
    Role.admin: frozenset(set(Permission) - {P.uploads_create}),
}


@dataclass(frozen=True)
class Actor:
    """The authenticated caller, as policies see it."""

    user_id: int
    name: str
    role: Role
    party_id: str | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.role}{', ' + self.party_id if self.party_id else ''})"


def can(actor: Actor, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[actor.role]


def check_permission(actor: Actor, permission: Permission) -> None:
    if not can(actor, permission):
        raise NotAllowed(f"{actor.label} may not {permission.value.replace(':', ' ')}")


def check_can_upload(actor: Actor, agreement: Agreement, dataset: Dataset) -> None:
    check_permission(actor, Permission.uploads_create)
    if actor.party_id != dataset.provider:
        raise NotAllowed(
            f"{actor.label} cannot upload {dataset.id}: under {agreement.ref} only "
            f"{dataset.provider}'s stewards provide it"
        )


def can_upload(actor: Actor, agreement: Agreement, dataset: Dataset) -> bool:
    try:
        check_can_upload(actor, agreement, dataset)
    except NotAllowed:
        return False
    return True


def check_can_view_upload(actor: Actor, party_id: str | None) -> None:
    """Receipts, validation reports and upload jobs: admins see every agency's, a steward only
    their own agency's; analysts and legal staff see none."""
    check_permission(actor, Permission.uploads_read)
    if actor.role != Role.admin and (actor.party_id is None or actor.party_id != party_id):
        raise NotAllowed(f"{actor.label} cannot see uploads of {party_id or 'another agency'}")


def can_view_upload(actor: Actor, party_id: str | None) -> bool:
    try:
        check_can_view_upload(actor, party_id)
    except NotAllowed:
        return False
    return True
