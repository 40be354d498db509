"""The whole flow — synth, agreements, upload, link, release, dashboard — on SQLite and on
PostgreSQL, and the privacy scan: no raw name, birth date or record identifier that went in is
found anywhere the hub wrote (every table, every file)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from contracts.loader import example_agreement_paths, load_agreement
from contracts.model import FieldClass
from hub.demo import run_demo

PEOPLE = 400
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")


def public_vocabulary() -> set[str]:
    """Words the hub may legitimately store: everything in the agreement texts."""
    words: set[str] = set()
    for path in example_agreement_paths():
        words |= {w.upper() for w in WORD.findall(path.read_text())}
    return words


def raw_identifiers(extracts: Path) -> set[str]:
    """Every direct-identifier and record-identifier value that went in, as words (names,
    address words, ids) and dates. Free text is checked whole by :func:`raw_free_text`."""
    vocabulary = public_vocabulary()
    secrets: set[str] = set()
    for path in example_agreement_paths():
        agreement = load_agreement(path)
        for ds in agreement.datasets:
            sensitive = [
                f.name
                for f in ds.fields
                if f.class_ in (FieldClass.direct_identifier, FieldClass.record_identifier)
            ]
            if not (extracts / f"{ds.id}.csv").exists():
                continue  # an agreement without a synthetic partner
            with (extracts / f"{ds.id}.csv").open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    for name in sensitive:
                        value = row[name] or ""
                        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                            secrets.add(value)
                            secrets.add(value.replace("-", ""))
                            continue
                        for word in WORD.findall(value):
                            if word.isdigit() and len(word) < 6:
                                continue  # house numbers: not identifying on their own
                            if len(word) >= 4 and word.upper() not in vocabulary:
                                secrets.add(word.upper())
    return secrets


def raw_free_text(extracts: Path) -> set[str]:
    """Every free-text value that went in (narratives, complaints, notes), whole."""
    out: set[str] = set()
    for path in example_agreement_paths():
        for ds in load_agreement(path).datasets:
            names = [f.name for f in ds.fields if f.class_ == FieldClass.free_text]
            if not (extracts / f"{ds.id}.csv").exists():
                continue
            with (extracts / f"{ds.id}.csv").open(newline="", encoding="utf-8") as fh:
                out |= {row[n] for row in csv.DictReader(fh) for n in names if len(row[n]) >= 12}
    return out


def words_in(text_: str) -> set[str]:
    found = {w.upper() for w in WORD.findall(text_)}
    found |= set(re.findall(r"\d{4}-\d{2}-\d{2}", text_))
    return found


def database_text(url: str) -> str:
    engine = create_engine(url)
    parts = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                parts.append(" ".join(str(v) for v in row))
    engine.dispose()
    return "\n".join(parts)


def files_text(root: Path, skip: set[Path]) -> str:
    parts = []
    for path in root.rglob("*"):
        if path.is_file() and not any(path.is_relative_to(s) for s in skip):
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def assert_flow(result: dict[str, Any]) -> None:
    assert all(r["status"] == "accepted" for r in result["receipts"])
    assert len(result["receipts"]) == 4
    assert result["quality"]["f1"] > 0.9
    assert len(result["releases"]) == 11  # every example aggregate over the uploaded partners
    for release in result["releases"]:
        assert release["privacy_loss"] > 0 and release["mechanism"]
        assert release["agreements"]
        if release["measure"] in ("count_rows", "count_persons", "sum"):
            assert release["error_bound_95"] > 0
        else:  # a mean or a rate states an interval per cell
            assert all(c["suppressed"] or c["lower"] <= c["upper"] for c in release["cells"])
    linked = next(r for r in result["releases"] if r["aggregate_id"] == "repeat_victimization_yr")
    assert len(linked["agreements"]) == 2 and len(linked["charges"]) == 2
    assert result["audit_ok"]
    assert Path(result["dashboard"]).read_text().count("<svg") >= 8


@pytest.mark.slow
def test_whole_flow_on_sqlite_leaves_no_raw_identifier_anywhere(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_demo(out, people=PEOPLE, seed=11)
    assert_flow(result)
    secrets = raw_identifiers(out / "extracts")
    assert len(secrets) > 500  # the scan has something to find
    written = files_text(out, skip={out / "extracts", out / "truth.csv"})  # SQLite file + WAL too
    leaked = secrets & words_in(written)
    assert not leaked, f"raw identifiers found in hub files: {sorted(leaked)[:10]}"
    db_text = database_text(f"sqlite:///{out / 'hub.db'}")
    leaked_db = secrets & words_in(db_text)
    assert not leaked_db, f"raw identifiers found in the database: {sorted(leaked_db)[:10]}"
    free_text = raw_free_text(out / "extracts")
    assert len(free_text) > 50
    assert not [t for t in free_text if t in db_text or t in written]


@pytest.mark.slow
@pytest.mark.postgres
def test_whole_flow_on_postgres_leaves_no_raw_identifier_anywhere(
    tmp_path: Path, pg_url: str
) -> None:
    out = tmp_path / "demo"
    result = run_demo(out, people=PEOPLE, seed=12, database_url=pg_url)
    assert_flow(result)
    secrets = raw_identifiers(out / "extracts")
    db_text = database_text(pg_url)
    leaked = secrets & words_in(db_text)
    assert not leaked, f"raw identifiers found in PostgreSQL: {sorted(leaked)[:10]}"
    assert not [t for t in raw_free_text(out / "extracts") if t in db_text]
    leaked_files = secrets & words_in(files_text(out, skip={out / "extracts", out / "truth.csv"}))
    assert not leaked_files


def test_the_scan_would_catch_a_leak(tmp_path: Path) -> None:
    """Guard for the guard: a file holding one raw surname is reported."""
    from hub.synth import generate

    generate(tmp_path / "x", people=50, seed=1)
    secrets = raw_identifiers(tmp_path / "x")
    with (tmp_path / "x" / "police_victimizations.csv").open() as fh:
        first = next(csv.DictReader(fh))
    leak = f"<td>{first['victim_last_name']}</td> born {first['victim_dob'] or '1990-01-01'}"
    assert secrets & words_in(leak)
