"""Shared fixtures: a hub on a temporary SQLite file or a throwaway PostgreSQL database.

PostgreSQL tests (marker ``postgres``) create their own database on 127.0.0.1:5432 and drop it
afterwards; ``make test`` starts the server if it is down.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.context import Hub
from hub.db.migrate import upgrade
from hub.db.session import make_engine
from hub.keys import InMemoryKeyStore
from hub.settings import Settings

TODAY = dt.date(2026, 11, 15)
PG_ADMIN_URL = os.environ.get(
    "HUB_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def make_hub(url: str, data_dir: Path) -> Hub:
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(data_dir=data_dir, database_url=url, key_file=data_dir / "unused.key")
    return Hub(settings, engine, InMemoryKeyStore.generate(), today=lambda: TODAY)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"ovphub_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, not a test result
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def hub(sqlite_url: str, tmp_path: Path) -> Iterator[Hub]:
    h = make_hub(sqlite_url, tmp_path)
    yield h
    h.engine.dispose()


@pytest.fixture
def pg_hub(pg_url: str, tmp_path: Path) -> Iterator[Hub]:
    h = make_hub(pg_url, tmp_path)
    yield h
    h.engine.dispose()
