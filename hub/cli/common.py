"""Shared plumbing of the ``ovphub`` commands: output, errors, and the acting user."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from contracts.loader import AgreementInvalid
from hub.errors import HubError
from publishers.errors import PublisherError

if TYPE_CHECKING:
    from hub.auth.policies import Actor
    from hub.context import Hub

F = TypeVar("F", bound=Callable[..., Any])
State: dict[str, str] = {"as": "admin"}


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def fail(message: str, extra: dict[str, Any] | None = None, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    if extra:
        typer.echo(json.dumps(extra, indent=2, default=str), err=True)
    raise typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Turn hub errors into a sentence on stderr and a non-zero exit, not a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HubError as exc:
            fail(exc.detail, exc.extra or None, 2 if exc.status_code == 422 else 1)
        except AgreementInvalid as exc:
            fail("the agreement has problems:\n" + "\n".join(f"  {p}" for p in exc.problems))
        except PublisherError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


@contextmanager
def acting() -> Iterator[tuple[Hub, Actor]]:
    """The hub from ``HUB_*`` settings and the user the command acts as (``--as``). The
    database engine is disposed of when the command ends."""
    from hub import context
    from hub.auth.service import actor_of, ensure_admin, get_user

    hub = context.build_hub()
    try:
        with hub.session() as s:
            user = ensure_admin(s) if State["as"] == "admin" else get_user(s, State["as"])
            actor = actor_of(user)
        yield hub, actor
    finally:
        hub.engine.dispose()
