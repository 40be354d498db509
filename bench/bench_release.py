"""Release figures from issue 6: speed over 1M rows, error honesty, a cached release over HTTP.
Prints JSON; each figure carries its target and ``pass``.

Run: ``.venv/bin/python bench/bench_release.py [--repeats 1000] [--skip-api]`` or ``make bench``.

(a) **Speed.** A variant of ``contracts/agreements/dsa-police-victimizations.yaml`` with one
    more aggregate, ``count_rows`` by ``[month, community_area]`` over 24 months. Rows are
    built directly as the frame :func:`publishers.release.compute_release` takes (``person_id``
    plus stored fields, as text). The issue asks for 100 areas × 24 months; the shipped
    ``community_area`` key set has Chicago's 77, so the variant declares 100 area values
    instead, and the release has 100 × 24 = 2,400 cells. The hub path is timed too, on
    PostgreSQL: ``request_release`` (read the stored records, bound, noise, debit, store,
    commit) for the registered ``viol_monthly`` aggregate over ``--hub-rows`` records
    bulk-copied into a demo hub (default 200,000 to keep the run under ~3 minutes;
    ``--hub-rows 1000000`` for the full figure). Ingest and linkage of that many rows are not
    part of it; ``bench_pipeline.py`` times those.

(b) **Error honesty.** ``--repeats`` releases (default 1,000) of the same aggregate on the
    same rows (50,000 rows; the rows do not change the noise), each a full ``compute_release``
    with a fresh budget (no ledger is involved). Published values are clamped at zero and
    small cells are suppressed, so they cannot show the noise honestly; the benchmark wraps
    the mechanism function ``publishers.release.add_noise`` to record each release's bounded
    counts and *pre-clamp* noisy vector as the release is computed, and measures on
    ``noisy - counts``. Analytic mean absolute error: the release states its noise scale and
    mechanism; E|X| is computed from that same scale as the exact sum of ``|x| p(x)`` over the
    discrete Gaussian ``p(x) ∝ exp(-x²/2σ²)`` (or discrete Laplace ``∝ exp(-|x|/b)``),
    truncated where the remaining mass is below 1e-17. Coverage is the share of cells with
    ``|noise| < error_bound_95`` (OpenDP's bound means ``P(|noise| >= bound) <= 0.05``).
    Because the noise is integer, the bound cannot hit 95% exactly: the exact coverage of the
    stated bound is printed too, so a miss can be told apart from sampling error.

(d) **Rates and means.** The shipped ``referral_followup_qtr`` (``rate_rows``) and
    ``referral_days_to_service_qtr`` (``mean``) over ``--ratio-rows`` synthetic referrals (one
    year, 8 receiving program types), ``--ratio-repeats`` releases each. The truth is the same
    release under a budget so large that its noise is below one unit (bounding is seeded
    alike, so the bounded data are the same). Printed: the time of one release, the share of
    cells whose stated 95% interval holds the truth (the statement is "at least 95%": the
    interval is a union bound, so coverage above 95% is expected), the median interval width
    and the mean absolute error of the published value.

(c) **Cached release over HTTP.** ``ovphub demo``'s flow on SQLite (500 people), then
    ``create_app(hub)`` under Starlette's TestClient: one release, then 200 identical POSTs,
    each answered from the cache (status 200, same id); median and p95 wall time per request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WINDOW = (dt.date(2024, 11, 1), dt.date(2026, 10, 31))
AGGREGATE = "viol_month_area"
TARGET_SECONDS = 1.0
AREAS = 100
TARGET_MAE_REL = 0.02
TARGET_COVERAGE = (0.94, 0.96)
TARGET_API_MS = 50.0


def bench_agreement() -> Any:
    import yaml

    from contracts.loader import AGREEMENTS_DIR
    from contracts.model import Agreement

    data = yaml.safe_load((AGREEMENTS_DIR / "dsa-police-victimizations.yaml").read_text())
    for f in data["datasets"][0]["fields"]:
        if f["name"] == "community_area":  # 100 public area keys, as the issue asks
            del f["keyset"]
            f["values"] = [str(i) for i in range(1, AREAS + 1)]
    data["outputs"]["aggregates"].append(
        {
            "id": AGGREGATE,
            "title": "Victimizations by month and community area",
            "dataset": "police_victimizations",
            "measure": "count_rows",
            "time_field": "incident_datetime",
            "dimensions": ["month", "community_area"],
            "budget_share": 0.4,
            "channel": "public_dashboard",
        }
    )
    return Agreement.model_validate(data)


def make_rows(n: int, people: int, seed: int) -> pd.DataFrame:
    """``n`` victimizations by ``people`` persons, uniform over the window and the areas."""
    rng = np.random.default_rng(seed)
    areas = np.array([str(i) for i in range(1, AREAS + 1)], dtype=object)
    days = (WINDOW[1] - WINDOW[0]).days + 1
    day_strings = np.array(
        [(WINDOW[0] + dt.timedelta(days=d)).isoformat() for d in range(days)], dtype=object
    )
    persons = np.array([f"p{i:07d}" for i in range(people)], dtype=object)
    return pd.DataFrame(
        {
            "person_id": persons[rng.integers(0, people, n)],
            "incident_datetime": day_strings[rng.integers(0, days, n)],
            "community_area": areas[rng.integers(0, len(areas), n)],
        },
        dtype=object,
    )


def check_columns(agreement: Any) -> None:
    from contracts.plan import aggregate_fields

    needed = set(aggregate_fields(agreement.aggregate(AGGREGATE)))
    if needed != {"incident_datetime", "community_area"}:  # pragma: no cover - spec drift
        raise SystemExit(f"the aggregate now reads {sorted(needed)}; update make_rows")


def speed(agreement: Any, rows: int) -> dict[str, Any]:
    from publishers.release import compute_release

    frame = make_rows(rows, people=rows // 3, seed=1)
    times, release = [], None
    for _ in range(3):
        start = time.perf_counter()
        release = compute_release(
            agreement, AGGREGATE, frame, window_start=WINDOW[0], window_end=WINDOW[1]
        )
        times.append(time.perf_counter() - start)
    assert release is not None
    best, median = min(times), statistics.median(times)
    return {
        "rows": rows,
        "cells": len(release.cells),
        "cells_note": "100 community areas (declared values) x 24 months",
        "seconds_median_of_3": round(median, 3),
        "seconds_best_of_3": round(best, 3),
        "target_seconds": TARGET_SECONDS,
        "pass": median < TARGET_SECONDS,
    }


def hub_path_postgres(root: Path, rows: int) -> dict[str, Any]:
    """``request_release`` on PostgreSQL over ``rows`` stored records: read, bound, noise, debit,
    store, audit, commit. The demo flow sets up agreements, users, one upload and a linkage run;
    the extra records are then bulk-copied into ``records``/``person_links`` as that upload's
    (ingest and linkage of 1M rows are not part of this figure)."""
    from sqlalchemy import create_engine, func, select, text

    from hub.auth.service import actor_of, get_user
    from hub.context import build_hub
    from hub.db.models import LinkageRun, Record
    from hub.demo import run_demo
    from hub.releases.service import ReleaseRequest, release_rows, request_release
    from hub.settings import Settings

    admin_url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    name = f"ovphub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        out = root / "pg-demo"
        run_demo(out, people=300, seed=7, database_url=url)
        hub = build_hub(Settings(data_dir=out, database_url=url, key_file=out / "keys" / "hub.key"))
        today = dt.date(2026, 12, 15)  # a fresh budget period: the demo spent November's
        try:
            with hub.session() as s:
                template = s.execute(
                    select(Record).where(Record.dataset_id == "police_victimizations").limit(1)
                ).scalar_one()
                run_id = s.execute(select(func.max(LinkageRun.id))).scalar_one()
                base = s.execute(select(func.max(Record.id))).scalar_one()
                analyst = actor_of(get_user(s, "analyst"))
                upload_id, version_id = template.upload_id, template.agreement_version_id
                key_id, values = template.key_id, dict(template.values)
            frame = make_rows(rows, people=rows // 3, seed=3)
            kinds = np.array(
                ["FATAL_SHOOTING", "NON_FATAL_SHOOTING", "ROBBERY_INJURY"], dtype=object
            )[np.random.default_rng(3).integers(0, 3, rows)]
            start = time.perf_counter()
            raw = hub.engine.raw_connection()
            try:
                cur = raw.cursor()
                with cur.copy(
                    "COPY records (id, dataset_id, upload_id, agreement_version_id, record_key, "
                    "key_id, values, aggregate_only, no_linkage) FROM STDIN"
                ) as copy:
                    for i, (day, kind) in enumerate(
                        zip(frame["incident_datetime"], kinds, strict=True)
                    ):
                        record = {**values, "incident_datetime": day, "victimization_type": kind}
                        copy.write_row(
                            (
                                base + 1 + i,
                                "police_victimizations",
                                upload_id,
                                version_id,
                                f"bench{i:012d}",
                                key_id,
                                json.dumps(record),
                                False,
                                False,
                            )
                        )
                with cur.copy(
                    "COPY person_links (record_id, person_id, run_id) FROM STDIN"
                ) as copy:
                    for i, person in enumerate(frame["person_id"]):
                        copy.write_row((base + 1 + i, person, run_id))
                raw.commit()
            finally:
                raw.close()
            loaded = time.perf_counter() - start
            with hub.session() as s:
                stored = s.execute(
                    select(func.count()).where(Record.dataset_id == "police_victimizations")
                ).scalar_one()
            req = ReleaseRequest("viol_monthly", dt.date(2024, 12, 1), dt.date(2026, 11, 30))
            start = time.perf_counter()
            release, cached = hub.transact(lambda s: request_release(s, analyst, req, today))
            seconds = time.perf_counter() - start
            assert not cached
            cells = len(release.manifest["cells"])
            with hub.session() as s:
                start = time.perf_counter()
                release_rows(
                    s, "police_victimizations", ["incident_datetime", "victimization_type"]
                )
                reading = time.perf_counter() - start
        finally:
            hub.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return {
        "database": "postgresql",
        "aggregate": "viol_monthly (month x victimization_type, the hub's registered aggregate)",
        "records": stored,
        "cells": cells,
        "bulk_load_seconds": round(loaded, 1),
        "release_seconds": round(seconds, 3),
        "of_which_reading_rows_seconds": round(reading, 3),
        "target_seconds": TARGET_SECONDS,
        "pass": seconds < TARGET_SECONDS,
    }


def noise_pmf(model: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The noise's support and probability mass, truncated below 1e-17 of tail mass."""
    if model == "zcdp":
        reach = math.ceil(scale * math.sqrt(2 * math.log(1e17))) + 1
    else:
        reach = math.ceil(scale * math.log(1e17)) + 1
    x = np.arange(-reach, reach + 1, dtype=np.float64)
    log_p = -(x * x) / (2 * scale * scale) if model == "zcdp" else -np.abs(x) / scale
    p = np.exp(log_p - log_p.max())
    return x, p / p.sum()


