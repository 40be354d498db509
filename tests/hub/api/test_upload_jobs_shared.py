"""Upload jobs live in the database: a second process (here: a second ``Hub`` and registry on the
same database) sees a job and its progress, and a job whose process died is reported failed
after start-up recovery, its spool file gone. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from factories import open_hub
from hub.api.app import create_app
from hub.auth.policies import Actor, Role
from hub.auth.service import actor_of, get_user
from hub.context import Hub
from hub.db.models import UploadJobRow
from hub.ingest import jobs as jobs_module
from hub.ingest.jobs import UploadJobs, process_owner

from .conftest import POLICE, POLICE_AGREEMENT, add_examples_and_users, bearer, issue
from .test_upload_jobs import put, wait_for

ADMIN = Actor(0, "admin", Role.admin, None)
TESTS = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest) -> Hub:
    """A hub with the example agreements and users, on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        hub: Hub = request.getfixturevalue("api_hub")
        return hub
    hub = request.getfixturevalue("pg_hub")
    add_examples_and_users(hub)
    return hub


@pytest.fixture
def second(served: Hub, tmp_path: Path) -> Iterator[Hub]:
    """Another ``Hub`` on the same database, with an engine of its own: another process."""
    other = open_hub(served.engine.url.render_as_string(hide_password=False), tmp_path / "other")
    yield other
    other.engine.dispose()


def steward(hub: Hub) -> Actor:
    with hub.session() as s:
        return actor_of(get_user(s, "steward-police"))


def test_a_job_is_seen_through_a_second_hub_on_the_same_database(
    served: Hub,
    second: Hub,
    police_csv: bytes,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While it runs (PostgreSQL: with its rows done, written at most once a second) and once it
    has ended, the job another process took reads the same from here."""
    from fastapi.testclient import TestClient

    postgres = served.engine.dialect.name == "postgresql"
    first_chunk, go_on = threading.Event(), threading.Event()
    progress = jobs_module.RunningJob.progress

    def pausing(job: jobs_module.RunningJob, rows: int) -> None:
        progress(job, rows)
        if postgres and rows > 0 and not first_chunk.is_set():
            first_chunk.set()
            assert go_on.wait(30)

    real = jobs_module.UploadAttempt.run

    def small_chunks(self: Any, hub: Hub, content: Any, **kw: Any) -> Any:
        from hub.ingest import service

        upload = service.upload_extract
        monkeypatch.setattr(
            service, "upload_extract", lambda *a, **k: upload(*a, chunk_rows=40, **k)
        )
        return real(self, hub, content, **kw)

    monkeypatch.setattr(jobs_module.RunningJob, "progress", pausing)
    monkeypatch.setattr(jobs_module.UploadAttempt, "run", small_chunks)
    headers = bearer(issue(served, "steward-police"))
    elsewhere = UploadJobs(second)
    with TestClient(create_app(served, spool_dir=spool_dir)) as client:
        job_id = put(client, headers, police_csv, run_async=True).json()["job_id"]
        if postgres:
            assert first_chunk.wait(30)
            running = elsewhere.get(steward(second), job_id).view()
            assert running["status"] == "running" and running["rows_done"] == 40
            go_on.set()
        job = wait_for(client, headers, job_id)
    assert job["status"] == "accepted"
    seen = elsewhere.get(steward(second), job_id).view()
    assert seen == job
    assert [j.id for j in elsewhere.visible(ADMIN)] == [job_id]
    elsewhere.shutdown()


DYING_SERVER = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    from pathlib import Path
    from conftest import open_hub
    from hub.auth.service import actor_of, get_user
    from hub.ingest import jobs, service, spool as spool_module

    spool_module._detach = lambda path: False  # the spool keeps its name, as on Windows
    hub = open_hub({url!r}, Path({data!r}))
    with hub.session() as s:
        steward = actor_of(get_user(s, "steward-police"))
    upload = service.upload_extract

    def dying(*args, progress=None, **kwargs):
        def report(rows):
            if rows:
                print("running", flush=True)
                os.kill(os.getpid(), 9)  # the server dies half-way through the job
        return upload(*args, progress=report, chunk_rows=40, **kwargs)

    service.upload_extract = dying
    registry = jobs.UploadJobs(hub)
    spool = spool_module.EncryptedSpool({spool_dir!r})
    spool.write(Path({path!r}).read_bytes())
    registry.submit(steward, agreement_id={agreement!r}, dataset_id={dataset!r}, spool=spool)
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the job's first progress report kills this process
        time.sleep(0.05)
    sys.exit("the job reported no progress within 60 s: the server was never killed")
    """
)


