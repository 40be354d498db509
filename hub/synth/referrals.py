"""Closed-loop referrals between programs (reference/domain.md A.6).

One row per referral, from every kind of partner, so the file names people known to all the
other sources:

* hospital → CVI for every ED visit flagged ``hvip_referred`` (engaged when the person did
  enroll), hospital → mental health after self-harm, hospital → SUD treatment (42 CFR Part 2
  rows the agreement keeps aggregate-only);
* police → victim services after some victimizations (most after domestic ones), OVP → CVI
  after some shootings (a shooting-review referral);
* CVI → housing, workforce, mental health, legal, ... during an enrollment (0–4 each);
* referral-only people: school, victim-services, housing and workforce partners referring
  among themselves.

``client_ref`` is the *sender's* id for the client: stable per person and sender, except that a
sender occasionally opens a second client record for a returning client. ``consent_type`` NONE
rows (~12%) are the agreement's no-linkage rows. Caveat: ``followup_due_date`` is a plan and may
fall up to 14 days after the window's end; every other date is inside the window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hub.synth.city import City, dob_and_age
from hub.synth.cvi import Enrollment
from hub.synth.discrepancies import REFERRAL_STYLE
from hub.synth.hospital import SELF_HARM, EdVisit
from hub.synth.police import Victimization
from hub.synth.population import REFERRAL, Person, pick
from hub.synth.schema import fmt_date

HOSPITAL, CVI_CBO, POLICE_ORG, SCHOOL = "HOSPITAL", "CVI_CBO", "POLICE", "SCHOOL_DISTRICT"
VICTIM_SERVICES, HOUSING, WORKFORCE, OVP = "VICTIM_SERVICES", "HOUSING", "WORKFORCE", "OVP"
# Where each kind of service is usually delivered.
PROVIDER = {
    "HOUSING": HOUSING,
    "EMPLOYMENT": WORKFORCE,
    "MENTAL_HEALTH": HOSPITAL,
    "SUD_TREATMENT": HOSPITAL,
    "LEGAL": VICTIM_SERVICES,
    "EDUCATION": SCHOOL,
    "VICTIM_SERVICES": VICTIM_SERVICES,
    "RELOCATION": HOUSING,
    "BENEFITS": OVP,
    "MEDICAL": HOSPITAL,
    "CVI_ENROLLMENT": CVI_CBO,
}
CVI_DOMAINS = (
    ("HOUSING", 0.15),
    ("EMPLOYMENT", 0.25),
    ("MENTAL_HEALTH", 0.15),
    ("SUD_TREATMENT", 0.07),
    ("LEGAL", 0.1),
    ("EDUCATION", 0.1),
    ("RELOCATION", 0.05),
    ("BENEFITS", 0.08),
    ("MEDICAL", 0.05),
)
NETWORK_SENDERS = (
    (SCHOOL, 0.3),
    (VICTIM_SERVICES, 0.25),
    (HOUSING, 0.15),
    (WORKFORCE, 0.15),
    (OVP, 0.15),
)
NETWORK_DOMAINS = {
    SCHOOL: (("CVI_ENROLLMENT", 0.4), ("MENTAL_HEALTH", 0.3), ("EDUCATION", 0.3)),
    VICTIM_SERVICES: (
        ("HOUSING", 0.3),
        ("RELOCATION", 0.2),
        ("LEGAL", 0.2),
        ("MENTAL_HEALTH", 0.3),
    ),
    HOUSING: (("EMPLOYMENT", 0.4), ("BENEFITS", 0.4), ("SUD_TREATMENT", 0.2)),
    WORKFORCE: (("EDUCATION", 0.4), ("HOUSING", 0.3), ("BENEFITS", 0.3)),
    OVP: (("CVI_ENROLLMENT", 0.6), ("VICTIM_SERVICES", 0.2), ("HOUSING", 0.2)),
}
STATUSES = (
    ("SENT", 0.08),
    ("ACCEPTED", 0.15),
    ("REJECTED", 0.10),
    ("RETRACTED", 0.03),
    ("ENGAGED", 0.25),
    ("COMPLETED", 0.20),
    ("NO_SHOW", 0.12),
    ("CLOSED", 0.07),
)
REJECTIONS = (
    ("CAPACITY", 0.3),
    ("INELIGIBLE", 0.2),
    ("CLIENT_DECLINED", 0.25),
    ("UNREACHABLE", 0.2),
    ("OTHER", 0.05),
)
# The hospital's CVI referral ends well when the person did enroll, and badly otherwise.
ENROLLED_OUTCOMES = (("ENGAGED", 0.6), ("COMPLETED", 0.2), ("ACCEPTED", 0.2))
NOT_ENROLLED_OUTCOMES = (("NO_SHOW", 0.4), ("REJECTED", 0.2), ("SENT", 0.1), ("CLOSED", 0.3))
CLIENT_PREFIX = {
    HOSPITAL: "HSP",
    CVI_CBO: "CVI",
    POLICE_ORG: "CPD",
    SCHOOL: "SCH",
    VICTIM_SERVICES: "VSV",
    HOUSING: "HSG",
    WORKFORCE: "WFD",
    OVP: "OVP",
}


@dataclass
class Referral:
    person: Person
    day: dt.date
    sender: str
    receiver: str
    domain: str
    urgency: str
    outcome: str | None
    """Forced status (ENGAGED when the person did enroll), else ``None`` to draw one."""


def plan_referrals(
    city: City,
    victimizations: list[Victimization],
    visits: list[EdVisit],
    enrollments: list[Enrollment],
) -> list[Referral]:
    rng = city.rng("referrals")
    out: list[Referral] = []

    def refer(
        person: Person,
        day: dt.date,
        sender: str,
        domain: str,
        urgency: str,
        outcome: str | None = None,
        receiver: str | None = None,
    ) -> None:
        if city.window.contains(day) and day <= city.last_day(person):
            out.append(
                Referral(
                    person, day, sender, receiver or PROVIDER[domain], domain, urgency, outcome
                )
            )

    # Visits are matched by identity (the dataclass is unhashable); only membership is used.
    enrolled_from = {id(e.visit) for e in enrollments if e.visit is not None}
    for visit in visits:
        day = visit.arrival.date() + dt.timedelta(days=rng.randint(0, 2))
        if visit.hvip_referred:
            engaged = id(visit) in enrolled_from
            refer(
                visit.person,
                day,
                HOSPITAL,
                "CVI_ENROLLMENT",
                "URGENT",
                pick(rng, ENROLLED_OUTCOMES if engaged else NOT_ENROLLED_OUTCOMES),
            )
        if visit.seq == "A" and visit.intent == SELF_HARM and rng.random() < 0.5:
            refer(visit.person, day, HOSPITAL, "MENTAL_HEALTH", "CRISIS")
        if visit.seq == "A" and visit.sud and rng.random() < 0.35:
            refer(visit.person, day, HOSPITAL, "SUD_TREATMENT", "URGENT")
    for v in victimizations:
        if v.fatal:
            continue
        day = v.incident.when.date() + dt.timedelta(days=rng.randint(0, 10))
        if rng.random() < (0.5 if v.incident.domestic else 0.15):
            domain = (
                "RELOCATION" if v.incident.domestic and rng.random() < 0.3 else "VICTIM_SERVICES"
            )
            refer(v.person, day, POLICE_ORG, domain, "URGENT", receiver=VICTIM_SERVICES)
        if v.victimization_type == "NON_FATAL_SHOOTING" and rng.random() < 0.10:
            refer(v.person, day, OVP, "CVI_ENROLLMENT", "URGENT")
    for e in enrollments:
        end = e.exit or city.window.end
        for _ in range(rng.choices((0, 1, 2, 3, 4), weights=(0.3, 0.3, 0.2, 0.12, 0.08))[0]):
            day = city.calendar.day_between(rng, e.enrolled, end)
            refer(
                e.person,
                day,
                CVI_CBO,
                pick(rng, CVI_DOMAINS),
                pick(rng, (("ROUTINE", 0.7), ("URGENT", 0.25), ("CRISIS", 0.05))),
            )
    for person in city.people:
        if person.entry != REFERRAL:
            continue
        for _ in range(rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]):
            sender = pick(rng, NETWORK_SENDERS)
            domain = pick(rng, NETWORK_DOMAINS[sender])
            urgency = pick(rng, (("ROUTINE", 0.65), ("URGENT", 0.28), ("CRISIS", 0.07)))
            refer(person, city.calendar.day(rng), sender, domain, urgency)
    out.sort(key=lambda r: (r.day, r.person.index, r.sender, r.domain))
    return out


def referral_rows(city: City, referrals: list[Referral]) -> list[tuple[str, dict[str, str]]]:
    """``(person_id, row)`` pairs in referral-date order; referral ids ascend with it."""
    rng = city.rng("referrals/rows")
    end = city.window.end
    gap = max(1, min(25, 8_000_000 // max(1, len(referrals))))
    number = 1_000_000
    client_refs: dict[tuple[str, int], str] = {}
    client_seq: dict[str, int] = {}
    rows: list[tuple[str, dict[str, str]]] = []
    for r in referrals:
        person = r.person
        number += rng.randint(1, gap)
        key = (r.sender, person.index)
        if key not in client_refs or rng.random() < 0.02:
            client_seq[r.sender] = client_seq.get(r.sender, 0) + 1
            client_refs[key] = f"{CLIENT_PREFIX[r.sender]}-{client_seq[r.sender]:06d}"
        ident = city.identity(REFERRAL, REFERRAL_STYLE, person, r.day, rng)
        dob, _ = dob_and_age(person, ident.dob, r.day, 0, 120, rng, 0.0)
        status = r.outcome or pick(rng, STATUSES)
        if (end - r.day).days < 7 and r.outcome is None and rng.random() < 0.6:
            status = "SENT"
        first_service = None
        if status in ("ENGAGED", "COMPLETED"):
            first_service = min(end, r.day + dt.timedelta(days=rng.randint(0, 21)))
        due = None
        if rng.random() < 0.92:
            due = r.day + dt.timedelta(days=2 if r.urgency != "ROUTINE" else rng.choice((7, 14)))
        done = None
        if due is not None and due <= end and status != "SENT" and rng.random() < 0.65:
            done = min(end, max(r.day, due + dt.timedelta(days=rng.randint(-5, 10))))
        rejection = ""
        if status == "REJECTED" and rng.random() < 0.95:
            rejection = pick(rng, REJECTIONS)
        consent = (
            "WRITTEN"
            if r.domain == "SUD_TREATMENT" and rng.random() < 0.9
            else pick(rng, (("WRITTEN", 0.55), ("VERBAL", 0.33), ("NONE", 0.12)))
        )
        rows.append(
            (
                person.person_id,
                {
                    "referral_id": f"R{number:07d}",
                    "from_org_type": r.sender,
                    "to_org_type": r.receiver,
                    "client_ref": client_refs[key],
                    "client_first_name": ident.first,
                    "client_last_name": ident.last,
                    "client_dob": fmt_date(dob),
                    "referral_date": fmt_date(r.day),
                    "service_domain": r.domain,
                    "urgency": r.urgency,
                    "consent_type": consent,
                    "status": status,
                    "first_service_date": fmt_date(first_service),
                    "followup_due_date": fmt_date(due),
                    "followup_done_date": fmt_date(done),
                    "rejection_reason": rejection,
                },
            )
        )
    return rows
