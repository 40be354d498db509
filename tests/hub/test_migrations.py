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


@pytest.mark.parametrize("which", ["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def test_migration_0007_goes_down_and_up_again(which: str, request: pytest.FixtureRequest) -> None:
    """0007 drops person_links' foreign keys and person_id index; its downgrade puts them back
    (after dropping any link whose record is gone) and the upgrade takes them off again."""
    from alembic import command
    from sqlalchemy import inspect, text

    from hub.db.migrate import alembic_config, upgrade

    hub: Hub = request.getfixturevalue(which)
    with hub.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO person_links (record_id, person_id, run_id) VALUES (99, 'p-x', 1)")
        )
    with hub.engine.begin() as conn:
        cfg = alembic_config(hub.engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    with hub.engine.connect() as conn:
        links = inspect(conn)
        assert {fk["referred_table"] for fk in links.get_foreign_keys("person_links")} == {
            "records",
            "linkage_runs",
        }
        assert [i["column_names"] for i in links.get_indexes("person_links")] == [["person_id"]]
        assert conn.execute(text("SELECT count(*) FROM person_links")).scalar_one() == 0
    upgrade(hub.engine)
    with hub.engine.connect() as conn:
        assert inspect(conn).get_foreign_keys("person_links") == []
    assert_models_match_migrations(hub)


@pytest.mark.parametrize("which", ["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def test_migration_0009_goes_down_and_up_again(which: str, request: pytest.FixtureRequest) -> None:
    """0009 adds the upload_jobs table; its downgrade drops it (jobs and all), the upgrade makes
    it again, empty."""
    from alembic import command
    from sqlalchemy import inspect, text

    from hub.db.migrate import alembic_config, upgrade

    hub: Hub = request.getfixturevalue(which)
    with hub.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO upload_jobs (id, agreement_id, dataset_id, uploader, file_bytes, "
                "status, rows_done, owner, created_at, heartbeat_at) VALUES ('j1', 'a', 'd', "
                "'u', 1, 'queued', 0, 'h:1:b', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    with hub.engine.begin() as conn:
        cfg = alembic_config(hub.engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    with hub.engine.connect() as conn:
        assert "upload_jobs" not in inspect(conn).get_table_names()
    upgrade(hub.engine)
    with hub.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM upload_jobs")).scalar_one() == 0
    assert_models_match_migrations(hub)


@pytest.mark.parametrize(
    ("below", "columns"),
    [
        ("0009", {"t_ca", "t_az1", "t_az2", "t_az3"}),  # 0010: a community area and its ZIPs
        ("0010", {"t_fh1", "t_fh2", "t_lh1", "t_lh2"}),  # 0011: the halves of the names
    ],
)
@pytest.mark.parametrize("which", ["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def test_token_column_migrations_go_down_and_up_again(
    which: str, below: str, columns: set[str], request: pytest.FixtureRequest
) -> None:
    """A migration that adds token columns to records: its downgrade drops them, the upgrade
    adds them again, empty."""
    from alembic import command
    from sqlalchemy import inspect

    from hub.db.migrate import alembic_config, upgrade

    hub: Hub = request.getfixturevalue(which)
    with hub.engine.begin() as conn:
        cfg = alembic_config(hub.engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, below)
    with hub.engine.connect() as conn:
        assert not columns & {c["name"] for c in inspect(conn).get_columns("records")}
    upgrade(hub.engine)
    with hub.engine.connect() as conn:
        assert columns <= {c["name"] for c in inspect(conn).get_columns("records")}
    assert_models_match_migrations(hub)
