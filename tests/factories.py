"""Plain ``make_*`` factories for tests: hubs on a test database, agreements, users, extracts."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from contracts.loader import AGREEMENTS_DIR, example_agreement_paths
from contracts.loader import load_agreement as load_agreement_file
from contracts.model import Agreement
from hub import audit
from hub.agreements.ceremony import sign_approve_activate
from hub.agreements.lifecycle import transition
from hub.agreements.service import register
from hub.auth.policies import Actor, Role
from hub.auth.service import actor_of, create_user, ensure_admin
from hub.context import Hub
from hub.db.migrate import upgrade
from hub.db.session import make_engine
from hub.ingest.service import Receipt
from hub.keys import InMemoryKeyStore
from hub.settings import Settings

POLICE = AGREEMENTS_DIR / "dsa-police-victimizations.yaml"
TODAY = dt.date(2026, 11, 15)
DB_FILE = "hub.db"


def open_hub(url: str, data_dir: Path) -> Hub:
    """A hub on the (already migrated) database ``url`` whose clock says :data:`TODAY`."""
    settings = Settings(data_dir=data_dir, database_url=url, key_file=data_dir / "unused.key")
    return Hub(settings, make_engine(url), InMemoryKeyStore.generate(), today=lambda: TODAY)


def make_hub(url: str, data_dir: Path) -> Hub:
    """A hub on ``url``, migrated to head."""
    hub = open_hub(url, data_dir)
    upgrade(hub.engine)
    return hub


def make_seed(where: Path, build: Callable[[Hub], object]) -> Path:
    """Build a SQLite hub in the new folder ``where`` with ``build(hub)`` and close it; return
    ``where``, ready for :func:`copy_hub`. ``build`` must not use the hub's key store, since
    every copy gets a key store of its own."""
    where.mkdir(parents=True)
    hub = make_hub(f"sqlite:///{where / DB_FILE}", where)
    try:
        build(hub)
    finally:
        hub.engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return where


def copy_hub(seed: Path, hub: Hub) -> None:
    """Replace the SQLite database and the data files of ``hub`` with copies of ``seed`` (made
    by :func:`make_seed`), as if the seed's ``build`` had run on ``hub`` itself."""
    url = hub.settings.resolved_database_url
    assert url.startswith("sqlite:///"), f"copy_hub copies SQLite files, not {url}"
    db = Path(url.removeprefix("sqlite:///"))
    hub.engine.dispose()
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(seed / DB_FILE, db)
    data_dir = hub.settings.data_dir
    for item in seed.iterdir():
        if item.is_dir():
            shutil.copytree(item, data_dir / item.name, dirs_exist_ok=True)
        elif item.name != DB_FILE and not item.name.startswith(DB_FILE + "-"):
            shutil.copy2(item, data_dir / item.name)


@cache
def _agreement_data(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def make_agreement_data(path: Path = POLICE) -> dict[str, Any]:
    """The agreement file at ``path`` as plain data: a new copy each call, yours to change."""
    return copy.deepcopy(_agreement_data(path))


def make_agreement(**header: Any) -> Agreement:
    data = make_agreement_data()
    data["agreement"].update(header)
    return Agreement.model_validate(data)


@cache
def example_agreements() -> tuple[Agreement, ...]:
    """Every example agreement, parsed once per session (parsing and linting the YAML costs
    more than registering it; an ``Agreement`` is immutable, so sharing one is safe)."""
    return tuple(load_agreement_file(path) for path in example_agreement_paths())


def load_examples(hub: Hub) -> None:
    """Register, sign, approve and activate every example agreement."""
    for agreement in example_agreements():
        load_agreement(hub, agreement)


def load_agreement(hub: Hub, agreement: Agreement) -> None:
    """Register ``agreement`` and bring it to the status its header names: ``draft`` stays a
    draft; ``active`` goes through the real signing ceremony and activation gate; ``suspended``,
    ``terminated`` and ``expired``-by-date are reached from active."""
    wanted = agreement.agreement.status.value
    with hub.session() as s:
        admin = actor_of(ensure_admin(s))
        row, _ = register(s, agreement, admin.label)
        if wanted == "draft":
            return
        if wanted == "under_review":
            transition(s, row, agreement, "under_review", admin, hub.today())
            return
        activate_at = min(hub.today(), agreement.agreement.expiry_date)
        sign_approve_activate(
            s, row, agreement, hub.settings.data_dir / "signers", admin, activate_at
        )
        if wanted in ("suspended", "terminated"):
            transition(s, row, agreement, wanted, admin, hub.today(), "test setup")


def make_actor(hub: Hub, name: str, role: Role, party: str | None = None) -> Actor:
    with hub.session() as s:
        if role == Role.admin and name == "admin":
            return actor_of(ensure_admin(s))
        event = audit.Event("test", "user.create", f"user:{name}", {"role": role.value})
        return actor_of(create_user(s, name, role, party, event))


#: The example partners' extracts that link, by dataset: agreement, party, date column.
LINKED_EXTRACTS = {
    "police_victimizations": ("dsa-police-victimizations", "org:police", "incident_datetime"),
    "ed_injury_visits": ("dsa-hospital-ed-injury", "org:hospital", "arrival_datetime"),
    "cvi_participants": ("dsa-cvi-participants", "org:cvi", "enrollment_date"),
    "referrals": ("dsa-referrals", "org:referral_network", "referral_date"),
}


def upload_all(
    hub: Hub, extracts: Path, keep: tuple[str, str] = ("0000", "9999"), load: bool = True
) -> None:
    """Upload each agency's extract (as :func:`hub.synth.generate` writes them to ``extracts``),
    only the rows dated in ``[keep[0], keep[1])``; first load the example agreements if
    ``load``."""
    from hub.ingest.service import upload_extract  # pyarrow and friends: only when used

    if load:
        load_examples(hub)
    for ds, (agreement, party, date_column) in LINKED_EXTRACTS.items():
        with (extracts / f"{ds}.csv").open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader if keep[0] <= r[date_column][:10] < keep[1]]
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            writer.writerows(rows)
        steward = make_actor(hub, f"steward-{party.split(':')[1]}-{keep[0]}", Role.steward, party)
        content = out.getvalue().encode()
        with hub.session() as s:
            upload_extract(
                s,
                hub.keys,
                steward,
                agreement_id=agreement,
                dataset_id=ds,
                content=content,
                today=hub.today(),
            )


