"""Opening an extract: the format, the size limit, the hash and the header, before any row.

:func:`open_extract` reads the whole file once, in blocks, to hash it and (for CSV) to find its
encoding; then it reads the header. Nothing is parsed before the size check, and nothing but a
block is held. :meth:`Extract.chunks` then streams the rows, as many times as it is called (a
workbook's first call reads on from the sheet opened for the header).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

from hub.ingest.formats.arrowcsv import ArrowFallback, arrow_eligible, arrow_frames
from hub.ingest.formats.base import ExtractUnreadable, frames
from hub.ingest.formats.encoding import Probe, probe_for
from hub.ingest.formats.parquet import parquet_frames, parquet_header
from hub.ingest.formats.source import ExtractSource, Source, check_size, read_blocks
from hub.ingest.formats.text import DELIMITER_NAMES, CsvPlan, csv_frames, plan_csv
from hub.ingest.formats.xlsx import Sheet, check_archive, iter_xlsx

#: The first bytes kept from the scan: enough for the format's magic and the CSV header.
_HEAD_BYTES = 1 << 16


class ExtractFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    parquet = "parquet"


def detect_format(head: bytes) -> ExtractFormat:
    """The extract's format from its first bytes (magic numbers); refuses formats the hub does
    not read."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return ExtractFormat.xlsx
    if head.startswith(b"PAR1"):
        return ExtractFormat.parquet
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ExtractUnreadable(
            "the file is an old binary Excel workbook (.xls); save it as .xlsx or CSV and upload "
            "again"
        )
    if head.startswith(b"\x1f\x8b"):
        raise ExtractUnreadable(
            "the file is gzip-compressed; upload the uncompressed CSV, XLSX or Parquet file"
        )
    return ExtractFormat.csv


@dataclass(frozen=True, eq=False)
class Extract:
    """An opened extract: what the hub knows about the file before reading its rows.

    ``encoding`` is the CSV's codec (``utf-8``, ``utf-16`` or ``cp1252``; ``None`` for XLSX
    and Parquet), ``delimiter`` the CSV's delimiter. ``notes`` are sentences for the steward's
    receipt about how the file was read (never a value from it). ``sha256`` and ``size`` are of
    the raw bytes.
    """

    format: ExtractFormat
    sha256: str
    size: int
    header: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    _read: Callable[[int], Iterator[pd.DataFrame]] = field(repr=False, default=lambda _: iter(()))

    def chunks(self, chunk_rows: int = 100_000) -> Generator[pd.DataFrame, None, None]:
        """The rows as DataFrames of at most ``chunk_rows`` rows, each with the header.

        Every cell is ``str`` or ``None`` (blank), every column ``object`` dtype; each frame's
        index starts at 0. A problem in the file raises :class:`ExtractUnreadable` when the
        chunk holding it is reached, so a caller must treat the upload as failed (and roll
        back) if any chunk raises. Each call reads the file again from the start; for a file
        object, read one iterator at a time. No chunk is kept once it has been handed over;
        ``close()`` the iterator to stop early and release the file.
        """
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        return self._chunks(chunk_rows)

    def _chunks(self, chunk_rows: int) -> Generator[pd.DataFrame, None, None]:
        yield from self._read(chunk_rows)


