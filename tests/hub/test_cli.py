"""``ovphub`` as a user runs it: one scenario per test, on a SQLite hub in a temporary directory
configured through ``HUB_*`` variables (the CLI builds its hub from the environment)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from contracts.loader import example_agreement_paths
from factories import assert_names_no_value_of, make_police_csv, make_police_row
from hub import context
from hub.cli.main import app

TODAY = dt.date(2026, 11, 15)  # the synthetic data's reporting date, inside the agreements
POLICE = ("--agreement", "dsa-police-victimizations", "--dataset", "police_victimizations")

Run = Callable[..., Result]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HUB_*`` pointing into ``tmp_path``, and the hub's clock pinned to :data:`TODAY`."""
    data = tmp_path / "var"
    monkeypatch.setenv("HUB_DATA_DIR", str(data))
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{data / 'hub.db'}")
    monkeypatch.setenv("HUB_KEY_FILE", str(tmp_path / "keys" / "hub.key"))
    monkeypatch.delenv("HUB_ENVIRONMENT", raising=False)
    build = context.build_hub

    def pinned(*args: Any, **kwargs: Any) -> context.Hub:
        hub = build(*args, **kwargs)
        hub.today = lambda: TODAY
        return hub

    monkeypatch.setattr(context, "build_hub", pinned)
    return data


