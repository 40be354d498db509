"""Releases: what a release states, the cache, the budget, refusals, suppression, audit.

One linked SQLite database is built per module (synthetic police extract plus a crowded cell,
linkage run) and copied for every test, so each test starts from the same data in ~0.1 s.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from release_factories import (
    AGREEMENT,
    TODAY,
    WINDOW,
    copied_hub,
    link,
    make_request,
    make_seed_db,
    release,
    upload,
)
from sqlalchemy import func, select

from contracts.model import Agreement
from factories import load_agreement, make_agreement_data, make_police_csv, make_police_row
from hub import audit
from hub.context import Hub
from hub.db.models import (
    AgreementVersion,
    AuditEvent,
    BudgetAccount,
    BudgetDebit,
    Release,
    ReleaseSource,
    Upload,
)
from hub.errors import AgreementRefused, BudgetExhausted, InvalidRequest, NotAllowed, NotFound

TYPES = [
    "FATAL_SHOOTING",
    "NON_SHOOTING_HOMICIDE",
    "NON_FATAL_SHOOTING",
    "AGG_BATTERY_NONGUN",
    "ROBBERY_INJURY",
]
MIN_CELL = 11
COST = 0.2  # viol_monthly: budget_share 0.4 x per_period 0.5 (rho); two fit in a month


# --- factories (the shared ones are in tests/release_factories.py) ------------------------------


def make_people_rows(first: int, count: int, when: str, kind: str) -> list[dict[str, str]]:
    """``count`` distinct people (distinct names and birth dates), one victimization each."""
    return [
        make_police_row(
            i,
            incident_datetime=when,
            victimization_type=kind,
            victim_first_name=f"Given{chr(65 + n % 26)}{chr(65 + n // 26)}",
            victim_last_name=f"Family{chr(65 + n % 26)}{chr(75 + n // 26)}",
            victim_dob=f"{1960 + n}-0{1 + n % 9}-1{n % 9}",
            narrative="",
        )
        for n, i in enumerate(range(first, first + count))
    ]


def amend(hub: Hub, version: str, change: Callable[[dict[str, Any]], None]) -> Agreement:
    """Register a new version of the police agreement, changed by ``change``."""
    data = make_agreement_data()
    data["agreement"]["version"] = version
    change(data)
    agreement = Agreement.model_validate(data)
    load_agreement(hub, agreement)
    return agreement


def ledger(hub: Hub) -> dict[str, Any]:
    """Everything a release writes, to compare before and after a request."""
    with hub.session() as s:
        return {
            "releases": sorted(s.execute(select(Release.id)).scalars()),
            "sources": s.execute(select(func.count()).select_from(ReleaseSource)).scalar_one(),
            "debits": s.execute(select(func.count()).select_from(BudgetDebit)).scalar_one(),
            "accounts": sorted(
                s.execute(
                    select(BudgetAccount.period_key, BudgetAccount.cap, BudgetAccount.spent)
                ).all()
            ),
            "audit": audit.count(s),
        }


def spent(hub: Hub, period_key: str) -> float:
    with hub.session() as s:
        return s.execute(
            select(BudgetAccount.spent).where(BudgetAccount.period_key == period_key)
        ).scalar_one()


def months(start: dt.date, end: dt.date) -> list[str]:
    out, (y, m) = [], (start.year, start.month)
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Examples loaded, users made, the synthetic police extract plus 15 people shot in one
    month (a cell whose true count is above min_cell) uploaded, linkage run."""
    crowded = make_people_rows(900_001, 15, "2026-03-14T22:15:00", "NON_FATAL_SHOOTING")
    return make_seed_db(
        tmp_path_factory.mktemp("releases-seed"),
        people=200,
        seed=11,
        extra=(make_police_csv(crowded),),
    )


@pytest.fixture
def linked_hub(seed_db: Path, tmp_path: Path) -> Iterator[Hub]:
    with copied_hub(seed_db, tmp_path) as hub:
        yield hub


# --- what a release states ---------------------------------------------------------------------


