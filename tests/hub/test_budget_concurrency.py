"""Invariant 3 on PostgreSQL with real concurrency: many threads, each its own transaction.

The agreement variant here prices one ``viol_monthly`` release at exactly a tenth of the
period budget, so exactly ten distinct releases fit in a month.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts.model import Agreement
from factories import (
    load_agreement,
    make_actor,
    make_agreement_data,
    make_police_csv,
    make_police_row,
)
from hub import audit
from hub.auth.policies import Actor, Role
from hub.context import Hub
from hub.db.models import AuditEvent, BudgetAccount, BudgetDebit, Release
from hub.errors import BudgetExhausted
from hub.ingest.service import upload_extract
from hub.linkage.service import run_linkage
from hub.releases.service import ReleaseRequest, request_release

pytestmark = pytest.mark.postgres

TODAY = dt.date(2026, 11, 15)
FITS = 10
#: Concurrent distinct requests fired at a period budget that fits exactly ``FITS``.
FIRED = 50
PER_PERIOD = 0.5
COST = PER_PERIOD / FITS
WORKERS = 12


def make_tenth_share_agreement() -> Agreement:
    data = make_agreement_data()
    monthly = next(a for a in data["outputs"]["aggregates"] if a["id"] == "viol_monthly")
    monthly["budget_share"] = 1 / FITS
    data["outputs"]["privacy"]["budget"]["per_period"] = PER_PERIOD
    return Agreement.model_validate(data)


def make_window(i: int) -> tuple[dt.date, dt.date]:
    """Distinct windows (distinct requests): each starts a month later than the one before."""
    y, m = divmod(i, 12)
    return dt.date(2022 + y, 1 + m, 1), dt.date(2026, 10, 31)


def make_request(i: int) -> ReleaseRequest:
    return ReleaseRequest("viol_monthly", *make_window(i))


@pytest.fixture
def ready_hub(pg_hub: Hub) -> tuple[Hub, Actor]:
    """The variant agreement, 30 linked police records, an analyst."""
    load_agreement(pg_hub, make_tenth_share_agreement())
    steward = make_actor(pg_hub, "steward-police", Role.steward, "org:police")
    analyst = make_actor(pg_hub, "analyst", Role.analyst)
    rows = [
        make_police_row(
            i,
            incident_datetime=f"2026-{1 + i % 9:02d}-0{1 + i % 9}T12:00:00",
            victim_first_name=f"Given{chr(65 + i)}",
            victim_last_name=f"Family{chr(65 + i)}",
            victim_dob=f"{1960 + i}-01-01",
        )
        for i in range(1, 31)
    ]
    pg_hub.transact(
        lambda s: upload_extract(
            s,
            pg_hub.keys,
            steward,
            agreement_id="dsa-police-victimizations",
            dataset_id="police_victimizations",
            content=make_police_csv(rows),
            today=TODAY,
        )
    )
    with pg_hub.session() as s:
        run_linkage(s, "test", TODAY)
    return pg_hub, analyst


def release(hub: Hub, analyst: Actor, req: ReleaseRequest) -> tuple[str, bool]:
    """One request in its own transaction (retried once on a unique-hash race), as the API does:
    ``(release id, cached)`` once committed."""

    def work(session: Session) -> tuple[str, bool]:
        made, cached = request_release(session, analyst, req, TODAY)
        return made.id, cached

    return hub.transact(work)


def fire(hub: Hub, analyst: Actor, requests: list[ReleaseRequest]) -> list[Any]:
    """Run every request at once from a thread pool; return each one's (id, cached) or error."""
    go = threading.Event()

    def one(req: ReleaseRequest) -> tuple[str, bool] | BudgetExhausted:
        go.wait()
        try:
            return release(hub, analyst, req)
        except BudgetExhausted as exc:
            return exc

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(one, r) for r in requests]
        go.set()
        return [f.result() for f in futures]


def ledger(hub: Hub) -> dict[str, Any]:
    with hub.session() as s:
        accounts = {
            a.period_key: (a.cap, a.spent) for a in s.execute(select(BudgetAccount)).scalars()
        }
        debits = Counter(
            dict(
                s.execute(
                    select(BudgetAccount.period_key, func.count(BudgetDebit.id))
                    .join(BudgetDebit, BudgetDebit.account_id == BudgetAccount.id)
                    .group_by(BudgetAccount.period_key)
                ).all()
            )
        )
        return {
            "accounts": accounts,
            "debits": debits,
            "releases": s.execute(select(func.count()).select_from(Release)).scalar_one(),
            "release_events": s.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "release.create")
            ).scalar_one(),
            "chain_ok": audit.verify(s).ok,
        }


def test_concurrent_distinct_requests_never_overspend_the_period_budget(
    ready_hub: tuple[Hub, Actor],
) -> None:
    hub, analyst = ready_hub
    results = fire(hub, analyst, [make_request(i) for i in range(FIRED)])
    released = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, BudgetExhausted)]
    assert len(released) == FITS and len(refused) == FIRED - FITS
    assert len({rid for rid, _ in released}) == FITS and not any(c for _, c in released)
    assert all("period 2026-11" in r.detail for r in refused)
    after = ledger(hub)
    cap, period_spent = after["accounts"]["2026-11"]
    assert period_spent <= cap + 1e-12 and period_spent == pytest.approx(FITS * COST)
    assert after["accounts"]["lifetime"][1] == pytest.approx(FITS * COST)
    assert after["releases"] == after["release_events"] == FITS
    assert after["debits"] == {"2026-11": FITS, "lifetime": FITS}
    assert after["chain_ok"]


def test_concurrent_identical_requests_make_one_release_that_every_caller_gets(
    ready_hub: tuple[Hub, Actor],
) -> None:
    hub, analyst = ready_hub
    results = fire(hub, analyst, [make_request(0)] * WORKERS)
    assert all(isinstance(r, tuple) for r in results), results
    assert len({rid for rid, _ in results}) == 1
    assert sorted(cached for _, cached in results) == [False] + [True] * (WORKERS - 1)
    after = ledger(hub)
    assert after["releases"] == after["release_events"] == 1
    assert after["debits"] == {"2026-11": 1, "lifetime": 1}
    assert after["accounts"]["2026-11"][1] == pytest.approx(COST)


def test_concurrent_identical_requests_for_the_last_affordable_release_are_not_refused(
    ready_hub: tuple[Hub, Actor],
) -> None:
    hub, analyst = ready_hub
    for i in range(1, FITS):  # spend all but the last tenth of the period budget
        release(hub, analyst, make_request(i))
    results = fire(hub, analyst, [make_request(0)] * WORKERS)
    assert all(isinstance(r, tuple) for r in results), results
    assert len({rid for rid, _ in results}) == 1
    after = ledger(hub)
    assert after["releases"] == FITS
    assert after["debits"] == {"2026-11": FITS, "lifetime": FITS}
    assert after["accounts"]["2026-11"][1] == pytest.approx(FITS * COST)