@pytest.fixture
def run(env: Path) -> Run:
    """``run("users", "add", ...)``: invoke ``ovphub``; fail on a traceback."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args))
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hub.synth import generate

    out = tmp_path_factory.mktemp("cli-extracts")
    generate(out, people=150, seed=9)
    return out


@pytest.fixture
def ready(run: Run) -> Run:
    """Agreements set up (signed and active), a police steward and an analyst created."""
    run("agreements", "setup", "--signer-keys", str(Path(os.environ["HUB_DATA_DIR"]) / "keys"))
    run("users", "add", "steward-police", "--role", "steward", "--party", "org:police")
    run("users", "add", "analyst", "--role", "analyst")
    return run


@pytest.fixture
def linked(ready: Run, extracts: Path) -> Run:
    """The police extract uploaded and linked."""
    ready("--as", "steward-police", "upload", str(extracts / "police_victimizations.csv"), *POLICE)
    ready("link", "run")
    return ready


def db(env: Path) -> Any:
    return create_engine(f"sqlite:///{env / 'hub.db'}")


# --- agreements and users ---------------------------------------------------------------------


def test_agreements_load_registers_the_examples_once(run: Run) -> None:
    first = json.loads(run("agreements", "load").stdout)
    n = len(example_agreement_paths())
    assert len(first) == n and all(a["created"] and a["status"] == "draft" for a in first)
    again = json.loads(run("agreements", "load").stdout)
    assert [a["created"] for a in again] == [False] * n


def test_agreements_load_refuses_a_missing_file_without_a_traceback(run: Run) -> None:
    result = run("agreements", "load", "no-such.yaml", code=2)
    assert "no-such.yaml" in result.stderr


def test_users_add_creates_a_steward_for_an_agency(run: Run) -> None:
    run("agreements", "load")
    out = run("users", "add", "steward-police", "--role", "steward", "--party", "org:police")
    assert json.loads(out.stdout) == {
        "user": "steward-police",
        "role": "steward",
        "party": "org:police",
    }
    again = run(
        "users", "add", "steward-police", "--role", "steward", "--party", "org:police", code=1
    )
    assert "already exists" in again.stderr
    assert "unknown role" in run("users", "add", "x", "--role", "boss", code=1).stderr


def test_users_token_prints_the_token_once_and_stores_only_its_hash(ready: Run, env: Path) -> None:
    result = ready("users", "token", "steward-police")
    token = result.stdout.strip()
    assert token.startswith("ovp_") and "\n" not in token
    assert "cannot show it again" in result.stderr
    engine = db(env)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_sha256 FROM api_tokens")).scalars().all()
        audit = " ".join(conn.execute(text("SELECT payload FROM audit_log")).scalars())
    engine.dispose()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in audit
    assert ready("users", "token", "steward-police").stdout.strip() != token


def test_only_an_admin_manages_users(ready: Run) -> None:
    result = ready("--as", "analyst", "users", "token", "analyst", code=1)
    assert "may not users manage" in result.stderr


def test_an_unknown_user_in_as_exits_1_with_a_sentence(ready: Run) -> None:
    result = ready("--as", "nobody", "catalogue", code=1)
    assert "no active user named 'nobody'" in result.stderr


# --- upload -----------------------------------------------------------------------------------


def test_a_steward_uploads_a_file_and_gets_a_receipt(ready: Run, extracts: Path) -> None:
    path = extracts / "police_victimizations.csv"
    result = ready("--as", "steward-police", "upload", str(path), *POLICE)
    receipt = json.loads(result.stdout)
    assert receipt["status"] == "accepted" and receipt["uploader"] == "steward-police"
    assert receipt["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    again = json.loads(ready("--as", "steward-police", "upload", str(path), *POLICE).stdout)
    assert again["upload_id"] == receipt["upload_id"] and again["duplicate"] is True


def test_a_rejected_file_exits_2_with_the_report_on_stderr(
    ready: Run, tmp_path: Path, env: Path
) -> None:
    rows = [make_police_row(i) for i in range(1, 5)]
    rows[1]["victim_sex"] = "Q"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(make_police_csv(rows))
    result = ready("--as", "steward-police", "upload", str(bad), *POLICE, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith("error: police_victimizations: the extract was rejected")
    report = json.loads(result.stderr.split("\n", 1)[1])["report"]
    sex = next(f for f in report["findings"] if f["column"] == "victim_sex")
    assert sex["first_rows"] == [2] and "rule" in sex
    assert '"Q"' not in result.stderr and "Whitfield" not in result.stderr
    engine = db(env)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM records")).scalar_one() == 0
    engine.dispose()


def test_a_rejected_file_appends_one_upload_reject_event_naming_no_value(
    ready: Run, tmp_path: Path, env: Path
) -> None:
    rows = [
        make_police_row(i, victim_first_name=f"Zebulon{i}", victim_dob=f"1987-0{i}-1{i}")
        for i in range(1, 5)
    ]
    rows[1]["victim_sex"] = "Q"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(make_police_csv(rows))
    ready("--as", "steward-police", "upload", str(bad), *POLICE, code=2)
    engine = db(env)
    with engine.connect() as conn:
        payloads = conn.execute(
            text("SELECT payload FROM audit_log WHERE action = 'upload.reject'")
        ).scalars()
        (event,) = [json.loads(p) for p in payloads]
        assert conn.execute(text("SELECT count(*) FROM uploads")).scalar_one() == 0
    engine.dispose()
    details = event["details"]
    assert event["actor"].startswith("steward-police") and details["via"] == "cli"
    assert details["error"] == "upload_rejected" and details["failed_rules"] == 1
    assert details["file_bytes"] == bad.stat().st_size
    assert_names_no_value_of(rows, json.dumps(event))
    assert json.loads(ready("audit", "verify").stdout)["ok"] is True


def test_upload_progress_shows_rows_and_rows_per_second_on_stderr(
    ready: Run, extracts: Path
) -> None:
    path = extracts / "police_victimizations.csv"
    result = ready("--as", "steward-police", "upload", str(path), *POLICE, "--progress")
    receipt = json.loads(result.stdout)  # stdout stays the receipt alone
    last = result.stderr.rstrip("\n").split("\r")[-1]
    assert f"{receipt['rows_received']:,} rows" in last and "rows/s" in last
    assert result.stderr.endswith("\n")


def test_upload_shows_no_progress_when_stderr_is_not_a_terminal(ready: Run, extracts: Path) -> None:
    path = extracts / "police_victimizations.csv"
    result = ready("--as", "steward-police", "upload", str(path), *POLICE)
    assert "rows/s" not in result.stderr


def test_a_rejected_upload_ends_the_progress_line_before_the_error(
    ready: Run, tmp_path: Path
) -> None:
    rows = [make_police_row(i) for i in range(1, 5)]
    rows[1]["victim_sex"] = "Q"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(make_police_csv(rows))
    result = ready("--as", "steward-police", "upload", str(bad), *POLICE, "--progress", code=2)
    progress, error = result.stderr.split("\n", 1)
    assert "rows/s" in progress and error.startswith("error: police_victimizations")


def test_an_analyst_cannot_upload_from_the_cli_either(ready: Run, extracts: Path) -> None:
    path = str(extracts / "police_victimizations.csv")
    result = ready("--as", "analyst", "upload", path, *POLICE, code=1)
    assert "may not uploads create" in result.stderr


def test_a_missing_upload_file_exits_1_with_a_sentence(ready: Run) -> None:
    result = ready("--as", "steward-police", "upload", "nope.csv", *POLICE, code=1)
    assert result.stderr.strip() == "error: no such file: nope.csv"


# --- linkage and releases ---------------------------------------------------------------------


def test_link_run_and_link_evaluate_against_the_truth(linked: Run, extracts: Path) -> None:
    quality = json.loads(linked("link", "evaluate", "--truth", str(extracts / "truth.csv")).stdout)
    assert {"precision", "recall", "f1"} <= set(quality)
    assert quality["precision"] > 0.9


def test_link_run_prints_the_summary_and_needs_an_admin(ready: Run, extracts: Path) -> None:
    ready("--as", "steward-police", "upload", str(extracts / "police_victimizations.csv"), *POLICE)
    summary = json.loads(ready("link", "run").stdout)
    assert summary["records"] > 0 and summary["persons"] > 0
    assert "may not linkage run" in ready("--as", "analyst", "link", "run", code=1).stderr


def test_an_analyst_release_prints_the_release_and_repeats_it_from_the_cache(
    linked: Run,
) -> None:
    first = json.loads(linked("--as", "analyst", "release", "viol_monthly").stdout)
    assert first["cached"] is False and first["cells"] and first["privacy_loss"] > 0
    assert first["window"] == {"start": "2024-11-01", "end": "2026-10-31"}
    spent = json.loads(linked("budget").stdout)
    again = json.loads(linked("--as", "analyst", "release", "viol_monthly").stdout)
    assert again["id"] == first["id"] and again["cached"] is True
    assert json.loads(linked("budget").stdout) == spent


def test_a_release_window_is_given_as_dates(linked: Run) -> None:
    args = ("--as", "analyst", "release", "viol_monthly", "--start", "2026-01-01")
    release = json.loads(linked(*args, "--end", "2026-06-30").stdout)
    assert release["window"] == {"start": "2026-01-01", "end": "2026-06-30"}
    bad = linked(*args, "--end", "June", code=2)
    assert "June" in bad.stderr and "Traceback" not in bad.stderr


def test_a_release_before_linkage_tells_the_user_to_run_it(ready: Run, extracts: Path) -> None:
    ready("--as", "steward-police", "upload", str(extracts / "police_victimizations.csv"), *POLICE)
    result = ready("--as", "analyst", "release", "viol_monthly", code=1)
    assert "ovphub link run" in result.stderr


def test_a_release_to_a_recipient_not_allowed_exits_1(linked: Run) -> None:
    args = ("--as", "analyst", "release", "viol_monthly", "--recipient", "law_enforcement")
    assert "does not allow releases" in linked(*args, code=1).stderr


def test_budget_lists_spend_per_agreement_and_period(linked: Run) -> None:
    assert json.loads(linked("budget").stdout) == []
    linked("--as", "analyst", "release", "viol_monthly")
    rows = json.loads(linked("--as", "analyst", "budget").stdout)
    assert {r["period"] for r in rows} == {"2026-11", "lifetime"}
    assert all(r["spent"] > 0 and r["remaining"] < r["cap"] for r in rows)


def test_catalogue_lists_the_approved_aggregates(ready: Run) -> None:
    from contracts.loader import load_agreement

    entries = json.loads(ready("--as", "analyst", "catalogue").stdout)
    approved = {
        g.id for p in example_agreement_paths() for g in load_agreement(p).outputs.aggregates
    }
    assert {e["aggregate_id"] for e in entries} == approved
    assert all(e["privacy_loss_per_release"] > 0 for e in entries)


def test_dashboard_writes_index_html_of_the_releases(linked: Run, tmp_path: Path) -> None:
    linked("--as", "analyst", "release", "viol_monthly")
    out = tmp_path / "board"
    index = Path(linked("--as", "analyst", "dashboard", "--out", str(out)).stdout.strip())
    assert index == out / "index.html"
    assert "<svg" in index.read_text()


def test_dashboard_defaults_to_the_data_dir(linked: Run, env: Path) -> None:
    index = Path(linked("dashboard").stdout.strip())
    assert index == env / "dashboard" / "index.html" and index.is_file()


# --- operations -------------------------------------------------------------------------------


def test_audit_verify_passes_then_detects_tampering(ready: Run, env: Path) -> None:
    check = json.loads(ready("audit", "verify").stdout)
    assert check["ok"] is True and check["events"] >= 7
    engine = db(env)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE audit_log SET payload = replace(payload, 'analyst', 'admin') "
                "WHERE action = 'user.create' AND subject = 'user:analyst'"
            )
        )
    engine.dispose()
    broken = json.loads(ready("audit", "verify", code=1).stdout)
    assert broken["ok"] is False and broken["first_bad_seq"] is not None


def test_synth_writes_the_same_bytes_for_the_same_seed(run: Run, tmp_path: Path) -> None:
    def files(out: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    summary = json.loads(run("synth", "--out", str(a), "--people", "60", "--seed", "4").stdout)
    run("synth", "--out", str(b), "--people", "60", "--seed", "4")
    run("synth", "--out", str(c), "--people", "60", "--seed", "5")
    assert summary["people"] == 60 and summary["seed"] == 4
    assert set(summary["rows"]) == {
        "police_victimizations",
        "ed_injury_visits",
        "cvi_participants",
        "referrals",
    }
    assert len(files(a)) == 5 and files(a) == files(b)
    assert files(a) != files(c)


def test_keys_init_creates_the_key_once_and_never_prints_it(run: Run, tmp_path: Path) -> None:
    result = run("keys", "init")
    key_file = tmp_path / "keys" / "hub.key"
    assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    secret = json.loads(key_file.read_text())["keys"]
    key_hex = next(iter(secret.values()))
    assert key_hex not in result.output
    again = run("keys", "init", code=1)
    assert "refusing to overwrite" in again.stderr
    assert json.loads(key_file.read_text())["keys"] == secret
    assert key_hex not in again.output


def test_keys_status_names_the_key_in_use_and_since_when_never_the_key(
    linked: Run, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "hub.key"
    result = linked("keys", "status")
    status = json.loads(result.stdout)
    held = json.loads(key_file.read_text())
    assert status["active_key_id"] == held["active"] and status["in_use_since"]
    assert status["rotation"] == []  # no example agreement sets key_rotation_days
    assert all(k not in result.output for k in held["keys"].values())
    linked("--as", "analyst", "keys", "status", code=1)


def test_keys_rotate_rekeys_stored_tokens_and_linkage_still_works(
    linked: Run, tmp_path: Path, env: Path
) -> None:
    key_file = tmp_path / "keys" / "hub.key"
    old = json.loads(key_file.read_text())
    with db(env).connect() as conn:
        before = conn.execute(text("SELECT record_key FROM records ORDER BY id")).scalars().all()
    result = linked("keys", "rotate")
    summary = json.loads(result.stdout)
    assert summary["records"] == len(before) > 0 and summary["old_key_id"] == old["active"]
    new = json.loads(key_file.read_text())
    assert new["chain"] == [old["active"], summary["new_key_id"]]
    assert all(k not in result.output for k in new["keys"].values())
    with db(env).connect() as conn:
        after = conn.execute(text("SELECT record_key FROM records ORDER BY id")).scalars().all()
        ids = set(conn.execute(text("SELECT key_id FROM records")).scalars())
    assert ids == {summary["new_key_id"]} and set(before).isdisjoint(after)
    linked("link", "run")
    # analysts may not rotate keys
    denied = linked("--as", "analyst", "keys", "rotate", code=1)
    assert "may not keys rotate" in denied.stderr


def test_db_upgrade_migrates_without_a_key_file(run: Run, tmp_path: Path) -> None:
    assert "is up to date" in run("db", "upgrade").stdout
    assert not (tmp_path / "keys" / "hub.key").exists()


def test_production_refuses_to_start_without_a_key_file(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_ENVIRONMENT", "production")
    assert "refusing to start" in run("catalogue", code=1).stderr


# --- help -------------------------------------------------------------------------------------


def all_commands() -> list[tuple[list[str], Any]]:
    """Every command and group of ``ovphub``, with the words that reach it."""
    root = typer.main.get_command(app)
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk([*path, name], sub)

    walk([], root)
    return found


def test_every_command_and_option_has_help_text(run: Run) -> None:
    commands = all_commands()
    assert len(commands) >= 25  # root, 6 groups and their commands
    missing = []
    for path, command in commands:
        result = run(*path, "--help")
        assert "Usage:" in result.stdout
        if not (command.help or "").strip():
            missing.append(" ".join(path) or "ovphub")
        for param in command.params:
            if not getattr(param, "help", None) and param.name != "help":
                missing.append(f"{' '.join(path)} {param.name}")
    assert not missing, missing


# --- the legal workflow -----------------------------------------------------------------------


def test_the_legal_workflow_lint_load_sign_approve_activate(run: Run, tmp_path: Path) -> None:
    from contracts.loader import AGREEMENTS_DIR

    path = str(AGREEMENTS_DIR / "dsa-police-victimizations.yaml")
    run("agreements", "lint", path)
    assert json.loads(run("agreements", "load", path).stdout)[0]["status"] == "draft"
    ref = "dsa-police-victimizations@1.0.0"
    run("agreements", "submit", ref)
    refused = run("agreements", "activate", ref, code=1)
    assert "no valid signature for org:police" in refused.stderr
    for party, name in (("org:police", "Jordan Example"), ("org:ovp", "Casey Example")):
        key = tmp_path / f"{party.split(':')[1]}.pem"
        run("keys", "new-signer", "--party", party, "--name", name, "--out", str(key))
        run("agreements", "sign", ref, "--key", str(key))
    verify = json.loads(run("agreements", "verify", ref).stdout)
    assert verify["complete"] and len(verify["signatures"]) == 2
    refused = run("agreements", "activate", ref, code=1)
    assert "no approval recorded" in refused.stderr
    status = json.loads(run("agreements", "status", ref).stdout)
    assert status["approvals"] == [] and status["approvals_required"]
    assert status["activation_blockers"] == [
        f"no approval recorded from {body}" for body in status["approvals_required"]
    ]
    for body in status["approvals_required"]:
        run("agreements", "approve", ref, "--body", body)
    status = json.loads(run("agreements", "status", ref).stdout)
    given = [(a["body"], a["decision"]) for a in status["approvals"]]
    assert given == [(body, "approved") for body in status["approvals_required"]]
    assert status["activation_blockers"] == []
    assert json.loads(run("agreements", "activate", ref).stdout)["status"] == "active"
    assert "activation_blockers" not in json.loads(run("agreements", "status", ref).stdout)
    suspended = json.loads(run("agreements", "suspend", ref, "--reason", "audit").stdout)
    assert suspended["status"] == "suspended"


def test_render_diff_and_odrl_export_from_the_cli(run: Run, tmp_path: Path) -> None:
    import yaml

    from contracts.loader import AGREEMENTS_DIR

    source = AGREEMENTS_DIR / "dsa-police-victimizations.yaml"
    data = yaml.safe_load(source.read_text())
    data["agreement"]["version"] = "1.1.0"
    data["outputs"]["privacy"]["budget"]["per_period"] = 1.0
    data["amendments"].append(
        {"version": "1.1.0", "date": "2026-11-01", "summary": "doubles the monthly budget"}
    )
    newer = tmp_path / "v2.yaml"
    newer.write_text(yaml.safe_dump(data))
    run("agreements", "load", str(source))
    run("agreements", "load", str(newer))
    diff = run("agreements", "diff", "dsa-police-victimizations", "1.0.0", "1.1.0").stdout
    assert "0.5" in diff and "1" in diff and "budget" in diff
    rendered = json.loads(
        run(
            "agreements", "render", "dsa-police-victimizations@1.1.0", "--out", str(tmp_path)
        ).stdout
    )
    html = Path(rendered["html"]).read_text()
    assert "police_victimizations" in html and "<script" not in html
    odrl = json.loads(run("agreements", "export-odrl", "dsa-police-victimizations").stdout)
    assert odrl["@type"] == "Agreement" and odrl["permission"]
