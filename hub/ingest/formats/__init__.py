"""Reading an extract, in any format the hub accepts, into text columns, streamed from disk.

An extract is ``bytes``, a :class:`pathlib.Path`, or a readable, seekable binary file object
(the upload spool's reader); see :mod:`.source`. No reader holds the whole file: memory is
bounded by a block of bytes plus one chunk of rows. The format comes from the file's first
bytes, not its name:

=====================  =============================================
first bytes            format
=====================  =============================================
``PK\\x03\\x04``         XLSX (a zip holding ``xl/workbook.xml``)
``PAR1``               Parquet
``\\xD0\\xCF\\x11\\xE0``   old binary Excel (``.xls``): refused
anything else          CSV text (see :mod:`.encoding` for encodings)
=====================  =============================================

Every value comes back as ``str`` or ``None`` (an empty cell), in an ``object``-dtype
DataFrame with the file's header, so validation sees the same thing whatever the format.
Problems raise :class:`ExtractUnreadable` (an ``UploadRejected``, HTTP 422; a file over the
size limit raises its subclass :class:`ExtractTooLarge`, HTTP 413) with a sentence that names
the line, row or column and never a cell value.

Usage::

    extract = open_extract(path, dataset="police_victimizations", max_bytes=limit)
    extract.sha256, extract.size, extract.header, extract.notes    # known before any row
    for chunk in extract.chunks(100_000):
        ...                                                       # at most 100,000 rows each

    frame = read_extract(content)                                 # the whole extract at once
    for chunk in iter_extract(source, chunk_rows=100_000):        # open_extract + chunks
        ...

Module map: :mod:`.source` (bytes, paths, file objects), :mod:`.extract` (``open_extract``),
:mod:`.encoding` (the CSV scan), :mod:`.text` (csv module), :mod:`.arrowcsv` (pyarrow fast
path), :mod:`.grid` (text columns into frames), :mod:`.xlsx`, :mod:`.parquet`, :mod:`.base`
(errors, limits, cells to text).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from hub.ingest.formats.base import MAX_CELL_CHARS, ExtractTooLarge, ExtractUnreadable
from hub.ingest.formats.extract import Extract, ExtractFormat, detect_format, open_extract
from hub.ingest.formats.source import ExtractSource, ExtractStream

__all__ = [
    "MAX_CELL_CHARS",
    "Extract",
    "ExtractFormat",
    "ExtractSource",
    "ExtractStream",
    "ExtractTooLarge",
    "ExtractUnreadable",
    "detect_format",
    "iter_extract",
    "open_extract",
    "read_extract",
]


_READ_CHUNK_ROWS = 100_000


def read_extract(
    content: ExtractSource,
    *,
    dataset: str | None = None,
    allow_cp1252: bool = True,
) -> pd.DataFrame:
    """The whole extract as a DataFrame of ``str``/``None`` values with the file's header.

    ``content`` is bytes, a path or a file object; the format comes from its bytes.
    ``dataset`` picks the workbook sheet of that name when there is one.
    ``allow_cp1252=False`` refuses Windows-1252 text instead of decoding it. This holds every
    row at once; prefer :func:`open_extract` for large files.
    """
    extract = open_extract(content, dataset=dataset, allow_cp1252=allow_cp1252)
    # Built in chunks and joined: faster than one huge conversion.
    chunks = list(extract.chunks(_READ_CHUNK_ROWS))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def iter_extract(
    source: ExtractSource,
    chunk_rows: int = 100_000,
    *,
    dataset: str | None = None,
    allow_cp1252: bool = True,
    max_bytes: int | None = None,
) -> Iterator[pd.DataFrame]:
    """The extract as DataFrames of at most ``chunk_rows`` rows, each with the header:
    ``open_extract(source, ...).chunks(chunk_rows)``, opened when the first chunk is asked for.

    Errors raise when the chunk holding them is reached, so a caller must treat the upload as
    failed (and roll back) if any chunk raises.
    """
    extract = open_extract(source, dataset=dataset, allow_cp1252=allow_cp1252, max_bytes=max_bytes)
    yield from extract.chunks(chunk_rows)