def test_a_job_of_a_server_that_died_is_failed_at_start_up_and_its_spool_deleted(
    served: Hub, police_csv: bytes, spool_dir: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    path = tmp_path / "police.csv"
    path.write_bytes(police_csv)
    script = DYING_SERVER.format(
        root=str(TESTS.parent),
        tests=str(TESTS),
        url=served.engine.url.render_as_string(hide_password=False),
        data=str(tmp_path / "child"),
        spool_dir=str(spool_dir),
        path=str(path),
        agreement=POLICE_AGREEMENT,
        dataset=POLICE,
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=TESTS
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert "running" in child.stdout
    with served.session() as s:
        (row,) = s.execute(select(UploadJobRow)).scalars()
        assert row.status == "running" and row.spool_path is not None
    assert Path(row.spool_path).exists()  # the dead server's spool, unreadable now

    headers = bearer(issue(served, "steward-police"))
    with TestClient(create_app(served, spool_dir=spool_dir)) as client:  # start-up
        with served.session() as s:  # recovered by start-up, before any status read
            assert s.get(UploadJobRow, row.id).status == "failed"  # type: ignore[union-attr]
        assert list(spool_dir.iterdir()) == []
        job = client.get(f"/api/v1/uploads/jobs/{row.id}", headers=headers).json()
    assert job["status"] == "failed" and job["error"]["error"] == "server_restarted"
    assert "Upload the file again" in job["error"]["detail"]
    assert list(spool_dir.iterdir()) == []
    with served.session() as s:
        assert s.execute(select(UploadJobRow.status)).scalars().all() == ["failed"]
    (abandoned,) = events_of(served, "upload.abandon")
    assert abandoned["details"] == {
        "job": row.id,
        "agreement": POLICE_AGREEMENT,
        "dataset": POLICE,
        "reason": "server_restarted",
    }
    assert abandoned["actor"].startswith("steward-police")


def job_row(job_id: str, owner: str, *, heartbeat: dt.datetime, **kw: Any) -> UploadJobRow:
    return UploadJobRow(
        id=job_id,
        agreement_id=POLICE_AGREEMENT,
        dataset_id=POLICE,
        party_id="org:police",
        uploader="steward-police",
        file_bytes=10,
        status=kw.pop("status", "running"),
        rows_done=0,
        owner=owner,
        created_at=heartbeat,
        heartbeat_at=heartbeat,
        **kw,
    )


def events_of(hub: Hub, action: str) -> list[dict[str, Any]]:
    import json

    from hub.db.models import AuditEvent

    with hub.engine.connect() as conn:
        payloads = conn.execute(
            select(AuditEvent.payload).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).scalars()
        return [json.loads(p) for p in payloads]


def dead_pid() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return done.stdout.strip()


def test_recovery_fails_only_jobs_whose_process_is_gone(served: Hub) -> None:
    """Jobs a registry of this process holds and a live process's stay; one of this process
    that no registry holds (its final write failed), a dead pid on this host, this pid under
    another boot, and (PostgreSQL, which has heartbeats) a silent process elsewhere are gone.
    Finished jobs past ``keep_finished`` are deleted."""
    me = process_owner()
    host, pid, _ = me.rsplit(":", 2)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(minutes=5)
    rows = [
        job_row("mine", me, heartbeat=old),
        job_row("mine-unheld", me, heartbeat=now),
        job_row("alive-here", f"{host}:{os.getppid()}:x", heartbeat=now, status="queued"),
        job_row("dead-pid", f"{host}:{dead.stdout.strip()}:x", heartbeat=now),
        job_row("reused-pid", f"{host}:{pid}:an-earlier-boot", heartbeat=now),
        job_row("elsewhere-fresh", "other-host.example:1:x", heartbeat=now),
        job_row("elsewhere-silent", "other-host.example:2:x", heartbeat=old),
        job_row(
            "long-done",
            me,
            heartbeat=old,
            status="accepted",
            finished_at=now - dt.timedelta(days=2),
        ),
    ]
    with served.session() as s:
        s.add_all(rows)
    registry = UploadJobs(served)
    postgres = served.engine.dialect.name == "postgresql"
    jobs_module.PROCESS_JOBS.hold("mine")
    try:
        assert registry.recover() == (4 if postgres else 3)
    finally:
        jobs_module.PROCESS_JOBS.release("mine")
    with served.session() as s:
        status = {i: st for i, st in s.execute(select(UploadJobRow.id, UploadJobRow.status))}
    assert status == {
        "mine": "running",
        "mine-unheld": "failed",
        "alive-here": "queued",
        "dead-pid": "failed",
        "reused-pid": "failed",
        "elsewhere-fresh": "running",
        "elsewhere-silent": "failed" if postgres else "running",
    }
    failed = registry.get(ADMIN, "dead-pid")
    assert failed.result is not None and failed.result["error"] == "server_restarted"
    assert socket.gethostname() == host
    registry.shutdown()


def test_a_job_that_finished_after_recovery_read_it_is_left_as_it_finished(served: Hub) -> None:
    """The race of a job finishing and a recovery sweep: the sweep judged the job lost from
    its (unlocked) read, the job then finished; the sweep's conditional UPDATE leaves it."""
    with served.session() as s:
        s.add(
            job_row(
                "racing",
                f"{socket.gethostname()}:{dead_pid()}:x",
                heartbeat=dt.datetime.now(dt.UTC),
            )
        )
    registry = UploadJobs(served)
    stale = registry.judge()
    assert "racing" in stale.ids and stale.dead_owners
    receipt = {"upload_id": "u-1", "status": "accepted"}
    with served.session() as s:  # the owner finishes it now
        row = s.get(UploadJobRow, "racing")
        assert row is not None
        row.status, row.result = "accepted", receipt
        row.finished_at = dt.datetime.now(dt.UTC)
    assert registry.fail(stale) == []
    with served.session() as s:
        row = s.get(UploadJobRow, "racing")
        assert row is not None and (row.status, row.result) == ("accepted", receipt)
    assert events_of(served, "upload.abandon") == []
    registry.shutdown()


def test_a_live_job_failed_by_recovery_stores_nothing(
    served: Hub,
    second: Hub,
    police_csv: bytes,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process wrongly judges a running job's process dead (a pid check gone wrong, a
    clock skewed) and fails it: the upload, which goes on, can no longer commit. It rolls back:
    no upload or record is stored, and the job stays failed."""
    from fastapi.testclient import TestClient

    from .test_uploads import table_counts

    elsewhere = UploadJobs(second)
    elsewhere.owner = "other-host.example:1:x"  # another process
    monkeypatch.setattr(jobs_module, "owner_is_dead", lambda owner, me: True)
    run_spool = jobs_module.UploadAttempt.run_spool
    failed_meanwhile: list[int] = []

    def failed_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        failed_meanwhile.append(elsewhere.recover())  # the job is running, its upload not begun
        return run_spool(self, *args, **kwargs)

    monkeypatch.setattr(jobs_module.UploadAttempt, "run_spool", failed_first)
    headers = bearer(issue(served, "steward-police"))
    before = table_counts(served)
    with TestClient(create_app(served, spool_dir=spool_dir)) as client:
        job_id = put(client, headers, police_csv, run_async=True).json()["job_id"]
        job = wait_for(client, headers, job_id)
        registry: UploadJobs = client.app.state.upload_jobs  # type: ignore[attr-defined]
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while registry.live(job_id) is not None:  # the job's thread lets it go
            assert dt.datetime.now() < deadline, "the job thread never ended"
            threading.Event().wait(0.02)
    assert failed_meanwhile == [1]
    assert job["status"] == "failed" and job["error"]["error"] == "server_restarted"
    after = table_counts(served)
    assert (after["uploads"], after["records"]) == (before["uploads"], before["records"])
    with served.session() as s:
        row = s.get(UploadJobRow, job_id)
        assert row is not None and row.status == "failed"
    assert [e["details"]["job"] for e in events_of(served, "upload.abandon")] == [job_id]
    assert events_of(served, "upload.reject") == []  # one failure, audited once
    elsewhere.shutdown()


def test_a_rejected_job_stores_no_column_name_from_the_file(
    served: Hub, police_csv: bytes, spool_dir: Path
) -> None:
    """The file's header names an unlisted column "Marquise Whitfield": the job is rejected,
    its stored row never holds that text (the report is redacted, as in the audit log), the
    process that ran it still shows the steward the full report, and another process the
    redacted one."""
    from fastapi.testclient import TestClient

    header, _, rest = police_csv.partition(b"\n")
    lines = [header + b",Marquise Whitfield"] + [line + b",x" for line in rest.split(b"\n") if line]
    content = b"\n".join(lines) + b"\n"
    headers = bearer(issue(served, "steward-police"))
    with TestClient(create_app(served, spool_dir=spool_dir)) as client:
        job_id = put(client, headers, content, run_async=True).json()["job_id"]
        job = wait_for(client, headers, job_id)
    assert job["status"] == "rejected"
    assert "Marquise Whitfield" in str(job["rejection"])  # the steward who sent it sees it
    with served.engine.connect() as conn:
        stored = conn.execute(select(UploadJobRow.__table__).where(UploadJobRow.id == job_id)).one()
    assert "Marquise Whitfield" not in str(tuple(stored))
    findings = stored.result["report"]["findings"]
    unknown = [f for f in findings if f["rule"] == "unknown_column"]
    assert unknown and all(f["column"] is None for f in unknown)
    elsewhere = UploadJobs(served)
    seen = elsewhere.get(ADMIN, job_id).view()
    assert seen["status"] == "rejected" and "Marquise Whitfield" not in str(seen)
    elsewhere.shutdown()


def test_status_reads_write_nothing_and_recovery_deletes_only_spools_in_its_directory(
    served: Hub, tmp_path: Path
) -> None:
    """A read leaves a lost job as it is (the sweep fails it); the sweep deletes a lost job's
    spool in the spool directory, never a file a row names elsewhere."""
    spools, outside = tmp_path / "spools", tmp_path / "outside"
    spools.mkdir()
    outside.mkdir()
    inside_file = spools / "ovphub-spool-a.bin"
    outside_file = outside / "ovphub-spool-b.bin"
    other_name = spools / "hub.db.bin"
    for f in (inside_file, outside_file, other_name):
        f.write_bytes(b"x")
    owner = f"{socket.gethostname()}:{dead_pid()}:x"
    now = dt.datetime.now(dt.UTC)
    with served.session() as s:
        s.add_all(
            [
                job_row("in", owner, heartbeat=now, spool_path=str(inside_file)),
                job_row("out", owner, heartbeat=now, spool_path=str(outside_file)),
                job_row(
                    "traversal",
                    owner,
                    heartbeat=now,
                    spool_path=str(spools / ".." / "outside" / outside_file.name),
                ),
                job_row("named", owner, heartbeat=now, spool_path=str(other_name)),
            ]
        )
    registry = UploadJobs(served, spool_dir=spools)
    assert registry.get(ADMIN, "in").status == "running"
    assert [j.status for j in registry.visible(ADMIN)] == ["running"] * 4
    assert registry.recover() == 4
    assert not inside_file.exists()
    assert outside_file.exists() and other_name.exists()
    assert {j.status for j in registry.visible(ADMIN)} == {"failed"}
    registry.shutdown()


def test_a_final_write_that_keeps_failing_leaves_the_job_to_the_sweep(
    served: Hub, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejection whose status write fails is retried; if every try fails, the job is no
    longer held by this process, so the next sweep fails it (never "running" forever). A write
    that fails once and then succeeds records the rejection."""
    from fastapi.testclient import TestClient

    from .test_upload_jobs import bad_police_csv

    monkeypatch.setattr(jobs_module, "FINAL_WRITE_BACKOFF", (0.01, 0.01))
    move = UploadJobs.move
    failures = {"left": 1}

    def flaky(self: UploadJobs, job_id: str, to: Any, *args: Any, **kw: Any) -> bool:
        final = to in (jobs_module.JobStatus.rejected, jobs_module.JobStatus.failed)
        if final and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError("the database went away")
        return move(self, job_id, to, *args, **kw)

    monkeypatch.setattr(UploadJobs, "move", flaky)
    headers = bearer(issue(served, "steward-police"))
    with TestClient(create_app(served, spool_dir=spool_dir)) as client:
        retried = put(client, headers, bad_police_csv(), run_async=True).json()["job_id"]
        assert wait_for(client, headers, retried)["status"] == "rejected"

        failures["left"] = 10**6
        lost = put(client, headers, b"x" + bad_police_csv(), run_async=True).json()["job_id"]
        registry: UploadJobs = client.app.state.upload_jobs  # type: ignore[attr-defined]
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while registry.live(lost) is not None:
            assert dt.datetime.now() < deadline, "the job thread never ended"
            threading.Event().wait(0.02)
        assert registry.get(ADMIN, lost).status == "running"  # its final write never landed
        assert registry.recover() == 1
        job = registry.get(ADMIN, lost)
        assert job.status == "failed" and job.result == jobs_module.SERVER_RESTARTED


def test_the_sweeper_thread_fails_a_lost_job_while_the_app_runs(
    served: Hub, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setattr(served.settings, "upload_job_sweep_seconds", 0.05)
    with TestClient(create_app(served, spool_dir=spool_dir)):
        owner = f"{socket.gethostname()}:{dead_pid()}:x"
        with served.session() as s:  # a job lost after start-up
            s.add(job_row("lost-later", owner, heartbeat=dt.datetime.now(dt.UTC)))
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while True:
            with served.session() as s:
                row = s.get(UploadJobRow, "lost-later")
                assert row is not None
                if row.status == "failed":
                    break
            assert dt.datetime.now() < deadline, "the sweeper never failed the lost job"
            threading.Event().wait(0.05)


def test_a_heartbeat_touches_only_jobs_still_running_here(served: Hub) -> None:
    registry = UploadJobs(served)
    now = dt.datetime.now(dt.UTC)
    with served.session() as s:
        s.add_all(
            [
                job_row("beating", registry.owner, heartbeat=now),
                job_row("failed-meanwhile", registry.owner, heartbeat=now, status="failed"),
                job_row("someone-elses", "other-host.example:1:x", heartbeat=now),
            ]
        )
    assert registry.beat(["beating", "failed-meanwhile", "someone-elses"]) == ["beating"]
    registry.shutdown()


def test_an_owner_from_an_earlier_boot_of_this_host_is_dead() -> None:
    host = socket.gethostname()
    me = f"{host}:{os.getpid()}:bbbbbbbb.mine"
    alive = os.getppid()
    assert jobs_module.owner_is_dead(f"{host}:{alive}:aaaaaaaa.theirs", me)
    assert not jobs_module.owner_is_dead(f"{host}:{alive}:bbbbbbbb.theirs", me)
    assert not jobs_module.owner_is_dead(f"{host}:{alive}:no-boot-id", me)
    assert not jobs_module.owner_is_dead(me, me)  # this process: judged by its registries
    assert jobs_module.owner_is_dead(f"{host}:{os.getpid()}:bbbbbbbb.earlier", me)


def test_an_accepted_jobs_stored_receipt_names_no_column_from_the_file() -> None:
    """Under an agreement that drops unlisted columns the receipt warns about each by name;
    ``upload_jobs`` stores the warning without it (the running process keeps the full one)."""
    warning = {
        "rule": "unknown_column",
        "column": "Marquise Whitfield",
        "severity": "warning",
        "failing_rows": 0,
        "first_rows": [],
        "message": 'The file has a column "Marquise Whitfield" that the agreement does not list.',
    }
    declared = {**warning, "rule": "missing_column", "column": "victim_dob", "message": "m"}
    stored = jobs_module.stored_receipt({"upload_id": "u", "warnings": [warning, declared]})
    assert "Marquise Whitfield" not in str(stored)
    assert stored["upload_id"] == "u" and stored["warnings"][1] == declared
    assert stored["warnings"][0]["rule"] == "unknown_column"
