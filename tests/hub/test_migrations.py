from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.context import Hub
from hub.db.models import Base


def assert_models_match_migrations(hub: Hub) -> None:
    with hub.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree; add a migration: {diff}"


def test_models_and_migrations_agree_on_sqlite(hub: Hub) -> None:
    assert_models_match_migrations(hub)


@pytest.mark.postgres
def test_models_and_migrations_agree_on_postgres(pg_hub: Hub) -> None:
    assert_models_match_migrations(pg_hub)