def test_a_release_states_agreement_mechanism_loss_bound_window_accuracy_and_uploads(
    linked_hub: Hub,
) -> None:
    view = release(linked_hub, make_request())
    with linked_hub.session() as s:
        uploads = sorted(s.execute(select(Upload.id)).scalars())
        version = s.execute(
            select(AgreementVersion).where(AgreementVersion.agreement_id == AGREEMENT)
        ).scalar_one()
    assert version is not None and len(uploads) == 2
    assert view["agreements"] == [f"{AGREEMENT}@1.0.0"]
    assert view["agreement_sha256"] == {f"{AGREEMENT}@1.0.0": version.sha256}
    assert view["mechanism"] == "discrete_gaussian" and view["privacy_model"] == "zcdp"
    assert view["privacy_loss_unit"] == "rho"
    assert 0 < view["privacy_loss"] <= COST and view["privacy_loss_requested"] == COST
    assert view["contribution_bound"] == {"max_rows_per_person_per_period": 4, "period": "P1Y"}
    assert view["window"] == {"start": "2024-11-01", "end": "2026-10-31"}
    assert view["error_bound_95"] > 0 and view["total_error_bound_95"] > 0
    assert view["uploads"] == uploads
    assert view["linkage_run"] is not None and "per linked person" in view["privacy_unit_note"]
    assert view["min_cell"] == MIN_CELL and view["cached"] is False


@pytest.mark.parametrize(
    ("aggregate", "keys"),
    [
        ("viol_monthly", [months(*WINDOW), TYPES]),
        (
            "viol_demog_qtr",
            [
                [f"{y}-Q{q}" for y, q in itertools.product((2024, 2025, 2026), (1, 2, 3, 4))][3:],
                ["0-11", "12-17", "18-24", "25-34", "35-44", "45-64", "65-120"],
                ["M", "F", "X", "U"],
            ],
        ),
    ],
)
def test_release_cells_cover_the_full_public_key_set_with_counts_or_suppressed_displays(
    linked_hub: Hub, aggregate: str, keys: list[list[str]]
) -> None:
    view = release(linked_hub, make_request(aggregate))
    names = view["dimensions"]
    expected = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*keys)]
    assert [c["key"] for c in view["cells"]] == expected
    for cell in view["cells"]:
        if cell["suppressed"]:
            assert cell["value"] is None and cell["display"] == f"<{MIN_CELL}"
        else:
            assert isinstance(cell["value"], int) and cell["value"] >= MIN_CELL
            assert cell["display"] == str(cell["value"])


# --- invariant 4: the cache --------------------------------------------------------------------


def test_an_identical_request_returns_the_stored_release_and_spends_nothing(
    linked_hub: Hub,
) -> None:
    first = release(linked_hub, make_request())
    before = ledger(linked_hub)
    for _ in range(3):
        again = release(linked_hub, make_request())
        assert again["cached"] is True
        assert again["id"] == first["id"] and again["cells"] == first["cells"]
        assert again["totals"] == first["totals"]
    assert ledger(linked_hub) == before
    # The budget fits two releases a month: the repeats spent none of it.
    other = release(linked_hub, make_request(window=(dt.date(2025, 1, 1), WINDOW[1])))
    assert other["cached"] is False


def test_a_request_with_another_window_or_recipient_is_a_new_release(linked_hub: Hub) -> None:
    first = release(linked_hub, make_request())
    by_window = release(linked_hub, make_request(window=(dt.date(2025, 1, 1), WINDOW[1])))
    # A new month brings a new period budget for the third release.
    by_recipient = release(
        linked_hub, make_request(recipient="org:ovp"), today=TODAY.replace(month=12)
    )
    ids = {first["id"], by_window["id"], by_recipient["id"]}
    assert len(ids) == 3 and not by_window["cached"] and not by_recipient["cached"]
    assert by_recipient["recipient"] == "org:ovp"
    assert spent(linked_hub, "lifetime") == pytest.approx(3 * COST)