def open_extract(
    source: ExtractSource,
    *,
    dataset: str | None = None,
    allow_cp1252: bool = True,
    max_bytes: int | None = None,
) -> Extract:
    """Open an extract held in ``bytes``, at a ``pathlib.Path``, or in a seekable binary file
    object (read from offset 0); see :mod:`hub.ingest.formats.source`.

    A file over ``max_bytes`` is refused (:class:`ExtractTooLarge`) before anything in it is
    parsed: at once when its size is known, else as soon as the reading passes the limit.
    Then the file is read once, in blocks, for its SHA-256 and (CSV) its encoding, and its
    header is read and checked. ``dataset`` picks the workbook sheet of that name when there
    is one. ``allow_cp1252=False`` refuses Windows-1252 text instead of decoding it. Every
    problem found raises :class:`ExtractUnreadable` naming what and where.
    """
    src = Source(source)
    known = src.known_size()
    if known is not None:
        check_size(known, max_bytes)
    head = src.head(_HEAD_BYTES)
    kind = detect_format(head)
    probe = probe_for(head) if kind is ExtractFormat.csv else None
    sha256, size = _scan(src, probe, max_bytes)
    if probe is not None:
        return _open_csv(src, probe, head, sha256, size, allow_cp1252)
    if kind is ExtractFormat.xlsx:
        return _open_xlsx(src, sha256, size, dataset)
    header = parquet_header(src)
    return Extract(
        ExtractFormat.parquet, sha256, size, header, _read=lambda n: parquet_frames(src, n)
    )


def _scan(src: Source, probe: Probe | None, max_bytes: int | None) -> tuple[str, int]:
    """The file's SHA-256 and size, feeding each block to ``probe``."""
    digest = hashlib.sha256()
    size = 0
    with src.open() as stream:
        for block in read_blocks(stream):
            size += len(block)
            check_size(size, max_bytes, exact=False)
            digest.update(block)
            if probe is not None:
                probe.feed(block)
    if probe is not None:
        probe.finish()
    return digest.hexdigest(), size


def _open_csv(
    src: Source, probe: Probe, head: bytes, sha256: str, size: int, allow_cp1252: bool
) -> Extract:
    if probe.blank:
        raise ExtractUnreadable("the file is empty; export the extract again with its rows")
    encoding = probe.decide(src, allow_cp1252=allow_cp1252)
    plan = plan_csv(src, encoding, head, size)
    notes = []
    if encoding == "cp1252":
        notes.append("The file was not UTF-8 and was read as Windows-1252.")
    elif encoding == "utf-16":
        notes.append("The file was read as UTF-16 (it starts with a UTF-16 byte-order mark).")
    if plan.delimiter != ",":
        notes.append(f"Values were read as separated by {DELIMITER_NAMES[plan.delimiter]}s.")
    fast = arrow_eligible(plan, quoted=probe.quoted)
    return Extract(
        ExtractFormat.csv,
        sha256,
        size,
        plan.header,
        encoding="utf-8" if encoding == "utf-8-sig" else encoding,
        delimiter=plan.delimiter,
        notes=notes,
        _read=lambda n: _csv_frames(src, plan, fast, n),
    )


def _csv_frames(src: Source, plan: CsvPlan, fast: bool, chunk_rows: int) -> Iterator[pd.DataFrame]:
    done = 0
    if fast:
        try:
            done = yield from arrow_frames(src, plan, chunk_rows)
        except ArrowFallback as stop:
            done = stop.rows_done
        else:
            if done:
                return
    # The csv module reads what pyarrow may not, and words the error if there is one.
    yield from csv_frames(src, plan, chunk_rows, skip=done)


def _open_xlsx(src: Source, sha256: str, size: int, dataset: str | None) -> Extract:
    with src.open() as stream:
        check_archive(stream, size)  # once: the bytes cannot change while the Extract lives
    first = iter_xlsx(src.open(), dataset=dataset)
    # The sheet opened for the header serves the first chunks() call; later calls reopen it.
    kept = [first]

    def read(chunk_rows: int) -> Iterator[pd.DataFrame]:
        sheet = kept.pop() if kept else iter_xlsx(src.open(), dataset=dataset)
        yield from frames(sheet.header, sheet.rows, chunk_rows)

    notes = [first.note] if first.note else []
    extract = Extract(ExtractFormat.xlsx, sha256, size, first.header, notes=notes, _read=read)
    # An extract dropped before its rows were read (a duplicate upload, say) closes the sheet.
    weakref.finalize(extract, _close_unread, kept)
    return extract


def _close_unread(kept: list[Sheet]) -> None:
    while kept:
        kept.pop().close()
