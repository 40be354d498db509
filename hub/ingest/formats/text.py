"""CSV extracts: the encoding, the delimiter, and rows read lazily with line-accurate errors.

Encodings, in the order they are tried:

* UTF-16 (LE or BE) when the file starts with its byte-order mark;
* UTF-8, with or without a BOM, checked strictly over the whole file;
* Windows-1252 (which covers Latin-1's printable characters) when the file is not UTF-8, holds
  no valid UTF-8 multi-byte sequence at all, and has none of the five bytes Windows-1252 leaves
  undefined. A file that is mostly UTF-8 with a stray Windows-1252 byte is refused with the
  byte's line and offset rather than read as mojibake. The fallback can be turned off
  (``allow_cp1252=False``), in which case such files are refused as "not UTF-8".

The delimiter is whichever of comma, semicolon, tab and pipe occurs most often outside quotes
in the header line (ties go in that order; none at all means a single comma-separated column).
Line endings may be LF or CRLF; quoted values may span lines. Line numbers in errors are
physical lines of the file; a quote that is never closed, or a value over
:data:`~hub.ingest.formats.base.MAX_CELL_CHARS`, is reported at the line and column (with its
header name) where it starts.

This module parses with the csv module (strict quoting). Plain UTF-8 files with no quote
character take the faster pyarrow path in :mod:`.arrowcsv`, which falls back here for the
wording of any error. Both turn blank cells into ``None`` the same way
(:func:`.arrowcsv.text_frame`).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.ingest.formats.base import MAX_CELL_CHARS, ExtractUnreadable, check_header

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: Bytes Windows-1252 does not define; a file holding one is in neither UTF-8 nor cp1252.
CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"
#: A well-formed UTF-8 multi-byte character; Windows-1252 text almost never holds one.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_CHECK_SLICE = 1 << 20


def line_of(content: bytes, offset: int) -> tuple[int, int]:
    """(line, byte column), both 1-based, of ``offset`` in single-byte-newline text."""
    line = content.count(b"\n", 0, offset) + 1
    column = offset - (content.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def first_utf8_error(content: bytes) -> int | None:
    """Offset of the first byte that is not valid UTF-8, or ``None``; memory stays bounded."""
    if content.isascii():
        return None
    return first_decode_error(content, "utf-8")


def first_decode_error(content: bytes, encoding: str) -> int | None:
    """Offset of the first byte ``encoding`` cannot decode, or ``None``; decodes slice by
    slice and keeps no text, so memory stays bounded."""
    decoder = codecs.getincrementaldecoder(encoding)()
    for start in range(0, len(content), _CHECK_SLICE):
        pending = len(decoder.getstate()[0])
        end = start + _CHECK_SLICE
        try:
            decoder.decode(content[start:end], final=end >= len(content))
        except UnicodeDecodeError as exc:
            return start - pending + exc.start
    return None


def _has_utf8_character(content: bytes) -> bool:
    """Whether the file holds a well-formed non-ASCII UTF-8 character (so it is meant as UTF-8)."""
    return _UTF8_MULTIBYTE.search(content) is not None


def choose_encoding(content: bytes, *, allow_cp1252: bool = True) -> str:
    """The codec to read ``content`` with; refuses NUL bytes, mixed and unknown encodings."""
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        _check_utf16(content)
        return "utf-16"
    nul = content.find(b"\x00")
    if nul >= 0:
        line, column = line_of(content, nul)
        raise ExtractUnreadable(
            f"line {line}, byte {column} (offset {nul}): the file contains a NUL byte, so it is "
            "not a text CSV; export it again as CSV (UTF-8), or as UTF-16 with a byte-order mark"
        )
    bad = first_utf8_error(content)
    if bad is None:
        return "utf-8-sig"
    line, column = line_of(content, bad)
    where = f"line {line}, byte {column} (offset {bad})"
    byte = f"0x{content[bad]:02X}"
    if content.startswith(codecs.BOM_UTF8) or _has_utf8_character(content):
        raise ExtractUnreadable(
            f"{where}: the file mixes encodings: it is UTF-8 up to there, but byte {byte} is not "
            "UTF-8 (it looks like Windows-1252); export the whole extract as UTF-8"
        )
    if not allow_cp1252:
        raise ExtractUnreadable(
            f"the file is not UTF-8: byte {bad} (line {line}) cannot be decoded; "
            "export the extract as UTF-8"
        )
    undefined = [i for i in (content.find(bytes([b])) for b in CP1252_UNDEFINED) if i >= 0]
    if undefined:
        first = min(undefined)
        line, column = line_of(content, first)
        raise ExtractUnreadable(
            f"line {line}, byte {column} (offset {first}): byte 0x{content[first]:02X} is "
            "neither UTF-8 nor Windows-1252; export the extract as UTF-8"
        )
    return "cp1252"


def _check_utf16(content: bytes) -> None:
    if len(content) % 2:
        raise ExtractUnreadable(
            "the file starts like UTF-16 but has an odd number of bytes, so it is cut short or "
            "not UTF-16; export it again"
        )
    bad = first_decode_error(content, "utf-16")
    if bad is not None:
        line = content[:bad].decode("utf-16", errors="replace").count("\n") + 1
        raise ExtractUnreadable(
            f"line {line} (offset {bad}): the file starts like UTF-16 but bytes there are not "
            "UTF-16; export the extract again as UTF-8"
        )
    at = content.find(b"\x00\x00")
    while at >= 0 and at % 2:
        at = content.find(b"\x00\x00", at + 1)
    if at >= 0:
        line = content[:at].decode("utf-16", errors="replace").count("\n") + 1
        raise ExtractUnreadable(
            f"line {line}: the file contains a NUL character, so it is not a text CSV; "
            "export it again as CSV"
        )


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


def plan_csv(content: bytes, *, allow_cp1252: bool = True) -> CsvPlan:
    """The encoding, delimiter and checked header; every header problem raises here."""
    if not content or content.isspace():
        raise ExtractUnreadable("the file is empty; export the extract again with its rows")
    encoding = choose_encoding(content, allow_cp1252=allow_cp1252)
    sample = content[:65536].decode(encoding, errors="replace")
    if not sample.strip():
        raise ExtractUnreadable("the file is empty; export the extract again with its rows")
    delimiter = sniff_delimiter(sample)
    _, records, _ = _open(content, encoding, delimiter, None)
    try:
        _, names = next(records)
    except StopIteration:
        raise ExtractUnreadable("the file has no header row") from None
    if not names:
        raise ExtractUnreadable("line 1 is empty; put the column names on the first line")
    return CsvPlan(encoding, delimiter, check_header(names))


def csv_rows(content: bytes, plan: CsvPlan, *, skip: int = 0) -> Iterator[list[str]]:
    """The data rows as parsed (blank cells still ``""``), lazily, after the first ``skip``."""
    reader, records, where = _open(content, plan.encoding, plan.delimiter, plan.header)
    next(records, None)  # the header, already checked
    rows = _rows(reader, len(plan.header), plan.delimiter, where)
    return itertools.islice(rows, skip, None)


def _open(
    content: bytes, encoding: str, delimiter: str, header: list[str] | None
) -> tuple[Iterator[list[str]], Iterator[tuple[int, list[str]]], Callable[[int], str]]:
    """A csv reader over the decoded bytes, the same as checked records (for the header), and
    a function naming the line (and the column, when it can be found) of a parse error."""
    csv.field_size_limit(MAX_CELL_CHARS)
    stream = io.TextIOWrapper(io.BytesIO(content), encoding=encoding, newline="")
    reader = csv.reader(stream, delimiter=delimiter, strict=True)

    def where(line: int) -> str:
        column = _column_at_fault(_physical_line(content, encoding, line), delimiter)
        if column is None:
            return f"line {line}"
        named = f" ({header[column - 1]})" if header and column <= len(header) else ""
        return f"line {line}, column {column}{named}"

    return reader, _records(reader, delimiter, where), where


def _physical_line(content: bytes, encoding: str, line: int) -> str:
    """Line ``line`` of the file (its first 4 cell limits), as the csv module counts lines."""
    stream = io.TextIOWrapper(io.BytesIO(content), encoding=encoding, newline="")
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
    name = _DELIMITER_NAMES[delimiter]
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
    name = _DELIMITER_NAMES[delimiter]
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
