"""Secret keys: kept in a key file (or given in memory to tests), never in the database.

The key file is JSON ``{"active": "<key id>", "keys": {"<key id>": "<64 hex chars>"}}`` with mode
0600. Purpose keys are derived from the active master key with HKDF-SHA256, so one secret
serves every purpose without any two purposes sharing a key:

- ``linkage``: linkage tokens. One key hub-wide, so tokens of the same person match across
  agencies.
- ``record:<dataset>``: keyed hashes of record identifiers (record keys, MRNs, case numbers).
  Per dataset, so identifiers cannot be joined across datasets through their hashes.

Nothing here logs or prints key material (invariant 7); ``repr`` of a key store shows ids only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import HubError


class KeyStoreError(HubError):
    code = "key_store_error"


class KeyStore(Protocol):
    @property
    def active_key_id(self) -> str: ...

    def master_key(self, key_id: str) -> bytes: ...


@dataclass(frozen=True)
class InMemoryKeyStore:
    """A key store for tests and tools; holds keys in memory only."""

    keys: dict[str, bytes] = field(repr=False)
    active: str

    @property
    def active_key_id(self) -> str:
        return self.active

    def master_key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyStoreError(f"no key with id {key_id!r} in the key store") from None

    @classmethod
    def generate(cls) -> InMemoryKeyStore:
        key_id = "k" + secrets.token_hex(4)
        return cls({key_id: secrets.token_bytes(32)}, key_id)


class FileKeyStore:
    """Keys read from a JSON key file outside the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text())
            self._keys = {k: bytes.fromhex(v) for k, v in raw["keys"].items()}
            self._active = str(raw["active"])
        except FileNotFoundError:
            raise KeyStoreError(
                f"key file {path} does not exist; create one with `ovphub keys init` "
                "or set HUB_KEY_FILE"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"key file {path} is not a valid hub key file: {exc}") from None
        if self._active not in self._keys:
            raise KeyStoreError(f"key file {path} names active key {self._active!r} it lacks")
        if any(len(k) < 32 for k in self._keys.values()):
            raise KeyStoreError(f"key file {path} holds a key shorter than 32 bytes")

    def __repr__(self) -> str:
        return f"FileKeyStore({self.path}, ids={sorted(self._keys)})"

    @property
    def active_key_id(self) -> str:
        return self._active

    def master_key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyStoreError(f"no key with id {key_id!r} in {self.path}") from None

    @staticmethod
    def create(path: Path) -> FileKeyStore:
        """Write a new key file with one random 256-bit key (mode 0600). Refuses to overwrite."""
        if path.exists():
            raise KeyStoreError(f"key file {path} already exists; refusing to overwrite it")
        path.parent.mkdir(parents=True, exist_ok=True)
        key_id = "k" + secrets.token_hex(4)
        body = json.dumps({"active": key_id, "keys": {key_id: secrets.token_hex(32)}})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        return FileKeyStore(path)


def derive_key(store: KeyStore, purpose: str, key_id: str | None = None) -> bytes:
    kid = key_id or store.active_key_id
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(store.master_key(kid))


class Hasher:
    """Keyed HMAC-SHA256 for one purpose; reuses one keyed object (about 2.5x faster)."""

    def __init__(self, store: KeyStore, purpose: str, key_id: str | None = None) -> None:
        self.key_id = key_id or store.active_key_id
        self._base = hmac.new(derive_key(store, purpose, self.key_id), digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return f"Hasher(key_id={self.key_id!r})"

    def token(self, value: str) -> str:
        h = self._base.copy()
        h.update(value.encode())
        return h.hexdigest()
