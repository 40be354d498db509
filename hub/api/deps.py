"""Request plumbing: the hub, and the caller authenticated by bearer token.

Every route except ``/health`` depends on :func:`current_actor`; permission checks happen in the
services through the same policy functions the CLI uses.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth.policies import Actor
from hub.auth.service import authenticate
from hub.context import Hub
from hub.errors import Unauthenticated

bearer = HTTPBearer(auto_error=False, description="An API token from `ovphub users token`")


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def current_actor(
    hub: Annotated[Hub, Depends(get_hub)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    if credentials is None:
        raise Unauthenticated("send an API token as `Authorization: Bearer <token>`")
    return hub.transact(lambda s: authenticate(s, credentials.credentials))


HubDep = Annotated[Hub, Depends(get_hub)]
ActorDep = Annotated[Actor, Depends(current_actor)]
