"""CSV extracts: the delimiter, the header, and rows streamed with line-accurate errors.

The encoding comes first, from one streaming pass over the bytes (:mod:`.encoding`). The
delimiter is whichever of comma, semicolon, tab and pipe occurs most often outside quotes in the
header line (ties go in that order; none at all means a single comma-separated column). Line
endings may be LF or CRLF; quoted values may span lines. Line numbers in errors are physical
lines of the file; a quote that is never closed, or a value over
:data:`~hub.ingest.formats.base.MAX_CELL_CHARS`, is reported at the line and column (with its
header name) where it starts.

This module parses with the csv module (strict quoting) over a text stream of the file, so
memory is bounded by one chunk. Files with no quote character take the faster pyarrow path in
:mod:`.arrowcsv`, which falls back here for the wording of any error. Both hand their rows to
the same :class:`~hub.ingest.formats.grid.ChunkBuilder`, so a cell reads the same on either.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from hub.ingest.formats.base import MAX_CELL_CHARS, ExtractUnreadable, check_header
from hub.ingest.formats.grid import ChunkBuilder
from hub.ingest.formats.source import Source

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: Rows parsed by the csv module before they are handed on as text columns.
_BATCH_ROWS = 1 << 15


def sniff_delimiter(first_line: str) -> str:
    """The delimiter used most often outside quotes in the header line (deterministic)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
        elif not quoted and ch in "\r\n":
            break
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


@dataclass(frozen=True)
class CsvPlan:
    """How to read one CSV: found from its bytes and header before any row is parsed."""

    encoding: str
    delimiter: str
    header: list[str]
    #: About how many rows the file holds (from its size and first lines), to size chunks.
    rows_hint: int | None = None


def plan_csv(source: Source, encoding: str, head: bytes, size: int) -> CsvPlan:
    """The delimiter (from ``head``, the file's first bytes) and the checked header; every
    header problem raises here. ``size`` is the file's, in bytes. (An empty file was refused
    before, by the encoding scan, which sees the whole file.)"""
    delimiter = sniff_delimiter(head.decode(encoding, errors="replace"))
    with source.open_text(encoding) as stream:
        reader = _reader(stream, delimiter)
        where = _where(source, encoding, delimiter, None)
        try:
            _, names = next(_records(reader, delimiter, where))
        except StopIteration:
            raise ExtractUnreadable("the file has no header row") from None
    if not names:
        raise ExtractUnreadable("line 1 is empty; put the column names on the first line")
    lines = max(head.count(b"\n"), 1)
    hint = lines if size <= len(head) else int(size / len(head) * lines * 1.05)
    return CsvPlan(encoding, delimiter, check_header(names), rows_hint=hint)


def csv_frames(
    source: Source, plan: CsvPlan, chunk_rows: int, *, skip: int = 0
) -> Iterator[pd.DataFrame]:
    """The data rows after the first ``skip``, as frames of ``chunk_rows`` rows; refuses a file
    with no rows at all."""
    width = len(plan.header)
    builder = ChunkBuilder(plan.header, chunk_rows, expected_rows=plan.rows_hint)
    with source.open_text(plan.encoding) as stream:
        reader = _reader(stream, plan.delimiter)
        where = _where(source, plan.encoding, plan.delimiter, plan.header)
        next(_records(reader, plan.delimiter, where), None)  # the header, already checked
        rows = itertools.islice(_rows(reader, width, plan.delimiter, where), skip, None)
        # Never parse past the chunk being built, so an error surfaces with its chunk.
        while batch := list(itertools.islice(rows, min(_BATCH_ROWS, builder.room))):
            columns = [pa.array(values, pa.string()) for values in zip(*batch)]  # noqa: B905
            del batch
            yield from builder.add(columns)
    yield from builder.finish()
    if skip == 0 and builder.rows_out == 0:
        raise ExtractUnreadable("the file has a header but no rows")


def _reader(stream: io.TextIOWrapper, delimiter: str) -> Iterator[list[str]]:
    csv.field_size_limit(MAX_CELL_CHARS)
    return csv.reader(stream, delimiter=delimiter, strict=True)


