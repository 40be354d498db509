"""Factories for the release tests (tests/hub/test_releases.py, tests/hub/test_preview.py): a
hub on a SQLite file at the demo clock, a linked seed database built once per module and copied
for each test, release requests, and the callers' side of a release.

One key store serves every hub made here, so every copy of a seed database can upload and link.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from factories import load_examples, make_actor
from hub import audit
from hub.auth.policies import Actor, Role
from hub.auth.service import actor_of, get_user, issue_token
from hub.context import Hub
from hub.db.migrate import upgrade
from hub.db.session import make_engine
from hub.ingest.service import Receipt, upload_extract
from hub.keys import InMemoryKeyStore
from hub.linkage.service import run_linkage
from hub.releases.service import ReleaseRequest, request_release
from hub.releases.views import release_view
from hub.settings import Settings
from hub.synth import generate

TODAY = dt.date(2026, 11, 15)
AGREEMENT = "dsa-police-victimizations"
DATASET = "police_victimizations"
WINDOW = (dt.date(2024, 11, 1), dt.date(2026, 10, 31))
KEYS = InMemoryKeyStore.generate()


def make_hub_at(path: Path, migrate: bool = False) -> Hub:
    """A hub on the SQLite file ``path`` whose clock says :data:`TODAY`."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    settings = Settings(data_dir=path.parent, database_url=url, key_file=path.parent / "unused.key")
    return Hub(settings, engine, KEYS, today=lambda: TODAY)


def make_request(
    aggregate: str = "viol_monthly",
    window: tuple[dt.date, dt.date] = WINDOW,
    recipient: str = "public",
) -> ReleaseRequest:
    return ReleaseRequest(aggregate, window[0], window[1], recipient)


def actor(hub: Hub, name: str) -> Actor:
    with hub.session() as s:
        return actor_of(get_user(s, name))


def auth_header(hub: Hub, name: str) -> dict[str, str]:
    """An ``Authorization`` header with a new bearer token for user ``name``."""
    with hub.session() as s:
        event = audit.Event("test", "token.issue", f"user:{name}", {})
        return {"Authorization": f"Bearer {issue_token(s, get_user(s, name), 'test', event)}"}


def upload(hub: Hub, content: bytes) -> Receipt:
    """Upload a police extract as the police steward."""
    steward = actor(hub, "steward-police")
    return hub.transact(
        lambda s: upload_extract(
            s,
            hub.keys,
            steward,
            agreement_id=AGREEMENT,
            dataset_id=DATASET,
            content=content,
            today=TODAY,
        )
    )


def link(hub: Hub) -> None:
    with hub.session() as s:
        run_linkage(s, "test", TODAY)


def release(
    hub: Hub, req: ReleaseRequest, who: str = "analyst", today: dt.date = TODAY
) -> dict[str, Any]:
    """Request a release the way the API and the CLI do: one transaction, view after commit."""
    caller = actor(hub, who)
    return hub.transact(lambda s: release_view(*request_release(s, caller, req, today)))


def make_seed_db(where: Path, *, people: int, seed: int, extra: tuple[bytes, ...] = ()) -> Path:
    """A linked hub database in ``where``: the example agreements loaded, a police steward and
    an analyst, a synthetic police extract of ``people`` (and the ``extra`` extracts) uploaded,
    linkage run. Returns the database file, for :func:`copied_hub`."""
    hub = make_hub_at(where / "hub.db", migrate=True)
    try:
        load_examples(hub)
        make_actor(hub, "steward-police", Role.steward, "org:police")
        make_actor(hub, "analyst", Role.analyst)
        generate(where / "synth", people=people, seed=seed)
        for content in ((where / "synth" / f"{DATASET}.csv").read_bytes(), *extra):
            upload(hub, content)
        link(hub)
    finally:
        hub.engine.dispose()
    return where / "hub.db"


@contextmanager
def copied_hub(seed_db: Path, where: Path) -> Iterator[Hub]:
    """A hub on a copy of ``seed_db`` in ``where`` (each test starts from the same data)."""
    for part in seed_db.parent.glob("hub.db*"):
        shutil.copy(part, where / part.name)
    hub = make_hub_at(where / "hub.db")
    try:
        yield hub
    finally:
        hub.engine.dispose()
