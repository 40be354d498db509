"""End-to-end pipeline figures on synthetic data: upload (read, validate, pseudonymize, store),
linkage and release, on SQLite and on PostgreSQL. Prints JSON.

Run: ``.venv/bin/python bench/bench_pipeline.py [--people N]`` (default 20,000 people, about
47,000 records over four agencies), or ``make bench``. The PostgreSQL run creates and drops its
own database on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from hub.demo import DEMO_TODAY, WINDOW
from hub.linkage.evaluate import evaluate

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def run(url: str, extracts: Path, truth: Path, data_dir: Path) -> dict[str, Any]:
    from contracts.loader import example_agreement_paths
    from hub import audit
    from hub.agreements.service import current_versions, register_file
    from hub.auth.policies import Role
    from hub.auth.service import actor_of, create_user, ensure_admin
    from hub.context import Hub
    from hub.db.migrate import upgrade
    from hub.db.session import make_engine
    from hub.ingest.service import upload_extract
    from hub.keys import InMemoryKeyStore
    from hub.linkage.service import run_linkage
    from hub.releases.service import ReleaseRequest, request_release
    from hub.settings import Settings

    engine = make_engine(url)
    upgrade(engine)
    hub = Hub(
        Settings(data_dir=data_dir, database_url=url),
        engine,
        InMemoryKeyStore.generate(),
        today=lambda: DEMO_TODAY,
    )
    out: dict[str, Any] = {"uploads": {}}
    with hub.session() as s:
        admin = actor_of(ensure_admin(s))
        for path in example_agreement_paths():
            register_file(s, path, admin.label)
        govs = current_versions(s)
        stewards = {}
        for party in sorted({d.provider for g in govs for d in g.spec.datasets}):
            ev = audit.Event("bench", "user.create", party, {})
            stewards[party] = actor_of(create_user(s, f"s-{party}", Role.steward, party, ev))
        analyst = actor_of(
            create_user(
                s, "analyst", Role.analyst, None, audit.Event("bench", "user.create", "analyst", {})
            )
        )
    total_rows, total_s = 0, 0.0
    for gov in govs:
        for ds in gov.spec.datasets:
            content = (extracts / f"{ds.id}.csv").read_bytes()
            start = time.perf_counter()
            receipt = hub.transact(
                lambda s, g=gov, d=ds, c=content: upload_extract(
                    s,
                    hub.keys,
                    stewards[d.provider],
                    agreement_id=g.spec.id,
                    dataset_id=d.id,
                    content=c,
                    today=DEMO_TODAY,
                )
            )
            seconds = time.perf_counter() - start
            total_rows += receipt.rows_received
            total_s += seconds
            out["uploads"][ds.id] = {
                "rows": receipt.rows_received,
                "seconds": round(seconds, 3),
                "rows_per_second": round(receipt.rows_received / seconds),
            }
    out["upload_rows_per_second"] = round(total_rows / total_s)
    start = time.perf_counter()
    with hub.session() as s:
        summary = run_linkage(s, "bench", DEMO_TODAY)
    out["linkage"] = {
        "seconds": round(time.perf_counter() - start, 3),
        "records": summary.records,
        "persons": summary.persons,
    }
    with hub.session() as s:
        quality = evaluate(s, hub.keys, truth)
    out["linkage"].update({k: quality[k] for k in ("precision", "recall", "f1")})
    release_s = []
    for gov in govs:
        for agg in gov.spec.outputs.aggregates:
            req = ReleaseRequest(agg.id, WINDOW[0], WINDOW[1])
            start = time.perf_counter()
            hub.transact(lambda s, r=req: request_release(s, analyst, r, DEMO_TODAY))
            release_s.append(time.perf_counter() - start)
    out["release_seconds"] = {
        "count": len(release_s),
        "max": round(max(release_s), 3),
        "mean": round(sum(release_s) / len(release_s), 3),
    }
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000, help="synthetic population size")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    from hub.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        summary = generate(root / "x", people=args.people, seed=1, end=WINDOW[1])
        result: dict[str, Any] = {
            "benchmark": "pipeline",
            "date": dt.date.today().isoformat(),
            "people": args.people,
            "records": summary.total_rows,
        }
        truth = root / "x" / "truth.csv"
        result["sqlite"] = run(f"sqlite:///{root / 'hub.db'}", root / "x", truth, root)
        if not args.skip_postgres:
            name = f"ovphub_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
                result["postgresql"] = run(url, root / "x", truth, root)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
