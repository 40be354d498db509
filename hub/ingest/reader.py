"""Reading an extract into text columns; see :mod:`hub.ingest.formats` for the formats.

Kept so ``from hub.ingest.reader import read_csv, ExtractUnreadable`` goes on working; new code
opens extracts with :func:`open_extract` (bytes, a path or a file object) and reads
``.chunks()``.
"""

from __future__ import annotations

import pandas as pd

from hub.ingest.formats import (
    Extract,
    ExtractTooLarge,
    ExtractUnreadable,
    iter_extract,
    open_extract,
    read_extract,
)

__all__ = [
    "Extract",
    "ExtractTooLarge",
    "ExtractUnreadable",
    "iter_extract",
    "open_extract",
    "read_csv",
    "read_extract",
]


def read_csv(content: bytes) -> pd.DataFrame:
    """The old name for :func:`read_extract` (which reads CSV, XLSX and Parquet alike)."""
    return read_extract(content)
