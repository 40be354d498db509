"""Ingest on PostgreSQL: COPY, corrections, agencies uploading at once, a killed upload."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from factories import load_examples, make_actor, make_police_csv, make_police_row
from hub.auth.policies import Actor, Role
from hub.context import Hub
from hub.db.models import AuditEvent, Record, Upload
from hub.ingest.service import Receipt, upload_extract
from hub.synth import generate

pytestmark = pytest.mark.postgres

POLICE = ("dsa-police-victimizations", "police_victimizations")
ED = ("dsa-hospital-ed-injury", "ed_injury_visits")


@pytest.fixture
def ready(pg_hub: Hub) -> Hub:
    load_examples(pg_hub)
    make_actor(pg_hub, "steward-police", Role.steward, "org:police")
    make_actor(pg_hub, "steward-hospital", Role.steward, "org:hospital")
    return pg_hub


def actor(hub: Hub, name: str) -> Actor:
    from hub.auth.service import actor_of
    from hub.db.models import User

    with hub.session() as s:
        return actor_of(s.execute(select(User).where(User.name == name)).scalar_one())


def upload(hub: Hub, who: str, target: tuple[str, str], content: bytes | Path, **kw) -> Receipt:  # type: ignore[no-untyped-def]
    steward = actor(hub, who)
    return hub.transact(
        lambda s: upload_extract(
            s,
            hub.keys,
            steward,
            agreement_id=target[0],
            dataset_id=target[1],
            content=content,
            today=hub.today(),
            **kw,
        )
    )


def counts(hub: Hub) -> tuple[int, int, int]:
    with hub.session() as s:
        return (
            s.execute(select(func.count()).select_from(Record)).scalar_one(),
            s.execute(select(func.count()).select_from(Upload)).scalar_one(),
            s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        )


def test_copy_stores_what_the_sqlite_path_stores_and_corrections_count(ready: Hub) -> None:
    rows = [make_police_row(i) for i in range(1, 8)]
    rows[3]["narrative"] = 'quote " back\\slash \t tab'  # dropped field, still parsed
    first = upload(ready, "steward-police", POLICE, make_police_csv(rows), chunk_rows=3)
    assert (first.rows_added, first.rows_replaced, first.rows_unchanged) == (7, 0, 0)
    with ready.session() as s:
        values = s.execute(select(Record.values)).scalars().all()
        tokens = s.execute(select(Record.t_fn, Record.t_dob)).all()
    assert all(v["victim_age"] == "25-34" and v["fatal"] == "false" for v in values)
    assert all(isinstance(a, int) and isinstance(b, int) for a, b in tokens)
    fixed = [make_police_row(1), make_police_row(2, victim_sex="F"), make_police_row(99)]
    second = upload(ready, "steward-police", POLICE, make_police_csv(fixed), chunk_rows=2)
    assert (second.rows_added, second.rows_replaced, second.rows_unchanged) == (1, 1, 1)
    assert counts(ready)[0] == 8


def test_a_rejected_chunk_after_stored_chunks_leaves_nothing(ready: Hub) -> None:
    before = counts(ready)
    rows = [make_police_row(i) for i in range(1, 10)]
    rows[8]["victim_sex"] = "Q"  # in the last chunk, after two chunks were copied
    from hub.errors import UploadRejected

    with pytest.raises(UploadRejected) as info:
        upload(ready, "steward-police", POLICE, make_police_csv(rows), chunk_rows=3)
    assert info.value.extra["report"]["findings"][0]["first_rows"] == [9]
    assert counts(ready) == before


def test_uploads_from_two_agencies_run_at_the_same_time(ready: Hub, tmp_path: Path) -> None:
    generate(tmp_path, people=300, seed=5, end=dt.date(2026, 10, 31))
    ed = (tmp_path / "ed_injury_visits.csv").read_bytes()
    police = (tmp_path / "police_victimizations.csv").read_bytes()
    # Each upload waits, after its first chunk is stored, until the other has stored one too.
    # If one upload blocked the other (a table lock, a serialized writer), this would time out.
    barrier = threading.Barrier(2, timeout=60)
    met: list[bool] = []

    def meet(rows: int) -> None:
        if rows <= 20 and not met:
            barrier.wait()
            met.append(True)

    results: dict[str, Receipt] = {}
    errors: list[BaseException] = []

    def run(name: str, who: str, target: tuple[str, str], content: bytes) -> None:
        try:
            results[name] = upload(ready, who, target, content, chunk_rows=20, progress=meet)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("police", "steward-police", POLICE, police)),
        threading.Thread(target=run, args=("ed", "steward-hospital", ED, ed)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert results["police"].rows_added > 20 and results["ed"].rows_added > 20
    assert len(met) >= 1


KILLED_UPLOAD = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    from pathlib import Path
    from conftest import make_hub
    from hub.ingest.service import upload_extract
    from test_ingest_postgres import actor

    hub = make_hub({url!r}, Path({data!r}))
    steward = actor(hub, "steward-police")

    def progress(rows):
        if rows >= 40:
            print("stored-some", flush=True)
            os.kill(os.getpid(), 9)  # killed half-way, inside the open transaction

    hub.transact(lambda s: upload_extract(
        s, hub.keys, steward, agreement_id="dsa-police-victimizations",
        dataset_id="police_victimizations", content=Path({path!r}), today=hub.today(),
        progress=progress, chunk_rows=20))
    """
)


