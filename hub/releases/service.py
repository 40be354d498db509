"""Releases: the only way data leaves the hub, as differentially private aggregates.

Order matters (invariants 3 and 4):

1. the request is checked against the agreement (approved aggregate, allowed recipient, in force);
2. an identical earlier request (same aggregate, agreement version, recipient, window and the
   same uploads) returns the stored release — the hub never re-noises a query;
3. otherwise the release is computed by ``publishers`` (OpenDP) and its row is inserted, which
   claims the request's unique hash; then the budget is debited with a conditional UPDATE that
   cannot overspend even under concurrency, and the debits, sources and audit event are stored —
   all in the caller's transaction. The caller returns the release only after that transaction
   commits, and rolls it back on any error (a refused request leaves nothing behind).

Why the hash is claimed before the debit: two identical requests racing on PostgreSQL both miss
the cache; the second's insert waits on the first's uncommitted row and fails with an
``IntegrityError`` once it commits, and :meth:`hub.context.Hub.transact` runs it again to find
the stored release. Debiting first would let the second be refused for want of budget when the
first took the last of it, although the release it asked for exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Table, Text, cast, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from contracts.model import Aggregate, Agreement
from contracts.plan import aggregate_fields, time_key
from hub import audit
from hub.agreements.service import (
    Governing,
    check_in_force,
    governing_aggregate,
    governing_dataset,
)
from hub.auth.policies import Actor, Permission, Role, check_permission
from hub.db.models import (
    BudgetAccount,
    BudgetDebit,
    LinkageRun,
    PersonLink,
    Record,
    Release,
    ReleaseSource,
    Upload,
)
from hub.errors import BudgetExhausted, InvalidRequest, NotAllowed, NotFound
from publishers.cells import PERIOD_UNIT

if TYPE_CHECKING:
    from publishers.release import Terms

MAX_WINDOW_MONTHS = 120
LIFETIME = "lifetime"
TOLERANCE = 1e-12
"""How far a sum of float debits may pass a cap and still fit (float sums drift by ~1e-16)."""


@dataclass(frozen=True)
class ReleaseRequest:
    aggregate_id: str
    window_start: dt.date
    window_end: dt.date
    recipient: str = "public"

    @classmethod
    def with_default_window(
        cls,
        today: dt.date,
        aggregate_id: str,
        window_start: dt.date | None = None,
        window_end: dt.date | None = None,
        recipient: str = "public",
    ) -> ReleaseRequest:
        """The request, with :func:`default_window`'s start or end where one is not given."""
        default_start, default_end = default_window(today)
        return cls(
            aggregate_id, window_start or default_start, window_end or default_end, recipient
        )

    def validate(self, today: dt.date) -> None:
        if self.window_end < self.window_start:
            raise InvalidRequest(
                f"the window ends ({self.window_end}) before it starts ({self.window_start})"
            )
        months = (self.window_end.year - self.window_start.year) * 12 + (
            self.window_end.month - self.window_start.month
        )
        if months >= MAX_WINDOW_MONTHS:
            raise InvalidRequest(
                f"the window spans {months + 1} months; at most {MAX_WINDOW_MONTHS} may be "
                "released at once"
            )
        if self.window_start > today:
            raise InvalidRequest(f"the window starts after today ({today}); there is no data yet")


def default_window(today: dt.date, months: int = 24) -> tuple[dt.date, dt.date]:
    """The ``months`` full calendar months before ``today``'s month."""
    end = today.replace(day=1) - dt.timedelta(days=1)
    y, m = end.year, end.month - months + 1
    while m <= 0:
        y, m = y - 1, m + 12
    return dt.date(y, m, 1), end


def check_recipient(spec: Agreement, recipient: str) -> None:
    """Refuse a recipient the agreement denies or does not list; say who may receive."""
    out = spec.outputs
    allowed = [r for r in out.recipients_allowed if r not in out.recipients_denied]
    if recipient in allowed:
        return
    verb = "denies" if recipient in out.recipients_denied else "does not allow"
    raise NotAllowed(
        f"{spec.ref} {verb} releases to {recipient!r}; allowed: {', '.join(allowed) or 'none'}"
    )


