"""Users and API tokens. Tokens are shown once at creation and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import audit
from hub.auth.policies import Actor, Role
from hub.db.models import ApiToken, Party, User
from hub.errors import InvalidRequest, NotFound, Unauthenticated

TOKEN_PREFIX = "ovp_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.name, Role(user.role), user.party_id)


def create_user(
    session: Session, name: str, role: Role, party_id: str | None, event: audit.Event
) -> User:
    if session.execute(select(User).where(User.name == name)).scalar_one_or_none():
        raise InvalidRequest(f"a user named {name!r} already exists")
    if role == Role.steward and not party_id:
        raise InvalidRequest("a steward acts for one agency: give --party, e.g. org:police")
    if party_id and session.get(Party, party_id) is None:
        raise NotFound(f"no agency {party_id!r}; load an agreement that names it first")
    user = User(name=name, role=role.value, party_id=party_id)
    session.add(user)
    session.flush()
    audit.append(session, event)
    return user


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None or not user.active:
        raise NotFound(f"no active user named {name!r}; create one with `ovphub users add`")
    return user


def issue_token(session: Session, user: User, label: str, event: audit.Event) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_digest(token), label=label))
    session.flush()
    audit.append(session, event)
    return token


def authenticate(session: Session, token: str) -> Actor:
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_sha256 == _digest(token))
    ).first()
    if row is None or row[0].revoked_at is not None or not row[1].active:
        raise Unauthenticated("the API token is not valid; ask an admin for a new one")
    return actor_of(row[1])


def ensure_admin(session: Session, name: str = "admin") -> User:
    """The local administrator the CLI acts as by default; created on first use."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        user = User(name=name, role=Role.admin.value, party_id=None)
        session.add(user)
        session.flush()
        audit.append(
            session, audit.Event("system", "user.create", f"user:{name}", {"role": "admin"})
        )
    return user
