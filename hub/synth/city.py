"""The shared state of one generation run: population, calendar, deaths and random streams.

Every stage (police, ED, CVI, referrals) draws from its own ``random.Random`` seeded with
``"<seed>/<stage>"``. String seeds are hashed with SHA-512 by :mod:`random`, so the streams do
not depend on ``PYTHONHASHSEED``, and changing one stage does not reshuffle the others.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from hub.synth.discrepancies import (
    RecordedIdentity,
    SourceProfile,
    SourceStyle,
    make_profile,
    render_identity,
)
from hub.synth.names import NameBank
from hub.synth.population import Calendar, Person, Window, age_on


@dataclass
class City:
    """One run's world. ``deaths`` maps a person's index to the time they were killed."""

    seed: int
    window: Window
    calendar: Calendar
    bank: NameBank
    people: list[Person]
    all_zips: tuple[str, ...]
    deaths: dict[int, dt.datetime] = field(default_factory=dict)
    _profiles: dict[tuple[str, int], SourceProfile] = field(default_factory=dict)

    def rng(self, stage: str) -> random.Random:
        return random.Random(f"{self.seed}/{stage}")

    def alive_on(self, person: Person, day: dt.date) -> bool:
        """True if ``person`` was not killed on or before ``day``."""
        death = self.deaths.get(person.index)
        return death is None or day < death.date()

    def last_day(self, person: Person) -> dt.date:
        """The last day an event about ``person`` (other than their death) may fall on."""
        death = self.deaths.get(person.index)
        if death is None:
            return self.window.end
        return min(self.window.end, death.date() - dt.timedelta(days=1))

    def identity(
        self,
        source: str,
        style: SourceStyle,
        person: Person,
        day: dt.date,
        rng: random.Random,
    ) -> RecordedIdentity:
        """How ``source`` records ``person`` on ``day`` (see :mod:`hub.synth.discrepancies`)."""
        key = (source, person.index)
        profile = self._profiles.get(key)
        if profile is None:
            profile_rng = random.Random(f"{self.seed}/{source}/profile/{person.index}")
            profile = make_profile(person, style, profile_rng)
            self._profiles[key] = profile
        return render_identity(person, style, profile, day, rng, self.bank, self.all_zips)


def dob_and_age(
    person: Person,
    recorded: dt.date | None,
    day: dt.date,
    low: int,
    high: int,
    rng: random.Random,
    age_known_without_dob: float,
) -> tuple[dt.date | None, int | None]:
    """The birth date and age a record holds on ``day``.

    The age is always computed from the *recorded* birth date, so the two agree on the row. A
    recorded date that would give an impossible age (outside the contract's ``[low, high]``,
    or a birth after the event) falls back to the true date, as a clerk would catch it. With no
    birth date the age is the true age (estimated or self-reported) with probability
    ``age_known_without_dob``, else unknown. A true age outside ``[low, high]`` (possible only
    with very long windows) is written as unknown, birth date included.
    """
    true_age = person.age_on(day)
    if not low <= true_age <= high:
        return None, None
    if recorded is not None:
        age = age_on(recorded, day)
        if recorded < day and low <= age <= high:
            return recorded, age
        return person.dob, true_age
    if rng.random() < age_known_without_dob:
        return None, true_age
    return None, None
