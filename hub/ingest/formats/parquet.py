"""Parquet extracts, read with pyarrow one record batch at a time from a stream of the file.

Text columns go to the frame as they are; columns of any other flat type become text as
:func:`~hub.ingest.formats.base.cell_text` describes; a timestamp column keeps its time even at
midnight (unlike Excel, Parquet says which columns are dates). Nested columns (lists, structs,
maps) are refused by name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hub.ingest.formats.base import ExtractUnreadable, cell_text, check_header
from hub.ingest.formats.grid import ChunkBuilder
from hub.ingest.formats.source import Source

_DAMAGED = "the Parquet file cannot be read: it is damaged or cut short; export it again"
_BATCH_ROWS = 65_536


def _open(stream: pa.NativeFile) -> tuple[pq.ParquetFile, list[str]]:
    try:
        parquet = pq.ParquetFile(stream)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError):
        raise ExtractUnreadable(_DAMAGED) from None
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise ExtractUnreadable(
            f"column(s) {', '.join(nested)} hold nested values (lists or structs); flatten "
            "them to one value per cell and export again"
        )
    return parquet, check_header(schema.names)


def parquet_header(source: Source) -> list[str]:
    """The header: the schema's column names, checked."""
    with source.arrow_input() as stream:
        return _open(stream)[1]


def parquet_frames(source: Source, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The rows as frames of ``chunk_rows`` rows; refuses a file with none."""
    done = 0
    with source.arrow_input() as stream:
        parquet, header = _open(stream)
        builder = ChunkBuilder(header, chunk_rows, expected_rows=parquet.metadata.num_rows)
        batches = parquet.iter_batches(batch_size=_BATCH_ROWS)
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    break
                columns = [_column_text(c) for c in batch.columns]
            except (pa.ArrowException, OSError):
                raise ExtractUnreadable(
                    f"{_DAMAGED} (the error comes after row {done:,})"
                ) from None
            except UnicodeDecodeError:
                raise ExtractUnreadable(
                    f"a binary column after row {done:,} holds bytes that are not UTF-8 text"
                ) from None
            done += batch.num_rows
            del batch
            yield from builder.add(columns)
    yield from builder.finish()
    if builder.rows_out == 0:
        raise ExtractUnreadable("the file has a header but no rows")


def _column_text(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _column_text(column.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    keep_midnight = pa.types.is_timestamp(kind)
    values = [cell_text(v, midnight_as_date=not keep_midnight) for v in column.to_pylist()]
    return pa.array(values, pa.string())
