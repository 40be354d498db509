"""Police shooting and homicide victimizations (reference/domain.md A.2).

One row per *victimization*: a person shot twice appears twice, and the victims of one incident
share its ``case_number``, time and place. Only a person's last victimization can be fatal; the
fatal time is recorded in ``City.deaths`` so no later event is generated for them.

Realism reproduced: multi-victim incidents (about 12% of incidents), repeat victims (about 15%
of victims), ~5% of incident times defaulted to midnight, ``UNKNOWN`` gunshot flags and race,
juveniles, domestic-related rows (more often for women, mostly at a residence), officer-involved
shootings, unidentified (nameless) victims, and a free-text ``narrative`` that often names the
victim. Case numbers follow the Chicago RD style (two letters for the year, six digits).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from hub.synth.city import City, dob_and_age
from hub.synth.discrepancies import POLICE_STYLE
from hub.synth.population import (
    AIAN,
    BLACK,
    HISPANIC_BLACK,
    HISPANIC_WHITE,
    MULTI,
    POLICE,
    RACE_ASIAN,
    WHITE,
    Person,
    pick,
)
from hub.synth.schema import fmt_bool, fmt_coord, fmt_date, fmt_datetime, fmt_int

SHOOTING, NONGUN, ROBBERY = "SHOOTING", "NONGUN", "ROBBERY"
INCIDENT_KINDS = ((SHOOTING, 0.68), (NONGUN, 0.22), (ROBBERY, 0.10))
INCIDENT_SIZES = (1, 2, 3, 4)
INCIDENT_SIZE_WEIGHTS = (0.88, 0.09, 0.025, 0.005)
WEAPONS = {
    SHOOTING: (("12", 0.6), ("15", 0.2), ("11", 0.1), ("13", 0.04), ("14", 0.03), ("95", 0.03)),
    NONGUN: (("20", 0.45), ("30", 0.2), ("40", 0.3), ("95", 0.05)),
    ROBBERY: (("40", 0.5), ("12", 0.3), ("20", 0.15), ("99", 0.05)),
}
LOCATIONS = (
    ("STREET", 0.45),
    ("SIDEWALK", 0.15),
    ("RESIDENCE", 0.12),
    ("ALLEY", 0.08),
    ("VEHICLE", 0.08),
    ("PARKING_LOT", 0.06),
    ("SCHOOL", 0.01),
    ("OTHER", 0.05),
)
RACE_CODES = {
    BLACK: "BLK",
    WHITE: "WHI",
    HISPANIC_WHITE: "WWH",
    HISPANIC_BLACK: "WBH",
    RACE_ASIAN: "API",
    AIAN: "I",
    MULTI: "BLK",
}
# Two letters per year in the RD-number style (2024 → JH, 2025 → JJ; I and O are skipped).
_RD_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def rd_prefix(year: int) -> str:
    index = (year - 2024 + 8 * 24 + 7) % (24 * 24)
    return _RD_LETTERS[index // 24] + _RD_LETTERS[index % 24]


@dataclass
class Incident:
    number: int
    when: dt.datetime
    time_unknown: bool
    kind: str
    community_area: int
    location: str
    block_address: str
    lat: float | None
    lon: float | None
    weapon: str
    officer_involved: bool
    domestic: bool


@dataclass
class Victimization:
    person: Person
    incident: Incident
    victimization_type: str
    fatal: bool


def plan_police(city: City) -> list[Victimization]:
    """Incidents and their victims for every person whose entry agency is the police."""
    rng = city.rng("police")
    victims = [p for p in city.people if p.entry == POLICE]
    rng.shuffle(victims)
    slots: list[tuple[Person, Incident]] = []
    numbers = iter(range(1, 10**9))
    i = 0
    while i < len(victims):
        size = rng.choices(INCIDENT_SIZES, weights=INCIDENT_SIZE_WEIGHTS)[0]
        group = victims[i : i + size]
        i += size
        incident = _incident(rng, city, group[0], next(numbers))
        slots += [(p, incident) for p in group]
    for person in victims:
        roll = rng.random()
        repeats = 2 if roll < 0.03 else (1 if roll < 0.15 else 0)
        for _ in range(repeats):
            slots.append((person, _incident(rng, city, person, next(numbers))))

    by_person: dict[int, list[Incident]] = {}
    people: dict[int, Person] = {}
    for person, incident in slots:
        by_person.setdefault(person.index, []).append(incident)
        people[person.index] = person
    victimizations: list[Victimization] = []
    for index, incidents in by_person.items():
        incidents.sort(key=lambda inc: (inc.when, inc.number))
        for position, incident in enumerate(incidents):
            last = position == len(incidents) - 1
            vtype, fatal = _victimization_type(rng, incident.kind, last)
            victimizations.append(Victimization(people[index], incident, vtype, fatal))
            if fatal:
                city.deaths[index] = incident.when
    victimizations.sort(key=lambda v: (v.incident.when, v.incident.number, v.person.index))
    return victimizations


def _incident(rng: random.Random, city: City, person: Person, number: int) -> Incident:
    kind = pick(rng, INCIDENT_KINDS)
    when = city.calendar.moment(rng)
    home = person.residence_on(when.date()).community_area
    areas = city.bank.community_areas
    if home is not None and rng.random() < 0.6:
        area = areas[home - 1]
    else:
        area = rng.choices(areas, weights=[a.weight for a in areas])[0]
    domestic_rate = {SHOOTING: 0.03, NONGUN: 0.18, ROBBERY: 0.01}[kind]
    if person.sex == "F":
        domestic_rate *= 3
    domestic = rng.random() < domestic_rate
    location = "RESIDENCE" if domestic and rng.random() < 0.7 else pick(rng, LOCATIONS)
    house = rng.randint(1, 129) * 100 + rng.randint(0, 99)
    geocoded = rng.random() >= 0.03
    return Incident(
        number=number,
        when=when,
        time_unknown=rng.random() < 0.05,
        kind=kind,
        community_area=area.number,
        location=location,
        block_address=f"{house // 100:03d}XX {rng.choice(city.bank.streets)}",
        lat=round(area.lat + rng.uniform(-0.01, 0.01), 6) if geocoded else None,
        lon=round(area.lon + rng.uniform(-0.012, 0.012), 6) if geocoded else None,
        weapon=pick(rng, WEAPONS[kind]),
        officer_involved=kind == SHOOTING and rng.random() < 0.01,
        domestic=domestic,
    )


def _victimization_type(rng: random.Random, kind: str, last: bool) -> tuple[str, bool]:
    if kind == SHOOTING:
        if last and rng.random() < 0.13:
            return "FATAL_SHOOTING", True
        return "NON_FATAL_SHOOTING", False
    if kind == NONGUN:
        if last and rng.random() < 0.04:
            return "NON_SHOOTING_HOMICIDE", True
        return "AGG_BATTERY_NONGUN", False
    return "ROBBERY_INJURY", False


def police_rows(
    city: City, victimizations: list[Victimization]
) -> list[tuple[str, dict[str, str]]]:
    """``(person_id, row)`` pairs in incident order, ids assigned in that order."""
    rng = city.rng("police/rows")
    case_numbers: dict[int, str] = {}
    used: set[str] = set()
    per_year: dict[int, int] = {}
    rows: list[tuple[str, dict[str, str]]] = []
    for v in victimizations:
        inc, person = v.incident, v.person
        day = inc.when.date()
        if inc.number not in case_numbers:
            case_numbers[inc.number] = _case_number(rng, day.year, used)
        per_year[day.year] = per_year.get(day.year, 0) + 1
        ident = city.identity(POLICE, POLICE_STYLE, person, day, rng)
        unidentified = rng.random() < (0.03 if v.fatal else 0.003)
        first, last, middle = ident.first, ident.last, ident.middle_initial
        recorded_dob = ident.dob
        if unidentified:
            first, last, middle, recorded_dob = "", "", "", None
        dob, age = dob_and_age(person, recorded_dob, day, 0, 120, rng, 0.85)
        juvenile = (age if age is not None else person.age_on(day)) < 18
        race = RACE_CODES[person.race]
        roll = rng.random()
        if roll < 0.03:
            race = "UNKNOWN"
        elif roll < 0.08 and race == "WWH":
            race = "WHI"
        sex = "U" if rng.random() < 0.01 else person.sex
        gunshot = _gunshot_flag(rng, inc.kind)
        moment = inc.when.replace(hour=0, minute=0) if inc.time_unknown else inc.when
        rows.append(
            (
                person.person_id,
                {
                    "victimization_id": f"V{day.year:04d}-{per_year[day.year]:06d}",
                    "case_number": case_numbers[inc.number],
                    "incident_datetime": fmt_datetime(moment),
                    "victimization_type": v.victimization_type,
                    "gunshot_injury": gunshot,
                    "fatal": fmt_bool(v.fatal),
                    "weapon_code": "" if rng.random() < 0.03 else inc.weapon,
                    "location_description": "" if rng.random() < 0.02 else inc.location,
                    "block_address": inc.block_address,
                    "latitude": fmt_coord(inc.lat),
                    "longitude": fmt_coord(inc.lon),
                    "community_area": str(inc.community_area),
                    "victim_first_name": first,
                    "victim_middle_initial": middle,
                    "victim_last_name": last,
                    "victim_dob": fmt_date(dob),
                    "victim_age": fmt_int(age),
                    "victim_sex": sex,
                    "victim_race": race,
                    "victim_home_address": "" if unidentified else ident.address.upper(),
                    "victim_home_zip": "" if unidentified else ident.zip,
                    "juvenile_flag": fmt_bool(juvenile),
                    "domestic_related": fmt_bool(inc.domestic),
                    "officer_involved": ""
                    if rng.random() < 0.08
                    else fmt_bool(inc.officer_involved),
                    "narrative": _narrative(rng, v, first, last),
                },
            )
        )
    return rows


def _case_number(rng: random.Random, year: int, used: set[str]) -> str:
    prefix = rd_prefix(year)
    while True:
        number = f"{prefix}{rng.randint(100000, 999999)}"
        if number not in used:
            used.add(number)
            return number


def _gunshot_flag(rng: random.Random, kind: str) -> str:
    if rng.random() < 0.03:
        return "UNKNOWN"
    return "YES" if kind == SHOOTING else "NO"


_NARRATIVES = {
    SHOOTING: (
        "V1 STATES {pronoun} WAS STANDING ON THE {place} WHEN AN UNKNOWN OFFENDER FIRED SHOTS "
        "FROM A DARK COLORED VEHICLE.",
        "R/O RESPONDED TO A SHOTSPOTTER ALERT AND OBSERVED THE VICTIM WITH A GSW TO THE LEG.",
        "VICTIM WAS WALKING WHEN {pronoun} HEARD SHOTS AND FELT PAIN. VICTIM TRANSPORTED BY CFD.",
        "VICTIM REFUSED TO COOPERATE. NO FURTHER INFORMATION.",
        "MULTIPLE SHELL CASINGS RECOVERED ON SCENE. OFFENDER FLED ON FOOT.",
    ),
    NONGUN: (
        "VICTIM STATES {pronoun} WAS STRUCK WITH A BOTTLE DURING AN ARGUMENT.",
        "VICTIM WAS STABBED DURING A VERBAL ALTERCATION THAT BECAME PHYSICAL.",
        "VICTIM STATES KNOWN OFFENDER STRUCK {object} WITH A BAT.",
    ),
    ROBBERY: (
        "VICTIM STATES TWO OFFENDERS DEMANDED A PHONE AND STRUCK {object} WHEN {pronoun} REFUSED.",
        "VICTIM WAS PUSHED TO THE GROUND AND A WALLET TAKEN.",
    ),
}
_DOMESTIC_NARRATIVES = (
    "VICTIM STATES A PARTNER STRUCK {object} DURING AN ARGUMENT AT THE RESIDENCE.",
    "VICTIM AND OFFENDER SHARE A CHILD. ORDER OF PROTECTION IN PLACE.",
)


def _narrative(rng: random.Random, v: Victimization, first: str, last: str) -> str:
    """Free text in the RMS style. About a third of rows name the victim, which is what a
    privacy test looks for after ingest has dropped this column."""
    if rng.random() < 0.2:
        return ""
    pool = _DOMESTIC_NARRATIVES if v.incident.domestic else _NARRATIVES[v.incident.kind]
    female = v.person.sex == "F"
    place = v.incident.location if v.incident.location in ("STREET", "SIDEWALK") else "SIDEWALK"
    text = rng.choice(pool).format(
        pronoun="SHE" if female else "HE", object="HER" if female else "HIM", place=place
    )
    if first and last and rng.random() < 0.35:
        text = f"VICTIM {first} {last} ({'DECEASED' if v.fatal else 'INJURED'}). {text}"
    if v.fatal:
        text += " VICTIM PRONOUNCED DECEASED."
    return text
