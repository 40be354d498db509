"""Parquet extracts, read with pyarrow from memory one record batch at a time.

Columns of any flat type become text as :func:`~hub.ingest.formats.base.cell_text` describes;
a timestamp column keeps its time even at midnight (unlike Excel, Parquet says which columns
are dates). Nested columns (lists, structs, maps) are refused by name.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from hub.ingest.formats.base import ExtractUnreadable, Row, cell_text, check_header

_DAMAGED = "the Parquet file cannot be read: it is damaged or cut short; export it again"


def _column_text(column: pa.Array) -> list[str | None]:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [v if v is not None and v.strip() else None for v in column.to_pylist()]
    keep_midnight = pa.types.is_timestamp(kind)
    return [cell_text(v, midnight_as_date=not keep_midnight) for v in column.to_pylist()]


def iter_parquet(content: bytes, *, batch_rows: int = 65_536) -> tuple[list[str], Iterator[Row]]:
    """The header (the schema's column names, read now) and the rows (read lazily)."""
    try:
        parquet = pq.ParquetFile(io.BytesIO(content))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError):
        raise ExtractUnreadable(_DAMAGED) from None
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise ExtractUnreadable(
            f"column(s) {', '.join(nested)} hold nested values (lists or structs); flatten "
            "them to one value per cell and export again"
        )
    header = check_header(schema.names)
    return header, _rows(parquet, batch_rows)


def _rows(parquet: pq.ParquetFile, batch_rows: int) -> Iterator[Row]:
    done = 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows):
            columns = [_column_text(c) for c in batch.columns]
            for row in zip(*columns, strict=True):
                yield list(row)
            done += batch.num_rows
    except (pa.ArrowException, OSError):
        raise ExtractUnreadable(f"{_DAMAGED} (the error comes after row {done:,})") from None
    except UnicodeDecodeError:
        raise ExtractUnreadable(
            f"a binary column after row {done:,} holds bytes that are not UTF-8 text"
        ) from None