def can_release_to(spec: Agreement, recipient: str) -> bool:
    try:
        check_recipient(spec, recipient)
    except NotAllowed:
        return False
    return True


def _uploads_of(session: Session, dataset_id: str) -> list[str]:
    return sorted(
        session.execute(select(Upload.id).where(Upload.dataset_id == dataset_id)).scalars()
    )


@dataclass(frozen=True)
class Sources:
    """Everything a release reads: its own agreement and dataset's uploads, and for each
    dataset its numerator looks into, that dataset, its governing agreement and uploads."""

    gov: Governing
    aggregate: Aggregate
    uploads: list[str]
    linked: tuple[tuple[str, Governing, list[str]], ...] = ()

    @property
    def governing(self) -> list[Governing]:
        """Every agreement whose data the release reads, its own first (each once)."""
        out = {self.gov.spec.ref: self.gov}
        for _, gov, _ in self.linked:
            out.setdefault(gov.spec.ref, gov)
        return list(out.values())

    @property
    def all_uploads(self) -> list[str]:
        return sorted({*self.uploads, *(u for _, _, ups in self.linked for u in ups)})


def request_hash(
    gov: Governing,
    req: ReleaseRequest,
    uploads: list[str],
    src: Sources | None = None,
    today: dt.date | None = None,
) -> str:
    """What makes two requests the same release. Where a dataset read has consent that ends
    (:meth:`contracts.model.Consent.expiry_for`), the rows read change with the day, so the
    day (``today``) is part of it: a release is not served again once consents have ended."""
    body: dict[str, Any] = {
        "aggregate": req.aggregate_id,
        "agreement": gov.spec.ref,
        "agreement_sha256": gov.row.sha256,
        "recipient": req.recipient,
        "window": [req.window_start.isoformat(), req.window_end.isoformat()],
        "uploads": uploads,
    }
    if today is not None and src is not None and _ending_consent(src):
        body["consent_as_of"] = today.isoformat()
    if src is not None and src.linked:
        # Only releases that read linked data hash these, so earlier requests keep their hash.
        body["linked"] = {
            dataset: {"agreement": g.spec.ref, "sha256": g.row.sha256, "uploads": ups}
            for dataset, g, ups in src.linked
        }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def release_rows(
    session: Session,
    dataset_id: str,
    fields: list[str],
    linkable_only: bool = False,
    consent_ends: tuple[str, dt.date] | None = None,
) -> pd.DataFrame:
    """The narrow data interface publishers read: person id plus the stored fields needed.
    ``linkable_only`` leaves out records under a no-linkage or aggregate-only rule: their
    person id is their own, so a condition on a linked dataset could never hold for them.
    ``consent_ends`` (the consent's end-date field, and today) leaves out records whose
    consent ended before today (:meth:`contracts.model.Consent.expiry_for`): after it, the
    agreement says, the row is not used.

    Read through the driver's own cursor, values as JSON text parsed here: at 200,000 records
    this takes a third of the time SQLAlchemy's rows and JSON type take (bench_release)."""
    query = (
        select(PersonLink.person_id, cast(Record.values, Text))
        .join(PersonLink, PersonLink.record_id == Record.id, isouter=True)
        .where(Record.dataset_id == dataset_id)
    )
    if linkable_only:
        query = query.where(Record.no_linkage.is_(False), Record.aggregate_only.is_(False))
    connection = session.connection()
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        result = cursor.fetchall()
    finally:
        cursor.close()
    person_ids = [pid for pid, _ in result]
    if any(pid is None for pid in person_ids):
        raise InvalidRequest(
            f"{dataset_id} has records without a person id; run `ovphub link run` before "
            "releasing (the privacy unit is the linked person)"
        )
    decode = json.JSONDecoder().decode
    values = [decode(text) for _, text in result]
    del result
    if consent_ends is not None:
        expiry, day = consent_ends[0], consent_ends[1].isoformat()
        current = [not (v.get(expiry) or "9999") < day for v in values]
        person_ids = [p for p, ok in zip(person_ids, current, strict=True) if ok]
        values = [v for v, ok in zip(values, current, strict=True) if ok]
    data: dict[str, list[Any]] = {"person_id": person_ids}
    for name in fields:
        data[name] = [v.get(name) for v in values]
    return pd.DataFrame(data, dtype=object)


