"""Corrections under an amended agreement: a record re-sent unchanged after the agreement's
new version took over keeps its id (and so its person link), and its provenance moves to the
upload that re-sent it, under the version that governs it now. On SQLite and PostgreSQL (where
the writer probes, then COPYs, chunk by chunk)."""

from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import select, text

from factories import load_agreement as load_agreement_version
from factories import (
    load_examples,
    make_actor,
    make_agreement,
    make_police_csv,
    make_police_row,
    upload_as_police_steward,
)
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import Record, Upload
from hub.ingest.service import Receipt
from hub.pseudonymize import Pseudonymizer

AGREEMENT, DATASET = "dsa-police-victimizations", "police_victimizations"


@pytest.fixture(params=["hub", pytest.param("pg_hub", marks=pytest.mark.postgres)])
def police_hub(request: pytest.FixtureRequest) -> Hub:
    hub: Hub = request.getfixturevalue(request.param)
    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    return hub


upload = partial(upload_as_police_steward, chunk_rows=2)


def stored(hub: Hub) -> dict[str, tuple[int, str, int]]:
    """Each record's victimization id hash → (record id, upload id, agreement version id)."""
    with hub.session() as s:
        rows = s.execute(
            select(Record.record_key, Record.id, Record.upload_id, Record.agreement_version_id)
        ).all()
    return {key: (rid, up, version) for key, rid, up, version in rows}


def key_of(hub: Hub, row: dict[str, str]) -> str:
    """The stored record key of ``row``."""
    dataset = make_agreement().dataset(DATASET)
    assert dataset is not None
    return Pseudonymizer(dataset, hub.keys).record_key(row["victimization_id"])


def version_of(hub: Hub, receipt: Receipt) -> int:
    with hub.session() as s:
        up = s.get(Upload, receipt.upload_id)
        assert up is not None
        return up.agreement_version_id


def test_an_unchanged_record_resent_under_a_new_agreement_version_comes_under_it(
    police_hub: Hub,
) -> None:
    first = upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 5)]))
    before = stored(police_hub)
    load_agreement_version(police_hub, make_agreement(version="1.1.0"))  # supersedes 1.0.0
    resent = [
        make_police_row(2),  # unchanged
        make_police_row(3),  # unchanged
        make_police_row(4, victim_sex="F"),  # revised
        make_police_row(5),  # new
    ]
    second = upload(police_hub, make_police_csv(resent))
    assert second.agreement == f"{AGREEMENT}@1.1.0"
    assert (second.rows_added, second.rows_replaced, second.rows_unchanged) == (1, 1, 2)
    old, new = version_of(police_hub, first), version_of(police_hub, second)
    assert old != new
    after = stored(police_hub)
    provenance = sorted((up, version) for _, up, version in after.values())
    # row 1 was not re-sent: it stays as first stored; rows 2 to 5 now trace to the new upload
    assert provenance == sorted([(first.upload_id, old)] + [(second.upload_id, new)] * 4)
    unchanged = [key_of(police_hub, make_police_row(i)) for i in (1, 2, 3)]
    # the unchanged records keep their ids, so their person links stay
    assert [after[k][0] for k in unchanged] == [before[k][0] for k in unchanged]
    assert [after[k][1] for k in unchanged] == [first.upload_id] + [second.upload_id] * 2


def test_an_unchanged_record_resent_under_the_same_version_keeps_its_provenance(
    police_hub: Hub,
) -> None:
    first = upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 4)]))
    before = stored(police_hub)
    second = upload(police_hub, make_police_csv([make_police_row(2), make_police_row(9)]))
    assert (second.rows_added, second.rows_replaced, second.rows_unchanged) == (1, 0, 1)
    after = stored(police_hub)
    assert {k: v for k, v in after.items() if k in before} == before
    assert {up for _, up, _ in before.values()} == {first.upload_id}


def test_every_record_still_traces_to_an_upload_of_its_version(police_hub: Hub) -> None:
    upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 4)]))
    load_agreement_version(police_hub, make_agreement(version="1.1.0"))
    upload(police_hub, make_police_csv([make_police_row(i) for i in range(1, 3)]))
    with police_hub.session() as s:
        orphans = s.execute(
            text(
                "SELECT count(*) FROM records r LEFT JOIN uploads u ON u.id = r.upload_id "
                "AND u.dataset_id = r.dataset_id "
                "AND u.agreement_version_id = r.agreement_version_id WHERE u.id IS NULL"
            )
        ).scalar_one()
    assert orphans == 0
