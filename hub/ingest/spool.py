"""An encrypted spool: somewhere to put an upload larger than memory without writing it to disk
in plaintext (invariant 1).

An extract arriving over HTTP has to be held somewhere between the last byte received and the
end of validation. Starlette's form parser would spool it to a plaintext temporary file; the hub
writes it here instead::

    with EncryptedSpool(directory) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        with spool.open() as extract:      # readable, seekable, decrypts on the fly
            upload_extract(..., content=extract)
    # the file is gone

How it is protected:

- The file is cut into fixed-size segments (1 MiB by default), each sealed with AES-256-GCM
  under a one-time random key that exists only in this object's memory; when the object goes,
  the file is unreadable even if it were recovered from the disk.
- Segment *i* uses nonce *i* (a counter, safe because the key seals one file only) and binds
  *i* and whether it is the last segment as associated data, so segments cannot be reordered,
  repeated, dropped or cut off without :class:`SpoolCorrupted` on reading them.
- The file is created with mode 0600 (``mkstemp``) and unlinked at once where the platform
  allows (POSIX): only the open descriptor reaches it, and the kernel frees it when that is
  closed, even if the process dies. Where unlinking an open file fails (Windows) it is deleted
  on :meth:`EncryptedSpool.close`, on leaving the ``with`` block, on an error while writing,
  and at the latest when the object is garbage-collected.

Caveat: the segment being written (at most one segment) and the segment being read are held
in plaintext in memory, as any reader of the file must.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
import weakref
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import HubError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

SEGMENT_SIZE = 1024 * 1024
TAG_SIZE = 16
_AAD_PREFIX = b"ovphub-spool\x00"


class SpoolCorrupted(HubError):
    """A segment of the spool file failed authentication: it was changed on disk."""

    status_code = 500
    code = "spool_corrupted"


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


def _aad(index: int, final: bool) -> bytes:
    return _AAD_PREFIX + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _detach(path: str) -> bool:
    """Remove the name of a file we hold open: it lives on, reachable only through the
    descriptor, until that is closed. False where the platform refuses (Windows)."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def _discard(fd: int, path: str | None) -> None:
    """Close the descriptor and remove the file if it still has a name (idempotent)."""
    with contextlib.suppress(OSError):
        os.close(fd)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class EncryptedSpool:
    """A write-once temporary file, encrypted segment by segment; see the module docstring.

    Write with :meth:`write` (any number of times), then read with :meth:`open` (any number of
    readers, each with its own position). :meth:`close` destroys the file; it is called on
    leaving a ``with`` block and on any error while writing.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, segment_size: int = SEGMENT_SIZE
    ) -> None:
        if segment_size < 1:
            raise ValueError("segment_size must be positive")
        self.segment_size = segment_size
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._buffer = bytearray()
        self._sealed = 0  # segments written to the file
        self._size = 0  # plaintext bytes written
        self._finished = False
        self._read_lock = threading.Lock()
        fd, name = tempfile.mkstemp(prefix="ovphub-spool-", suffix=".bin", dir=directory)
        path: str | None = name
        try:
            os.chmod(name, 0o600)
            if _detach(name):
                path = None
        except BaseException:
            _discard(fd, path)
            raise
        self._fd = fd
        self._path = path
        self._finalizer = weakref.finalize(self, _discard, fd, path)

    # --- state -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Plaintext bytes written so far."""
        return self._size

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def path(self) -> Path | None:
        """The file's name while it has one (only where it could not be unlinked at once)."""
        return None if self._path is None or self.closed else Path(self._path)

    @property
    def segments(self) -> int:
        """How many segments the finished file holds (the last may be short or empty)."""
        return max(1, -(-self._size // self.segment_size))

    def fileno(self) -> int:
        """The descriptor of the encrypted file (for inspection; it holds ciphertext only)."""
        self._check_open()
        return self._fd

    def __repr__(self) -> str:
        state = "closed" if self.closed else "finished" if self._finished else "writing"
        return f"<EncryptedSpool {state} {self._size} bytes>"

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed spool")

    # --- writing -----------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``. Full segments are sealed and written; the last segment is kept in
        memory until :meth:`finish` (a segment is sealed knowing whether it is the last)."""
        self._check_open()
        if self._finished:
            raise ValueError("the spool is finished; it takes no more writes")
        try:
            self._buffer += data
            self._size += len(data)
            while len(self._buffer) > self.segment_size:
                self._seal(bytes(self._buffer[: self.segment_size]), final=False)
                del self._buffer[: self.segment_size]
        except BaseException:
            self.close()
            raise
        return len(data)

    def finish(self) -> None:
        """Seal the last segment. Called by :meth:`open`; further writes are refused."""
        self._check_open()
        if self._finished:
            return
        try:
            self._seal(bytes(self._buffer), final=True)
            self._buffer = bytearray()
            self._finished = True
        except BaseException:
            self.close()
            raise

    def _seal(self, plaintext: bytes, final: bool) -> None:
        index = self._sealed
        sealed = self._aead.encrypt(_nonce(index), plaintext, _aad(index, final))
        view = memoryview(sealed)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._sealed += 1

    # --- reading -----------------------------------------------------------------------------

    def open(self) -> io.BufferedReader:
        """A new binary reader over the plaintext (readable and seekable). Closing the reader
        leaves the spool; closing the spool makes its readers fail."""
        self.finish()
        expected = self._size + self.segments * TAG_SIZE
        if os.fstat(self._fd).st_size != expected:
            raise SpoolCorrupted(
                "the upload's encrypted spool file changed size on disk; nothing was stored. "
                "Upload the file again, and tell the hub administrator"
            )
        return io.BufferedReader(_SpoolReader(self), buffer_size=64 * 1024)

    def _read_at(self, offset: int, length: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(self._fd, length, offset)
        with self._read_lock:  # pragma: no cover - platforms without pread
            os.lseek(self._fd, offset, os.SEEK_SET)
            return os.read(self._fd, length)

    def segment(self, index: int) -> bytes:
        """The plaintext of segment ``index``; :class:`SpoolCorrupted` if it fails to verify."""
        self._check_open()
        if not self._finished or not 0 <= index < self.segments:
            raise IndexError(f"no segment {index}")
        length = min(self.segment_size, self._size - index * self.segment_size) + TAG_SIZE
        sealed = self._read_at(index * (self.segment_size + TAG_SIZE), length)
        final = index == self.segments - 1
        try:
            if len(sealed) != length:
                raise InvalidTag
            return self._aead.decrypt(_nonce(index), sealed, _aad(index, final))
        except InvalidTag:
            raise SpoolCorrupted(
                f"segment {index} of the upload's encrypted spool file failed authentication "
                "(it was changed on disk); nothing was stored. Upload the file again, and tell "
                "the hub administrator"
            ) from None

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Destroy the file (close its descriptor; delete it if it still has a name) and forget
        the buffered plaintext. Safe to call more than once."""
        self._buffer = bytearray()
        self._finalizer()

    def __enter__(self) -> EncryptedSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _SpoolReader(io.RawIOBase):
    """Random access to a finished spool's plaintext, decrypting one segment at a time."""

    def __init__(self, spool: EncryptedSpool) -> None:
        super().__init__()
        self._spool = spool
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._checkClosed()
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self._spool.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._checkClosed()
        out = memoryview(buffer).cast("B")
        if self._pos >= self._spool.size or len(out) == 0:
            return 0
        step = self._spool.segment_size
        index, offset = divmod(self._pos, step)
        if self._cached is None or self._cached[0] != index:
            self._cached = (index, self._spool.segment(index))
        plain = self._cached[1]
        n = min(len(out), len(plain) - offset)
        out[:n] = plain[offset : offset + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._cached = None
        super().close()
