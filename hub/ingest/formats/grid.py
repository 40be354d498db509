"""Text columns (pyarrow arrays) into the frames the hub validates, one chunk at a time.

Every CSV and Parquet reader delivers its rows as pyarrow string columns, a record batch at a
time; :class:`ChunkBuilder` writes them into one preallocated 2-D object array per chunk and
hands out the chunk as a DataFrame without copying it. So a chunk costs its cells' pointers plus
one Python ``str`` per distinct value in each batch (extracts repeat most values: codes, flags,
dates), and no reader ever holds a second copy of the rows.

Blank means the same on every path: a cell that is empty or only whitespace (as pyarrow's
``utf8_trim_whitespace`` sees it) becomes ``None``, as does a null.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class CellTooLong(Exception):
    """A cell is longer than the limit the caller set (the rows were not added)."""


def texts(
    column: pa.Array | pa.ChunkedArray, out: np.ndarray, *, max_chars: int | None = None
) -> None:
    """Write ``column`` (pyarrow text) into ``out`` as ``str``/``None`` objects.

    One ``str`` is made per distinct value, and the blank test runs on the distinct values
    only. Raises :class:`CellTooLong`, before writing, for a value over ``max_chars``
    characters.
    """
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        pieces = encoded.chunks
        if not pieces:
            return
        # pyarrow gives every piece the final dictionary; unify in case a version does not.
        if any(len(p.dictionary) != len(pieces[-1].dictionary) for p in pieces):
            pieces = encoded.unify_dictionaries().chunks
        distinct = pieces[-1].dictionary
        indices = [p.indices for p in pieces]
    else:
        distinct, indices = encoded.dictionary, [encoded.indices]
    if max_chars is not None and len(distinct):
        # Bytes bound characters from above, and are cheaper to measure.
        longest = pc.max(pc.binary_length(distinct)).as_py()
        if longest > max_chars and pc.max(pc.utf8_length(distinct)).as_py() > max_chars:
            raise CellTooLong
    lookup = distinct.to_numpy(zero_copy_only=False)  # a new object array, writable
    lookup[pc.equal(pc.utf8_trim_whitespace(distinct), "").to_numpy(zero_copy_only=False)] = None
    if any(piece.null_count for piece in indices):
        lookup = np.concatenate([lookup, np.full(1, None, dtype=object)])  # nulls point here
        indices = [piece.fill_null(len(distinct)) for piece in indices]
    at = 0
    for piece in indices:
        end = at + len(piece)
        np.take(lookup, piece.to_numpy(zero_copy_only=False), out=out[at:end], mode="clip")
        at = end


class ChunkBuilder:
    """Rows added as text columns come out as DataFrames of ``chunk_rows`` rows.

    Usage::

        builder = ChunkBuilder(header, chunk_rows)
        for batch in batches:
            yield from builder.add(batch.columns)
        yield from builder.finish()

    Each frame has ``object`` dtype, the header as its columns, and a ``RangeIndex`` from 0.
    The builder keeps no reference to a frame it has handed out; callers should pass frames on
    with ``yield from`` (a loop variable would keep each frame until the next is built). Its
    first chunk is sized for ``expected_rows`` (a guess is fine) and grows if need be, so a
    small file does not cost a full chunk's worth of memory. ``chunk_rows`` is at least 1
    (:meth:`~hub.ingest.formats.extract.Extract.chunks` checks it).
    """

    def __init__(
        self,
        header: list[str],
        chunk_rows: int,
        *,
        max_chars: int | None = None,
        expected_rows: int | None = None,
    ):
        self.header = header
        self.chunk_rows = chunk_rows
        self.max_chars = max_chars
        self.rows_out = 0
        first = _FIRST_CAPACITY if expected_rows is None else max(expected_rows, 1024)
        self._grid = self._empty(min(chunk_rows, first))
        self._filled = 0

    def add(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> Iterator[pd.DataFrame]:
        """Add rows (one array per header column, all the same length); yields every chunk
        they complete. A :class:`CellTooLong` leaves the builder unusable."""
        if len(columns) != len(self.header):
            raise ValueError(f"{len(columns)} columns for a header of {len(self.header)}")
        count = len(columns[0]) if columns else 0
        offset = 0
        while offset < count:
            take = min(count - offset, self.chunk_rows - self._filled)
            end = self._filled + take
            if end > self._grid.shape[1]:
                self._grow(end)
            for j, column in enumerate(columns):
                # No local name for the slice: a view kept past the chunk would keep the
                # whole chunk alive while the next one is built.
                texts(
                    column.slice(offset, take),
                    self._grid[j, self._filled : end],
                    max_chars=self.max_chars,
                )
            self._filled, offset = end, offset + take
            if self._filled == self.chunk_rows:
                yield self._take()
                self._grid = self._empty(self.chunk_rows)

    @property
    def room(self) -> int:
        """Rows still to add before the chunk being built is complete."""
        return self.chunk_rows - self._filled

    def finish(self) -> Iterator[pd.DataFrame]:
        """The last, shorter chunk, if rows are left."""
        if self._filled:
            yield self._take()

    def _empty(self, capacity: int) -> np.ndarray:
        # Column-major: each column's cells are contiguous, as pandas stores them.
        return np.empty((len(self.header), capacity), dtype=object)

    def _grow(self, needed: int) -> None:
        capacity = self._grid.shape[1]
        while capacity < needed:
            capacity *= 2
        grown = self._empty(min(capacity, self.chunk_rows))
        grown[:, : self._filled] = self._grid[:, : self._filled]
        self._grid = grown

    def _take(self) -> pd.DataFrame:
        grid, filled = self._grid, self._filled
        self._grid, self._filled = _NO_GRID, 0
        self.rows_out += filled
        cells = grid if filled == grid.shape[1] else grid[:, :filled]
        return pd.DataFrame(cells.T, columns=self.header, dtype=object, copy=False)


_FIRST_CAPACITY = 1 << 16
_NO_GRID = np.empty((0, 0), dtype=object)