def test_new_data_makes_the_same_request_a_new_release_and_the_old_keeps_its_sources(
    linked_hub: Hub,
) -> None:
    old = release(linked_hub, make_request())
    new_rows = make_people_rows(900_101, 3, "2026-05-02T10:00:00", "ROBBERY_INJURY")
    receipt = upload(linked_hub, make_police_csv(new_rows))
    link(linked_hub)
    new = release(linked_hub, make_request())
    assert new["id"] != old["id"] and new["cached"] is False
    assert spent(linked_hub, "2026-11") == pytest.approx(2 * COST)
    assert receipt.upload_id in new["uploads"] and receipt.upload_id not in old["uploads"]
    with linked_hub.session() as s:
        sources = {r.release_id: r for r in s.execute(select(ReleaseSource)).scalars()}
    assert sources[old["id"]].upload_ids == old["uploads"]
    assert sources[new["id"]].upload_ids == sorted([*old["uploads"], receipt.upload_id])
    assert sources[old["id"]].agreement_version_id == sources[new["id"]].agreement_version_id
    # The same file again is no new data: the new release is returned from the cache.
    upload(linked_hub, make_police_csv(new_rows))
    assert release(linked_hub, make_request())["id"] == new["id"]


def test_a_new_agreement_version_is_a_new_query_and_old_releases_stay_bound_to_theirs(
    linked_hub: Hub,
) -> None:
    old = release(linked_hub, make_request())
    amend(linked_hub, "1.1.0", lambda d: d["agreement"].update(title="Amended title"))
    new = release(linked_hub, make_request())
    assert new["id"] != old["id"] and new["agreements"] == [f"{AGREEMENT}@1.1.0"]
    with linked_hub.session() as s:
        version_of = dict(
            s.execute(
                select(ReleaseSource.release_id, AgreementVersion.version).join(
                    AgreementVersion, AgreementVersion.id == ReleaseSource.agreement_version_id
                )
            ).all()
        )
    assert version_of == {old["id"]: "1.0.0", new["id"]: "1.1.0"}


# --- the budget --------------------------------------------------------------------------------


def test_releases_succeed_until_the_period_budget_cannot_pay_then_nothing_is_stored(
    linked_hub: Hub,
) -> None:
    release(linked_hub, make_request())
    release(linked_hub, make_request(window=(dt.date(2025, 1, 1), WINDOW[1])))
    before = ledger(linked_hub)
    with pytest.raises(BudgetExhausted) as info:
        release(linked_hub, make_request(window=(dt.date(2025, 2, 1), WINDOW[1])))
    assert "period 2026-11 privacy budget has 0.1 rho left" in info.value.detail
    assert "needs 0.2" in info.value.detail and "next period" in info.value.detail
    assert info.value.extra == {"remaining": pytest.approx(0.1), "needed": pytest.approx(COST)}
    assert ledger(linked_hub) == before
    # The next month's budget pays again.
    december = release(
        linked_hub,
        make_request(window=(dt.date(2025, 2, 1), WINDOW[1])),
        today=dt.date(2026, 12, 1),
    )
    assert december["cached"] is False


def test_the_lifetime_cap_refuses_a_release_the_period_could_pay_and_stores_nothing(
    linked_hub: Hub,
) -> None:
    def small_lifetime(data: dict[str, Any]) -> None:
        data["outputs"]["privacy"]["budget"]["lifetime"] = 0.6

    amend(linked_hub, "1.1.0", small_lifetime)
    november, december = TODAY, dt.date(2026, 12, 10)
    release(linked_hub, make_request(), today=november)
    release(linked_hub, make_request(window=(dt.date(2025, 1, 1), WINDOW[1])), today=november)
    release(linked_hub, make_request(window=(dt.date(2025, 2, 1), WINDOW[1])), today=december)
    before = ledger(linked_hub)
    with pytest.raises(BudgetExhausted) as info:
        release(linked_hub, make_request(window=(dt.date(2025, 3, 1), WINDOW[1])), today=december)
    assert "lifetime privacy budget has 0 rho left" in info.value.detail
    assert "next period" not in info.value.detail  # waiting does not refill a lifetime cap
    assert ledger(linked_hub) == before  # the December debit it made first was rolled back
    assert spent(linked_hub, "2026-12") == pytest.approx(COST)


def test_an_amended_budget_applies_to_the_accounts_already_open(linked_hub: Hub) -> None:
    release(linked_hub, make_request())
    release(linked_hub, make_request(window=(dt.date(2025, 1, 1), WINDOW[1])))
    with pytest.raises(BudgetExhausted, match="amend"):
        release(linked_hub, make_request(window=(dt.date(2025, 2, 1), WINDOW[1])))

    def larger_budget(data: dict[str, Any]) -> None:
        data["outputs"]["privacy"]["budget"]["per_period"] = 1.0  # one release now costs 0.4

    amend(linked_hub, "1.1.0", larger_budget)
    release(linked_hub, make_request(window=(dt.date(2025, 2, 1), WINDOW[1])))
    assert spent(linked_hub, "2026-11") == pytest.approx(0.8)
    with pytest.raises(BudgetExhausted, match="0.2 rho left"):
        release(linked_hub, make_request(window=(dt.date(2025, 3, 1), WINDOW[1])))