def _ending_consent(src: Sources) -> bool:
    """Whether a dataset the release reads has consent that ends."""
    reads = [(src.gov.spec, src.aggregate.dataset)] + [(g.spec, d) for d, g, _ in src.linked]
    return any(spec.consent.expiry_for(dataset) is not None for spec, dataset in reads)


def _consent_ends(spec: Agreement, dataset_id: str, today: dt.date) -> tuple[str, dt.date] | None:
    """What :func:`release_rows` needs to leave out rows whose consent has ended, if any."""
    expiry = spec.consent.expiry_for(dataset_id)
    return (expiry, today) if expiry is not None else None


def _account(session: Session, agreement_id: str, period_key: str, unit: str, cap: float) -> int:
    table = BudgetAccount.__table__
    assert isinstance(table, Table)
    values = {
        "agreement_id": agreement_id,
        "period_key": period_key,
        "unit": unit,
        "cap": cap,
        "spent": 0.0,
    }
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)).values(values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["agreement_id", "period_key"]))
    account_id = session.execute(
        select(BudgetAccount.id).where(
            BudgetAccount.agreement_id == agreement_id, BudgetAccount.period_key == period_key
        )
    ).scalar_one()
    # Accounts belong to the agreement, not to a version: an amended budget applies to the
    # period and lifetime accounts already open, or amending would never take effect.
    session.execute(
        update(BudgetAccount)
        .where(BudgetAccount.id == account_id, BudgetAccount.cap != cap)
        .values(cap=cap)
        .execution_options(synchronize_session=False)
    )
    return account_id


def _left(cap: float, spent: float) -> float:
    """What ``cap`` leaves after ``spent``: never negative, and rounded so that sums of float
    debits (which drift by ~1e-16) never show as "-1.1e-16 left"."""
    return max(0.0, round(cap - spent, 9))  # not -0.0


def _budget_accounts(spec: Agreement, today: dt.date) -> list[tuple[str, float]]:
    """The agreement's accounts a release ``today`` is charged to, as ``(period key, cap)``:
    the current period's, then the lifetime one."""
    budget = spec.outputs.privacy.budget
    return [
        (time_key(today, PERIOD_UNIT[budget.period]), budget.per_period),
        (LIFETIME, budget.lifetime),
    ]


def debit(session: Session, spec: Agreement, amount: float, today: dt.date) -> list[int]:
    """Charge ``amount`` to the agreement's period and lifetime accounts, or refuse. Returns the
    charged account ids, for the caller to record as debits of the release it stores.

    The check and the charge are one ``UPDATE ... WHERE spent + amount <= cap``: PostgreSQL takes
    a row lock and re-checks the condition after any concurrent update commits, so concurrent
    releases can never overspend. A refusal raises :class:`BudgetExhausted`; the caller's
    rollback undoes a period charge made before the lifetime account refused.
    """
    unit = "rho" if spec.outputs.privacy.model == "zcdp" else "epsilon"
    charged_accounts = []
    for key, cap in _budget_accounts(spec, today):
        account_id = _account(session, spec.id, key, unit, cap)
        charged = session.execute(
            update(BudgetAccount)
            .where(BudgetAccount.id == account_id)
            .where(BudgetAccount.spent + amount <= BudgetAccount.cap + TOLERANCE)
            .values(spent=BudgetAccount.spent + amount)
            .execution_options(synchronize_session=False)
        )
        if charged.rowcount != 1:  # type: ignore[attr-defined]
            cap_now, spent_now = session.execute(
                select(BudgetAccount.cap, BudgetAccount.spent).where(BudgetAccount.id == account_id)
            ).one()
            left = _left(cap_now, spent_now)
            if key == LIFETIME:
                what, then = "lifetime", "ask legal staff to amend the agreement's lifetime budget"
            else:
                what = f"period {key}"
                then = "wait for the next period or ask legal staff to amend the agreement's budget"
            raise BudgetExhausted(
                f"{spec.ref}: the {what} privacy budget has {left:.4g} {unit} left and this "
                f"release needs {amount:.4g}; {then}",
                remaining=left,
                needed=amount,
            )
        charged_accounts.append(account_id)
    return charged_accounts


