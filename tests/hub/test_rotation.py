"""Key rotation re-keys stored tokens without raw data, and uploads after it still agree."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from factories import (
    load_examples,
    make_actor,
    make_police_csv,
    make_police_row,
    upload_as_police_steward,
)
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import Record
from hub.keys import FileKeyStore, Hasher, InMemoryKeyStore, KeyStoreError, _Hmac, derive_key
from hub.pseudonymize import LINKAGE_PURPOSE, TOKEN_COLUMNS
from hub.rotation import records_under, rekey_records, rotate


@pytest.fixture
def keyed_hub(hub: Hub, tmp_path: Path) -> Hub:
    store = FileKeyStore.create(tmp_path / "keys.json")
    hub = dataclasses.replace(hub, keys=store)
    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    return hub


upload = upload_as_police_steward
TOKEN_COLUMNS_ORDER = list(TOKEN_COLUMNS)


def stored(hub: Hub) -> list[tuple[object, ...]]:
    with hub.session() as s:
        cols = [getattr(Record, c) for c in TOKEN_COLUMNS]
        return sorted(
            tuple(r) for r in s.execute(select(Record.record_key, Record.key_id, *cols)).all()
        )


def test_the_fast_hmac_is_standard_hmac_sha256() -> None:
    import hashlib
    import hmac

    for key in (b"k" * 32, b"\x00" * 64, bytes(range(32))):
        for msg in (b"", b"record_key|V2026-000001", "José".encode()):
            assert _Hmac(key).digest(msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_rotation_rekeys_every_token_and_later_uploads_agree(keyed_hub: Hub) -> None:
    rows = [make_police_row(i) for i in range(1, 6)]
    upload(keyed_hub, make_police_csv(rows))
    store = keyed_hub.keys
    assert isinstance(store, FileKeyStore)
    old = store.active_key_id
    before = stored(keyed_hub)
    # The names' halves are there to be checked below (Marquise Whitfield: 8 and 9 letters).
    halves = [TOKEN_COLUMNS_ORDER.index(c) + 2 for c in ("t_fh1", "t_fh2", "t_lh1", "t_lh2")]
    assert all(row[i] is not None for row in before for i in halves)

    summary = rotate(keyed_hub, "admin:test")
    assert summary.records == 5 and summary.old_key_id == old
    after = stored(keyed_hub)
    assert {r[1] for r in after} == {summary.new_key_id}
    # every record key and token changed
    for b, a in zip(before, after, strict=True):
        assert all(x != y for x, y in zip(b[2:], a[2:], strict=True) if x is not None)
    assert {r[0] for r in before}.isdisjoint({r[0] for r in after})
    reread = json.loads(store.path.read_text())
    assert reread["chain"] == [old, summary.new_key_id] and "pending" not in reread
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"

    # The same rows sent again (a different file: new order) are recognised as unchanged:
    # the chain applied to raw values equals the rotated tokens.
    receipt = upload(keyed_hub, make_police_csv(list(reversed(rows))))
    assert (receipt.rows_added, receipt.rows_replaced, receipt.rows_unchanged) == (0, 0, 5)
    assert stored(keyed_hub) == after


def test_an_interrupted_rotation_finishes_without_rekeying_twice(keyed_hub: Hub) -> None:
    upload(keyed_hub, make_police_csv([make_police_row(i) for i in range(1, 4)]))
    store = keyed_hub.keys
    assert isinstance(store, FileKeyStore)
    old = store.active_key_id
    pending = store.add_pending()
    keyed_hub.transact(lambda s: rekey_records(s, store, old, pending, "admin:test"))
    # crash here: the database is re-keyed, the key file not yet switched
    reopened = FileKeyStore(store.path)
    assert reopened.active_key_id == old and reopened.pending == pending
    once = stored(keyed_hub)
    summary = rotate(dataclasses.replace(keyed_hub, keys=reopened), "admin:test")
    assert summary.records == 0 and summary.new_key_id == pending
    assert stored(keyed_hub) == once
    assert FileKeyStore(store.path).active_key_id == pending
    with keyed_hub.session() as s:
        assert records_under(s, old) == 0


def test_layered_tokens_need_every_key_of_the_chain() -> None:
    one = InMemoryKeyStore.generate()
    two = one.rotated()
    plain = Hasher(one, LINKAGE_PURPOSE).int64("fn|ANA")
    layered = Hasher(two, LINKAGE_PURPOSE).int64("fn|ANA")
    assert plain != layered
    # the old key alone reproduces only the inner layer
    inner = _Hmac(derive_key(two, LINKAGE_PURPOSE, two.chain[0])).digest(b"fn|ANA")
    assert int.from_bytes(inner[:8], "big", signed=True) == plain


def test_rotation_needs_a_key_file(hub: Hub) -> None:
    with pytest.raises(KeyStoreError, match="key file"):
        rotate(hub, "admin:test")


def test_a_process_holding_the_old_keys_picks_up_a_rotation_before_it_writes(
    keyed_hub: Hub,
) -> None:
    store = keyed_hub.keys
    assert isinstance(store, FileKeyStore)
    upload(keyed_hub, make_police_csv([make_police_row(i) for i in range(1, 4)]))
    # another process (a CLI run) rotates the keys through its own view of the key file
    other = dataclasses.replace(keyed_hub, keys=FileKeyStore(store.path))
    summary = rotate(other, "admin:test")
    assert store.active_key_id == summary.old_key_id  # this process has not re-read the file
    receipt = upload(keyed_hub, make_police_csv([make_police_row(i) for i in range(1, 5)]))
    assert (receipt.rows_added, receipt.rows_unchanged) == (1, 3)
    assert store.active_key_id == summary.new_key_id
    assert {r[1] for r in stored(keyed_hub)} == {summary.new_key_id}


def test_uploads_are_refused_while_a_rotation_is_half_done(keyed_hub: Hub) -> None:
    store = keyed_hub.keys
    assert isinstance(store, FileKeyStore)
    upload(keyed_hub, make_police_csv([make_police_row(1)]))
    old, pending = store.active_key_id, store.add_pending()
    keyed_hub.transact(lambda s: rekey_records(s, store, old, pending, "admin:test"))
    with pytest.raises(KeyStoreError, match="keys rotate"):
        upload(keyed_hub, make_police_csv([make_police_row(2)]))
    rotate(keyed_hub, "admin:test")  # finishing the rotation lets uploads go on
    assert upload(keyed_hub, make_police_csv([make_police_row(2)])).rows_added == 1


def amend_police(hub: Hub, change: Callable[[dict[str, Any]], None]) -> None:
    """Activate version 1.1.0 of the police agreement, changed by ``change``."""
    from contracts.model import Agreement
    from factories import load_agreement, make_agreement_data

    data = make_agreement_data()
    change(data)
    data["agreement"]["version"] = "1.1.0"
    data["amendments"].append({"version": "1.1.0", "date": "2026-01-01", "summary": "test"})
    load_agreement(hub, Agreement.model_validate(data))


def require_rotation_every(hub: Hub, days: int) -> None:
    """The police agreement, asking for key rotation every ``days``."""
    amend_police(hub, lambda data: data["linkage"].update(key_rotation_days=days))


def test_rotation_rekeys_the_community_area_tokens_too(keyed_hub: Hub) -> None:
    """Area tokens (``t_ca``, ``t_az1``-``3``, made only without a ZIP) are re-keyed like every
    other token: after rotation none keeps its old value, and the same rows sent again agree."""

    def link_the_area(data: dict[str, Any]) -> None:
        area = next(f for f in data["datasets"][0]["fields"] if f["name"] == "community_area")
        area["link_as"] = "community_area"

    amend_police(keyed_hub, link_the_area)
    rows = [make_police_row(i, community_area="25", victim_home_zip="") for i in range(1, 4)]
    upload(keyed_hub, make_police_csv(rows))
    columns = [TOKEN_COLUMNS_ORDER.index(c) + 2 for c in ("t_ca", "t_az1", "t_az2", "t_az3")]
    before = stored(keyed_hub)
    assert all(row[i] is not None for row in before for i in columns)
    rotate(keyed_hub, "admin:test")
    after = stored(keyed_hub)
    assert all(b[i] != a[i] for b, a in zip(before, after, strict=True) for i in columns)
    receipt = upload(keyed_hub, make_police_csv(list(reversed(rows))))  # another file
    assert receipt.rows_unchanged == 3 and stored(keyed_hub) == after


def test_rotation_falls_due_key_rotation_days_after_the_keys_began_keying_tokens(
    keyed_hub: Hub,
) -> None:
    """Never rotated, the keys key tokens from the first accepted upload; after a rotation,
    from its day. An agreement in force with key_rotation_days wants them rotated that many
    days on. A linkage run made while overdue records it, and its report says so."""
    import datetime as dt

    from hub import audit
    from hub.db.models import Upload, as_utc
    from hub.linkage.report import linkage_report
    from hub.linkage.report_page import render_report
    from hub.linkage.service import run_linkage
    from hub.rotation import keys_in_use_since, rotation_due

    require_rotation_every(keyed_hub, 30)
    with keyed_hub.session() as s:
        assert keys_in_use_since(s) is None and rotation_due(s, dt.date(2026, 3, 1)) == []
    upload(keyed_hub, make_police_csv([make_police_row(i) for i in range(1, 4)]))
    with keyed_hub.session() as s:
        first = s.execute(select(Upload.created_at)).scalar_one()
        assert keys_in_use_since(s) == as_utc(first).date()
    rotated = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    keyed_hub.transact(
        lambda s: audit.append(
            s, audit.Event("admin", "keys.rotate", "key:k2", {"new_key_id": "k2"}), now=rotated
        )
    )
    with keyed_hub.session() as s:
        assert keys_in_use_since(s) == dt.date(2026, 3, 1)
        (due,) = rotation_due(s, dt.date(2026, 3, 31))
        assert (due.agreement, due.due_on, due.overdue) == (
            "dsa-police-victimizations@1.1.0",
            dt.date(2026, 3, 31),
            False,
        )
        assert rotation_due(s, dt.date(2026, 4, 1))[0].overdue
        summary = run_linkage(s, "test", dt.date(2026, 4, 1))
        s.commit()
    admin = make_actor(keyed_hub, "admin", Role.admin)
    with keyed_hub.session() as s:
        page = render_report(linkage_report(s, admin, summary.run_id))
    assert "overdue for rotation under dsa-police-victimizations@1.1.0" in page
