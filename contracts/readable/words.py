"""The agreement's vocabulary in plain words, shared by the rendering and the diff.

Every function here turns one spec value into the words a lawyer, a steward or a member of the
public reads: ``P3Y`` → "3 years", ``zcdp`` → "zero-concentrated DP", a HIPAA pathway → "HIPAA —
disclosure to a public health authority (45 CFR 164.512(b))". Unknown values (a state-statute
pathway, a purpose, a recipient category) fall back to their name with underscores as spaces, so
a new word in a spec still reads, if less well.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.conditions import ConditionError, parse_condition
from contracts.model import (
    Agreement,
    DatasetField,
    FieldType,
    LegalBasis,
    Privacy,
    Regime,
    RowRule,
    Transform,
)
from contracts.model.vocabulary import DURATION
from contracts.plan import bin_labels

REGIME_WORDS: dict[str, str] = {
    Regime.HIPAA: "HIPAA",
    Regime.PART2: "42 CFR Part 2",
    Regime.FERPA: "FERPA",
    Regime.CJIS: "CJIS Security Policy",
    Regime.VAWA: "VAWA",
    Regime.STATE_STATUTE: "State statute",
    Regime.CONSENT: "Consent",
    Regime.CONTRACT: "Contract",
}

PATHWAY_WORDS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("HIPAA", "public_health_authority"): (
        "disclosure to a public health authority",
        "45 CFR 164.512(b)",
    ),
    ("HIPAA", "limited_data_set_dua"): (
        "a limited data set under a data use agreement",
        "45 CFR 164.514(e)",
    ),
    ("HIPAA", "de_identified_safe_harbor"): (
        "de-identified data (Safe Harbor)",
        "45 CFR 164.514(b)(2)",
    ),
    ("HIPAA", "de_identified_expert_determination"): (
        "de-identified data (expert determination)",
        "45 CFR 164.514(b)(1)",
    ),
    ("HIPAA", "authorization"): ("the patient's written authorization", "45 CFR 164.508"),
    ("HIPAA", "research_waiver"): (
        "research under a waiver of authorization",
        "45 CFR 164.512(i)",
    ),
    ("HIPAA", "health_oversight"): ("health oversight", "45 CFR 164.512(d)"),
    ("PART2", "de_identified_public_health"): (
        "de-identified disclosure to a public health authority",
        "42 CFR 2.54",
    ),
    ("PART2", "patient_consent"): ("the patient's written consent", "42 CFR 2.31"),
    ("PART2", "research"): ("research", "42 CFR 2.52"),
    ("PART2", "audit_evaluation"): ("audit and evaluation", "42 CFR 2.53"),
    ("PART2", "qualified_service_organization"): (
        "a qualified service organization agreement",
        "42 CFR 2.11",
    ),
    ("FERPA", "studies"): (
        "studies for, or on behalf of, the educational agency",
        "34 CFR 99.31(a)(6)",
    ),
    ("FERPA", "audit_evaluation"): (
        "audit or evaluation of an education program by an authorized representative",
        "34 CFR 99.31(a)(3), 99.35",
    ),
    ("FERPA", "parental_consent"): (
        "written consent of a parent or eligible student",
        "34 CFR 99.30",
    ),
    ("FERPA", "de_identified"): ("de-identified records", "34 CFR 99.31(b)"),
    ("FERPA", "directory_information"): ("directory information", "34 CFR 99.31(a)(11)"),
    ("CJIS", "management_control_agreement"): ("a management control agreement", None),
    ("CJIS", "information_exchange_agreement"): ("an information exchange agreement", None),
    ("CJIS", "security_addendum"): ("the CJIS Security Addendum", None),
    ("VAWA", "written_time_limited_consent"): (
        "the survivor's informed, written, reasonably time-limited consent",
        "34 U.S.C. 12291(b)(2)(B)",
    ),
    ("VAWA", "aggregate_non_identifying"): (
        "aggregate, non-identifying data",
        "34 U.S.C. 12291(b)(2)(D)",
    ),
    ("VAWA", "statutory_or_court_mandate"): (
        "a statutory or court mandate",
        "34 U.S.C. 12291(b)(2)(C)",
    ),
}
"""Each known pathway in words, with the citation shown when the spec gives none."""

FLAG_WORDS = {
    "hipaa_covered": "a HIPAA covered entity",
    "part2_program": "a substance-use treatment program under 42 CFR Part 2",
    "ferpa_agency": "an educational agency under FERPA",
    "cjis_agency": "a criminal-justice agency under the CJIS Security Policy",
    "vawa_funded": "a VAWA-funded victim-service provider",
    "voca_funded": "a VOCA-funded victim-service provider",
    "juvenile_records": "a holder of juvenile records that state law keeps confidential",
}
ORG_TYPE_WORDS = {
    "OVP": "violence-prevention office",
    "POLICE": "police department",
    "HOSPITAL": "hospital",
    "PUBLIC_HEALTH": "public health department",
    "SCHOOL_DISTRICT": "school district",
    "CVI_CBO": "community violence-intervention organisation",
    "VICTIM_SERVICES": "victim-service provider",
    "PSAP_911": "911 answering point",
    "CIVILIAN_RESPONSE": "civilian crisis-response service",
    "PROBATION": "probation department",
    "HOUSING": "housing agency",
    "WORKFORCE": "workforce agency",
    "FAITH": "faith organisation",
    "OTHER": "other organisation",
}
ROLE_WORDS = {
    "data_provider": "data provider",
    "hub_operator": "hub operator",
    "data_recipient": "recipient of outputs",
}
TIER_WORDS = {
    "mou": "memorandum of understanding",
    "data_sharing_agreement": "data-sharing agreement",
    "data_use_license": "data use license",
}
CLASS_WORDS = {
    "direct_identifier": "direct identifier",
    "record_identifier": "record identifier",
    "quasi_identifier": "quasi-identifier",
    "sensitive_attribute": "sensitive attribute",
    "free_text": "free-text field",
    "operational": "operational field",
}
USE_WORDS = {
    "linkage_only": "used only for linkage",
    "internal_join": "used only to join records from the same source",
    "geocode_only": "used only to place the record in an area",
    "analysis": "used in analysis",
    "none": "not used",
}
HANDLING_WORDS = {
    "reject": (
        "are refused: the whole upload is rejected until they are removed",
        "is refused: the whole upload is rejected",
    ),
    "drop_row": ("are dropped at upload and never stored", "is dropped at upload and never stored"),
    "aggregate_only": (
        "are used only in aggregates, never linked",
        "is used only in aggregates, never linked",
    ),
    "no_linkage": (
        "are stored but never linked with other data",
        "is stored but never linked with other data",
    ),
    "requires_consent": (
        "must record the person's consent, or they are refused",
        "must record the person's consent, or it is refused",
    ),
}
"""What happens to the rows a rule matches: (several rows, every row)."""
HANDLING_SHORT = {
    "reject": "refused",
    "drop_row": "dropped",
    "aggregate_only": "used only in aggregates",
    "no_linkage": "never linked",
    "requires_consent": "refused without consent",
}
MEASURE_WORDS = {
    "count_rows": "count of rows",
    "count_persons": "count of distinct people",
    "sum": "sum",
    "mean": "mean",
    "rate_rows": "share of rows",
    "rate_persons": "share of people",
}
MODEL_WORDS = {"zcdp": "zero-concentrated DP", "pure_dp": "pure differential privacy"}
CHANNEL_WORDS = {
    "public_dashboard": "the public dashboard",
    "public_report": "a public report",
    "partner_report": "a report to partners only",
}
GEOGRAPHY_WORDS = {"zip3": "ZIP3", "community_area": "community area"}
PROFILE_WORDS = {
    "baseline": "the hub's baseline controls",
    "hipaa": "HIPAA Security Rule controls",
    "cjis": "CJIS Security Policy controls (US hosting, FIPS 140 encryption, multi-factor "
    "sign-in, fingerprint background checks, security training)",
}
HOSTING_WORDS = {
    "us_only": "in the United States only",
    "on_premises": "on the operator's own premises only",
    "any": "anywhere",
}
ENCRYPTION_WORDS = {
    "fips_140_validated": "FIPS 140-validated encryption",
    "aes_256": "AES-256 encryption",
    "none": "no encryption",
}
BACKGROUND_WORDS = {
    "none": "no background check",
    "name_based": "a name-based background check",
    "fingerprint": "a fingerprint-based background check",
}
LINKAGE_METHOD_WORDS = {
    "keyed_hash_tokens": "keyed hash tokens",
    "bloom_clk": "Bloom-filter encodings (CLKs)",
}
KEY_CUSTODY_WORDS = {"hub": "the hub", "linkage_unit": "a separate linkage unit"}
TERMINATION_WORDS = {
    "destroy": "the data is destroyed",
    "return_then_destroy": "the data is returned to its provider, then destroyed",
}
_PERIODS = {"P1M": ("month", "monthly"), "P3M": ("quarter", "quarterly"), "P1Y": ("year", "yearly")}
_UNITS = (
    ("year", 1),
    ("month", 2),
    ("week", 3),
    ("day", 4),
    ("hour", 6),
    ("minute", 7),
    ("second", 8),
)


def humanize(name: str) -> str:
    """``violence_trend_monitoring`` → "violence trend monitoring"."""
    return name.replace("_", " ")


def join_and(items: Iterable[str], last: str = "and") -> str:
    """``[a, b, c]`` → "a, b and c"; nothing → "nothing"."""
    words = list(items)
    if not words:
        return "nothing"
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def article(noun: str) -> str:
    """The noun with "a" or "an" in front."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def number(value: float) -> str:
    """A number as people write it: ``6.0`` → "6", ``0.05`` → "0.05"."""
    x = float(value)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def percent(share: float) -> str:
    return f"{number(round(share * 100, 6))}%"


