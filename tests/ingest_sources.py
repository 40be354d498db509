"""Shared by the extract-reader tests: the source kinds an extract can come as, and the small
extract builders (rows, CSV text, workbooks, Parquet) both test files use."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook

from factories import make_police_row
from hub.ingest.formats import ExtractSource

SECRET = "Whitfield"  # a surname in every fixture; no error message may contain it
SOURCE_KINDS = ["bytes", "path", "file"]

MakeSource = Callable[[bytes], ExtractSource]


class SpoolLike(io.RawIOBase):
    """A readable, seekable file object with no file descriptor, left at its end as a spool is
    after being written (the reader must read it from offset 0)."""

    def __init__(self, content: bytes) -> None:
        super().__init__()
        self._buffer = io.BytesIO(content)
        self._buffer.seek(0, os.SEEK_END)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._buffer.readinto(buffer)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._buffer.seek(offset, whence)

    def tell(self) -> int:
        return self._buffer.tell()


class UnknownLength(SpoolLike):
    """A stream that cannot say how long it is (seeking to its end is not supported)."""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            raise io.UnsupportedOperation("the length of this stream is unknown")
        return super().seek(offset, whence)


def make_rows(n: int = 3) -> list[dict[str, str]]:
    # Longitude without a trailing zero: typed formats keep a number, not its CSV spelling.
    return [make_police_row(i, longitude="-87.7") for i in range(1, n + 1)]


def make_text(rows: list[dict[str, str]], delimiter: str = ",", newline: str = "\n") -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator=newline
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def make_parquet(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def make_workbook(*rows: Sequence[Any], sheets: Sequence[str] = ("Sheet1",)) -> bytes:
    """A workbook with ``rows`` in its last sheet; each sheet before it (``sheets`` names them
    all, in order) holds two decoy rows. Every ``str`` is a text cell, even one starting with
    ``=`` (which openpyxl would otherwise store as a formula)."""
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = sheets[0]
    for name in sheets[1:]:
        book.create_sheet(name)
    for name in sheets[:-1]:
        book[name].append(["decoy"])
        book[name].append(["not this sheet"])
    target = book[sheets[-1]]
    for row in rows:
        target.append(list(row))
    for line in target.iter_rows():
        for cell in line:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def make_xlsx(records: list[dict[str, Any]], sheets: Sequence[str] = ("Sheet1",)) -> bytes:
    """:func:`make_workbook` of ``records`` under a header of their keys."""
    return make_workbook(list(records[0]), *(list(r.values()) for r in records), sheets=sheets)
