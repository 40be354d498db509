"""The synthetic population: one list of true identities that every agency extract draws from.

A :class:`Person` is the ground truth (legal name, date of birth, sex, race, where they live and
when they moved). Agencies never see it directly: each record goes through
:mod:`hub.synth.discrepancies`, which writes the identity down the way that agency would.

The population is violence-involved, not the general public: mostly young, mostly male, mostly
Black and Latino, concentrated in a few community areas (reference/domain.md A.2: Chicago 2020
victims were 79% Black, 15% Latinx, 84% male). Ages are skewed to 14–45 with a thin tail; nobody
is younger than 12 at the start of the window, so CVI's age floor of 10 always holds.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass

from hub.synth.names import (
    ASIAN,
    BLACK_AMERICAN,
    EUROPEAN,
    GENERAL,
    HISPANIC,
    CommunityArea,
    NameBank,
)

# True race/ethnicity of a person; each agency maps it to its own code list.
BLACK, WHITE, HISPANIC_WHITE, HISPANIC_BLACK = "BLACK", "WHITE", "HISPANIC_WHITE", "HISPANIC_BLACK"
RACE_ASIAN, AIAN, MULTI = "ASIAN", "AIAN", "MULTI"
RACE_SHARES: tuple[tuple[str, float], ...] = (
    (BLACK, 0.70),
    (HISPANIC_WHITE, 0.14),
    (HISPANIC_BLACK, 0.02),
    (WHITE, 0.08),
    (RACE_ASIAN, 0.02),
    (AIAN, 0.005),
    (MULTI, 0.035),
)
SEX_SHARES: tuple[tuple[str, float], ...] = (("M", 0.79), ("F", 0.20), ("X", 0.01))

# Which name pools a person's names come from, by race.
FIRST_NAME_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    BLACK: ((BLACK_AMERICAN, 0.55), (GENERAL, 0.43), (HISPANIC, 0.02)),
    HISPANIC_WHITE: ((HISPANIC, 0.65), (GENERAL, 0.35)),
    HISPANIC_BLACK: ((HISPANIC, 0.5), (GENERAL, 0.3), (BLACK_AMERICAN, 0.2)),
    WHITE: ((GENERAL, 0.9), (BLACK_AMERICAN, 0.05), (HISPANIC, 0.05)),
    RACE_ASIAN: ((GENERAL, 1.0),),
    AIAN: ((GENERAL, 0.8), (BLACK_AMERICAN, 0.2)),
    MULTI: ((GENERAL, 0.5), (BLACK_AMERICAN, 0.3), (HISPANIC, 0.2)),
}
SURNAME_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    BLACK: ((BLACK_AMERICAN, 0.55), (GENERAL, 0.43), (HISPANIC, 0.02)),
    HISPANIC_WHITE: ((HISPANIC, 0.92), (GENERAL, 0.08)),
    HISPANIC_BLACK: ((HISPANIC, 0.85), (GENERAL, 0.15)),
    WHITE: ((GENERAL, 0.6), (EUROPEAN, 0.3), (HISPANIC, 0.05), (BLACK_AMERICAN, 0.05)),
    RACE_ASIAN: ((ASIAN, 0.8), (GENERAL, 0.2)),
    AIAN: ((GENERAL, 0.7), (BLACK_AMERICAN, 0.3)),
    MULTI: ((GENERAL, 0.5), (BLACK_AMERICAN, 0.3), (HISPANIC, 0.2)),
}
SUFFIXES: tuple[tuple[str, float], ...] = (("Jr", 0.7), ("III", 0.15), ("II", 0.1), ("Sr", 0.05))

# Which agency first brings a person into the data. Cascades then add records at other
# agencies (a shooting victim's ED visit, an ED patient's CVI enrollment, ...).
POLICE, ED, CVI, REFERRAL = "police", "ed", "cvi", "referral"
ENTRY_SHARES: tuple[tuple[str, float], ...] = (
    (POLICE, 0.45),
    (ED, 0.30),
    (CVI, 0.15),
    (REFERRAL, 0.10),
)

# Suburban zips just outside the city that a person may move to (no community area).
SUBURBAN_ZIPS = ("60707", "60803", "60805", "60827")
MOVE_RATE = 0.18
HOMELESS_RATE = 0.015


def _age_weight(age: int) -> float:
    """Relative frequency of an age at the start of the window: peak 18–24, thin tail to 75."""
    if age < 14:
        return 1.0
    if age < 18:
        return 4.0
    if age < 25:
        return 7.0
    if age < 35:
        return 4.5
    if age < 46:
        return 2.0
    if age < 61:
        return 0.5
    return 0.15


AGES = tuple(range(12, 76))
AGE_WEIGHTS = tuple(_age_weight(a) for a in AGES)
# Violence by hour of day: a night peak, a morning trough.
HOUR_WEIGHTS = (
    8,
    7,
    6,
    4,
    3,
    2,
    1.5,
    1.5,
    1.5,
    2,
    2,
    2.5,
    3,
    3,
    3.5,
    4,
    4.5,
    5,
    5.5,
    6,
    7,
    8,
    8.5,
    8.5,
)


def pick(rng: random.Random, shares: Sequence[tuple[str, float]]) -> str:
    """One value from ``(value, weight)`` pairs."""
    total = sum(w for _, w in shares)
    x = rng.random() * total
    for value, weight in shares:
        x -= weight
        if x < 0:
            return value
    return shares[-1][0]


def age_on(dob: dt.date, day: dt.date) -> int:
    """Completed years from ``dob`` to ``day`` (what an agency system computes)."""
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


@dataclass(frozen=True)
class Window:
    """The inclusive date range events fall in: ``months`` calendar months ending at ``end``."""

    start: dt.date
    end: dt.date

    @classmethod
    def ending(cls, end: dt.date, months: int) -> Window:
        if months < 1:
            raise ValueError(f"months must be at least 1, got {months}")
        index = end.year * 12 + (end.month - 1) - (months - 1)
        return cls(dt.date(index // 12, index % 12 + 1, 1), end)

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class Calendar:
    """Draws event days and times inside a window: a July peak and a weekend bump.

    Built once per run (it precomputes one cumulative weight per day), then each draw is a
    bisection, so drawing stays cheap for large populations.
    """

    def __init__(self, window: Window) -> None:
        self.window = window
        self._days: list[dt.date] = []
        self._cum: list[float] = []
        total = 0.0
        day = window.start
        one = dt.timedelta(days=1)
        while day <= window.end:
            season = 1.0 + 0.35 * _cos_month(day.month)
            total += season * (1.2 if day.weekday() >= 5 else 1.0)
            self._days.append(day)
            self._cum.append(total)
            day += one

    def day(self, rng: random.Random) -> dt.date:
        return rng.choices(self._days, cum_weights=self._cum)[0]

    def day_between(self, rng: random.Random, lo: dt.date, hi: dt.date) -> dt.date:
        """A uniform day in ``[lo, hi]`` clipped to the window (``lo`` if the range is empty)."""
        lo, hi = max(lo, self.window.start), min(hi, self.window.end)
        if hi <= lo:
            return lo
        return lo + dt.timedelta(days=rng.randint(0, (hi - lo).days))

    def moment(self, rng: random.Random, day: dt.date | None = None) -> dt.datetime:
        """A time of day weighted to nights; seconds are zero, as most systems record minutes."""
        day = day or self.day(rng)
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        return dt.datetime(day.year, day.month, day.day, hour, rng.randint(0, 59))


def _cos_month(month: int) -> float:
    # cos(2π (month - 7) / 12) without importing math for twelve values.
    return (1.0, 0.866, 0.5, 0.0, -0.5, -0.866, -1.0, -0.866, -0.5, 0.0, 0.5, 0.866)[
        (month - 7) % 12
    ]


@dataclass(frozen=True)
class Residence:
    """Where a person lives from ``since`` (``None``: since before the window)."""

    since: dt.date | None
    community_area: int | None
    """``None`` for a suburban address outside the city."""
    zip: str
    address: str
    """``3418 W Madison St`` or ``HOMELESS``."""
    lat: float
    lon: float


@dataclass(frozen=True)
class Person:
    """A true identity. ``second_last`` is a second surname (``García López``), ``suffix`` is
    ``Jr``/``Sr``/``II``/``III``; both are often empty."""

    index: int
    person_id: str
    sex: str
    race: str
    first: str
    middle: str
    last: str
    second_last: str
    suffix: str
    dob: dt.date
    alias: str
    residences: tuple[Residence, ...]
    entry: str

    def residence_on(self, day: dt.date) -> Residence:
        current = self.residences[0]
        for residence in self.residences[1:]:
            if residence.since is not None and residence.since <= day:
                current = residence
        return current

    def previous_residence(self, day: dt.date) -> Residence | None:
        """The address before the one current on ``day`` (what a stale record still holds)."""
        current = self.residence_on(day)
        position = self.residences.index(current)
        return self.residences[position - 1] if position else None

    def age_on(self, day: dt.date) -> int:
        return age_on(self.dob, day)


def street_title(street: str) -> str:
    """``W 63RD ST`` → ``W 63rd St``: how a case-management system writes a street."""
    words = []
    for word in street.split():
        if len(word) == 1:
            words.append(word)
        elif word[0].isdigit():
            words.append(word.lower())
        else:
            words.append(word.capitalize())
    return " ".join(words)


def _residence(
    rng: random.Random, bank: NameBank, area: CommunityArea, since: dt.date | None
) -> Residence:
    zip_code = area.zips[0] if rng.random() < 0.7 else rng.choice(area.zips)
    address = "HOMELESS"
    if rng.random() >= HOMELESS_RATE:
        number = rng.randint(1, 129) * 100 + rng.randint(0, 99)
        address = f"{number} {street_title(rng.choice(bank.streets))}"
    return Residence(
        since=since,
        community_area=area.number,
        zip=zip_code,
        address=address,
        lat=round(area.lat + rng.uniform(-0.01, 0.01), 6),
        lon=round(area.lon + rng.uniform(-0.012, 0.012), 6),
    )


def _moved(
    rng: random.Random, bank: NameBank, first: Residence, since: dt.date, weights: list[float]
) -> Residence:
    areas = bank.community_areas
    if rng.random() < 0.12:
        zip_code = rng.choice(SUBURBAN_ZIPS)
        street = street_title(rng.choice(bank.streets))
        return Residence(
            since, None, zip_code, f"{rng.randint(1, 99) * 100} {street}", 41.72, -87.80
        )
    for _ in range(20):
        area = rng.choices(areas, weights=weights)[0]
        moved = _residence(rng, bank, area, since)
        if moved.zip != first.zip:
            return moved
    # Every draw landed in the same zip (only possible with a tiny area list): go suburban.
    return Residence(since, None, SUBURBAN_ZIPS[0], "100 W Example St", 41.72, -87.80)


def _alias(rng: random.Random, bank: NameBank, first: str) -> str:
    roll = rng.random()
    if roll < 0.55:
        return ""
    if roll < 0.8:
        return rng.choice(bank.street_aliases)
    short = rng.choice(bank.nicknames_for(first) or (first,))
    return f"{'Lil' if rng.random() < 0.7 else 'Big'} {short}"


def make_population(count: int, rng: random.Random, window: Window, bank: NameBank) -> list[Person]:
    """``count`` people, each with one entry agency. Deterministic for a given ``rng`` state."""
    areas = bank.community_areas
    weights = [a.weight for a in areas]
    people: list[Person] = []
    for index in range(count):
        sex = pick(rng, SEX_SHARES)
        race = pick(rng, RACE_SHARES)
        name_sex = sex if sex != "X" else rng.choice(("M", "F"))
        first = _first_name(rng, bank, name_sex, race)
        middle = "" if rng.random() < 0.2 else _first_name(rng, bank, name_sex, race)
        if middle == first:
            middle = ""
        last = _surname(rng, bank, race)
        hispanic = race in (HISPANIC_WHITE, HISPANIC_BLACK)
        second_rate = 0.25 if hispanic else (0.05 if sex == "F" else 0.01)
        second_last = ""
        if rng.random() < second_rate:
            second_last = _surname(rng, bank, race)
            if second_last == last:
                second_last = ""
        suffix = pick(rng, SUFFIXES) if sex == "M" and rng.random() < 0.05 else ""
        age = rng.choices(AGES, weights=AGE_WEIGHTS)[0]
        # A birthday that makes the person exactly ``age`` on the first day of the window.
        latest = window.start.replace(year=window.start.year - age)
        earliest = window.start.replace(year=window.start.year - age - 1) + dt.timedelta(days=1)
        dob = earliest + dt.timedelta(days=rng.randint(0, (latest - earliest).days))
        home = _residence(rng, bank, rng.choices(areas, weights=weights)[0], None)
        residences: tuple[Residence, ...] = (home,)
        if rng.random() < MOVE_RATE and window.days > 90:
            since = window.start + dt.timedelta(days=rng.randint(30, window.days - 30))
            residences = (home, _moved(rng, bank, home, since, weights))
        people.append(
            Person(
                index=index,
                person_id=f"person-{index + 1:06d}",
                sex=sex,
                race=race,
                first=first,
                middle=middle,
                last=last,
                second_last=second_last,
                suffix=suffix,
                dob=dob,
                alias=_alias(rng, bank, first),
                residences=residences,
                entry=pick(rng, ENTRY_SHARES),
            )
        )
    return people


def _first_name(rng: random.Random, bank: NameBank, sex: str, race: str) -> str:
    tag = pick(rng, FIRST_NAME_POOLS[race])
    return rng.choice(bank.first_names.get((sex, tag)) or bank.first_names[(sex, GENERAL)])


def _surname(rng: random.Random, bank: NameBank, race: str) -> str:
    tag = pick(rng, SURNAME_POOLS[race])
    return rng.choice(bank.surnames.get(tag) or bank.surnames[GENERAL])
