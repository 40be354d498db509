"""Excel (XLSX) extracts, read with openpyxl in read-only mode from a stream of the file.

The zip directory is inspected before openpyxl touches the file, so a zip bomb is refused
without inflating anything: too many members, more than :data:`MAX_UNCOMPRESSED` bytes in all,
or an archive that would grow more than :data:`MAX_RATIO` times. (Python's zipfile also stops
each member at its declared size, so the directory cannot understate what gets inflated.)

The sheet read is the one named like the dataset (``police_victimizations``, compared ignoring
case, spaces and dashes) when there is one, else the first. Messages and notes quote a sheet's
name only in the first case: otherwise it is the agency's free text, and they say "the first
sheet". Row 1 is the header. Formulas are read as their cached values. Cells become text as
:func:`~hub.ingest.formats.base.cell_text` describes.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from hub.ingest.formats.base import ExtractUnreadable, Row, cell_text, check_header

MAX_UNCOMPRESSED = 512 << 20
MAX_RATIO = 100
MAX_MEMBERS = 10_000
WORKBOOK_PART = "xl/workbook.xml"


def check_archive(stream: BinaryIO, size: int) -> None:
    """Refuse zip bombs and zips that are not workbooks, from the zip directory alone."""
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise ExtractUnreadable(
            "the file starts like a zip archive (an Excel workbook) but its directory is "
            "damaged; save the workbook again or export the extract as CSV"
        ) from None
    if len(members) > MAX_MEMBERS:
        raise ExtractUnreadable(
            f"the workbook holds {len(members):,} parts, more than the {MAX_MEMBERS:,} allowed; "
            "it is not a normal Excel file (possibly a zip bomb)"
        )
    total = sum(m.file_size for m in members)
    if total > MAX_UNCOMPRESSED or total > MAX_RATIO * max(size, 1):
        raise ExtractUnreadable(
            f"the workbook would expand from {size:,} to {total:,} bytes, beyond the "
            f"limits ({MAX_UNCOMPRESSED >> 20} MiB, or {MAX_RATIO} times the file); it was not "
            "opened (possibly a zip bomb). Export the extract as CSV or Parquet"
        )
    if WORKBOOK_PART not in {m.filename for m in members}:
        raise ExtractUnreadable(
            "the file is a zip archive but not an Excel workbook (no xl/workbook.xml); upload "
            "the extract itself as CSV, XLSX or Parquet"
        )


def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return s.strip().lower().replace("-", "_").replace(" ", "_")

    return norm(a) == norm(b)


@dataclass
class Sheet:
    """The sheet an extract is read from: its header (read now) and its rows (read lazily,
    closing the workbook when they end). :meth:`close` closes it without reading the rows."""

    name: str
    header: list[str]
    rows: Iterator[Row]
    #: What the receipt says about the choice when the workbook has several sheets (naming the
    #: sheet only when it is named like the dataset).
    note: str | None
    book: Any
    stream: BinaryIO

    def close(self) -> None:
        self.book.close()
        self.stream.close()


def iter_xlsx(stream: BinaryIO, *, dataset: str | None = None) -> Sheet:
    """The chosen sheet of the workbook in ``stream`` (which the sheet's rows close when they
    are done; it is closed at once if the workbook cannot be read)."""
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it ignores; they do not affect values.
            warnings.simplefilter("ignore")
            book = load_workbook(stream, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types for a damaged workbook
        stream.close()
        raise ExtractUnreadable(
            "the Excel workbook cannot be opened: it is damaged or not an XLSX file; save it "
            "again from Excel or export the extract as CSV"
        ) from None
    try:
        return _sheet(book, stream, dataset)
    except BaseException:
        book.close()
        stream.close()
        raise


def _sheet(book: Any, stream: BinaryIO, dataset: str | None) -> Sheet:
    names = book.sheetnames
    if not names:
        raise ExtractUnreadable("the workbook has no sheets")
    named = next((n for n in names if dataset and _same_name(n, dataset)), None)
    chosen = named or names[0]
    # A sheet's name is the agency's free text, and what is said here reaches the upload's
    # report and logs: it is quoted only when it is the dataset's own name.
    label = f"sheet '{named}'" if named else "the first sheet" if len(names) > 1 else "the sheet"
    note = None
    if len(names) > 1:
        if named:
            read = f"{label} was read (it is named like the dataset)"
        elif dataset:
            read = "the first was read (no sheet is named like the dataset)"
        else:
            read = "the first was read"
        note = f"The workbook has {len(names)} sheets; {read}."
    sheet: Any = book[chosen]
    cells = sheet.iter_rows(values_only=True)
    raw = list(next(cells, None) or ())
    while raw and (raw[-1] is None or (isinstance(raw[-1], str) and not raw[-1].strip())):
        raw.pop()
    if not raw:
        raise ExtractUnreadable(f"{label} has no header: put the column names in row 1")
    header = check_header([cell_text(v) for v in raw])
    rows = _rows(book, stream, label, cells, len(header))
    return Sheet(chosen, header, rows, note, book, stream)


def _rows(
    book: Any,
    stream: BinaryIO,
    label: str,
    cells: Iterator[tuple[Any, ...]],
    width: int,
) -> Iterator[Row]:
    try:
        for number, values in enumerate(cells, start=2):
            texts = [cell_text(v) for v in values]
            outside = next((i for i in range(width, len(texts)) if texts[i] is not None), None)
            if outside is not None:
                raise ExtractUnreadable(
                    f"{label}, row {number}, column {get_column_letter(outside + 1)}: a value "
                    f"stands outside the {width} named columns; give the column a header or "
                    "clear it"
                )
            if all(t is None for t in texts):
                continue
            row = texts[:width]
            row.extend([None] * (width - len(row)))
            yield row
    finally:
        book.close()
        stream.close()