# --- refusals ----------------------------------------------------------------------------------


def test_a_suspended_agreement_releases_nothing(linked_hub: Hub) -> None:
    amend(linked_hub, "1.1.0", lambda d: d["agreement"].update(status="suspended"))
    before = ledger(linked_hub)
    with pytest.raises(AgreementRefused, match="suspended, not active"):
        release(linked_hub, make_request())
    assert ledger(linked_hub) == before


def test_an_expired_agreement_releases_nothing_not_even_a_cached_release(
    linked_hub: Hub,
) -> None:
    release(linked_hub, make_request())
    before = ledger(linked_hub)
    with pytest.raises(AgreementRefused, match="2027-06-30"):
        release(linked_hub, make_request(), today=dt.date(2027, 7, 1))
    assert ledger(linked_hub) == before


def test_a_denied_or_unlisted_recipient_is_refused_with_who_may_receive(linked_hub: Hub) -> None:
    def deny_police(data: dict[str, Any]) -> None:
        data["outputs"]["recipients_allowed"] = ["public", "org:ovp", "org:police"]
        data["outputs"]["recipients_denied"] = ["org:police"]

    amend(linked_hub, "1.1.0", deny_police)
    before = ledger(linked_hub)
    with pytest.raises(NotAllowed, match="denies releases to 'org:police'") as denied:
        release(linked_hub, make_request(recipient="org:police"))
    assert "allowed: public, org:ovp" in denied.value.detail
    assert "org:police" not in denied.value.detail.split("allowed:")[1]
    with pytest.raises(NotAllowed, match="does not allow releases to 'org:hospital'"):
        release(linked_hub, make_request(recipient="org:hospital"))
    assert ledger(linked_hub) == before


def test_a_partner_report_is_never_released_to_the_public(linked_hub: Hub) -> None:
    """channel: partner_report. A public release goes on the public dashboard, so before,
    an aggregate the agreement keeps for partners was one request away from publication."""

    def for_partners(data: dict[str, Any]) -> None:
        for aggregate in data["outputs"]["aggregates"]:
            aggregate["channel"] = "partner_report"

    amend(linked_hub, "1.1.0", for_partners)
    before = ledger(linked_hub)
    with pytest.raises(NotAllowed, match="partner report .*not to the public"):
        release(linked_hub, make_request())
    assert ledger(linked_hub) == before
    view = release(linked_hub, make_request(recipient="org:ovp"))
    assert view["recipient"] == "org:ovp"


def test_an_unknown_aggregate_is_not_found(linked_hub: Hub) -> None:
    with pytest.raises(NotFound, match="catalogue"):
        release(linked_hub, make_request("viol_by_block"))


def test_a_steward_cannot_request_a_release(linked_hub: Hub) -> None:
    before = ledger(linked_hub)
    with pytest.raises(NotAllowed, match="may not releases create"):
        release(linked_hub, make_request(), who="steward-police")
    assert ledger(linked_hub) == before


def test_a_window_that_ends_before_it_starts_is_refused(linked_hub: Hub) -> None:
    with pytest.raises(InvalidRequest, match="before it starts"):
        release(linked_hub, make_request(window=(WINDOW[1], WINDOW[0])))


def test_records_without_person_links_refuse_with_a_sentence_to_run_linkage(
    linked_hub: Hub,
) -> None:
    upload(
        linked_hub,
        make_police_csv(make_people_rows(900_201, 2, "2026-06-01T09:00:00", "ROBBERY_INJURY")),
    )
    before = ledger(linked_hub)
    with pytest.raises(InvalidRequest, match="run `ovphub link run` before releasing"):
        release(linked_hub, make_request())
    assert ledger(linked_hub) == before


# --- invariant 8: suppression on noisy values --------------------------------------------------