def test_an_upload_killed_half_way_leaves_nothing_and_the_hub_keeps_serving(
    ready: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "police.csv"
    path.write_bytes(make_police_csv([make_police_row(i) for i in range(1, 101)]))
    before = counts(ready)
    root = str(Path(__file__).resolve().parents[2])
    script = KILLED_UPLOAD.format(
        root=root,
        tests=str(Path(__file__).resolve().parents[1]),
        url=ready.engine.url.render_as_string(hide_password=False),
        data=str(tmp_path / "child"),
        path=str(path),
    )
    child = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(Path(__file__).resolve().parent),
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert "stored-some" in child.stdout
    deadline = time.monotonic() + 10
    while counts(ready) != before and time.monotonic() < deadline:
        time.sleep(0.2)  # the server notices the dead connection and rolls back
    assert counts(ready) == before
    # and the same file uploads cleanly afterwards
    receipt = upload(ready, "steward-police", POLICE, path)
    assert receipt.rows_added == 100 and not receipt.duplicate


ORPHANS = (
    "SELECT count(*) FROM records r LEFT JOIN uploads u ON u.id = r.upload_id "
    "AND u.dataset_id = r.dataset_id AND u.agreement_version_id = r.agreement_version_id "
    "WHERE u.id IS NULL"
)


def test_an_error_mid_copy_tells_the_server_nothing_from_the_file(
    ready: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL logs the message a client gives when it abandons a COPY. An error raised while
    # pseudonymizing can quote a cell; the hub must send a fixed sentence instead.
    import psycopg

    from hub.pseudonymize import Pseudonymizer

    secret = "Whit" + "field"
    real = Pseudonymizer.frame
    calls: list[int] = []

    def failing(self: Pseudonymizer, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:  # the first chunk is already in the open COPY
            raise ValueError(f"could not convert {secret!r}")
        return real(self, *args, **kw)  # type: ignore[arg-type]

    told: list[str] = []
    finish = psycopg.copy.LibpqWriter.finish

    def spy(self: object, exc: BaseException | None = None) -> None:
        told.append("" if exc is None else str(exc))
        finish(self, exc)  # type: ignore[arg-type]

    monkeypatch.setattr(Pseudonymizer, "frame", failing)
    monkeypatch.setattr(psycopg.copy.LibpqWriter, "finish", spy)
    before = counts(ready)
    rows = [make_police_row(i) for i in range(1, 8)]
    with pytest.raises(ValueError, match=secret):
        upload(ready, "steward-police", POLICE, make_police_csv(rows), chunk_rows=3)
    assert told and all(secret not in t for t in told)
    assert counts(ready) == before


def test_a_rejection_leaves_nothing_even_when_the_caller_commits(ready: Hub) -> None:
    # upload_extract works in a savepoint: a caller that catches the rejection and commits
    # the rest of its transaction still stores nothing of the upload.
    from sqlalchemy import text

    from hub.errors import UploadRejected

    before = counts(ready)
    steward = actor(ready, "steward-police")
    rows = [make_police_row(i) for i in range(1, 10)]
    rows[8]["victim_sex"] = "Q"
    with ready.session() as s:
        with pytest.raises(UploadRejected):
            upload_extract(
                s,
                ready.keys,
                steward,
                agreement_id=POLICE[0],
                dataset_id=POLICE[1],
                content=make_police_csv(rows),
                today=ready.today(),
                chunk_rows=3,
            )
        s.commit()
    assert counts(ready) == before
    with ready.session() as s:
        assert s.execute(text(ORPHANS)).scalar_one() == 0


def test_every_copied_record_belongs_to_its_upload(ready: Hub) -> None:
    from sqlalchemy import text

    upload(
        ready,
        "steward-police",
        POLICE,
        make_police_csv([make_police_row(i) for i in range(1, 8)]),
        chunk_rows=3,
    )
    fixed = [make_police_row(2, victim_sex="F"), make_police_row(30)]
    upload(ready, "steward-police", POLICE, make_police_csv(fixed), chunk_rows=1)
    with ready.session() as s:
        assert s.execute(text(ORPHANS)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Record)).scalar_one() == 8


AWKWARD = [
    'quote " and "" doubled',
    "back\\slash \\N and \\x41",
    "tab\there, comma, and\nnewline\r\n",
    "Zoë Ñúñez 東京 \U0001f600",
    "",
    None,
    "=HYPERLINK(1)",
    "null",
    "plain",
]


MANY = [f"Zoë {i} \\ «{i % 7}»" for i in range(12_000)]  # distinct, none plain ASCII


@pytest.mark.parametrize(
    ("notes", "encoded"),
    [(AWKWARD, False), (AWKWARD, True), (MANY, True), (MANY, False)],
    ids=["awkward-plain-array", "awkward-dictionary", "many-dictionary", "many-plain-array"],
)
def test_copy_stores_awkward_values_exactly_as_given(
    hub: Hub, pg_hub: Hub, notes: list[str | None], encoded: bool
) -> None:
    """The COPY text must round-trip every stored text exactly: quotes, backslashes, COPY's
    own escapes, control characters, non-ASCII, the empty string (not NULL) and NULL, and
    thousands of distinct such values in one chunk. The same chunk written through SQLite's
    INSERTs is the reference."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from hub.ingest.store import Chunk, RecordWriter
    from hub.pseudonymize import PseudonymizedFrame

    n = len(notes)
    text = pa.array(notes, pa.string())
    column = pc.dictionary_encode(text) if encoded else text
    keys = [f"{i:064x}" for i in range(n, 0, -1)]  # not in key order
    frame = PseudonymizedFrame(
        pa.array(keys, pa.string()),
        {"note": column, "code": pa.array(["A"] * n, pa.string())},
        {"t_fn": pa.array([i if i % 2 else None for i in range(n)], pa.int64())},
    )
    chunk = Chunk(frame, np.arange(n) % 3 == 0, np.arange(n) % 2 == 0)
    stored = {}
    for h in (hub, pg_hub):
        with h.session() as s:
            writer = RecordWriter(s, dataset_id="ds", upload_id="u" * 32, version_id=1, key_id="k1")
            writer.write(chunk)
            writer.finish()
            s.flush()
            rows = s.execute(
                select(
                    Record.record_key,
                    Record.values,
                    Record.aggregate_only,
                    Record.no_linkage,
                    Record.t_fn,
                    Record.t_ln,
                )
            ).all()
            s.rollback()
        stored[h.engine.dialect.name] = sorted(tuple(r) for r in rows)
    assert stored["postgresql"] == stored["sqlite"]
    kept = {key: values["note"] for key, values, *_ in stored["postgresql"]}
    assert [kept[k] for k in keys] == notes