def duration(value: str) -> str:
    """An ISO-8601 duration in words: ``P3Y`` → "3 years", ``PT24H`` → "24 hours",
    ``indefinite`` → "indefinitely". Anything else is returned as written."""
    if value == "indefinite":
        return "indefinitely"
    match = DURATION.match(value)
    if not match:
        return value
    parts = []
    for unit, group in _UNITS:
        text = match.group(group)
        if text:
            count = int(text[:-1])
            if count:
                parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return join_and(parts) if parts else "no time at all"


def is_zero_duration(value: str) -> bool:
    return duration(value) == "no time at all"


def period_noun(period: str) -> str:
    """``P1M`` → "month" (as in "per month")."""
    return _PERIODS[period][0] if period in _PERIODS else duration(period)


def period_adjective(period: str) -> str:
    """``P1M`` → "monthly" (as in "the monthly budget")."""
    return _PERIODS[period][1] if period in _PERIODS else f"{duration(period)}"


def loss_symbol(model: str) -> str:
    """ρ for zero-concentrated DP, ε for pure DP."""
    return "ρ" if model == "zcdp" else "ε"


def legal_basis(basis: LegalBasis) -> str:
    """ "HIPAA — disclosure to a public health authority (45 CFR 164.512(b))"."""
    regime = REGIME_WORDS.get(basis.regime, humanize(basis.regime))
    words, default_cite = PATHWAY_WORDS.get(
        (basis.regime.value, basis.pathway), (humanize(basis.pathway), None)
    )
    cite = basis.citation or default_cite
    return f"{regime} — {words}" + (f" ({cite})" if cite else "")