def find_cached(session: Session, digest: str) -> Release | None:
    return session.execute(
        select(Release).where(Release.request_hash == digest)
    ).scalar_one_or_none()


def _linked_source(
    session: Session, aggregate: Aggregate, dataset_id: str, req: ReleaseRequest, today: dt.date
) -> tuple[str, Governing, list[str]]:
    """A dataset a release's numerator looks into: its agreement must be in force, allow the
    recipient and permit linkage with the aggregate's dataset."""
    try:
        other = governing_dataset(session, dataset_id)
    except NotFound:
        raise NotAllowed(
            f"{aggregate.id} needs linked dataset {dataset_id}, which no registered agreement "
            "declares; register its agreement first"
        ) from None
    check_in_force(other, today, "released", session)
    check_recipient(other.spec, req.recipient)
    own = governing_dataset(session, aggregate.dataset)
    for spec, partner in ((own.spec, dataset_id), (other.spec, aggregate.dataset)):
        link = spec.linkage
        if not link.permitted or partner not in link.link_with or partner in link.prohibited_with:
            raise NotAllowed(
                f"{aggregate.id} reads {dataset_id} linked to {aggregate.dataset}, but "
                f"{spec.ref} does not permit linking its data with {partner}"
            )
    return dataset_id, other, _uploads_of(session, dataset_id)


def _release_gate(session: Session, actor: Actor, req: ReleaseRequest, today: dt.date) -> Sources:
    """What a release and its preview both check first: the actor may request releases, the
    request is well-formed, every agreement whose data it reads is in force for releasing and
    allows the recipient (and, for linked data, permits the linkage). Returns the sources."""
    check_permission(actor, Permission.releases_create)
    req.validate(today)
    gov = governing_aggregate(session, req.aggregate_id)
    check_in_force(gov, today, "released", session)
    check_recipient(gov.spec, req.recipient)
    aggregate = gov.spec.aggregate(req.aggregate_id)
    assert aggregate is not None
    if aggregate.channel == "partner_report" and req.recipient == "public":
        # A public release is published on the public dashboard; a partner report is not.
        raise NotAllowed(
            f"{aggregate.id} is a partner report under {gov.spec.ref}: release it to a party "
            "the agreement allows, not to the public"
        )
    linked = tuple(
        _linked_source(session, aggregate, event.dataset, req, today)
        for event in aggregate.linked_events
    )
    return Sources(gov, aggregate, _uploads_of(session, aggregate.dataset), linked)


def _terms(src: Sources) -> Terms:
    from publishers.release import release_terms  # OpenDP loads lazily

    return release_terms(src.gov.spec, src.aggregate.id, [g.spec for _, g, _ in src.linked])