def _where(
    source: Source, encoding: str, delimiter: str, header: list[str] | None
) -> Callable[[int], str]:
    """A function naming the line (and the column, when it can be found) of a parse error."""

    def where(line: int) -> str:
        column = _column_at_fault(_physical_line(source, encoding, line), delimiter)
        if column is None:
            return f"line {line}"
        named = f" ({header[column - 1]})" if header and column <= len(header) else ""
        return f"line {line}, column {column}{named}"

    return where


def _physical_line(source: Source, encoding: str, line: int) -> str:
    """Line ``line`` of the file (its first 4 cell limits), as the csv module counts lines."""
    with source.open_text(encoding) as stream:
        for _ in range(line - 1):
            stream.readline()
        return stream.readline(4 * MAX_CELL_CHARS)


def _column_at_fault(text: str, delimiter: str) -> int | None:
    """The 1-based column of a quote left open at the end of ``text``, or of a value longer
    than the cell limit; ``None`` when neither shows on this line."""
    column, length, inside, quoted, fresh, opened = 1, 0, False, False, True, 0
    for ch in text:
        if ch == delimiter and not inside:
            column, length, quoted, fresh = column + 1, 0, False, True
            continue
        if ch in "\r\n" and not inside:
            break
        if ch == '"' and (fresh or quoted):
            if fresh:
                opened = column
            quoted, inside = True, not inside
        else:
            length += 1
            if length > MAX_CELL_CHARS:
                return column
        fresh = False
    return opened if inside else None


def _records(
    reader: Iterator[list[str]], delimiter: str, where: Callable[[int], str]
) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, values), turning parser errors into steward sentences."""
    line_num = 0
    while True:
        start = line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _parse_error(str(exc), start, reader, delimiter, where) from None
        except UnicodeDecodeError:
            raise _undecodable(start) from None
        line_num = reader.line_num  # type: ignore[attr-defined]
        yield start, values


def _undecodable(line: int) -> ExtractUnreadable:
    return ExtractUnreadable(
        f"line {line}: the text cannot be decoded there; export the extract as UTF-8"
    )


def _parse_error(
    message: str,
    start: int,
    reader: Iterator[list[str]],
    delimiter: str,
    where: Callable[[int], str],
) -> ExtractUnreadable:
    name = DELIMITER_NAMES[delimiter]
    if "field larger than field limit" in message:
        return ExtractUnreadable(
            f"{where(start)}: a value starting on this line is longer than {MAX_CELL_CHARS:,} "
            "characters, the limit for one cell; most often a quote opened on this line is "
            "never closed"
        )
    if "unexpected end of data" in message:
        return ExtractUnreadable(
            f"{where(start)}: a quote opened on this line is never closed (unbalanced quotes); "
            "close it, or double any quote inside a value"
        )
    line = reader.line_num  # type: ignore[attr-defined]
    # The csv module's own messages name only delimiters and quote characters, never values.
    return ExtractUnreadable(
        f"line {line}: the CSV cannot be parsed ({message}; the delimiter is {name}); check the "
        "quotes on that line: a quote inside a value must be doubled"
    )


def _rows(
    reader: Iterator[list[str]], width: int, delimiter: str, where: Callable[[int], str]
) -> Iterator[list[str]]:
    """The data rows (the reader is past the header), checked for width.

    One loop straight over the reader, with no generator in between: this is the hot path.
    """
    name = DELIMITER_NAMES[delimiter]
    start = reader.line_num + 1  # type: ignore[attr-defined]
    try:
        for values in reader:
            if values:
                if len(values) != width:
                    raise ExtractUnreadable(
                        f"line {start}: {len(values)} values where the header has {width} "
                        f"columns; check the delimiters ({name}) and quotes on that line"
                    )
                yield values
            start = reader.line_num + 1  # type: ignore[attr-defined]
    except csv.Error as exc:
        raise _parse_error(str(exc), start, reader, delimiter, where) from None
    except UnicodeDecodeError:
        raise _undecodable(start) from None
