"""The words an agreement is written in: enumerations, name patterns, durations.

Every enumeration's docstring is what an editor shows beside the value (it becomes the JSON
Schema description), so each says what the words mean, not how the code uses them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SPEC_VERSION = "ovp-dsa/1.0"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
NAME = r"^[a-z][a-z0-9_]*$"
PARTY_ID = r"^org:[a-z][a-z0-9_]*$"
DURATION = re.compile(r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$")


class Strict(BaseModel):
    """Base of every spec section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _duration(value: str) -> str:
    if value in ("P", "PT") or value.endswith("T"):
        raise ValueError(f"{value!r} is not an ISO-8601 duration; write e.g. P30D, P3Y or PT24H")
    return value


Duration = Annotated[
    str,
    Field(pattern=DURATION.pattern, examples=["P30D", "P3Y", "PT24H"]),
    AfterValidator(_duration),
]
"""An ISO-8601 duration: ``P30D`` (30 days), ``P3Y`` (3 years), ``PT24H`` (24 hours)."""


def _duration_or_indefinite(value: str) -> str:
    if value == "indefinite":
        return value
    if not DURATION.match(value):
        raise ValueError(f"{value!r} is neither an ISO-8601 duration (e.g. P3Y) nor indefinite")
    return _duration(value)


DurationOrIndefinite = Annotated[
    str,
    Field(pattern=r"^(indefinite|P.*)$", examples=["indefinite", "P10Y"]),
    AfterValidator(_duration_or_indefinite),
]

Name = Annotated[str, Field(pattern=NAME)]
PartyId = Annotated[str, Field(pattern=PARTY_ID)]
Version = Annotated[str, Field(pattern=SEMVER.pattern)]


def semver_key(version: str) -> tuple[int, ...]:
    """Sort key of a ``MAJOR.MINOR.PATCH`` version."""
    return tuple(int(x) for x in version.split("."))


class AgreementStatus(StrEnum):
    """Where a version is in its lifecycle. The hub records the real status in its database;
    the value written here is the author's starting point."""

    draft = "draft"
    under_review = "under_review"
    active = "active"
    suspended = "suspended"
    expired = "expired"
    terminated = "terminated"
    superseded = "superseded"


class PartyRole(StrEnum):
    """What a party does: provides data, runs the hub, or only receives outputs."""

    data_provider = "data_provider"
    hub_operator = "hub_operator"
    data_recipient = "data_recipient"


class RegimeFlag(StrEnum):
    """A legal regime that binds a party's records. Each flag switches on mandatory rules in
    lint: hipaa_covered (HIPAA covered entity), part2_program (42 CFR Part 2 SUD program),
    ferpa_agency (educational agency under FERPA), cjis_agency (criminal-justice agency under the
    CJIS Security Policy), vawa_funded / voca_funded (victim-service provider under VAWA
    §12291(b)(2) or VOCA 28 CFR 94.115), juvenile_records (holds juvenile records a state statute
    keeps confidential)."""

    hipaa_covered = "hipaa_covered"
    part2_program = "part2_program"
    ferpa_agency = "ferpa_agency"
    cjis_agency = "cjis_agency"
    vawa_funded = "vawa_funded"
    voca_funded = "voca_funded"
    juvenile_records = "juvenile_records"


class OrgType(StrEnum):
    """The kind of organisation a party is (the coordination registry's types)."""

    OVP = "OVP"
    POLICE = "POLICE"
    HOSPITAL = "HOSPITAL"
    PUBLIC_HEALTH = "PUBLIC_HEALTH"
    SCHOOL_DISTRICT = "SCHOOL_DISTRICT"
    CVI_CBO = "CVI_CBO"
    VICTIM_SERVICES = "VICTIM_SERVICES"
    PSAP_911 = "PSAP_911"
    CIVILIAN_RESPONSE = "CIVILIAN_RESPONSE"
    PROBATION = "PROBATION"
    HOUSING = "HOUSING"
    WORKFORCE = "WORKFORCE"
    FAITH = "FAITH"
    OTHER = "OTHER"


class Regime(StrEnum):
    """The body of law a legal basis rests on."""

    HIPAA = "HIPAA"
    PART2 = "PART2"
    FERPA = "FERPA"
    CJIS = "CJIS"
    VAWA = "VAWA"
    STATE_STATUTE = "STATE_STATUTE"
    CONSENT = "CONSENT"
    CONTRACT = "CONTRACT"


