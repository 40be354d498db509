"""Plain ``make_*`` factories for tests."""

from __future__ import annotations

import copy
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

POLICE = AGREEMENTS_DIR / "dsa-police-victimizations.yaml"


def make_agreement_data(path: Path = POLICE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return copy.deepcopy(data)


def make_agreement(**header: Any) -> Agreement:
    data = make_agreement_data()
    data["agreement"].update(header)
    return Agreement.model_validate(data)


def load_examples(hub: Hub) -> None:
    """Register, sign, approve and activate every example agreement."""
    for path in example_agreement_paths():
        load_agreement(hub, load_agreement_file(path))


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