def request_release(
    session: Session, actor: Actor, req: ReleaseRequest, today: dt.date | None = None
) -> tuple[Release, bool]:
    """Return ``(release, cached)``. The caller commits before showing the release."""
    from publishers.release import compute_release  # OpenDP loads lazily

    today = today or dt.date.today()
    src = _release_gate(session, actor, req, today)
    gov, aggregate = src.gov, src.aggregate
    digest = request_hash(gov, req, src.uploads, src, today)
    cached = find_cached(session, digest)
    if cached is not None:
        return cached, True

    terms = _terms(src)
    # An aggregate over linked data reads only records that can be linked, on both sides.
    reads_linked = bool(aggregate.linked_events)
    rows = release_rows(
        session,
        aggregate.dataset,
        aggregate_fields(aggregate),
        reads_linked,
        _consent_ends(gov.spec, aggregate.dataset, today),
    )
    specs = {dataset: g.spec for dataset, g, _ in src.linked}
    linked = {
        event.dataset: release_rows(
            session,
            event.dataset,
            list(event.fields),
            True,
            _consent_ends(specs[event.dataset], event.dataset, today),
        )
        for event in aggregate.linked_events
    }
    computed = compute_release(
        gov.spec,
        req.aggregate_id,
        rows,
        window_start=req.window_start,
        window_end=req.window_end,
        seed=secrets.randbits(63),
        linked=linked,
        terms=terms,
    )
    del rows, linked
    release_id = uuid.uuid4().hex
    run = session.execute(
        select(LinkageRun).order_by(LinkageRun.id.desc()).limit(1)
    ).scalar_one_or_none()
    governing = src.governing
    manifest = {
        "id": release_id,
        "aggregate_id": req.aggregate_id,
        "title": aggregate.title,
        "channel": aggregate.channel,
        "recipient": req.recipient,
        "agreements": [g.spec.ref for g in governing],
        "agreement_sha256": {g.spec.ref: g.row.sha256 for g in governing},
        "released_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "uploads": src.all_uploads,
        "linkage_run": run.id if run else None,
        "linkage_method": run.method if run else None,
        "privacy_unit_note": (
            "The guarantee is per linked person: someone linkage splits into k ids can lose up "
            "to k times the stated privacy loss. See the linkage quality report for split rates."
        ),
        **computed.to_manifest(),
    }
    if reads_linked:
        manifest["population_note"] = (
            "Records under a no-linkage or aggregate-only rule cannot be linked, so they are "
            "left out of this aggregate on every side (its people are the linkable ones)."
        )
    release = Release(
        id=release_id,
        request_hash=digest,
        aggregate_id=req.aggregate_id,
        recipient=req.recipient,
        requested_by=actor.user_id,
        privacy_model=terms.privacy_model,
        privacy_loss=terms.loss,
        manifest=manifest,
    )
    session.add(release)
    # One source per agreement version (a linked dataset may be under the aggregate's own).
    read: dict[int, set[str]] = {gov.row.id: set(src.uploads)}
    for _, other, uploads in src.linked:
        read.setdefault(other.row.id, set()).update(uploads)
    session.add_all(
        ReleaseSource(release_id=release_id, agreement_version_id=v, upload_ids=sorted(ups))
        for v, ups in read.items()
    )
    session.flush()  # claims request_hash; an identical request in flight fails here, retries
    amounts = {c.agreement: c.amount for c in terms.charges}
    # Accounts are locked in one order (by agreement id) by every release, so two releases
    # charging the same two agreements cannot deadlock on PostgreSQL.
    for g in sorted(governing, key=lambda g: g.spec.id):
        amount = amounts[g.spec.ref]
        accounts = debit(session, g.spec, amount, today)
        session.add_all(
            BudgetDebit(account_id=a, release_id=release_id, amount=amount) for a in accounts
        )
    session.flush()
    audit.append(
        session,
        audit.Event(
            actor.label,
            "release.create",
            f"release:{release_id}",
            {
                "aggregate": req.aggregate_id,
                "agreement": gov.spec.ref,
                "agreements": [g.spec.ref for g in governing],
                "privacy_loss": terms.loss,
                "charges": [c.as_dict() for c in terms.charges],
                "model": terms.privacy_model,
                "recipient": req.recipient,
            },
        ),
    )
    return release, False


def _remaining(session: Session, agreement_id: str, period_key: str, cap: float) -> dict[str, Any]:
    """What an account has left, read only: an account not yet opened has spent nothing. The
    cap is the governing version's (a debit would update the stored cap to it)."""
    spent = session.execute(
        select(BudgetAccount.spent).where(
            BudgetAccount.agreement_id == agreement_id, BudgetAccount.period_key == period_key
        )
    ).scalar_one_or_none()
    spent = round(spent or 0.0, 9)
    return {"period": period_key, "cap": cap, "spent": spent, "remaining": _left(cap, spent)}


