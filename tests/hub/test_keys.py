from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hub.context import open_keys
from hub.keys import FileKeyStore, Hasher, InMemoryKeyStore, KeyStoreError
from hub.settings import Settings


def test_key_file_is_created_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "hub.key"
    store = FileKeyStore.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        FileKeyStore.create(path)
    assert FileKeyStore(path).active_key_id == store.active_key_id


def test_key_material_never_appears_in_repr(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    store = FileKeyStore.create(path)
    secret = store.master_key(store.active_key_id).hex()
    assert secret not in repr(store)
    assert secret not in repr(Hasher(store, "linkage"))


def test_purposes_get_different_keys(tmp_path: Path) -> None:
    store = FileKeyStore.create(tmp_path / "hub.key")
    assert Hasher(store, "linkage").token("x") != Hasher(store, "record:a").token("x")
    assert Hasher(store, "linkage").token("x") == Hasher(store, "linkage").token("x")


def test_production_refuses_to_start_without_a_key_file(tmp_path: Path) -> None:
    settings = Settings(environment="production", data_dir=tmp_path, key_file=tmp_path / "k")
    with pytest.raises(KeyStoreError, match="refusing to start"):
        open_keys(settings)


def test_development_creates_a_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, key_file=tmp_path / "k" / "hub.key")
    store = open_keys(settings)
    assert (tmp_path / "k" / "hub.key").exists() and store.active_key_id


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "hub.key"
    path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="not a valid hub key file"):
        FileKeyStore(path)


def test_key_files_that_lie_about_their_keys_are_refused(tmp_path: Path) -> None:
    import json

    path = tmp_path / "hub.key"
    path.write_text(json.dumps({"active": "k2", "keys": {"k1": "00" * 32}}))
    with pytest.raises(KeyStoreError, match="names active key"):
        FileKeyStore(path)
    path.write_text(json.dumps({"active": "k1", "keys": {"k1": "00" * 8}}))
    with pytest.raises(KeyStoreError, match="shorter than 32 bytes"):
        FileKeyStore(path)
    with pytest.raises(KeyStoreError, match="does not exist"):
        FileKeyStore(tmp_path / "missing.key")


def test_asking_for_an_unknown_key_id_is_a_clear_error(tmp_path: Path) -> None:
    from hub.keys import InMemoryKeyStore

    with pytest.raises(KeyStoreError, match="no key with id"):
        InMemoryKeyStore.generate().master_key("nope")
    with pytest.raises(KeyStoreError, match="no key with id"):
        FileKeyStore.create(tmp_path / "hub.key").master_key("nope")


def test_tokens_in_one_pass_are_the_tokens_one_by_one() -> None:
    one = InMemoryKeyStore.generate()
    values = ["record_key|V2026-000001", "case_number|JH000002", "", "José"]
    for store in (one, one.rotated()):  # one key, and two layered after a rotation
        hasher = Hasher(store, "records:police_victimizations")
        assert hasher.tokens(iter(values)) == [hasher.token(v) for v in values]
