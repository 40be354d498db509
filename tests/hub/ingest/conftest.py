from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_sources import SOURCE_KINDS, MakeSource, SpoolLike

from hub.ingest.formats import ExtractSource


@pytest.fixture(params=SOURCE_KINDS)
def as_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeSource]:
    """The extract's bytes as the source kind under test: ``bytes``, a ``path`` on disk, or a
    ``file`` object without a descriptor, left at its end (as the upload spool's reader is).
    The reader must never close the caller's file object."""
    made: list[SpoolLike] = []
    paths = iter(range(1 << 30))

    def make(content: bytes) -> ExtractSource:
        if request.param == "bytes":
            return content
        path = tmp_path / f"extract-{next(paths)}"
        path.write_bytes(content)
        if request.param == "path":
            return path
        made.append(SpoolLike(content))
        return made[-1]

    yield make
    for handle in made:
        assert not handle.closed, "the reader closed the caller's file object"
        handle.close()
