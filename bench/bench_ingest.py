"""Ingest at scale: a synthetic police extract (25 columns, 5 direct identifiers) validated,
pseudonymized and stored in PostgreSQL through ``upload_extract``, streamed from disk.

Prints JSON: rows/s end to end, seconds per stage, peak RSS of the ingesting process, and the
ratio to a *floor* measured in the same run (pyarrow parsing the file plus HMAC-SHA256 of the
five identifier columns, the least any correct pipeline must do).

Run: ``.venv/bin/python bench/bench_ingest.py [--rows 1000000] [--memory-rows 5000000]``
(``--memory-rows 0`` skips the large-file memory run), or ``make bench``. Each ingest runs in a
fresh process against its own database on 127.0.0.1:5432, created and dropped here.
Targets (issue #4): >= 100,000 rows/s at 1M rows; peak memory < 1.5 GiB at 5M rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
IDENTIFIERS = (
    "victim_first_name",
    "victim_middle_initial",
    "victim_last_name",
    "victim_dob",
    "victim_home_address",
)
SYLLABLES = np.array(
    [
        "ka",
        "ri",
        "mo",
        "na",
        "le",
        "ta",
        "shi",
        "ro",
        "de",
        "va",
        "lu",
        "mi",
        "jo",
        "an",
        "el",
        "is",
        "ar",
        "on",
        "ya",
        "ze",
        "qu",
        "bo",
        "ne",
        "sa",
        "ti",
    ]
)


def _names(rng: np.random.Generator, n: int, parts: int, distinct: int) -> np.ndarray:
    """``distinct`` made-up names of ``parts`` syllables, drawn ``n`` times (Zipf-like)."""
    pool = np.array(
        ["".join(rng.choice(SYLLABLES, parts)).capitalize() for _ in range(distinct)], dtype=object
    )
    weights = 1.0 / np.arange(1, distinct + 1) ** 0.8
    return pool[rng.choice(distinct, n, p=weights / weights.sum())]


def write_extract(path: Path, rows: int, seed: int = 7, block: int = 250_000) -> int:
    """Write a valid police extract of ``rows`` rows to ``path`` (streamed, no quotes)."""
    from factories import POLICE_HEADER

    header = POLICE_HEADER.split(",")
    rng = np.random.default_rng(seed)
    first_pool = _names(rng, 5000, 2, 3000)
    last_pool = _names(rng, 200_000, 3, 60_000)
    types = np.array(
        [
            "FATAL_SHOOTING",
            "NON_SHOOTING_HOMICIDE",
            "NON_FATAL_SHOOTING",
            "AGG_BATTERY_NONGUN",
            "ROBBERY_INJURY",
        ]
    )
    places = np.array(["STREET", "SIDEWALK", "RESIDENCE", "ALLEY", "VEHICLE", "OTHER"])
    with path.open("wb") as out:
        out.write((",".join(header) + "\n").encode())
        for start in range(0, rows, block):
            n = min(block, rows - start)
            i = np.arange(start, start + n)
            incident = np.datetime64("2024-11-01") + rng.integers(0, 730, n).astype(
                "timedelta64[D]"
            )
            age = rng.integers(13, 80, n)
            dob = (
                incident
                - (age * 365.25).astype("timedelta64[D]")
                - rng.integers(0, 300, n).astype("timedelta64[D]")
            )
            years = 2024 + i // 1_000_000
            juvenile = age < 18
            cols: dict[str, Any] = {
                "victimization_id": [
                    f"V{y}-{k % 1_000_000:06d}" for y, k in zip(years, i, strict=True)
                ],
                "case_number": [f"JH{k % 1_000_000:06d}" for k in i],
                "incident_datetime": np.datetime_as_string(incident) + "T21:30:00",
                "victimization_type": rng.choice(types, n),
                "gunshot_injury": rng.choice(np.array(["YES", "NO", "UNKNOWN"]), n),
                "fatal": rng.choice(np.array(["true", "false"]), n, p=[0.1, 0.9]),
                "weapon_code": rng.choice(np.array(["11", "12", "13", "20", "99"]), n),
                "location_description": rng.choice(places, n),
                "block_address": [f"0{k % 100:02d}XX W MAIN ST" for k in i],
                "latitude": np.round(rng.uniform(41.6, 42.0, n), 5).astype(str),
                "longitude": np.round(rng.uniform(-87.9, -87.5, n), 5).astype(str),
                "community_area": rng.integers(1, 78, n).astype(str),
                "victim_first_name": rng.choice(first_pool, n),
                "victim_middle_initial": rng.choice(np.array(list("ABCDEFGHJKLMNPRST")), n),
                "victim_last_name": rng.choice(last_pool, n),
                "victim_dob": np.datetime_as_string(dob),
                "victim_age": age.astype(str),
                "victim_sex": rng.choice(np.array(["M", "F"]), n, p=[0.8, 0.2]),
                "victim_race": rng.choice(np.array(["BLK", "WHI", "WWH", "API"]), n),
                "victim_home_address": [f"{k % 9000 + 100} N EXAMPLE ST" for k in i],
                "victim_home_zip": rng.choice(np.array(["60651", "60624", "60623", "60644"]), n),
                "juvenile_flag": np.where(juvenile, "true", "false"),
                "domestic_related": rng.choice(np.array(["true", "false"]), n, p=[0.05, 0.95]),
                "officer_involved": np.full(n, "false"),
                "narrative": np.full(n, "see report"),
            }
            table = pa.table(
                {h: pa.array(np.asarray(cols[h], dtype=object), pa.string()) for h in header}
            )
            pacsv.write_csv(
                table,
                out,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
            )
    return path.stat().st_size


def floor_seconds(path: Path) -> dict[str, float]:
    """pyarrow parse of the whole file + HMAC of the identifier columns (key object reused)."""
    from hub.keys import InMemoryKeyStore, _Hmac, derive_key  # noqa: PLC2701

    start = time.perf_counter()
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in IDENTIFIERS}),
    )
    parsed = time.perf_counter()
    mac = _Hmac(derive_key(InMemoryKeyStore.generate(), "linkage"))
    for name in IDENTIFIERS:
        for value in table.column(name).to_pylist():
            mac.digest(value.encode())
    done = time.perf_counter()
    return {"parse_s": round(parsed - start, 3), "hmac_s": round(done - parsed, 3)}


def ingest_child(path: str, url: str) -> None:
    """Runs in a fresh process: set up a hub, upload the file, print JSON."""
    import resource

    from hub.auth.policies import Role
    from hub.context import Hub
    from hub.db.migrate import upgrade
    from hub.db.session import make_engine
    from hub.demo import DEMO_TODAY
    from hub.ingest.service import upload_extract
    from hub.keys import InMemoryKeyStore
    from hub.settings import Settings

    engine = make_engine(url)
    upgrade(engine)
    with tempfile.TemporaryDirectory() as data_dir:
        hub = Hub(
            Settings(data_dir=Path(data_dir), database_url=url),
            engine,
            InMemoryKeyStore.generate(),
            today=lambda: DEMO_TODAY,
        )
        from factories import load_examples, make_actor

        load_examples(hub)
        steward = make_actor(hub, "steward", Role.steward, "org:police")
        # Warm the one-off great-expectations import outside the timed run.
        import validators  # noqa: F401

        validators.compile_suite  # noqa: B018
        from validators.suite import _data_source  # noqa: PLC2701

        _data_source()
        start = time.perf_counter()
        receipt = hub.transact(
            lambda s: upload_extract(
                s,
                hub.keys,
                steward,
                agreement_id="dsa-police-victimizations",
                dataset_id="police_victimizations",
                content=Path(path),
                today=DEMO_TODAY,
            )
        )
        seconds = time.perf_counter() - start
        with hub.session() as s:
            from hub.db.models import Upload

            report = s.get(Upload, receipt.upload_id).report  # type: ignore[union-attr]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": receipt.rows_received,
                "rows_accepted": receipt.rows_accepted,
                "seconds": round(seconds, 3),
                "rows_per_s": round(receipt.rows_received / seconds),
                "stages_s": report.get("seconds"),
                "peak_rss_mib": round(peak),
            }
        )
    )


def run_ingest(path: Path) -> dict[str, Any]:
    from sqlalchemy import create_engine, text

    name = f"ovp_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path), url],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(f"ingest failed:\n{out.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=5_000_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        ingest_child(*args.child)
        return
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "police.csv"
        size = write_extract(path, args.rows)
        floor = floor_seconds(path)
        result = run_ingest(path)
        floor_total = floor["parse_s"] + floor["hmac_s"]
        out["throughput"] = {
            "rows": args.rows,
            "file_mib": round(size / 2**20),
            **result,
            "floor_s": floor,
            "ratio_to_floor": round(result["seconds"] / floor_total, 2),
            "target_rows_per_s": 100_000,
            "pass": result["rows_per_s"] >= 100_000,
        }
        # Shown now, before the long memory run, on stderr: stdout stays one JSON document.
        print(json.dumps(out, indent=2), file=sys.stderr, flush=True)
        path.unlink()
        if args.memory_rows:
            big = Path(tmp) / "police-big.csv"
            size = write_extract(big, args.memory_rows)
            result = run_ingest(big)
            out["memory"] = {
                "rows": args.memory_rows,
                "file_mib": round(size / 2**20),
                **result,
                "target_peak_rss_mib": 1536,
                "pass": result["peak_rss_mib"] < 1536,
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