def party_name(agreement: Agreement, party_id: str) -> str:
    """A party's legal name, or its id when the agreement does not list it."""
    party = agreement.party(party_id)
    return party.legal_name if party else party_id


def recipient(agreement: Agreement, name: str) -> str:
    """ "public" → "the public", a party id → its legal name, a category → its words."""
    if name == "public":
        return "the public"
    if name.startswith("org:"):
        return party_name(agreement, name)
    return humanize(name)


def contact_ref(agreement: Agreement, ref: str) -> str:
    """``org:police.security`` → "Example Police Department's security contact (Name)"."""
    party_id, _, role = ref.partition(".")
    party = agreement.party(party_id)
    if party is None:
        return ref
    words = f"{party.legal_name}'s {role} contact" if role else party.legal_name
    contact = getattr(party.contacts, role, None) if party.contacts and role else None
    return f"{words} ({contact.name})" if contact is not None else words


def transform_name(transform: Transform) -> str:
    """What a transform is called: "keep", "drop", "truncate to month", "coarsen to ZIP3"."""
    if transform.kind == "truncate" and transform.truncate:
        return f"truncate to {transform.truncate.value}"
    if transform.kind == "bin" and transform.bin:
        return f"bin at {', '.join(number(e) for e in transform.bin)}"
    if transform.kind == "top_code" and transform.top_code is not None:
        return f"top-code at {number(transform.top_code)}"
    if transform.kind == "geo_coarsen" and transform.geo_coarsen:
        return f"coarsen to {GEOGRAPHY_WORDS.get(transform.geo_coarsen, transform.geo_coarsen)}"
    return humanize(transform.kind)


