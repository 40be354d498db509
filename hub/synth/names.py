"""The word lists the generator draws from, shipped as ``hub/synth/data/*.txt``.

Each list is small (a few hundred names, seventy streets) and is read once per process. The
files are plain text so that a reviewer can see, and change, exactly what synthetic people are
called. Caveat: the lists are *plausible*, not representative; do not use them to estimate how
often a name occurs.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
#: Shipped with the hub (its linkage compares areas with ZIPs), read here as the city's map.
COMMUNITY_AREAS = Path(__file__).parent.parent / "data" / "community_areas.txt"

# Tags used in the name files (see the header of each file).
GENERAL, BLACK_AMERICAN, HISPANIC, EUROPEAN, ASIAN = "G", "B", "H", "P", "A"


def fold_accents(text: str) -> str:
    """``José Muñoz`` → ``Jose Munoz``: what a system without Unicode support stores."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_key(text: str) -> str:
    """The form names are looked up by: accents folded, lower case, outer spaces removed."""
    return fold_accents(text).strip().lower()


@dataclass(frozen=True)
class CommunityArea:
    """One community area of the synthetic city, with its zips, weight and approximate centre."""

    number: int
    name: str
    zips: tuple[str, ...]
    weight: float
    lat: float
    lon: float


@dataclass(frozen=True)
class NameBank:
    """Everything read from ``data/``; build it with :func:`name_bank`."""

    first_names: dict[tuple[str, str], tuple[str, ...]]
    """(sex ``M``/``F``, tag) → names."""
    surnames: dict[str, tuple[str, ...]]
    """tag → surnames."""
    nicknames: dict[str, tuple[str, ...]]
    """:func:`name_key` of a legal first name → its nicknames."""
    street_aliases: tuple[str, ...]
    streets: tuple[str, ...]
    community_areas: tuple[CommunityArea, ...]

    def nicknames_for(self, first_name: str) -> tuple[str, ...]:
        return self.nicknames.get(name_key(first_name), ())


def _lines(file_name: str | Path) -> list[str]:
    """The content lines of a file of :data:`DATA_DIR` (or of the path given)."""
    path = file_name if isinstance(file_name, Path) else DATA_DIR / file_name
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _tagged(file_name: str) -> dict[str, tuple[str, ...]]:
    by_tag: dict[str, list[str]] = {}
    for line in _lines(file_name):
        name, _, tag = line.rpartition(",")
        by_tag.setdefault(tag.strip(), []).append(name.strip())
    return {tag: tuple(names) for tag, names in by_tag.items()}


def _nicknames() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for line in _lines("nicknames.txt"):
        legal, _, rest = line.partition(":")
        table[name_key(legal)] = tuple(n.strip() for n in rest.split(",") if n.strip())
    return table


def _community_areas() -> tuple[CommunityArea, ...]:
    areas = []
    for line in _lines(COMMUNITY_AREAS):
        number, name, zips, weight, lat, lon = line.split("|")
        areas.append(
            CommunityArea(
                number=int(number),
                name=name,
                zips=tuple(zips.split()),
                weight=float(weight),
                lat=float(lat),
                lon=float(lon),
            )
        )
    return tuple(areas)


@cache
def name_bank() -> NameBank:
    """Read every list once per process (the files are part of the package)."""
    first: dict[tuple[str, str], tuple[str, ...]] = {}
    for sex, file_name in (("M", "first_names_male.txt"), ("F", "first_names_female.txt")):
        for tag, names in _tagged(file_name).items():
            first[(sex, tag)] = names
    return NameBank(
        first_names=first,
        surnames=_tagged("surnames.txt"),
        nicknames=_nicknames(),
        street_aliases=tuple(_lines("street_aliases.txt")),
        streets=tuple(_lines("streets.txt")),
        community_areas=_community_areas(),
    )
