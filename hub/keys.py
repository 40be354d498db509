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
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
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

    @property
    def chain(self) -> list[str]: ...

    def master_key(self, key_id: str) -> bytes: ...


@dataclass(frozen=True)
class InMemoryKeyStore:
    """A key store for tests and tools; holds keys in memory only."""

    keys: dict[str, bytes] = field(repr=False)
    active: str
    rotations: tuple[str, ...] = ()

    @property
    def active_key_id(self) -> str:
        return self.active

    @property
    def chain(self) -> list[str]:
        return [*self.rotations, self.active] if self.rotations else [self.active]

    def rotated(self) -> InMemoryKeyStore:
        """This store with a new active key layered over the current chain."""
        key_id = "k" + secrets.token_hex(4)
        return InMemoryKeyStore(
            {**self.keys, key_id: secrets.token_bytes(32)}, key_id, tuple(self.chain)
        )

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
        self.reload()

    def reload(self) -> None:
        """Read the key file again (after another process rotated the keys)."""
        path = self.path
        try:
            raw = json.loads(path.read_text())
            self._keys = {k: bytes.fromhex(v) for k, v in raw["keys"].items()}
            self._active = str(raw["active"])
            self._chain = [str(k) for k in raw.get("chain", [self._active])]
            pending = raw.get("pending")
            self._pending = None if pending is None else str(pending)
        except FileNotFoundError:
            raise KeyStoreError(
                f"key file {path} does not exist; create one with `ovphub keys init` "
                "or set HUB_KEY_FILE"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"key file {path} is not a valid hub key file: {exc}") from None
        if self._active not in self._keys:
            raise KeyStoreError(f"key file {path} names active key {self._active!r} it lacks")
        if self._pending is not None and self._pending not in self._keys:
            raise KeyStoreError(f"key file {path} names a pending key it lacks")
        if self._chain[-1] != self._active or any(k not in self._keys for k in self._chain):
            raise KeyStoreError(
                f"key file {path} has a key chain that does not end at its active key"
            )
        if any(len(k) < 32 for k in self._keys.values()):
            raise KeyStoreError(f"key file {path} holds a key shorter than 32 bytes")

    def __repr__(self) -> str:
        return f"FileKeyStore({self.path}, ids={sorted(self._keys)})"

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def chain(self) -> list[str]:
        return list(self._chain)

    @property
    def pending(self) -> str | None:
        """A key added by an unfinished rotation (see :mod:`hub.rotation`), not yet in use."""
        return self._pending

    def add_pending(self) -> str:
        """Add a new random key as *pending* (uploads keep using the current chain)."""
        key_id = "k" + secrets.token_hex(4)
        self._keys[key_id] = secrets.token_bytes(32)
        self._pending = key_id
        self._write()
        return key_id

    def promote_pending(self) -> str:
        """Make the pending key the head of the chain, so uploads apply it."""
        if self._pending is None:
            raise KeyStoreError(f"key file {self.path} has no pending key to activate")
        self._chain.append(self._pending)
        self._active, self._pending = self._pending, None
        self._write()
        return self._active

    def _write(self) -> None:
        body: dict[str, object] = {
            "active": self._active,
            "keys": {k: v.hex() for k, v in self._keys.items()},
            "chain": self._chain,
        }
        if self._pending is not None:
            body["pending"] = self._pending
        _write_private(self.path, body, overwrite=True)

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
        body = {"active": key_id, "keys": {key_id: secrets.token_hex(32)}, "chain": [key_id]}
        _write_private(path, body, overwrite=False)
        return FileKeyStore(path)


def _write_private(path: Path, body: Mapping[str, object], *, overwrite: bool) -> None:
    """Write a key file with mode 0600 from its creation, synced to disk. ``overwrite``
    replaces an existing file atomically (through a fresh temporary file and a rename)."""
    target = path
    if overwrite:
        target = path.with_name(path.name + ".tmp")
        target.unlink(missing_ok=True)  # a stale one could have other permissions
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(body))
        fh.flush()
        os.fsync(fh.fileno())
    if overwrite:
        os.replace(target, path)


def derive_key(store: KeyStore, purpose: str, key_id: str | None = None) -> bytes:
    kid = key_id or store.active_key_id
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(store.master_key(kid))


class _Hmac:
    """HMAC-SHA256 under one key, with the inner and outer pads hashed once (RFC 2104).

    Copying two pre-keyed SHA-256 states per value is about twice as fast as ``hmac.new`` or
    ``hmac.digest`` here, which matters at a million values per upload; a test checks it against
    the standard library."""

    def __init__(self, key: bytes) -> None:
        assert len(key) <= 64, "longer HMAC keys are hashed first; derived keys are 32 bytes"
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hexdigests(self, values: Iterable[str]) -> list[str]:
        """``[digest(v.encode()).hex() for v in values]``, a third faster: one loop with the
        pre-keyed states in locals and no call per value beyond hashlib's."""
        inner, outer = self._inner, self._outer
        out: list[str] = []
        add = out.append
        for value in values:
            h = inner.copy()
            h.update(value.encode())
            o = outer.copy()
            o.update(h.digest())
            add(o.hexdigest())
        return out


def int64_of(digest: bytes) -> int:
    return int.from_bytes(digest[:8], "big", signed=True)


class Hasher:
    """Keyed HMAC-SHA256 for one purpose, under the key store's whole key chain.

    With one key, ``token(x) = HMAC(k, x)``. After a rotation adds ``k2``, tokens are layered:
    ``token(x) = HMAC(k2, HMAC(k1, x))`` — so a stored token is re-keyed by hashing it once
    more under the new key, without the raw value (:func:`rekey_hex`, :func:`rekey_int64`).
    """

    def __init__(self, store: KeyStore, purpose: str) -> None:
        self.key_id = store.active_key_id
        self._layers = [_Hmac(derive_key(store, purpose, k)) for k in store.chain]

    def __repr__(self) -> str:
        return f"Hasher(key_id={self.key_id!r})"

    def token(self, value: str) -> str:
        """Hex token (record keys and keyed-hash values)."""
        first, *rest = self._layers
        out = first.digest(value.encode()).hex()
        for layer in rest:
            out = layer.digest(out.encode()).hex()
        return out

    def tokens(self, values: Iterable[str]) -> list[str]:
        """``[token(v) for v in values]`` in one pass per key layer (a test checks it against
        :meth:`token`)."""
        first, *rest = self._layers
        out = first.hexdigests(values)
        for layer in rest:
            out = layer.hexdigests(out)
        return out

    def int64(self, value: str) -> int:
        """64-bit linkage token."""
        first, *rest = self._layers
        out = int64_of(first.digest(value.encode()))
        for layer in rest:
            out = int64_of(layer.digest(out.to_bytes(8, "big", signed=True)))
        return out


def rekey_hex(store: KeyStore, purpose: str, key_id: str) -> Callable[[str], str]:
    """The step that layers key ``key_id`` over a stored hex token."""
    layer = _Hmac(derive_key(store, purpose, key_id))
    return lambda token: layer.digest(token.encode()).hex()


def rekey_int64(store: KeyStore, purpose: str, key_id: str) -> Callable[[int], int]:
    """The step that layers key ``key_id`` over a stored 64-bit linkage token."""
    layer = _Hmac(derive_key(store, purpose, key_id))
    return lambda token: int64_of(layer.digest(token.to_bytes(8, "big", signed=True)))
