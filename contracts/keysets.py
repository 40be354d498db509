"""Public key sets shipped with the hub: the lists of values a dimension can take.

Release cells are built from these lists (and from declared ``values`` and bins), never from
the private data, so that the existence of a group is never revealed by a release.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

KEYSETS_DIR = Path(__file__).parent / "keysets"


@cache
def keyset(name: str) -> tuple[str, ...]:
    path = KEYSETS_DIR / f"{name}.txt"
    if not path.is_file():
        raise KeyError(f"no public key set named {name!r} (looked for {path})")
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
