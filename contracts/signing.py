"""Ed25519 signatures over an agreement version's signing form.

Each party's signatory keeps a private key (PEM file, never uploaded to the hub); the hub keeps
only public keys. A signature covers :meth:`~contracts.model.Agreement.signing_form`, which leaves
out hub-managed lifecycle state, so activation does not invalidate signatures but any edit to
the agreement's text does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SigningError(ValueError):
    pass


def fingerprint(public_key: bytes) -> str:
    """Short, stable id of a raw 32-byte public key."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:32]


def new_private_key(path: Path) -> bytes:
    """Write a new private key to ``path`` (PEM, mode 0600, never overwritten); return the raw
    public key."""
    if path.exists():
        raise SigningError(f"{path} already exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return raw_public_key(key)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise SigningError(f"no signing key at {path}") from None
    except ValueError as exc:
        raise SigningError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 key")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
