"""Request plumbing: the hub, and the caller authenticated by bearer token.

Every route except ``/health`` depends on :func:`current_actor`; permission checks happen in the
services through the same policy functions the CLI uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth.policies import Actor
from hub.auth.service import authenticate
from hub.context import Hub
from hub.errors import Unauthenticated
from hub.ingest.jobs import UploadJobs
from hub.linkage.jobs import LinkageJobs

bearer = HTTPBearer(auto_error=False, description="An API token from `ovphub users token`")


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def get_upload_jobs(request: Request) -> UploadJobs:
    jobs: UploadJobs = request.app.state.upload_jobs
    return jobs


def get_linkage_jobs(request: Request) -> LinkageJobs:
    jobs: LinkageJobs = request.app.state.linkage_jobs
    return jobs


def get_spool_dir(request: Request) -> Path | None:
    """Where streamed uploads are spooled (encrypted); ``None``: the system temp directory."""
    spool_dir: Path | None = request.app.state.spool_dir
    return spool_dir


def current_actor(
    hub: Annotated[Hub, Depends(get_hub)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    if credentials is None:
        raise Unauthenticated("send an API token as `Authorization: Bearer <token>`")
    return hub.transact(lambda s: authenticate(s, credentials.credentials))


HubDep = Annotated[Hub, Depends(get_hub)]
ActorDep = Annotated[Actor, Depends(current_actor)]
JobsDep = Annotated[UploadJobs, Depends(get_upload_jobs)]
LinkageJobsDep = Annotated[LinkageJobs, Depends(get_linkage_jobs)]
SpoolDirDep = Annotated[Path | None, Depends(get_spool_dir)]
