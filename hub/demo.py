"""``ovphub demo``: the whole flow on a fresh SQLite database and synthetic data.

The demo's clock is pinned to :data:`DEMO_TODAY`, the reporting date of the synthetic data, so
that it gives the same story on any day (the example agreements run to mid-2027).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from contracts.loader import example_agreement_paths
from hub import audit
from hub.agreements.ceremony import sign_approve_activate
from hub.agreements.service import current_versions, register_file, spec_of
from hub.auth.policies import Actor, Role
from hub.auth.service import actor_of, create_user, ensure_admin
from hub.context import Hub, build_hub
from hub.errors import HubError
from hub.ingest.service import Receipt, upload_extract
from hub.linkage.evaluate import evaluate
from hub.linkage.report_page import report_html
from hub.linkage.service import engine_settings, run_linkage
from hub.releases.service import ReleaseRequest, request_release
from hub.releases.views import release_view, write_dashboard
from hub.settings import Settings

DEMO_TODAY = dt.date(2026, 11, 15)
WINDOW = (dt.date(2024, 11, 1), dt.date(2026, 10, 31))


def _users(hub: Hub) -> dict[str, Actor]:
    actors: dict[str, Actor] = {}
    with hub.session() as s:
        admin = ensure_admin(s)
        actors["admin"] = actor_of(admin)
        providers = sorted({d.provider for g in current_versions(s) for d in g.spec.datasets})
        wanted: list[tuple[str, Role, str | None]] = [
            (f"steward-{p.split(':')[1]}", Role.steward, p) for p in providers
        ]
        wanted += [("analyst", Role.analyst, None), ("legal", Role.legal, None)]
        for name, role, party in wanted:
            event = audit.Event(
                "admin (admin)", "user.create", f"user:{name}", {"role": role.value}
            )
            actors[name] = actor_of(create_user(s, name, role, party, event))
    return actors


def _release(hub: Hub, actor: Actor, req: ReleaseRequest) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        return release_view(*request_release(s, actor, req, DEMO_TODAY))

    return hub.transact(work)


def _upload(hub: Hub, actor: Actor, agreement_id: str, dataset_id: str, content: bytes) -> Receipt:
    def work(s: Session) -> Receipt:
        return upload_extract(
            s,
            hub.keys,
            actor,
            agreement_id=agreement_id,
            dataset_id=dataset_id,
            content=content,
            today=DEMO_TODAY,
        )

    return hub.transact(work)


def run_demo(
    out: Path,
    *,
    people: int = 2000,
    seed: int = 7,
    database_url: str | None = None,
    say: Callable[[str], Any] = lambda _: None,
) -> dict[str, Any]:
    """Run the whole flow into ``out`` (recreated). ``database_url`` defaults to SQLite in
    ``out``; tests pass a PostgreSQL URL to run the same flow there."""

    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    settings = Settings(data_dir=out, database_url=database_url, key_file=out / "keys" / "hub.key")
    hub = build_hub(settings)
    hub.today = lambda: DEMO_TODAY
    try:
        return _flow(hub, out, people=people, seed=seed, say=say, started=started)
    finally:
        hub.engine.dispose()


def _flow(
    hub: Hub, out: Path, *, people: int, seed: int, say: Callable[[str], Any], started: float
) -> dict[str, Any]:
    from hub.synth import generate

    extracts = out / "extracts"
    say(f"OVP Hub demo (as of {DEMO_TODAY}), writing to {out}/")
    summary = generate(extracts, people=people, seed=seed, end=WINDOW[1])
    truth = out / "truth.csv"
    shutil.move(str(extracts / "truth.csv"), truth)
    say(f"1. synthetic population of {people} people -> {extracts}/ (truth kept apart: {truth})")

    with hub.session() as s:
        admin = actor_of(ensure_admin(s))
        for path in example_agreement_paths():
            row, _ = register_file(s, path, admin.label)
            # Each party's signatory signs, the governance bodies approve, legal activates:
            # the same services as `ovphub agreements sign/approve/activate`.
            sign_approve_activate(
                s, row, spec_of(row), hub.settings.data_dir / "signers", admin, DEMO_TODAY
            )
    actors = _users(hub)
    with hub.session() as s:
        govs = current_versions(s)
    say(
        f"2. loaded, signed (Ed25519), approved and activated {len(govs)} agreements: "
        + ", ".join(g.spec.ref for g in govs)
    )

    receipts = []
    for gov in govs:
        for ds in gov.spec.datasets:
            extract = extracts / f"{ds.id}.csv"
            if not extract.exists():
                say(f"3. {ds.id}: no synthetic extract for this partner (agreement only)")
                continue
            steward = actors[f"steward-{ds.provider.split(':')[1]}"]
            content = extract.read_bytes()
            receipt = _upload(hub, steward, gov.spec.id, ds.id, content)
            receipts.append(receipt.to_dict())
            say(
                f"3. {ds.id}: {receipt.rows_accepted} rows accepted, {receipt.rows_dropped} "
                f"dropped by row rules, {receipt.rows_aggregate_only} aggregate-only, "
                f"{receipt.rows_no_linkage} no-linkage (upload {receipt.upload_id[:8]})"
            )

    with hub.session() as s:
        linkage = run_linkage(s, actors["admin"].label, DEMO_TODAY, engine_settings(hub.settings))
    say(
        f"4. linkage: {linkage.records} records -> {linkage.persons} people "
        f"({linkage.method}, model {linkage.trained}, threshold {linkage.threshold}, "
        f"{linkage.seconds}s)"
    )
    with hub.session() as s:
        quality = evaluate(s, hub.keys, truth)
        report = out / "linkage.html"
        report.write_text(report_html(s, actors["admin"], linkage.run_id), encoding="utf-8")
    say(
        f"5. linkage quality vs truth: precision {quality['precision']:.4f}, "
        f"recall {quality['recall']:.4f}, F1 {quality['f1']:.4f} "
        f"over {quality['records_evaluated']} records; the admins' report: {report}"
    )

    uploaded = {r["dataset"] for r in receipts}
    releases = []
    analyst = actors["analyst"]
    for gov in govs:
        for agg in gov.spec.outputs.aggregates:
            if agg.dataset not in uploaded:
                continue
            recipient = "public"
            if agg.channel == "partner_report":  # to the office, never to the public
                recipient = next(
                    (r for r in gov.spec.outputs.recipients_allowed if r != "public"), "public"
                )
            req = ReleaseRequest(agg.id, WINDOW[0], WINDOW[1], recipient)
            try:
                view = _release(hub, analyst, req)
            except HubError as exc:
                say(f"6. {agg.id}: refused: {exc.detail}")
                continue
            releases.append(view)
            if view["error_bound_95"] is not None:
                accuracy = f"95% error within ±{view['error_bound_95']:g}"
            else:
                accuracy = "a 95% interval per cell"
            charged = ", ".join(
                f"{c['unit']} {c['amount']:.4g} to {c['agreement']}" for c in view["charges"]
            )
            say(
                f"6. released {agg.id} ({view['measure']}): {len(view['cells'])} cells, "
                f"{view['mechanism']}, charged {charged}; {accuracy}"
            )
    # The same request again is answered from the stored release: same numbers, no new spend.
    if releases:
        first = releases[0]
        req = ReleaseRequest(first["aggregate_id"], WINDOW[0], WINDOW[1], "public")
        again = _release(hub, analyst, req)
        same = again["id"] == first["id"]
        say(f"7. repeated {first['aggregate_id']}: cached={again['cached']}, same release {same}")

    with hub.session() as s:
        index = write_dashboard(s, analyst, out / "dashboard")
        chain = audit.verify(s)
    elapsed = time.perf_counter() - started
    say(f"8. dashboard: {index}")
    say(f"   audit log: {chain.events} events, chain {'intact' if chain.ok else 'BROKEN'}")
    say(f"done in {elapsed:.1f}s. Serve the API with `make serve` (docs at /docs).")
    return {
        "synth": getattr(summary, "to_dict", lambda: {})(),
        "receipts": receipts,
        "linkage": linkage.to_dict(),
        "quality": quality,
        "releases": releases,
        "dashboard": str(index),
        "linkage_report": str(report),
        "audit_ok": chain.ok,
        "seconds": elapsed,
    }
