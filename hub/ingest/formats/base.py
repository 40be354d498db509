"""What every extract format shares: the errors, the limits, the header check, cells to text.

Every reader turns its file into a header (a list of column names) and rows of ``str`` or
``None`` (an empty cell), so validation sees exactly what the agency sent, whatever the format.
Error messages name the line, row or column and never contain a cell value: a steward's file
holds names and birth dates, and messages end up in logs and reports.

    UploadRejected (hub.errors, 422)
    └── ExtractUnreadable (422)     wrong format, encoding or structure; says what and where
        └── ExtractTooLarge (413)   over the size limit; refused before anything is parsed
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

import pandas as pd

from hub.errors import UploadRejected

#: The longest single cell a CSV may hold, in characters. A longer one almost always means a
#: quote that is never closed; refusing it keeps a runaway field from eating memory.
MAX_CELL_CHARS = 1 << 20

Row = list[str | None]


class ExtractUnreadable(UploadRejected):
    """The file cannot be read as an extract: wrong format, encoding or structure."""

    code = "extract_unreadable"


class ExtractTooLarge(ExtractUnreadable):
    """The file is over the size limit; it was refused before anything in it was parsed."""

    status_code = 413
    code = "extract_too_large"


def check_header(names: Sequence[object]) -> list[str]:
    """Column names as stripped text; refuses repeated and empty names.

    The errors say where by position only: in a file exported without a header, row 1 is data
    (names, birth dates), so a name from it must not reach a message.
    """
    header = ["" if n is None else str(n).strip() for n in names]
    places: dict[str, list[int]] = {}
    for column, name in enumerate(header, start=1):
        if name:
            places.setdefault(name, []).append(column)
    repeats = [_positions(p) for p in places.values() if len(p) > 1]
    if repeats:
        also = "".join(f", and so do {r}" for r in repeats[1:])
        raise ExtractUnreadable(
            f"{repeats[0]} of the header have the same name{also}; name each column once"
        )
    if any(not h for h in header):
        position = [i + 1 for i, h in enumerate(header) if not h]
        raise ExtractUnreadable(f"the header has empty column names at position(s) {position}")
    return header


def _positions(positions: list[int]) -> str:
    """``columns 3 and 7``, ``columns 1, 4 and 9``."""
    *rest, last = positions
    return f"columns {', '.join(map(str, rest))} and {last}"


def cell_text(value: object, *, midnight_as_date: bool = True) -> str | None:
    """One typed cell (from Excel or Parquet) as the text a CSV would have held.

    Dates are ISO ``YYYY-MM-DD``; date-times ``YYYY-MM-DDTHH:MM:SS`` (with fractions or an
    offset only when present). Excel stores every date as a date-time, so with
    ``midnight_as_date`` a date-time at exactly midnight reads as a date. Whole floats lose their
    ``.0`` (Excel stores all numbers as floats; a ZIP code typed as a number also loses leading
    zeros, which only the agency's export can fix). Booleans are ``true``/``false``; blank text
    and NaN are empty (``None``).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if midnight_as_date and value.tzinfo is None and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if value.microsecond == 0 else "auto")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return cell_text(value.decode("utf-8"))
    return str(value)


def frames(header: list[str], rows: Iterable[Any], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """``rows`` as DataFrames (see :func:`frame`) of at most ``chunk_rows`` rows; refuses a file
    with no rows."""
    it = iter(rows)
    none_yet = True
    while batch := list(islice(it, chunk_rows)):
        none_yet = False
        # Hand the chunk over with no name left on it or on its rows, so neither is kept
        # while the caller works on the chunk.
        handover = [frame(header, batch)]
        del batch
        yield handover.pop()
    if none_yet:
        raise ExtractUnreadable("the file has a header but no rows")


def frame(header: list[str], rows: list[Row]) -> pd.DataFrame:
    """The DataFrame the hub validates: object dtype, ``str`` or ``None`` in every cell."""
    return pd.DataFrame(rows, columns=header, dtype=object)