POLICE_HEADER = (
    "victimization_id,case_number,incident_datetime,victimization_type,gunshot_injury,fatal,"
    "weapon_code,location_description,block_address,latitude,longitude,community_area,"
    "victim_first_name,victim_middle_initial,victim_last_name,victim_dob,victim_age,victim_sex,"
    "victim_race,victim_home_address,victim_home_zip,juvenile_flag,domestic_related,"
    "officer_involved,narrative"
)


def make_police_row(i: int, **overrides: str) -> dict[str, str]:
    row = {
        "victimization_id": f"V2026-{i:06d}",
        "case_number": f"JH{i:06d}",
        "incident_datetime": "2026-03-14T22:15:00",
        "victimization_type": "NON_FATAL_SHOOTING",
        "gunshot_injury": "YES",
        "fatal": "false",
        "weapon_code": "12",
        "location_description": "STREET",
        "block_address": "034XX W EXAMPLE AVE",
        "latitude": "41.88",
        "longitude": "-87.70",
        "community_area": "25",
        "victim_first_name": "Marquise",
        "victim_middle_initial": "T",
        "victim_last_name": "Whitfield",
        "victim_dob": "1999-04-17",
        "victim_age": "26",
        "victim_sex": "M",
        "victim_race": "BLK",
        "victim_home_address": "1234 N Example St",
        "victim_home_zip": "60651",
        "juvenile_flag": "false",
        "domestic_related": "false",
        "officer_involved": "false",
        "narrative": "Victim Marquise Whitfield shot on street",
    }
    row.update(overrides)
    return row


def make_police_csv(rows: list[dict[str, str]]) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=POLICE_HEADER.split(","), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def upload_as_police_steward(hub: Hub, content: bytes, **options: Any) -> Receipt:
    """Upload ``content`` to the police dataset as ``steward-police`` (whom the caller made),
    in its own transaction; ``options`` go to :func:`upload_extract` (``chunk_rows``, ...)."""
    from hub.auth.service import get_user
    from hub.ingest.service import upload_extract

    with hub.session() as s:
        actor = actor_of(get_user(s, "steward-police"))
    return hub.transact(
        lambda s: upload_extract(
            s,
            hub.keys,
            actor,
            agreement_id="dsa-police-victimizations",
            dataset_id="police_victimizations",
            content=content,
            today=hub.today(),
            **options,
        )
    )


def reject_events(hub: Hub) -> list[dict[str, Any]]:
    """The ``upload.reject`` audit events, oldest first, as their payloads (``actor``,
    ``subject``, ``details``, ...)."""
    import json

    from sqlalchemy import select

    from hub.db.models import AuditEvent

    with hub.engine.connect() as conn:
        payloads = conn.execute(
            select(AuditEvent.payload)
            .where(AuditEvent.action == "upload.reject")
            .order_by(AuditEvent.seq)
        ).scalars()
        return [json.loads(p) for p in payloads]


def grown(before: dict[str, int], **delta: int) -> dict[str, int]:
    """Table counts ``before`` with ``delta`` added (``audit_log=1``: one more audit event)."""
    return {name: count + delta.get(name, 0) for name, count in before.items()}


def assert_audit_chain_intact(hub: Hub) -> None:
    with hub.session() as s:
        check = audit.verify(s)
    assert check.ok, check.reason


IDENTIFYING_POLICE_FIELDS = (
    "victimization_id",
    "case_number",
    "victim_first_name",
    "victim_last_name",
    "victim_dob",
    "victim_home_address",
    "narrative",
)


def assert_names_no_value_of(rows: list[dict[str, str]], text: str) -> None:
    """No identifying value of ``rows`` (ids, names, birth dates, addresses, free text) is in
    ``text``."""
    for row in rows:
        for name in IDENTIFYING_POLICE_FIELDS:
            assert row[name] not in text, f"{name} of a row is in {text[:200]!r}..."