def _bands(transform: Transform, field_type: FieldType | None) -> str:
    edges = transform.bin or ()
    labels = bin_labels(edges, integer=field_type in (FieldType.integer, None))
    return ", ".join(label.replace("-", "–", 1) for label in labels)


def transform_short(transform: Transform, field_type: FieldType | None = None) -> str:
    """What happens to the value, briefly: "kept as ZIP3", "dropped", "kept to the day"."""
    kind = transform.kind
    if kind == "truncate" and transform.truncate:
        return f"kept to the {transform.truncate.value}"
    if kind == "bin":
        return f"kept in bands {_bands(transform, field_type)}"
    if kind == "top_code" and transform.top_code is not None:
        return f"top-coded at {number(transform.top_code)}"
    if kind == "geo_coarsen" and transform.geo_coarsen:
        return f"kept as {GEOGRAPHY_WORDS.get(transform.geo_coarsen, transform.geo_coarsen)}"
    return {
        "drop": "dropped",
        "keep": "kept as sent",
        "keyed_hash": "replaced by a keyed hash",
        "linkage_token": "turned into linkage tokens",
    }.get(kind, humanize(kind))


def transform_long(transform: Transform, field_type: FieldType | None = None) -> str:
    """What happens to the value, in full: "turned into keyed linkage tokens and never stored"."""
    kind = transform.kind
    if kind == "truncate" and transform.truncate:
        return f"kept only to the {transform.truncate.value}"
    if kind == "bin":
        return f"kept only as a band ({_bands(transform, field_type)})"
    if kind == "top_code" and transform.top_code is not None:
        cap = number(transform.top_code)
        return f"kept, with values above {cap} recorded as {cap}"
    if kind == "geo_coarsen" and transform.geo_coarsen == "zip3":
        return "kept only as ZIP3 (the first three digits of the ZIP code)"
    if kind == "geo_coarsen" and transform.geo_coarsen:
        return f"kept only as the {GEOGRAPHY_WORDS.get(transform.geo_coarsen)} that holds it"
    return {
        "drop": "dropped at upload and never stored",
        "keep": "kept as sent",
        "keyed_hash": "replaced by a keyed hash (HMAC-SHA256), so the value itself is never stored",
        "linkage_token": "turned into keyed linkage tokens and never stored",
    }.get(kind, humanize(kind))


