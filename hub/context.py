"""The running hub: settings, database engine, key store and clock, built once per process.

The CLI and the API both build a :class:`Hub` and call the same services through it. Tests
build one on a temporary database with an in-memory key store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.migrate import upgrade
from hub.db.session import make_engine, unit_of_work
from hub.keys import FileKeyStore, KeyStore, KeyStoreError
from hub.settings import Settings

T = TypeVar("T")


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    keys: KeyStore
    today: Callable[[], dt.date] = field(default=dt.date.today)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with unit_of_work(self.engine) as session:
            yield session

    def transact(self, work: Callable[[Session], T], retries: int = 1) -> T:
        """Run ``work`` in its own transaction; on a unique-constraint race (two identical
        requests at once) run it once more, when it finds the other's committed result."""
        for attempt in range(retries + 1):
            try:
                with self.session() as session:
                    return work(session)
            except IntegrityError:
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")


def open_keys(settings: Settings) -> KeyStore:
    path = settings.resolved_key_file
    if not path.exists() and settings.environment == "development":
        return FileKeyStore.create(path)
    if not path.exists():
        raise KeyStoreError(
            f"HUB_ENVIRONMENT=production and no key file at {path}; refusing to start. "
            "Create one with `ovphub keys init` and keep it outside the database."
        )
    return FileKeyStore(path)


def build_hub(settings: Settings | None = None, migrate: bool = True) -> Hub:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    return Hub(settings, engine, open_keys(settings))