def preview_release(
    session: Session, actor: Actor, req: ReleaseRequest, today: dt.date | None = None
) -> dict[str, Any]:
    """What :func:`request_release` would publish and spend, without spending or storing
    anything (no account is opened, no audit event written) and without reading any data.

    Returns the per-cell and per-total 95% error bounds, the cell count, the privacy loss the
    release would cost, and what would remain in the agreement's period and lifetime accounts
    afterwards. If an identical request was already released, ``cached`` is true and the cost
    is 0: requesting it again returns the stored release. ``fits`` says whether the budget
    would allow it (the debit itself can still lose a race to a concurrent release).
    """
    from publishers.release import preview  # OpenDP loads lazily

    today = today or dt.date.today()
    src = _release_gate(session, actor, req, today)
    cached = find_cached(session, request_hash(src.gov, req, src.uploads, src, today))
    terms = _terms(src)
    plan = preview(src.gov.spec, req.aggregate_id, req.window_start, req.window_end, terms)
    budgets = {}
    for g, charge in zip(src.governing, terms.charges, strict=True):
        cost = 0.0 if cached is not None else charge.amount
        period, lifetime = (
            _remaining(session, g.spec.id, key, cap) for key, cap in _budget_accounts(g.spec, today)
        )
        accounts = {"period": period, "lifetime": lifetime, "unit": charge.unit, "cost": cost}
        for account in (period, lifetime):
            account["remaining_after"] = _left(account["remaining"], cost)
        accounts["fits"] = all(cost <= a["remaining"] + TOLERANCE for a in (period, lifetime))
        budgets[g.spec.ref] = accounts
    # ``cost``, ``budget_unit`` and ``budget`` are the aggregate's own agreement's, in its unit;
    # ``budgets`` has every agreement charged (one when no linked data is read), and
    # ``privacy_loss`` / ``privacy_loss_unit`` the release's own loss (pure DP when any
    # agreement involved is).
    own_charge = terms.charges[0]
    own = budgets[src.gov.spec.ref]
    return {
        **plan,
        "title": src.aggregate.title,
        "recipient": req.recipient,
        "cached": cached is not None,
        "cached_release_id": cached.id if cached is not None else None,
        "cost_per_release": own_charge.amount,
        "cost": own["cost"],
        "budget_unit": own_charge.unit,
        "budget": {"period": own["period"], "lifetime": own["lifetime"]},
        "budgets": budgets,
        "fits": all(b["fits"] for b in budgets.values()),
    }


def get_release(session: Session, actor: Actor, release_id: str) -> Release:
    check_permission(actor, Permission.releases_read)
    release = session.get(Release, release_id)
    if release is None or not can_see_release(actor, release):
        raise NotFound(f"no release {release_id}")
    return release


def can_see_release(actor: Actor, release: Release) -> bool:
    """Public releases are for everyone; others for office staff and the named recipient."""
    if release.recipient == "public":
        return True
    if actor.role in (Role.analyst, Role.admin, Role.legal):
        return True
    return actor.party_id is not None and actor.party_id == release.recipient


def list_releases(session: Session, actor: Actor, public_only: bool = False) -> list[Release]:
    check_permission(actor, Permission.releases_read)
    rows = session.execute(select(Release).order_by(Release.created_at)).scalars()
    return [
        r
        for r in rows
        if can_see_release(actor, r) and (not public_only or r.recipient == "public")
    ]


def budget_status(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "agreement": a.agreement_id,
            "period": a.period_key,
            "unit": a.unit,
            "cap": a.cap,
            "spent": round(a.spent, 9),
            "remaining": _left(a.cap, a.spent),
        }
        for a in session.execute(
            select(BudgetAccount).order_by(BudgetAccount.agreement_id, BudgetAccount.period_key)
        ).scalars()
    ]
