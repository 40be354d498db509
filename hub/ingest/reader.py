"""Reading an extract into text columns, entirely in memory (the raw file never touches disk).

Every value comes back as ``str`` or ``None`` (an empty cell), so validation sees exactly what
the agency sent. Problems are reported as :class:`ExtractUnreadable` with line and column where
the parser gives them, never as a traceback.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

import pandas as pd

from hub.errors import UploadRejected


class ExtractUnreadable(UploadRejected):
    code = "extract_unreadable"


def decode(content: bytes) -> str:
    if not content.strip():
        raise ExtractUnreadable("the file is empty; export the extract again with its rows")
    nul = content.find(b"\x00")
    if nul >= 0:
        raise ExtractUnreadable(
            f"the file contains a NUL byte at offset {nul}; it is not a "
            "text CSV (if it is UTF-16, export it as UTF-8)"
        )
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ExtractUnreadable(
            f"the file is not UTF-8: byte {exc.start} (line {line}) cannot be decoded; "
            "export the extract as UTF-8"
        ) from None


def read_csv(content: bytes) -> pd.DataFrame:
    """Parse a CSV extract into a DataFrame of ``str``/``None`` values with the file's header."""
    text = decode(content)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ExtractUnreadable("the file has no header row") from None
    except csv.Error as exc:
        raise ExtractUnreadable(f"line 1: the header cannot be read: {exc}") from None
    header = [h.strip() for h in header]
    dupes = [h for h, n in Counter(header).items() if n > 1]
    if dupes:
        raise ExtractUnreadable(f"the header repeats column(s) {', '.join(dupes)}; name each once")
    if any(not h for h in header):
        position = [i + 1 for i, h in enumerate(header) if not h]
        raise ExtractUnreadable(f"the header has empty column names at position(s) {position}")
    rows: list[list[str | None]] = []
    width = len(header)
    try:
        for values in reader:
            if not values:
                continue
            if len(values) != width:
                raise ExtractUnreadable(
                    f"line {reader.line_num}: {len(values)} values where the header has "
                    f"{width} columns; check delimiters and quotes on that line"
                )
            rows.append([v if v.strip() else None for v in values])
    except csv.Error as exc:
        raise ExtractUnreadable(
            f"line {reader.line_num}: the CSV cannot be parsed: {exc}"
        ) from None
    if not rows:
        raise ExtractUnreadable("the file has a header but no rows")
    return pd.DataFrame(rows, columns=header, dtype=object)
