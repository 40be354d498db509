"""Community violence-intervention enrollments (reference/domain.md A.5).

One row per enrollment. People enroll:

* after an ED visit where the hospital referred them to its violence-intervention program
  (about 45% of those referred; ``referral_source`` HOSPITAL, mostly ``HVIP_LINKED``);
* after, or sometimes months before, a police-recorded victimization (outreach workers reach
  victims; a participant can still be shot, which outcome measures must see);
* directly, for people whose entry agency is CVI (outreach, probation, algorithm, school...).

About 8% re-enroll after leaving and get a *new* ``participant_id``, a within-source duplicate
that dedup has to catch. Birth dates are missing for about 20% and are sometimes a 1 January
placeholder; names are often nicknames and the ``alias`` column holds street names.
``consent_to_share`` is NONE for ~12% and AGGREGATE_ONLY for ~20% (the agreement's row rules).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from hub.synth.city import City, dob_and_age
from hub.synth.discrepancies import CVI_STYLE
from hub.synth.hospital import EdVisit
from hub.synth.police import Victimization
from hub.synth.population import (
    AIAN,
    BLACK,
    CVI,
    HISPANIC_BLACK,
    HISPANIC_WHITE,
    MULTI,
    RACE_ASIAN,
    WHITE,
    Person,
    pick,
)
from hub.synth.schema import fmt_date, fmt_int

RACE_CODES = {
    BLACK: "BLACK",
    WHITE: "WHITE",
    HISPANIC_WHITE: "LATINO",
    HISPANIC_BLACK: "LATINO",
    RACE_ASIAN: "ASIAN",
    AIAN: "OTHER",
    MULTI: "OTHER",
}
DIRECT_SOURCES = (
    ("OUTREACH", 0.35),
    ("ALGORITHM", 0.1),
    ("PROBATION_PAROLE", 0.15),
    ("SCHOOL", 0.08),
    ("FAMILY", 0.1),
    ("SELF", 0.12),
    ("COURT", 0.1),
)
ADULT_MODELS = (
    ("FELLOWSHIP", 0.25),
    ("LIFE_COACHING", 0.25),
    ("STREET_OUTREACH", 0.25),
    ("VIOLENCE_INTERRUPTION", 0.25),
)
CONSENT = (("LINKAGE_OK", 0.68), ("AGGREGATE_ONLY", 0.2), ("NONE", 0.12))
MIN_AGE, MAX_AGE = 10, 80


@dataclass
class Enrollment:
    person: Person
    enrolled: dt.date
    program: str
    source: str
    status: str
    exit: dt.date | None
    consent: str
    visit: EdVisit | None
    """The ED visit whose hospital referral led to this enrollment, if any."""


def plan_cvi(
    city: City, victimizations: list[Victimization], visits: list[EdVisit]
) -> list[Enrollment]:
    rng = city.rng("cvi")
    window = city.window
    first: dict[int, Enrollment] = {}

    def enroll(
        person: Person, day: dt.date, program: str, source: str, visit: EdVisit | None
    ) -> None:
        if person.index in first or not window.contains(day) or not city.alive_on(person, day):
            return
        if not MIN_AGE <= person.age_on(day) <= MAX_AGE:  # the agreement's age range
            return
        first[person.index] = _enrollment(rng, city, person, day, program, source, visit)

    for visit in visits:
        if visit.hvip_referred and rng.random() < 0.45:
            day = visit.arrival.date() + dt.timedelta(days=rng.randint(1, 30))
            program = "HVIP_LINKED" if rng.random() < 0.75 else "STREET_OUTREACH"
            enroll(visit.person, day, program, "HOSPITAL", visit)
    for v in victimizations:
        rate = 0.06 if v.fatal else 0.12
        if rng.random() >= rate:
            continue
        incident_day = v.incident.when.date()
        if v.fatal or rng.random() < 0.25:
            day = incident_day - dt.timedelta(days=rng.randint(30, 365))
        else:
            day = incident_day + dt.timedelta(days=rng.randint(3, 60))
        program = pick(
            rng,
            (("STREET_OUTREACH", 0.45), ("VIOLENCE_INTERRUPTION", 0.35), ("LIFE_COACHING", 0.2)),
        )
        enroll(v.person, day, program, "POLICE" if rng.random() < 0.3 else "OUTREACH", None)
    for person in city.people:
        if person.entry != CVI:
            continue
        day = city.calendar.day(rng)
        if person.age_on(day) < 18 and rng.random() < 0.7:
            program = "YOUTH_DIVERSION"
        else:
            program = pick(rng, ADULT_MODELS)
        enroll(person, day, program, pick(rng, DIRECT_SOURCES), None)

    enrollments = list(first.values())
    for e in list(enrollments):
        if e.exit is None or e.status not in ("DISENGAGED", "MOVED", "INCARCERATED"):
            continue
        if rng.random() >= 0.2:
            continue
        day = e.exit + dt.timedelta(days=rng.randint(30, 200))
        if day <= city.last_day(e.person) and e.person.age_on(day) <= MAX_AGE:
            source = pick(rng, DIRECT_SOURCES)
            enrollments.append(_enrollment(rng, city, e.person, day, e.program, source, None))
    enrollments.sort(key=lambda e: (e.enrolled, e.person.index))
    return enrollments


def _enrollment(
    rng: random.Random,
    city: City,
    person: Person,
    day: dt.date,
    program: str,
    source: str,
    visit: EdVisit | None,
) -> Enrollment:
    end = city.window.end
    death = city.deaths.get(person.index)
    status, exit_day = "ACTIVE", None
    if death is not None and death.date() <= end:
        status, exit_day = "DECEASED", death.date()
    elif (end - day).days >= 60 or rng.random() < 0.1:
        status = pick(
            rng,
            (
                ("ACTIVE", 0.4),
                ("GRADUATED", 0.15),
                ("DISENGAGED", 0.25),
                ("INCARCERATED", 0.1),
                ("MOVED", 0.1),
            ),
        )
        span = (end - day).days
        if status == "GRADUATED" and span >= 365:
            exit_day = day + dt.timedelta(days=rng.randint(365, min(548, span)))
        elif status == "GRADUATED":
            status = "ACTIVE"
        elif status != "ACTIVE":
            exit_day = day + dt.timedelta(days=rng.randint(min(14, span), span))
    return Enrollment(person, day, program, source, status, exit_day, pick(rng, CONSENT), visit)


def cvi_rows(city: City, enrollments: list[Enrollment]) -> list[tuple[str, dict[str, str]]]:
    """``(person_id, row)`` pairs in enrollment order; participant ids ascend with it."""
    rng = city.rng("cvi/rows")
    gap = max(1, min(9, 800_000 // max(1, len(enrollments))))
    number = 100_000
    rows: list[tuple[str, dict[str, str]]] = []
    for e in enrollments:
        person, day = e.person, e.enrolled
        number += rng.randint(1, gap)
        ident = city.identity(CVI, CVI_STYLE, person, day, rng)
        dob, age = dob_and_age(person, ident.dob, day, MIN_AGE, MAX_AGE, rng, 0.7)
        race = "UNKNOWN" if rng.random() < 0.04 else RACE_CODES[person.race]
        sex = "U" if rng.random() < 0.01 else person.sex
        area = ident.residence.community_area
        alias = person.alias if person.alias and rng.random() < 0.8 else ""
        rows.append(
            (
                person.person_id,
                {
                    "participant_id": f"P{number:06d}",
                    "program_model": e.program,
                    "first_name": ident.first,
                    "last_name": ident.last,
                    "alias": alias,
                    "dob": fmt_date(dob),
                    "age": fmt_int(age),
                    "sex": sex,
                    "race": race,
                    "home_community_area": "" if area is None or rng.random() < 0.05 else str(area),
                    "referral_source": e.source,
                    "enrollment_date": fmt_date(day),
                    "exit_date": fmt_date(e.exit),
                    "status": e.status,
                    "consent_to_share": e.consent,
                    "case_notes": _case_note(rng, e, ident.first, alias),
                },
            )
        )
    return rows


_NOTES = (
    "Met {name} at bedside, agreed to enroll. Mom present.",
    "{name} enrolled after outreach contact on the block. Wants help with a job.",
    "Connected {name} w/ life coach. Next check-in Thursday.",
    "{name} says conflict w/ group from across the park is still active.",
    "Referred by PO. {name} needs state ID and housing.",
)
_ANONYMOUS_NOTES = (
    "Intake completed. LifeMAP goals set.",
    "Participant reached by phone, follow-up scheduled.",
    "Mediation follow-up, no retaliation expected.",
)


def _case_note(rng: random.Random, e: Enrollment, first: str, alias: str) -> str:
    """Worker's free text. About half of the notes name the participant or their alias."""
    roll = rng.random()
    if roll < 0.25:
        return ""
    if roll < 0.75 and (first.strip() or alias):
        name = alias if alias and rng.random() < 0.4 else first.strip()
        note = rng.choice(_NOTES).format(name=name)
    else:
        note = rng.choice(_ANONYMOUS_NOTES)
    if e.status == "DECEASED":
        note += " Participant was killed; family notified program."
    return note