def honesty(agreement: Any, repeats: int) -> dict[str, Any]:
    import publishers.release as release_module

    frame = make_rows(50_000, people=20_000, seed=2)
    captured: list[np.ndarray] = []
    original = release_module.add_noise

    def recording(calibration: Any, counts: Any) -> Any:
        noisy = original(calibration, counts)
        captured.append(np.asarray(noisy, dtype=np.int64) - np.asarray(counts, dtype=np.int64))
        return noisy

    release_module.add_noise = recording
    stated: set[tuple[float, float, str, str]] = set()
    start = time.perf_counter()
    try:
        for _ in range(repeats):
            r = release_module.compute_release(
                agreement, AGGREGATE, frame, window_start=WINDOW[0], window_end=WINDOW[1]
            )
            stated.add((r.noise_scale, r.error_bound_95, r.privacy_model, r.mechanism))
    finally:
        release_module.add_noise = original
    seconds = time.perf_counter() - start
    if len(stated) != 1:  # pragma: no cover - the statement depends on the spec only
        raise SystemExit(f"releases stated different scales: {stated}")
    ((scale, bound, model, mechanism),) = stated
    noise = np.abs(np.concatenate(captured)).astype(np.float64)
    x, p = noise_pmf(model, scale)
    analytic_mae = float((np.abs(x) * p).sum())
    exact_coverage = float(p[np.abs(x) < bound].sum())
    measured_mae = float(noise.mean())
    coverage = float((noise < bound).mean())
    rel = abs(measured_mae - analytic_mae) / analytic_mae
    return {
        "releases": repeats,
        "cells_per_release": int(noise.size // repeats),
        "noise_draws": int(noise.size),
        "seconds": round(seconds, 1),
        "mechanism": mechanism,
        "privacy_model": model,
        "noise_scale": scale,
        "stated_error_bound_95": bound,
        "mae": {
            "measured": round(measured_mae, 4),
            "analytic": round(analytic_mae, 4),
            "relative_difference": round(rel, 5),
            "target": f"within {TARGET_MAE_REL:.0%} of analytic",
            "pass": rel <= TARGET_MAE_REL,
            "method": (
                "analytic E|noise| = sum |x| p(x) over the release's stated mechanism and "
                "noise_scale; measured on pre-clamp noise recorded from publishers' add_noise "
                "inside each compute_release (published values are clamped and suppressed)"
            ),
        },
        "coverage_95": {
            "measured": round(coverage, 5),
            "exact_for_stated_bound": round(exact_coverage, 5),
            "target": f"{TARGET_COVERAGE[0]:.0%} to {TARGET_COVERAGE[1]:.0%}",
            "pass": TARGET_COVERAGE[0] <= coverage <= TARGET_COVERAGE[1],
        },
    }


RATIO_AGGREGATES = ("referral_followup_qtr", "referral_days_to_service_qtr")
RATIO_WINDOW = (dt.date(2025, 7, 1), dt.date(2026, 6, 30))


def referral_rows(n: int, seed: int) -> pd.DataFrame:
    """``n`` referrals by ``n // 3`` people over :data:`RATIO_WINDOW`: first service after
    ~2 weeks (none for 1 in 10), follow-up after ~6 days (none for 1 in 4)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(RATIO_WINDOW[0].isoformat())
    span = (RATIO_WINDOW[1] - RATIO_WINDOW[0]).days + 1
    day = start + rng.integers(0, span, n).astype("timedelta64[D]")

    def later(mean_days: float, missing: float) -> np.ndarray:
        when = day + rng.exponential(mean_days, n).astype(np.int64).astype("timedelta64[D]")
        text = np.datetime_as_string(when, unit="D").astype(object)
        text[rng.random(n) < missing] = None
        return text

    orgs = np.array(
        [
            "HOSPITAL",
            "CVI_CBO",
            "POLICE",
            "SCHOOL_DISTRICT",
            "VICTIM_SERVICES",
            "HOUSING",
            "WORKFORCE",
            "OVP",
        ],
        dtype=object,
    )
    return pd.DataFrame(
        {
            "person_id": np.array([f"p{i:07d}" for i in rng.integers(0, n // 3, n)], dtype=object),
            "referral_date": np.datetime_as_string(day, unit="D").astype(object),
            "to_org_type": orgs[rng.integers(0, len(orgs), n)],
            "first_service_date": later(14.0, 0.1),
            "followup_done_date": later(6.0, 0.25),
        },
        dtype=object,
    )


def ratio_honesty(rows: int, repeats: int) -> dict[str, Any]:
    from contracts.loader import AGREEMENTS_DIR, load_agreement
    from publishers.release import compute_release

    agreement = load_agreement(AGREEMENTS_DIR / "dsa-referrals.yaml")
    privacy = agreement.outputs.privacy
    exact_budget = privacy.budget.model_copy(update={"per_period": 1e9, "lifetime": 1e9})
    exact_agreement = agreement.model_copy(
        update={
            "outputs": agreement.outputs.model_copy(
                update={
                    "privacy": privacy.model_copy(update={"budget": exact_budget}),
                    "min_cell": 0,
                }
            )
        }
    )
    frame = referral_rows(rows, seed=5)
    out: dict[str, Any] = {"rows": rows, "releases_each": repeats}
    window = {"window_start": RATIO_WINDOW[0], "window_end": RATIO_WINDOW[1]}
    for aggregate_id in RATIO_AGGREGATES:
        truth = compute_release(exact_agreement, aggregate_id, frame, **window, seed=9)
        true = [c["value"] for c in truth.cells]
        covered = shown = 0
        widths, errors, times = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            release = compute_release(agreement, aggregate_id, frame, **window, seed=9)
            times.append(time.perf_counter() - start)
            for c, t in zip(release.cells, true, strict=True):
                if c["suppressed"] or t is None:
                    continue
                shown += 1
                covered += c["lower"] - 1e-9 <= t <= c["upper"] + 1e-9
                widths.append(c["upper"] - c["lower"])
                errors.append(abs(c["value"] - t))
        coverage = covered / shown if shown else None
        out[aggregate_id] = {
            "measure": truth.measure,
            "cells": len(truth.cells),
            "cells_shown": shown,
            "seconds_median": round(statistics.median(times), 4),
            "stated": "at least 95% of intervals hold the truth",
            "coverage": None if coverage is None else round(coverage, 4),
            "median_interval_width": round(statistics.median(widths), 4) if widths else None,
            "mean_absolute_error": round(statistics.fmean(errors), 5) if errors else None,
            "pass": coverage is not None and coverage >= 0.95,
        }
    return out


def api_cached(root: Path, requests: int) -> dict[str, Any]:
    from hub import audit
    from hub.auth.service import get_user, issue_token
    from hub.context import build_hub
    from hub.demo import DEMO_TODAY, run_demo
    from hub.demo import WINDOW as DEMO_WINDOW
    from hub.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

        from hub.api.app import create_app

    out = root / "demo"
    run_demo(out, people=500, seed=7)
    settings = Settings(data_dir=out, key_file=out / "keys" / "hub.key")
    hub = build_hub(settings)
    hub.today = lambda: DEMO_TODAY
    try:
        with hub.session() as s:
            token = issue_token(
                s, get_user(s, "analyst"), "bench", audit.Event("bench", "token.issue", "u", {})
            )
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "aggregate_id": "viol_monthly",
            "window_start": DEMO_WINDOW[0].isoformat(),
            "window_end": DEMO_WINDOW[1].isoformat(),
        }
        with TestClient(create_app(hub)) as client:
            first = client.post("/api/v1/releases", json=body, headers=headers)
            first.raise_for_status()
            release_id = first.json()["id"]
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                response = client.post("/api/v1/releases", json=body, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200 or response.json()["id"] != release_id:
                    raise SystemExit(f"not served from the cache: {response.status_code}")
    finally:
        hub.engine.dispose()
    times.sort()
    median = statistics.median(times)
    p95 = times[math.ceil(0.95 * len(times)) - 1]
    return {
        "database": "sqlite",
        "requests": requests,
        "cells": len(first.json()["cells"]),
        "median_ms": round(median, 2),
        "p95_ms": round(p95, 2),
        "target_ms": TARGET_API_MS,
        "pass": p95 < TARGET_API_MS,
        "note": "in-process TestClient (no network); each answer checked: 200, same release id",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for figure (a)")
    parser.add_argument("--repeats", type=int, default=1000, help="releases for figure (b)")
    parser.add_argument("--requests", type=int, default=200, help="requests for figure (c)")
    parser.add_argument("--skip-api", action="store_true", help="skip figure (c)")
    parser.add_argument("--ratio-rows", type=int, default=200_000, help="referrals for (d)")
    parser.add_argument("--ratio-repeats", type=int, default=200, help="releases for (d)")
    parser.add_argument(
        "--hub-rows", type=int, default=200_000, help="stored records for the hub path in (a)"
    )
    parser.add_argument(
        "--skip-postgres", action="store_true", help="skip the hub path on PostgreSQL in (a)"
    )
    args = parser.parse_args()

    agreement = bench_agreement()
    check_columns(agreement)
    result: dict[str, Any] = {"benchmark": "release", "date": dt.date.today().isoformat()}
    result["release_1m_rows"] = speed(agreement, args.rows)
    if args.skip_postgres:
        result["release_1m_rows"]["hub_path"] = "skipped (--skip-postgres)"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result["release_1m_rows"]["hub_path"] = hub_path_postgres(Path(tmp), args.hub_rows)
    result["error_honesty"] = honesty(agreement, args.repeats)
    result["rates_and_means"] = ratio_honesty(args.ratio_rows, args.ratio_repeats)
    if not args.skip_api:
        with tempfile.TemporaryDirectory() as tmp:
            result["cached_release_api"] = api_cached(Path(tmp), args.requests)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
