"""The fast path for plain CSV: pyarrow's streaming reader, all columns as text.

pyarrow parses about ten times faster than the csv module, but it is more lenient about
quotes (it accepts ``"ab"c`` and silently runs an unclosed quote to the end of the file) and its
errors quote row contents. So it is used only where it cannot disagree with the csv module: a
UTF-8 file with no quote character at all. Any error it meets — a ragged line, a cell over
:data:`~hub.ingest.formats.base.MAX_CELL_CHARS`, a line longer than a block — raises
:class:`ArrowFallback` with the rows already delivered, and the caller resumes with the csv
module from there, which reports the problem with its line.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from hub.ingest.formats.base import MAX_CELL_CHARS
from hub.ingest.formats.text import CsvPlan

BLOCK_BYTES = 16 << 20


class ArrowFallback(Exception):
    """pyarrow cannot go on; the csv module should resume after ``rows_done`` rows."""

    def __init__(self, rows_done: int) -> None:
        super().__init__(rows_done)
        self.rows_done = rows_done


def arrow_eligible(content: bytes, plan: CsvPlan) -> bool:
    """Whether pyarrow reads ``content`` exactly as the csv module would."""
    return plan.encoding == "utf-8-sig" and b'"' not in content


def _body_start(content: bytes) -> int:
    """Offset of the first byte after the header line (which holds no quotes)."""
    cr, lf = content.find(b"\r"), content.find(b"\n")
    ends = [i for i in (cr, lf) if i >= 0]
    if not ends:
        return len(content)
    end = min(ends)
    return end + 2 if content[end : end + 2] == b"\r\n" else end + 1


def arrow_frames(content: bytes, plan: CsvPlan, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """DataFrames of ``chunk_rows`` rows (the last may be shorter) read by pyarrow."""
    width = len(plan.header)
    names = [f"c{i}" for i in range(width)]
    body = pa.BufferReader(memoryview(content)[_body_start(content) :])
    done = 0
    try:
        reader = pacsv.open_csv(
            body,
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter=plan.delimiter, quote_char=False, ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                check_utf8=False,  # the whole file was checked as UTF-8 already
            ),
        )
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in reader:
            for column in batch.columns:
                longest = pc.max(pc.utf8_length(column)).as_py()
                if longest is not None and longest > MAX_CELL_CHARS:
                    raise ArrowFallback(done)
            pending.append(batch)
            held += batch.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, chunk_rows), plan.header)
                done += chunk_rows
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield _frame(pa.Table.from_batches(pending), plan.header)
    except (pa.ArrowException, OSError):
        raise ArrowFallback(done) from None


def text_frame(header: list[str], rows: list[list[str]]) -> pd.DataFrame:
    """Rows parsed by the csv module as the same frame pyarrow's rows give.

    The parsed strings are kept (one 2-D object block, no copy); only the blank test runs in
    pyarrow, so blank means exactly what it means on the fast path.
    """
    grid = np.empty((len(rows), len(header)), dtype=object)
    grid[:] = rows
    for j in range(len(header)):
        column = grid[:, j]
        blank = pc.equal(pc.utf8_trim_whitespace(pa.array(column, pa.string())), "")
        column[blank.to_numpy(zero_copy_only=False)] = None
    return pd.DataFrame(grid, columns=header, dtype=object, copy=False)


def _frame(table: pa.Table, header: list[str]) -> pd.DataFrame:
    """Blank cells to ``None``; every column an object array of ``str``/``None``."""
    blank = pa.scalar(None, pa.string())
    columns: dict[str, np.ndarray] = {}
    for name, column in zip(header, table.columns, strict=True):
        empty = pc.equal(pc.utf8_trim_whitespace(column), "")
        text = pc.if_else(empty, blank, column)
        parts = [_objects(block) for block in text.chunks]
        columns[name] = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    return pd.DataFrame(columns, columns=header, dtype=object)


def _objects(block: pa.Array) -> np.ndarray:
    """The block as an object array, making one Python ``str`` per distinct value.

    Extracts repeat most values (codes, flags, dates); sharing one object per distinct value
    makes the frame several times smaller and faster to build than one object per cell.
    """
    encoded = pc.dictionary_encode(block)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    lookup = np.empty(len(distinct) + 1, dtype=object)
    lookup[:-1] = distinct
    lookup[-1] = None
    positions = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False)
    result: np.ndarray = lookup[positions]
    return result
