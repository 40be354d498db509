"""The fast path for plain CSV: pyarrow's streaming reader, all columns as text.

pyarrow parses about ten times faster than the csv module, but it is more lenient about
quotes (it accepts ``"ab"c`` and silently runs an unclosed quote to the end of the file) and its
errors quote row contents. So it is used only where it cannot disagree with the csv module: a
file with no quote character at all. UTF-16 and Windows-1252 files are transcoded to UTF-8 as
they stream (``ReadOptions.encoding``). Any error it meets — a ragged line, a cell over
:data:`~hub.ingest.formats.base.MAX_CELL_CHARS`, a line longer than a block — raises
:class:`ArrowFallback` with the rows already delivered, and the caller resumes with the csv
module from there, which reports the problem with its line.

The file streams through in blocks of :data:`BLOCK_BYTES`, converted to Python text a group
of about :data:`GROUP_ROWS` rows at a time straight into the chunk being built, so memory holds
a few blocks plus one chunk. (pyarrow reads up to 32 blocks ahead in a background thread,
which is why blocks are small.)
"""

from __future__ import annotations

from collections.abc import Generator

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from hub.ingest.formats.base import MAX_CELL_CHARS
from hub.ingest.formats.grid import CellTooLong, ChunkBuilder
from hub.ingest.formats.source import Source
from hub.ingest.formats.text import CsvPlan

BLOCK_BYTES = 1 << 20
#: Rows converted together: one Python ``str`` is made per distinct value in a group.
GROUP_ROWS = 1 << 16
#: How pyarrow names each codec the scan can choose (it decodes other than UTF-8 in Python).
_ARROW_ENCODING = {"utf-8-sig": "utf8", "utf-16": "utf-16", "cp1252": "cp1252"}


class ArrowFallback(Exception):
    """pyarrow cannot go on; the csv module should resume after ``rows_done`` rows."""

    def __init__(self, rows_done: int) -> None:
        super().__init__(rows_done)
        self.rows_done = rows_done


def arrow_eligible(plan: CsvPlan, *, quoted: bool) -> bool:
    """Whether pyarrow reads the file exactly as the csv module would: no quote anywhere."""
    return not quoted and plan.encoding in _ARROW_ENCODING


def arrow_frames(
    source: Source, plan: CsvPlan, chunk_rows: int
) -> Generator[pd.DataFrame, None, int]:
    """DataFrames of ``chunk_rows`` rows (the last may be shorter) read by pyarrow; returns
    how many rows they held."""
    names = [f"c{i}" for i in range(len(plan.header))]
    builder = ChunkBuilder(
        plan.header, chunk_rows, max_chars=MAX_CELL_CHARS, expected_rows=plan.rows_hint
    )
    try:
        with source.arrow_input() as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=1,  # the header: one line, since the file holds no quotes
                    block_size=BLOCK_BYTES,
                    encoding=_ARROW_ENCODING[plan.encoding],
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=plan.delimiter, quote_char=False, ignore_empty_lines=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    check_utf8=False,  # the scan checked the encoding over the whole file
                ),
            )
            group: list[pa.RecordBatch] = []
            held = 0
            for batch in reader:
                group.append(batch)
                held += batch.num_rows
                if held >= min(GROUP_ROWS, builder.room):
                    batches, group, held = group, [], 0
                    yield from builder.add(pa.Table.from_batches(batches).columns)
                    del batches
            if group:
                yield from builder.add(pa.Table.from_batches(group).columns)
    except (pa.ArrowException, OSError, CellTooLong):
        raise ArrowFallback(builder.rows_out) from None
    yield from builder.finish()
    return builder.rows_out