def field_checks(field: DatasetField) -> str:
    """What upload checks a field's values against, in words."""
    checks = [article(field.type.value) if field.type != "datetime" else "a date and time"]
    checks.append("required in every row" if field.required else "optional")
    if field.values:
        checks.append(f"one of {', '.join(field.values)}")
    if field.min is not None and field.max is not None:
        checks.append(f"between {number(field.min)} and {number(field.max)}")
    elif field.min is not None:
        checks.append(f"at least {number(field.min)}")
    elif field.max is not None:
        checks.append(f"at most {number(field.max)}")
    if field.keyset:
        checks.append(f"a {GEOGRAPHY_WORDS.get(field.keyset, field.keyset)} on the hub's list")
    if field.pattern:
        checks.append("in a fixed format")
    return "; ".join(checks)


def field_sentence(field: DatasetField) -> str:
    """ "victim_dob: a direct identifier, used only for linkage, turned into keyed linkage
    tokens and never stored."""
    what = article(CLASS_WORDS.get(field.class_, humanize(field.class_)))
    use = USE_WORDS.get(field.use, humanize(field.use))
    sentence = f"{field.name}: {what}, {use}, {transform_long(field.transform, field.type)}."
    if field.description:
        sentence += f" {field.description.rstrip('.')}."
    return sentence


def field_brief(field: DatasetField) -> str:
    """ "quasi-identifier, kept as ZIP3" — for the diff."""
    what = CLASS_WORDS.get(field.class_, humanize(field.class_))
    return f"{what}, {transform_short(field.transform, field.type)}"


def _condition_values(text: str, op: str) -> list[str]:
    rest = text.split("in", 1)[1] if op == "in" else text.split(op, 1)[1]
    rest = rest.strip()
    if op == "in":
        rest = rest.strip("[]")
        return [v.strip().strip("'\"") for v in rest.split(",") if v.strip()]
    return [rest.strip("'\"")]


def rows_where(when: str) -> str:
    """``juvenile_flag == true`` → "rows where juvenile_flag is true"."""
    try:
        condition = parse_condition(when)
    except ConditionError:
        return f"rows matching “{when.strip()}”"
    if condition.every_row:
        return "every row"
    op = condition.op
    # parse_condition lower-cases values; show them as the author wrote them.
    after_field = when.strip()[len(condition.field) :]
    values = _condition_values(after_field, op if op != "in" else "in")
    verb = {
        "==": "is",
        "!=": "is not",
        "in": "is one of",
        "<": "is less than",
        "<=": "is at most",
        ">": "is more than",
        ">=": "is at least",
    }[op]
    shown = join_and(values, "or") if op == "in" else values[0]
    return f"rows where {condition.field} {verb} {shown}"


def row_rule_sentence(rule: RowRule) -> str:
    """ "rows where juvenile_flag is true are used only in aggregates, never linked
    (705 ILCS 405/1-7)"."""
    subject = rows_where(rule.when)
    plural, singular = HANDLING_WORDS.get(rule.handling, (humanize(rule.handling),) * 2)
    handled = singular if subject == "every row" else plural
    if rule.handling == "requires_consent" and rule.consent_field:
        handled = handled.replace("consent,", f"consent in {rule.consent_field},")
    return f"{subject} {handled}" + (f" ({rule.cite})" if rule.cite else "")


def privacy(p: Privacy) -> str:
    """ "zero-concentrated DP, ρ = 0.5 per month, 6 in total; each person counts at most 4 rows
    a year"."""
    symbol = loss_symbol(p.model)
    budget = p.budget
    bound = p.contribution_bound
    rows = bound.max_rows_per_person_per_period
    return (
        f"{MODEL_WORDS.get(p.model, p.model)}, {symbol} = {number(budget.per_period)} per "
        f"{period_noun(budget.period)}, {number(budget.lifetime)} in total; each person counts "
        f"at most {rows} row{'' if rows == 1 else 's'} a {period_noun(bound.period)}"
    )
