"""Emergency-department injury visits (reference/domain.md A.3).

One row per ED encounter. Visits come from three places:

* police victimizations: most non-fatal shooting victims, and some other victims, arrive at an
  ED within minutes to hours of the incident (trauma centres take most gunshot wounds); a
  share of fatal victims die in the ED;
* people whose entry agency is the ED: assaults the police never recorded, plus self-harm,
  unintentional and undetermined injuries (so intent filters have something to remove);
* follow-ups: ``D`` (subsequent) encounters days after an initial ``A`` visit and rare ``S``
  (sequela) visits months later, which must not be counted as new injuries.

Caveat: ICD-10-CM codes have the right shape and family (S-code for the wound, X/Y/W-code for
the external cause with the encounter's 7th character, Y92 place, F1x for substance use) but are
not curated for clinical validity. ``mrn`` is stable per person and facility, except for ~2.5%
of visits registered under a fresh duplicate MRN, as happens in real registration.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from hub.synth.city import City, dob_and_age
from hub.synth.discrepancies import ED_STYLE, apply_case
from hub.synth.police import NONGUN, SHOOTING, Victimization
from hub.synth.population import (
    AIAN,
    BLACK,
    ED,
    HISPANIC_BLACK,
    HISPANIC_WHITE,
    MULTI,
    POLICE,
    RACE_ASIAN,
    WHITE,
    Person,
    pick,
)
from hub.synth.schema import fmt_bool, fmt_date, fmt_datetime, fmt_int

FIREARM, CUT_PIERCE, STRUCK, VEHICLE, OTHER = (
    "FIREARM",
    "CUT_PIERCE",
    "STRUCK_BODILY",
    "VEHICLE",
    "OTHER",
)
ASSAULT, UNINTENTIONAL, SELF_HARM, LEGAL, UNDETERMINED = (
    "ASSAULT",
    "UNINTENTIONAL",
    "SELF_HARM",
    "LEGAL_INTERVENTION",
    "UNDETERMINED",
)
INTENTS = (
    (ASSAULT, 0.62),
    (UNINTENTIONAL, 0.15),
    (SELF_HARM, 0.13),
    (UNDETERMINED, 0.06),
    (LEGAL, 0.04),
)
MECHANISMS = {
    ASSAULT: ((FIREARM, 0.35), (CUT_PIERCE, 0.2), (STRUCK, 0.4), (VEHICLE, 0.02), (OTHER, 0.03)),
    UNINTENTIONAL: (
        (FIREARM, 0.15),
        (VEHICLE, 0.4),
        (CUT_PIERCE, 0.15),
        (STRUCK, 0.2),
        (OTHER, 0.1),
    ),
    SELF_HARM: ((CUT_PIERCE, 0.55), (FIREARM, 0.15), (OTHER, 0.3)),
    UNDETERMINED: ((FIREARM, 0.5), (CUT_PIERCE, 0.2), (STRUCK, 0.2), (OTHER, 0.1)),
    LEGAL: ((STRUCK, 0.5), (FIREARM, 0.2), (OTHER, 0.3)),
}
# Share of each police victimization type that reaches an ED (fatal: died in the ED).
ED_RATE_BY_VICTIMIZATION = {
    "FATAL_SHOOTING": 0.3,
    "NON_SHOOTING_HOMICIDE": 0.15,
    "NON_FATAL_SHOOTING": 0.8,
    "AGG_BATTERY_NONGUN": 0.5,
    "ROBBERY_INJURY": 0.35,
}
FIREARM_DISPOSITIONS = (
    ("ADMITTED", 0.45),
    ("DISCHARGED", 0.4),
    ("TRANSFERRED", 0.08),
    ("AMA", 0.05),
    ("LWBS", 0.02),
)
OTHER_DISPOSITIONS = (
    ("DISCHARGED", 0.75),
    ("ADMITTED", 0.12),
    ("AMA", 0.06),
    ("LWBS", 0.05),
    ("TRANSFERRED", 0.02),
)
FOLLOW_UP_DISPOSITIONS = (("DISCHARGED", 0.85), ("ADMITTED", 0.08), ("LWBS", 0.04), ("AMA", 0.03))
# External-cause codes by mechanism and intent, written with the initial-encounter 7th character.
EXTERNAL_CAUSE = {
    (FIREARM, ASSAULT): ("X93.XXXA", "X95.9XXA", "X94.0XXA"),
    (FIREARM, UNINTENTIONAL): ("W32.0XXA", "W34.00XA"),
    (FIREARM, SELF_HARM): ("X72.XXXA", "X74.9XXA"),
    (FIREARM, UNDETERMINED): ("Y22.XXXA", "Y24.9XXA"),
    (FIREARM, LEGAL): ("Y35.001A",),
    (CUT_PIERCE, ASSAULT): ("X99.1XXA", "X99.9XXA"),
    (CUT_PIERCE, UNINTENTIONAL): ("W26.0XXA", "W25.XXXA"),
    (CUT_PIERCE, SELF_HARM): ("X78.1XXA", "X78.9XXA"),
    (CUT_PIERCE, UNDETERMINED): ("Y28.1XXA",),
    (CUT_PIERCE, LEGAL): ("Y35.491A",),
    (STRUCK, ASSAULT): ("Y04.0XXA", "Y00.XXXA", "Y04.8XXA"),
    (STRUCK, UNINTENTIONAL): ("W22.8XXA", "W50.0XXA"),
    (STRUCK, SELF_HARM): ("X79.XXXA",),
    (STRUCK, UNDETERMINED): ("Y29.XXXA",),
    (STRUCK, LEGAL): ("Y35.391A",),
    (VEHICLE, ASSAULT): ("Y03.0XXA",),
    (VEHICLE, UNINTENTIONAL): ("V43.52XA", "V03.10XA"),
    (VEHICLE, UNDETERMINED): ("Y32.XXXA",),
    (OTHER, ASSAULT): ("Y08.89XA", "Y09"),
    (OTHER, UNINTENTIONAL): ("W19.XXXA",),
    (OTHER, SELF_HARM): ("T39.1X2A", "T42.4X2A", "X83.8XXA"),
    (OTHER, UNDETERMINED): ("Y33.XXXA",),
    (OTHER, LEGAL): ("Y35.891A",),
}
WOUNDS = {
    FIREARM: ("S71.101A", "S31.109A", "S21.309A", "S41.109A", "S81.809A", "S01.409A"),
    CUT_PIERCE: ("S61.419A", "S51.819A", "S21.119A", "S01.81XA", "S31.119A"),
    STRUCK: ("S02.2XXA", "S06.0X0A", "S00.83XA", "S20.219A", "S62.309A"),
    VEHICLE: ("S82.209A", "S32.009A", "S06.0X1A", "S72.009A"),
    OTHER: ("T14.90XA", "S09.90XA"),
}
PLACES = ("Y92.410", "Y92.009", "Y92.481", "Y92.89")
SUD_CODES = ("F10.129", "F12.10", "F14.10", "F11.20", "F19.10")

# Triage free text by mechanism for assaults (and undetermined or legal-intervention injuries),
# with separate lists for self-harm and unintentional injuries. Misspellings are deliberate.
ASSAULT_COMPLAINTS = {
    FIREARM: (
        "GSW L THIGH",
        "gsw to abd",
        "shot x2 RLE",
        "GUNSHOT WOUND",
        "gsw chest",
        "pt shot in leg",
        "GSW R ARM",
        "gsw to lft leg",
        "shot in back",
    ),
    CUT_PIERCE: ("stab wound", "STABBED L ARM", "stabed in side", "cut w/ knife", "lac to hand"),
    STRUCK: (
        "assaulted",
        "ASSAULT",
        "assualt, facial pain",
        "jumped",
        "hit w/ bat",
        "assaulted by bf",
        "head inj after fight",
        "punched in face",
    ),
    VEHICLE: ("struck by car on purpose", "ped struck, assault"),
    OTHER: ("assault NOS", "pain after altercation", "choked"),
}
SELF_HARM_COMPLAINTS = {
    FIREARM: ("self inflicted gsw", "SI, GSW"),
    CUT_PIERCE: ("SI, lac to wrists", "self inflicted lac", "cut self"),
    OTHER: ("intentional OD", "ingestion", "SI/OD"),
}
UNINTENTIONAL_COMPLAINTS = {
    FIREARM: ("accidental discharge, gsw hand", "accidental gsw"),
    CUT_PIERCE: ("lac to hand", "cut hand on glass"),
    STRUCK: ("fall", "struck by object", "hit head"),
    VEHICLE: ("MVC", "ped struck", "mvc restrained driver", "hit by car"),
    OTHER: ("fall", "injury NOS"),
}
FOLLOW_UP_COMPLAINTS = (
    "wound check",
    "f/u gsw",
    "dressing change",
    "suture removal",
    "wound infection",
    "pain at wound site",
)
TRAUMA_ALIASES = ("Xray", "Yankee", "Zulu", "Tango", "Sierra", "Quebec", "Oscar", "Kilo")


@dataclass
class EdVisit:
    person: Person
    arrival: dt.datetime
    facility: str
    mechanism: str
    intent: str
    seq: str
    disposition: str
    hvip_referred: bool | None
    sud: bool
    victimization: Victimization | None


def plan_ed(
    city: City, victimizations: list[Victimization], facilities: tuple[str, ...]
) -> list[EdVisit]:
    """ED visits linked to police incidents, ED-only visits, and their follow-ups.

    ``facilities`` comes from the contract's ``facility_id`` values; the first two are treated
    as the trauma centres that receive most gunshot wounds.
    """
    rng = city.rng("ed")
    trauma = facilities[:2]
    initial: list[EdVisit] = []
    for v in victimizations:
        visit = _from_victimization(rng, city, v, facilities, trauma)
        if visit is not None:
            initial.append(visit)
    for person in city.people:
        if person.entry == ED:
            count = rng.choices((1, 2, 3), weights=(0.78, 0.16, 0.06))[0]
        elif person.entry == POLICE and rng.random() < 0.10:
            count = 1  # an injury the police never recorded
        else:
            continue
        for _ in range(count):
            day = city.calendar.day(rng)
            if day > city.last_day(person):
                continue
            intent = pick(rng, INTENTS)
            mechanism = pick(rng, MECHANISMS[intent])
            facility = rng.choice(
                trauma if mechanism == FIREARM and rng.random() < 0.8 else facilities
            )
            initial.append(
                _visit(
                    rng, person, city.calendar.moment(rng, day), facility, mechanism, intent, None
                )
            )
    visits = list(initial)
    for visit in initial:
        visits += _follow_ups(rng, city, visit)
    visits.sort(key=lambda x: (x.arrival, x.person.index, x.seq))
    return visits


def _from_victimization(
    rng: random.Random,
    city: City,
    v: Victimization,
    facilities: tuple[str, ...],
    trauma: tuple[str, ...],
) -> EdVisit | None:
    if rng.random() >= ED_RATE_BY_VICTIMIZATION[v.victimization_type]:
        return None
    arrival = v.incident.when + dt.timedelta(minutes=rng.randint(10, 150))
    if arrival.date() > city.window.end:
        return None
    kind, weapon = v.incident.kind, v.incident.weapon
    if kind == SHOOTING:
        mechanism = FIREARM
    elif kind == NONGUN and weapon == "20":
        mechanism = CUT_PIERCE
    else:
        mechanism = STRUCK if rng.random() < 0.9 else OTHER
    if v.incident.officer_involved:
        intent = LEGAL
    else:
        intent = ASSAULT if rng.random() < 0.94 else UNDETERMINED
    facility = rng.choice(trauma if mechanism == FIREARM and rng.random() < 0.85 else facilities)
    return _visit(rng, v.person, arrival, facility, mechanism, intent, v)


def _visit(
    rng: random.Random,
    person: Person,
    arrival: dt.datetime,
    facility: str,
    mechanism: str,
    intent: str,
    v: Victimization | None,
) -> EdVisit:
    if v is not None and v.fatal:
        disposition = "DIED_ED"
    elif mechanism == FIREARM:
        disposition = pick(rng, FIREARM_DISPOSITIONS)
    else:
        disposition = pick(rng, OTHER_DISPOSITIONS)
    hvip: bool | None
    if disposition == "DIED_ED":
        hvip = False
    elif intent == ASSAULT and mechanism in (FIREARM, CUT_PIERCE):
        roll = rng.random()
        hvip = True if roll < 0.35 else (None if roll > 0.95 else False)
    else:
        hvip = None if rng.random() < 0.1 else False
    sud = rng.random() < (0.25 if intent == SELF_HARM else 0.09)
    return EdVisit(person, arrival, facility, mechanism, intent, "A", disposition, hvip, sud, v)


def _follow_ups(rng: random.Random, city: City, visit: EdVisit) -> list[EdVisit]:
    if visit.disposition == "DIED_ED":
        return []
    out: list[EdVisit] = []
    roll = rng.random()
    count = 2 if roll < 0.03 else (1 if roll < 0.15 else 0)
    when = visit.arrival
    last = city.last_day(visit.person)
    for _ in range(count):
        when = city.calendar.moment(rng, when.date() + dt.timedelta(days=rng.randint(3, 45)))
        if when.date() > last:
            break
        out.append(_later(rng, visit, when, "D"))
    if rng.random() < 0.02:
        when = city.calendar.moment(
            rng, visit.arrival.date() + dt.timedelta(days=rng.randint(90, 365))
        )
        if when.date() <= last:
            out.append(_later(rng, visit, when, "S"))
    return out


def _later(rng: random.Random, visit: EdVisit, when: dt.datetime, seq: str) -> EdVisit:
    facility = visit.facility
    disposition = pick(rng, FOLLOW_UP_DISPOSITIONS)
    hvip = None if rng.random() < 0.5 else False
    return EdVisit(
        visit.person,
        when,
        facility,
        visit.mechanism,
        visit.intent,
        seq,
        disposition,
        hvip,
        visit.sud and rng.random() < 0.5,
        visit.victimization,
    )


def _race_ethnicity(rng: random.Random, race: str) -> tuple[str, str]:
    if rng.random() < 0.03:
        return "UNK", "UNK"
    if race == HISPANIC_WHITE:
        return pick(rng, (("WHITE", 0.5), ("OTHER", 0.35), ("UNK", 0.15))), "HISPANIC"
    if race == HISPANIC_BLACK:
        return "BLACK", "HISPANIC"
    mapped = {BLACK: "BLACK", WHITE: "WHITE", RACE_ASIAN: "ASIAN", AIAN: "AIAN", MULTI: "MULTI"}
    return mapped[race], "NOT_HISPANIC"


def _dx_codes(rng: random.Random, visit: EdVisit) -> str:
    wound = rng.choice(WOUNDS[visit.mechanism])
    causes = (
        EXTERNAL_CAUSE.get((visit.mechanism, visit.intent)) or EXTERNAL_CAUSE[(OTHER, visit.intent)]
    )
    codes = [wound, rng.choice(causes)]
    if visit.seq != "A":
        codes = [c[:-1] + visit.seq if len(c) == 8 else c for c in codes]
    if visit.seq == "A" and rng.random() < 0.4:
        codes.append(rng.choice(PLACES))
    if visit.sud:
        codes.append(rng.choice(SUD_CODES))
    return ";".join(codes)


def ed_rows(city: City, visits: list[EdVisit]) -> list[tuple[str, dict[str, str]]]:
    """``(person_id, row)`` pairs in arrival order; visit ids ascend with arrival."""
    rng = city.rng("ed/rows")
    facilities = sorted({v.facility for v in visits})
    digits = {f: 8 + i % 3 for i, f in enumerate(facilities)}
    mrns: dict[tuple[str, int], str] = {}
    used: set[str] = set()
    gap = max(1, min(40, 60_000_000 // max(1, len(visits))))
    visit_number = 30_000_000
    rows: list[tuple[str, dict[str, str]]] = []
    for visit in visits:
        person, day = visit.person, visit.arrival.date()
        visit_number += rng.randint(1, gap)
        key = (visit.facility, person.index)
        if key not in mrns or rng.random() < 0.025:
            mrns[key] = _new_mrn(rng, digits[visit.facility], used)
        ident = city.identity(ED, ED_STYLE, person, day, rng)
        first, last, recorded, address, zip5 = (
            ident.first,
            ident.last,
            ident.dob,
            ident.address,
            ident.zip,
        )
        unidentified = visit.seq == "A" and visit.mechanism == FIREARM and rng.random() < 0.008
        if unidentified:  # an unknown trauma patient registered under a placeholder name
            first, last = rng.choice(TRAUMA_ALIASES), "Trauma"
            recorded, address, zip5 = None, "", ""
        dob, age = dob_and_age(person, recorded, day, 0, 110, rng, 0.9)
        race, ethnicity = _race_ethnicity(rng, person.race)
        sex = "U" if person.sex == "X" or rng.random() < 0.005 else person.sex
        rows.append(
            (
                person.person_id,
                {
                    "visit_id": f"E{visit_number:08d}",
                    "mrn": mrns[key],
                    "facility_id": visit.facility,
                    "patient_first_name": first,
                    "patient_last_name": last,
                    "patient_dob": fmt_date(dob),
                    "patient_address": ""
                    if address == "HOMELESS" and rng.random() < 0.5
                    else address,
                    "patient_zip5": zip5,
                    "arrival_datetime": fmt_datetime(visit.arrival),
                    "age_years": fmt_int(age),
                    "sex": sex,
                    "race": race,
                    "ethnicity": ethnicity,
                    "chief_complaint": _complaint(rng, visit, person),
                    "dx_codes": _dx_codes(rng, visit),
                    "injury_mechanism": visit.mechanism,
                    "injury_intent": visit.intent,
                    "encounter_seq": visit.seq,
                    "disposition": "" if rng.random() < 0.02 else visit.disposition,
                    "hvip_referred": fmt_bool(visit.hvip_referred),
                    "sud_dx_present": "" if rng.random() < 0.05 else fmt_bool(visit.sud),
                },
            )
        )
    return rows


def _new_mrn(rng: random.Random, digits: int, used: set[str]) -> str:
    while True:
        mrn = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        if mrn not in used:
            used.add(mrn)
            return mrn


def _complaint(rng: random.Random, visit: EdVisit, person: Person) -> str:
    """Messy triage free text. About 4% name the patient (the column is dropped at ingest)."""
    if visit.seq != "A":
        text = rng.choice(FOLLOW_UP_COMPLAINTS)
    else:
        table = ASSAULT_COMPLAINTS
        if visit.intent == SELF_HARM:
            table = SELF_HARM_COMPLAINTS
        elif visit.intent == UNINTENTIONAL:
            table = UNINTENTIONAL_COMPLAINTS
        text = rng.choice(table.get(visit.mechanism) or table[OTHER])
    if rng.random() < 0.04:
        text = f"pt {person.first} {person.last} bib ems, {text}"
    elif rng.random() < 0.02:
        return ""
    return apply_case(text, "upper") if rng.random() < 0.3 else text
