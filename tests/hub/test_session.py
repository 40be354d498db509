from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from hub import audit
from hub.context import Hub


def test_concurrent_read_then_write_transactions_on_sqlite_wait_instead_of_failing(
    hub: Hub,
) -> None:
    """Audit appends read the chain head and then write: the classic pattern that fails with
    'database is locked' under deferred SQLite transactions."""

    def append(i: int) -> int:
        def work(s: Session) -> int:
            return audit.append(s, audit.Event("t", "x", f"x:{i}", {})).seq

        return hub.transact(work)

    with ThreadPoolExecutor(max_workers=8) as pool:
        seqs = list(pool.map(append, range(40)))
    assert sorted(seqs) == list(range(1, 41))
    with hub.session() as s:
        assert audit.verify(s).ok


def test_a_failed_unit_of_work_leaves_nothing(hub: Hub) -> None:
    try:
        with hub.session() as s:
            audit.append(s, audit.Event("t", "x", "x", {}))
            raise RuntimeError("crash mid-way")
    except RuntimeError:
        pass
    with hub.session() as s:
        assert audit.count(s) == 0


def test_as_utc_gives_the_same_moment_in_utc() -> None:
    import datetime as dt

    from hub.db.models import as_utc

    naive = dt.datetime(2026, 3, 1, 12, 30)  # as SQLite gives a stored UTC time back
    assert as_utc(naive) == dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    chicago = dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
    assert as_utc(chicago).tzinfo == dt.UTC and as_utc(chicago).hour == 12
