"""Shared fixtures: a hub on a temporary SQLite file or a throwaway PostgreSQL database.

Every test gets a database of its own, but migrations run once per session: a *template* is
migrated on first use and each test gets a copy of it — a file copy for SQLite, ``CREATE
DATABASE ... TEMPLATE`` for PostgreSQL. ``factories.make_seed`` and ``factories.copy_hub`` do
the same for any prepared state (see ``api_hub`` in ``tests/hub/api/conftest.py``).

PostgreSQL tests (marker ``postgres``) create their own database on 127.0.0.1:5432 and drop it
afterwards; ``make test`` starts the server if it is down.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from factories import DB_FILE, TODAY, make_hub, make_seed, open_hub
from hub.context import Hub
from hub.db.migrate import upgrade
from hub.db.session import make_engine

PG_ADMIN_URL = os.environ.get(
    "HUB_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Scripts that tests run in a subprocess import ``make_hub`` (and friends) from here.
__all__ = ["PG_ADMIN_URL", "TODAY", "make_hub", "open_hub"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty hub database (folder as made by :func:`make_seed`), built once."""
    return make_seed(tmp_path_factory.mktemp("template") / "migrated", lambda hub: None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / DB_FILE}"


def _admin_engine() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _create_database(admin: Engine, template: str | None = None) -> str:
    """Create a database (a copy of ``template`` if given) and return its URL."""
    name = f"ovphub_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    except Exception as exc:  # pragma: no cover - environment problem, not a test result
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(admin: Engine, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a migrated, empty PostgreSQL database that ``pg_hub`` copies; built on first
    use, dropped at the end of the session. Nothing stays connected to it (PostgreSQL copies
    only a database nobody is connected to)."""
    admin = _admin_engine()
    url = _create_database(admin)
    try:
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url.rsplit("/", 1)[1]
    finally:
        _drop_database(admin, url)
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database of this test's own (not migrated)."""
    admin = _admin_engine()
    url = _create_database(admin)
    try:
        yield url
    finally:
        _drop_database(admin, url)
        admin.dispose()


@pytest.fixture
def hub(sqlite_url: str, sqlite_template: Path, tmp_path: Path) -> Iterator[Hub]:
    """A hub on a new, migrated SQLite database in ``tmp_path``."""
    shutil.copyfile(sqlite_template / DB_FILE, tmp_path / DB_FILE)
    h = open_hub(sqlite_url, tmp_path)
    yield h
    h.engine.dispose()


@pytest.fixture
def pg_hub(pg_template: str, tmp_path: Path) -> Iterator[Hub]:
    """A hub on a new, migrated PostgreSQL database of this test's own."""
    admin = _admin_engine()
    url = _create_database(admin, template=pg_template)
    try:
        h = open_hub(url, tmp_path)
        yield h
        h.engine.dispose()
    finally:
        _drop_database(admin, url)
        admin.dispose()