PATHWAYS: dict[Regime, tuple[str, ...]] = {
    Regime.HIPAA: (
        "public_health_authority",  # 45 CFR 164.512(b)
        "limited_data_set_dua",  # 164.514(e)
        "de_identified_safe_harbor",  # 164.514(b)(2)
        "de_identified_expert_determination",  # 164.514(b)(1)
        "authorization",  # 164.508
        "research_waiver",  # 164.512(i)
        "health_oversight",  # 164.512(d)
    ),
    Regime.PART2: (
        "de_identified_public_health",  # 42 CFR 2.54
        "patient_consent",  # 2.31
        "research",  # 2.52
        "audit_evaluation",  # 2.53
        "qualified_service_organization",  # 2.11
    ),
    Regime.FERPA: (
        "studies",  # 34 CFR 99.31(a)(6)
        "audit_evaluation",  # 99.31(a)(3), 99.35
        "parental_consent",  # 99.30
        "de_identified",  # 99.31(b)
        "directory_information",  # 99.31(a)(11)
    ),
    Regime.CJIS: (
        "management_control_agreement",
        "information_exchange_agreement",
        "security_addendum",
    ),
    Regime.VAWA: (
        "written_time_limited_consent",  # 34 U.S.C. 12291(b)(2)(B)
        "aggregate_non_identifying",  # 12291(b)(2)(D)
        "statutory_or_court_mandate",  # 12291(b)(2)(C)
    ),
}
"""The pathways each regime allows. Regimes not listed (state statute, consent, contract) take
any lower-case name, e.g. ``intergovernmental_agreement``."""

HIPAA_RECORD_LEVEL_PATHWAYS = ("public_health_authority", "limited_data_set_dua")
FERPA_LINKABLE_PATHWAYS = ("audit_evaluation", "studies")


class FieldType(StrEnum):
    """How a column's text is read: string, integer, number, boolean, date (YYYY-MM-DD) or
    datetime (YYYY-MM-DDTHH:MM:SS)."""

    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"


class FieldClass(StrEnum):
    """How identifying a field is: direct_identifier (names, dates of birth, MRN, SSID, phone —
    must be dropped, hashed or tokenized), record_identifier (case or visit numbers),
    quasi_identifier (identifies in combination: age, sex, race, place, dates),
    sensitive_attribute (diagnosis, victimization, status), free_text (notes, narratives — must
    be dropped), operational (codes and flags)."""

    direct_identifier = "direct_identifier"
    record_identifier = "record_identifier"
    quasi_identifier = "quasi_identifier"
    sensitive_attribute = "sensitive_attribute"
    free_text = "free_text"
    operational = "operational"


class FieldUse(StrEnum):
    """What the hub may do with a field: linkage_only (feeds linkage tokens), internal_join
    (joins records of one source), geocode_only (coarsened to an area at ingest), analysis
    (a stored value aggregates may use), none (never used)."""

    linkage_only = "linkage_only"
    internal_join = "internal_join"
    geocode_only = "geocode_only"
    analysis = "analysis"
    none = "none"


class LinkRole(StrEnum):
    """What a field means to the linkage engine; decides which token variants are made."""

    first_name = "first_name"
    middle_name = "middle_name"
    last_name = "last_name"
    birth_date = "birth_date"
    sex = "sex"
    zip = "zip"
    person_identifier = "person_identifier"  # a number the person keeps: SSN, state id, MRN
    street = "street"  # the address line: house number and street
    house_number = "house_number"  # the house number when it is a field of its own
    locality = "locality"  # city, town or suburb
    age = "age"  # age in whole years on the date in the field's ``age_at``
    # a home community area (number or name), compared with home ZIPs through the shipped
    # crosswalk (hub/data/community_areas.txt)
    community_area = "community_area"


class TimeUnit(StrEnum):
    """A calendar unit dates are truncated to."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class Geography(StrEnum):
    """An area a location is coarsened to (each has a public key set shipped with the hub)."""

    zip3 = "zip3"
    community_area = "community_area"


#: The areas the hub can coarsen a location to at ingest (``hub.pseudonymize``): ZIP3 needs only
#: the code's digits; a community area needs boundaries or a geocoder, which the hub does not
#: ship, so lint refuses an agreement asking for it, and ingest refuses one registered before.
COARSENED_AT_INGEST = frozenset({Geography.zip3})


class RowHandling(StrEnum):
    """What happens to rows a rule matches: reject (the upload is refused until they are
    removed), drop_row (silently dropped), aggregate_only (counted, never linked), no_linkage
    (stored, never linked), requires_consent (refused unless consent_field records consent)."""

    reject = "reject"
    drop_row = "drop_row"
    aggregate_only = "aggregate_only"
    no_linkage = "no_linkage"
    requires_consent = "requires_consent"
