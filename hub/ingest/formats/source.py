"""Where an extract's bytes come from: memory, a file on disk, or a seekable file object.

Readers never hold the whole file. Each reading pass (the scan that hashes and checks the
encoding, the parse, the re-read of one line for an error message) asks :class:`Source` for a
fresh binary stream positioned at the start of the extract, and closes it when done:

* ``bytes`` (or ``bytearray``, ``memoryview``): an in-memory stream over the same buffer;
* a :class:`pathlib.Path` (any ``os.PathLike``): the file, opened read-only for each pass;
* a file object with ``read``, ``seek`` and ``tell`` (such as the upload spool's reader): a
  view that keeps its own position and seeks the object before every read, so two passes can
  be open at once. The extract is the object's content from offset 0, whatever its position
  when handed over. Closing a view never closes the caller's object.

A plain ``str`` is refused: it could be a path or a CSV's text, and guessing wrong would read
the wrong thing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol, TypeAlias

import pyarrow as pa

from hub.ingest.formats.base import ExtractTooLarge

#: Bytes read per block by the scanning passes (hash, encoding checks, line numbers).
SCAN_BLOCK = 8 << 20
#: Buffer of the binary stream behind the csv module's text reader.
_BUFFER = 1 << 20


class ExtractStream(Protocol):
    """A readable, seekable binary file object (``typing.BinaryIO`` satisfies it)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


ExtractSource: TypeAlias = bytes | bytearray | memoryview | os.PathLike[str] | ExtractStream


class _View(io.RawIOBase):
    """A read-only window on a caller's file object, with its own position."""

    def __init__(self, inner: ExtractStream) -> None:
        super().__init__()
        self._inner = inner
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._position + offset
        elif whence == os.SEEK_END:
            target = self._inner.seek(0, os.SEEK_END) + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if target < 0:
            raise ValueError("negative seek position")
        self._position = target
        return target

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        self._inner.seek(self._position)
        view = memoryview(buffer).cast("B")
        readinto = getattr(self._inner, "readinto", None)
        if readinto is not None:
            count = readinto(view) or 0
        else:
            data = self._inner.read(len(view))
            count = len(data)
            view[:count] = data
        self._position += count
        return count


class Source:
    """An extract's bytes, to be read from the start as often as needed (see the module doc)."""

    def __init__(self, source: ExtractSource) -> None:
        self._data: bytes | memoryview | None = None
        self._path: str | None = None
        self._stream: ExtractStream | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            self._data = source if isinstance(source, bytes) else memoryview(source).cast("B")
        elif isinstance(source, os.PathLike):
            self._path = os.fspath(source)
        elif isinstance(source, str):
            raise TypeError("pass a pathlib.Path to read a file, or bytes to read content")
        elif all(hasattr(source, name) for name in ("read", "seek", "tell")):
            self._stream = source
        else:
            raise TypeError(
                "an extract is bytes, a pathlib.Path, or a readable, seekable binary file object"
            )

    def known_size(self) -> int | None:
        """The size in bytes when it can be found without reading, else ``None``."""
        if self._data is not None:
            return len(self._data)
        if self._path is not None:
            return os.stat(self._path).st_size
        assert self._stream is not None
        try:
            end = self._stream.seek(0, os.SEEK_END)
        except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
            return None
        return end if isinstance(end, int) else None

    def open(self) -> BinaryIO:
        """A new binary stream at the extract's first byte; the caller closes it."""
        if self._data is not None:
            return io.BytesIO(self._data)
        if self._path is not None:
            return open(self._path, "rb", buffering=_BUFFER)  # noqa: SIM115
        assert self._stream is not None
        return io.BufferedReader(_View(self._stream), buffer_size=_BUFFER)

    def open_text(self, encoding: str) -> io.TextIOWrapper:
        """The extract as text, with line endings kept as they are (what the csv module needs)."""
        return io.TextIOWrapper(self.open(), encoding=encoding, newline="")

    def arrow_input(self) -> pa.NativeFile:
        """The extract as a pyarrow input file (native I/O for memory and paths)."""
        if self._data is not None:
            return pa.BufferReader(self._data)
        if self._path is not None:
            return pa.OSFile(self._path, "r")
        return pa.PythonFile(self.open(), mode="r")

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer if the extract is shorter)."""
        with self.open() as stream:
            return read_full(stream, size)


def read_full(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes from ``stream``, fewer only at its end (a file object may return less
    than asked for)."""
    data = stream.read(size)
    while data and len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def read_blocks(stream: BinaryIO, size: int = SCAN_BLOCK) -> Iterator[bytes]:
    """The stream in blocks of ``size`` bytes (the last one shorter)."""
    while block := read_full(stream, size):
        yield block
        if len(block) < size:
            return


def check_size(size: int, limit: int | None, *, exact: bool = True) -> None:
    """Refuse an extract of ``size`` bytes over ``limit``; ``exact=False`` when only the bytes
    read so far are known (a stream of unknown length)."""
    if limit is None or size <= limit:
        return
    allowed = f"the hub's limit of {_amount(limit)}"
    if exact:
        said = f"the file is {_amount(size)}, over {allowed}"
    else:
        said = f"the file is larger than {allowed} (reading stopped after {size:,} bytes)"
    raise ExtractTooLarge(
        f"{said}; none of it was parsed. Split the extract into smaller files (for example by "
        "date range) and upload each"
    )


def _amount(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size:,} bytes ({value:.1f} {unit})"