def capture_noise(
    monkeypatch: pytest.MonkeyPatch, make_noisy: Callable[[Any, Any], Any] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Record the exact counts the mechanism receives and the noisy counts it returns."""
    import publishers.release

    real = publishers.release.add_noise
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def spy(calibration: Any, counts: Any) -> Any:
        noisy = make_noisy(calibration, counts) if make_noisy else real(calibration, counts)
        seen.append((np.asarray(counts).copy(), np.asarray(noisy).copy()))
        return noisy

    monkeypatch.setattr(publishers.release, "add_noise", spy)
    return seen


def test_suppression_follows_the_noisy_value_not_the_true_count(
    linked_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Noise that moves every cell across the threshold: big true counts to 0, small ones up.
    seen = capture_noise(
        monkeypatch, lambda _, counts: np.where(counts >= MIN_CELL, 0, counts + MIN_CELL)
    )
    view = release(linked_hub, make_request())
    ((true, noisy),) = seen
    assert (true >= MIN_CELL).any() and (true < MIN_CELL).any()
    suppressed = np.array([c["suppressed"] for c in view["cells"]])
    assert (suppressed == (true >= MIN_CELL)).all()  # exactly the cells the noise pushed down
    for cell, value in zip(view["cells"], noisy.tolist(), strict=True):
        assert cell["value"] == (None if cell["suppressed"] else value)
        assert cell["display"] == (f"<{MIN_CELL}" if cell["suppressed"] else str(value))


def test_with_real_noise_flags_match_the_noisy_values_and_suppressed_cells_show_no_number(
    linked_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = capture_noise(monkeypatch)
    view = release(linked_hub, make_request())
    ((true, noisy),) = seen
    clamped = np.maximum(noisy, 0)
    suppressed = np.array([c["suppressed"] for c in view["cells"]])
    assert (suppressed == (clamped < MIN_CELL)).all()
    # With noise sigma ~11 over 120 cells, some cell lands across the threshold from its true
    # count (the chance that none does is below 1e-7).
    assert (suppressed != (true < MIN_CELL)).any()
    for cell in view["cells"]:
        if cell["suppressed"]:
            assert cell["value"] is None and cell["display"] == f"<{MIN_CELL}"


# --- audit -------------------------------------------------------------------------------------


def test_every_release_is_audited_once_and_the_chain_verifies(linked_hub: Hub) -> None:
    first = release(linked_hub, make_request())
    release(linked_hub, make_request())  # cached: no state change, no event
    second = release(linked_hub, make_request("viol_demog_qtr"))
    with linked_hub.session() as s:
        events = (
            s.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "release.create")
                .order_by(AuditEvent.seq)
            )
            .scalars()
            .all()
        )
        chain = audit.verify(s)
    assert [e.subject for e in events] == [f"release:{first['id']}", f"release:{second['id']}"]
    assert all(e.actor.startswith("analyst") for e in events)
    assert "cells" not in events[0].payload and f"{AGREEMENT}@1.0.0" in events[0].payload
    assert chain.ok and chain.reason == "chain intact"


def test_a_release_for_one_recipient_is_hidden_from_others_and_from_the_dashboard() -> None:
    from hub.auth.policies import Actor, Role
    from hub.db.models import Release
    from hub.releases.service import can_see_release

    release = Release(recipient="org:ovp")
    steward = Actor(1, "s", Role.steward, "org:police")
    ovp_steward = Actor(2, "o", Role.steward, "org:ovp")
    analyst = Actor(3, "a", Role.analyst, None)
    assert not can_see_release(steward, release)
    assert can_see_release(ovp_steward, release) and can_see_release(analyst, release)
    assert can_see_release(steward, Release(recipient="public"))


def test_windows_are_bounded_and_cannot_start_in_the_future() -> None:
    import datetime as dt

    from hub.errors import InvalidRequest
    from hub.releases.service import ReleaseRequest

    today = dt.date(2026, 11, 15)
    with pytest.raises(InvalidRequest, match="at most 120"):
        ReleaseRequest("x", dt.date(1900, 1, 1), dt.date(2026, 10, 31)).validate(today)
    with pytest.raises(InvalidRequest, match="after today"):
        ReleaseRequest("x", dt.date(2027, 1, 1), dt.date(2027, 2, 28)).validate(today)
    ReleaseRequest("x", dt.date(2024, 11, 1), dt.date(2026, 10, 31)).validate(today)
