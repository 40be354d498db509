"""Rules on the agreement's own consistency: dates, parties and signatories, datasets and
fields, row rules, named checks, outputs, linkage, purposes, consent, retention, incidents,
amendments."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from contracts.conditions import ORDERING, ConditionError, parse_condition
from contracts.lint import measures
from contracts.lint.base import (
    Finding,
    Subject,
    consent_gate,
    duplicates,
    flagged_datasets,
    rule,
)
from contracts.model import (
    CHECKS,
    COARSENED_AT_INGEST,
    TIME_DIMENSIONS,
    Dataset,
    DatasetField,
    FieldClass,
    FieldType,
    LinkRole,
    PartyRole,
    RegimeFlag,
    RowHandling,
    TimeUnit,
    semver_key,
)
from contracts.plan import field_keys

IDENTIFIER_TRANSFORMS = {"drop", "keyed_hash", "linkage_token"}
TYPE_TRANSFORMS: dict[str, set[FieldType]] = {
    "truncate": {FieldType.date, FieldType.datetime},
    "bin": {FieldType.integer, FieldType.number},
    "top_code": {FieldType.integer, FieldType.number},
    "geo_coarsen": {FieldType.string},
}
#: The transforms a field's ``use`` allows, where it limits them: a field never used is not
#: stored, one used to place a location is stored only as its area, one that joins records is
#: stored only keyed. (``analysis`` keeps a value in any form; ``linkage_only`` is checked
#: below with its link_as.)
USE_TRANSFORMS: dict[str, frozenset[str]] = {
    "none": frozenset({"drop"}),
    "geocode_only": frozenset({"geo_coarsen", "drop"}),
    "internal_join": frozenset({"keyed_hash", "drop"}),
}
#: How a release's time field may be stored: release windows are whole months, and month,
#: quarter and year dimensions are made of months; a week straddles two months, and a date
#: truncated to its quarter or year lands in that period's first month (a March row would be
#: counted in January, or fall outside a window that starts in March).
PLACEABLE_UNITS = (None, TimeUnit.day, TimeUnit.month)
SIGNING_ROLES = (PartyRole.data_provider, PartyRole.hub_operator)
CONTACT = re.compile(r"^(org:[a-z][a-z0-9_]*)\.(business|privacy|security)$")


@rule("agreement")
def check_dates(s: Subject) -> Iterator[Finding]:
    h = s.agreement.agreement
    if h.expiry_date <= h.effective_date:
        yield (
            "agreement.expiry_date",
            f"expiry {h.expiry_date} is not after the effective date {h.effective_date}; set "
            "an expiry date later than the effective date",
        )
    if h.supersedes is not None and semver_key(h.supersedes) >= semver_key(h.version):
        yield (
            "agreement.supersedes",
            f"version {h.version} cannot supersede {h.supersedes}; a new version must have a "
            "higher number than the one it replaces",
        )


@rule("parties")
def check_parties(s: Subject) -> Iterator[Finding]:
    parties = s.agreement.parties
    for name in duplicates(p.id for p in parties):
        yield "parties", f"party {name} is listed more than once; list each party once"
    if not any(p.role == PartyRole.hub_operator for p in parties):
        yield "parties", "no party has role hub_operator; add the office that runs the hub"
    for i, p in enumerate(parties):
        for flag in duplicates(f.value for f in p.regime_flags):
            yield f"parties[{i}].regime_flags", f"{flag} is listed more than once"


@rule("parties", "signatories")
def check_signatories(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    party_ids = [p.id for p in a.parties]
    for i, sig in enumerate(a.signatories):
        if s.missing(sig.party, party_ids):
            yield (
                f"signatories[{i}].party",
                f"{sig.party} is not a party to this agreement; sign for one of: "
                + ", ".join(party_ids),
            )
    signing = {sig.party for sig in a.signatories}
    for i, p in enumerate(a.parties):
        if p.role in SIGNING_ROLES and p.id not in signing and p.id not in s.unparsed:
            yield (
                f"parties[{i}]",
                f"{p.id} ({p.role.value}) has no signatory; add the person who signs for it "
                "under signatories (party, name, title)",
            )


@rule("datasets", "parties")
def check_datasets(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    for name in duplicates(d.id for d in a.datasets):
        yield "datasets", f"dataset {name} is declared more than once; give each a unique id"
    for i, ds in enumerate(a.datasets):
        at = f"datasets[{i}]"
        provider = a.party(ds.provider)
        if provider is None:
            if ds.provider not in s.unparsed:
                yield f"{at}.provider", f"{ds.provider} is not one of this agreement's parties"
        elif provider.role != PartyRole.data_provider:
            yield (
                f"{at}.provider",
                f"{ds.provider} provides {ds.id} but its role is {provider.role.value}; make it "
                "a data_provider or name the party that sends the data",
            )
        for name in duplicates(f.name for f in ds.fields):
            yield f"{at}.fields", f"field {name} is declared more than once"
        names = [f.name for f in ds.fields]
        if s.missing(ds.record_key, names):
            yield f"{at}.record_key", f"record key {ds.record_key} is not one of the fields"
        for j, f in enumerate(ds.fields):
            yield from check_field(f, f"{at}.fields[{j}]")
            yield from check_age_at(ds, f, f"{at}.fields[{j}]")
            yield from check_area_link(f, f"{at}.fields[{j}]")
        for j, r in enumerate(ds.row_rules):
            rat = f"{at}.row_rules[{j}]"
            yield from check_condition(s, ds, names, r.when, f"{rat}.when")
            if r.handling == RowHandling.requires_consent and (
                r.consent_field is None or s.missing(r.consent_field, names)
            ):
                yield (
                    f"{rat}.consent_field",
                    "requires_consent needs consent_field naming the field that records consent",
                )
            if r.consent_field is not None and r.handling != RowHandling.requires_consent:
                yield (
                    f"{rat}.consent_field",
                    f"consent_field applies only to requires_consent, not {r.handling.value}; "
                    "remove it or change the handling",
                )


def check_condition(
    s: Subject, ds: Dataset, names: Sequence[str], when: str, at: str
) -> Iterator[Finding]:
    """Problems of a condition (``row_rules[].when``, ``checks[].when``) in dataset ``ds``,
    whose field names are ``names``."""
    try:
        cond = parse_condition(when)
    except ConditionError as exc:
        yield at, str(exc)
        return
    target = ds.field(cond.field)
    if not cond.every_row and s.missing(cond.field, names):
        yield at, f"the condition names {cond.field}, which is not a field"
    elif (
        cond.op in ORDERING
        and target is not None
        and target.type not in (FieldType.integer, FieldType.number)
    ):
        yield (
            at,
            f"`{cond.op}` compares numbers, but {cond.field} is {target.type.value}; use == or in",
        )


_ORDINALS = ("first", "second", "third")


@rule("datasets")
def check_dataset_checks(s: Subject) -> Iterator[Finding]:
    """Each named check exists, reads fields of its dataset, of the types it takes."""
    for i, ds in enumerate(s.agreement.datasets):
        names = [f.name for f in ds.fields]
        seen: set[tuple[str, tuple[str, ...], str | None]] = set()
        for k, c in enumerate(ds.checks):
            at = f"datasets[{i}].checks[{k}]"
            sig = CHECKS[c.check]
            if len(c.fields) != sig.arity:
                takes = "one field" if sig.arity == 1 else f"{sig.arity} fields"
                yield (
                    f"{at}.fields",
                    f"{c.check.value} takes {takes} ({', '.join(sig.roles)}), but "
                    f"{len(c.fields)} {'is' if len(c.fields) == 1 else 'are'} listed; list "
                    + ("exactly one" if sig.arity == 1 else f"exactly {sig.arity}, in that order"),
                )
            for j, name in enumerate(c.fields[: sig.arity]):
                f = ds.field(name)
                if f is None:
                    if s.missing(name, names):
                        yield (
                            f"{at}.fields[{j}]",
                            f"{name} is not a field of dataset {ds.id}; name one of its fields",
                        )
                elif f.type not in sig.fields[j]:
                    kinds = " or ".join(sorted(t.value for t in sig.fields[j]))
                    which = "" if sig.arity == 1 else f"its {_ORDINALS[j]} field, "
                    yield (
                        f"{at}.fields[{j}]",
                        f"{c.check.value} reads {which}{sig.roles[j]}, from a {kinds} field, but "
                        f"{name} is {f.type.value}",
                    )
            for name in duplicates(c.fields):
                yield f"{at}.fields", f"{name} is listed more than once; list different fields"
            if c.when is not None:
                yield from check_condition(s, ds, names, c.when, f"{at}.when")
            key = (c.check.value, c.fields, c.when)
            if key in seen:
                yield at, f"{c.check.value} on {', '.join(c.fields)} is declared twice; remove one"
            seen.add(key)


def check_area_link(f: DatasetField, at: str) -> Iterator[Finding]:
    """A community area links through the crosswalk of the areas the hub ships, so its values
    must be those areas: ``link_as: community_area`` needs ``keyset: community_area``."""
    if f.link_as == LinkRole.community_area and f.keyset != "community_area":
        yield (
            f"{at}.keyset",
            f"{f.name} is linked as a community area, compared with ZIPs through the areas the "
            "hub ships; set keyset: community_area so that only those areas are accepted",
        )


def check_age_at(ds: Dataset, f: DatasetField, at: str) -> Iterator[Finding]:
    """An age links only with the date it was taken on: ``link_as: age`` needs ``age_at``
    naming a date field of the dataset, and ``age_at`` means nothing without it."""
    if f.link_as != LinkRole.age:
        if f.age_at is not None:
            yield (
                f"{at}.age_at",
                f"age_at is for link_as: age, but {f.name} is not linked as an age",
            )
        return
    if f.type != FieldType.integer:
        yield f"{at}.type", f"{f.name} is linked as an age, so it must be an integer field"
    if f.age_at is None:
        yield (
            f"{at}.age_at",
            f"{f.name} is linked as an age; name the date it was taken on with age_at",
        )
        return
    day = ds.field(f.age_at)
    if day is None:
        yield f"{at}.age_at", f"{f.age_at} is not a field of dataset {ds.id}; name its date field"
    elif day.type not in (FieldType.date, FieldType.datetime):
        yield (
            f"{at}.age_at",
            f"age_at names {f.age_at}, a {day.type.value} field; name a date or datetime field",
        )


def check_field(f: DatasetField, at: str) -> Iterator[Finding]:
    kind = f.transform.kind
    if f.class_ == FieldClass.direct_identifier and kind not in IDENTIFIER_TRANSFORMS:
        yield (
            f"{at}.transform",
            f"{f.name} is a direct identifier but is kept ({kind}); use drop, keyed_hash or "
            "linkage_token",
        )
    if f.class_ == FieldClass.direct_identifier and f.use == "analysis":
        yield (
            f"{at}.use",
            f"{f.name} is a direct identifier and may not be used for analysis; use "
            "linkage_only, internal_join or none",
        )
    if f.class_ == FieldClass.free_text and kind != "drop":
        yield (
            f"{at}.transform",
            f"{f.name} is free text and may name people; its transform must be drop",
        )
    if f.class_ == FieldClass.record_identifier and kind not in ("drop", "keyed_hash"):
        yield f"{at}.transform", f"{f.name} is a record identifier; use keyed_hash or drop"
    wanted = USE_TRANSFORMS.get(f.use.value)
    if wanted is not None and kind not in wanted:
        yield (
            f"{at}.transform",
            f"{f.name} has use {f.use.value}, so its transform must be "
            f"{' or '.join(sorted(wanted))}, not {kind}",
        )
    if kind == "linkage_token" and f.link_as is None:
        yield f"{at}.link_as", f"{f.name} is a linkage token; say what it is with link_as"
    if kind == "linkage_token" and f.use != "linkage_only":
        yield f"{at}.use", f"{f.name} becomes a linkage token; its use must be linkage_only"
    if kind == "drop" and f.use not in ("none", "geocode_only"):
        yield (
            f"{at}.use",
            f"{f.name} is dropped at ingest, so its use cannot be {f.use.value}; set use: none "
            "or keep a transformed value",
        )
    area = f.transform.geo_coarsen
    if kind == "geo_coarsen" and area is not None and area not in COARSENED_AT_INGEST:
        yield (
            f"{at}.transform",
            f"{f.name} cannot be coarsened to {area.value} at ingest: the hub ships no "
            f"{area.value} boundaries or geocoder to place a location in one; coarsen a ZIP "
            f"to zip3, or have the agency send the {area.value} as a field of its own "
            "(transform: keep)",
        )
    if f.type == FieldType.boolean and f.values is not None:
        # Cells would be checked against these spellings, but stored, filtered and released
        # as true/false: values [Y, N] put every row outside the aggregates' key sets.
        yield (
            f"{at}.values",
            f"{f.name} is a boolean field: its type already allows true/false, yes/no, y/n "
            "and 1/0, stored as true or false; remove its values list",
        )
    allowed_types = TYPE_TRANSFORMS.get(kind)
    if allowed_types and f.type not in allowed_types:
        names = " or ".join(sorted(allowed_types))
        yield f"{at}.transform", f"{kind} applies to {names} fields, but {f.name} is {f.type}"
    if (f.min is not None or f.max is not None) and f.type not in (
        FieldType.integer,
        FieldType.number,
    ):
        yield f"{at}", f"min/max apply to numbers only, but {f.name} is {f.type}"
    if f.min is not None and f.max is not None and f.min > f.max:
        yield f"{at}.min", f"min {f.min} is greater than max {f.max}"


@rule("outputs", "datasets")
def check_outputs(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    out = a.outputs
    for name in duplicates(g.id for g in out.aggregates):
        yield "outputs.aggregates", f"aggregate {name} is declared more than once"
    total = sum(g.budget_share for g in out.aggregates)
    if total > 1 + 1e-9:
        yield (
            "outputs.aggregates",
            f"budget shares add up to {total:g}; they must add up to at most 1",
        )
    for r in sorted(set(out.recipients_denied) & set(out.recipients_allowed)):
        yield "outputs.recipients_allowed", f"{r} is both allowed and denied; remove one"
    for i, g in enumerate(out.aggregates):
        at = f"outputs.aggregates[{i}]"
        ds = a.dataset(g.dataset)
        if ds is None:
            if g.dataset not in s.unparsed:
                yield f"{at}.dataset", f"{g.dataset} is not a dataset of this agreement"
            continue
        names = [f.name for f in ds.fields]
        if g.time_field is not None:
            tf = ds.field(g.time_field)
            if (tf is None and s.missing(g.time_field, names)) or (
                tf is not None and tf.type not in (FieldType.date, FieldType.datetime)
            ):
                yield f"{at}.time_field", f"{g.time_field} is not a date field of {ds.id}"
            elif tf is not None and tf.transform.truncate not in PLACEABLE_UNITS:
                unit = tf.transform.truncate.value if tf.transform.truncate else "?"
                yield (
                    f"{at}.time_field",
                    f"{g.time_field} is stored truncated to {unit}, so its rows cannot be placed "
                    "in the months a release window and its time dimensions are made of; "
                    "truncate it to day or month",
                )
        for k, dim in enumerate(g.dimensions):
            dat = f"{at}.dimensions[{k}]"
            if dim in out.prohibited_dimensions:
                yield dat, f"{dim} is a prohibited dimension in this agreement; remove it"
            if dim in TIME_DIMENSIONS:
                if g.time_field is None:
                    yield dat, f"{dim} needs time_field: the date field it is taken from"
                continue
            f = ds.field(dim)
            if f is None:
                if s.missing(dim, names):
                    yield dat, f"{dim} is not a field of dataset {ds.id}"
            elif not measures.kept_for_analysis(f):
                yield dat, measures.not_kept(f)
            elif field_keys(f) is None:
                yield (
                    dat,
                    f"{dim} has no public list of values; declare `values` so that cells come "
                    "from a public key set, never from the data",
                )
        yield from measures.check_filters(s, ds, g.filters, f"{at}.filters")
        if g.value is not None:
            yield from measures.check_value(s, ds, g.value, f"{at}.value")
        yield from measures.check_numerator(s, ds, g, at)
        for event in g.linked_events:
            # A linked dataset of another agreement is checked when the set is linted together.
            other = a.dataset(event.dataset)
            if other is not None and other.id != ds.id:
                yield from measures.check_linked_fields(s, other, event, f"{at}.numerator.linked")


@rule("outputs", "linkage")
def check_aggregate_linkage(s: Subject) -> Iterator[Finding]:
    link = s.agreement.linkage
    for i, g in enumerate(s.agreement.outputs.aggregates):
        for k, name in enumerate(g.requires_linkage):
            if not link.permitted or name not in link.link_with:
                yield (
                    f"outputs.aggregates[{i}].requires_linkage[{k}]",
                    f"{g.id} needs linkage with {name}, which linkage does not permit; add it "
                    "to linkage.link_with or drop the aggregate",
                )
        for event in g.linked_events:
            if event.dataset not in g.requires_linkage:
                yield (
                    f"outputs.aggregates[{i}].numerator.linked.dataset",
                    f"{g.id} counts rows of {event.dataset}, which it can see only through "
                    f"linkage; add {event.dataset} to its requires_linkage",
                )


@rule("linkage", "datasets")
def check_linkage(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    if a.linkage.permitted and not a.linkage.link_with:
        yield "linkage.link_with", "linkage is permitted but link_with names no dataset"
    if not a.linkage.permitted and a.linkage.link_with:
        yield (
            "linkage.permitted",
            "link_with names datasets but linkage is not permitted; set permitted: true or "
            "empty link_with",
        )
    for name in sorted(set(a.linkage.link_with) & set(a.linkage.prohibited_with)):
        yield "linkage.link_with", f"{name} is both in link_with and prohibited_with"
    has_tokens = any(f.transform.kind == "linkage_token" for ds in a.datasets for f in ds.fields)
    if a.linkage.permitted and not has_tokens:
        yield "linkage.permitted", "linkage is permitted but no field is a linkage_token"
    method = a.linkage.method
    if method is not None and method.type != "keyed_hash_tokens":
        yield (
            "linkage.method.type",
            f"the hub links keyed hash tokens only and cannot use {method.type}; set "
            "type: keyed_hash_tokens",
        )
    if method is not None and method.key_custody != "hub":
        yield (
            "linkage.method.key_custody",
            f"the hub makes tokens with keys it holds itself and has no {method.key_custody} "
            "to hand them to; set key_custody: hub",
        )


@rule("purposes")
def check_purposes(s: Subject) -> Iterator[Finding]:
    p = s.agreement.purposes
    for i, name in enumerate(p.permitted):
        if name in p.prohibited:
            yield (
                f"purposes.permitted[{i}]",
                f"{name} is both permitted and prohibited; remove it from one of the lists",
            )
    for key in ("permitted", "prohibited"):
        for name in duplicates(getattr(p, key)):
            yield f"purposes.{key}", f"{name} is listed more than once"
    for name in p.dpv_map:
        if name not in p.permitted and name not in p.prohibited:
            yield f"purposes.dpv_map.{name}", f"{name} is not one of the purposes"


@rule("consent", "datasets")
def check_consent(s: Subject) -> Iterator[Finding]:
    a, c = s.agreement, s.agreement.consent
    for k, name in enumerate(c.datasets):
        if s.missing(name, [d.id for d in a.datasets]):
            yield f"consent.datasets[{k}]", f"{name} is not a dataset of this agreement"
    if not c.required:
        return
    if c.field is None:
        yield "consent.field", "consent is required; name the field that records it"
        return
    if not c.valid_values:
        yield "consent.valid_values", f"list the values of {c.field} that count as valid consent"
    scope = [d for d in a.datasets if not c.datasets or d.id in c.datasets]
    vawa: set[int] = set()
    if "parties" in s.parsed:
        flags = (RegimeFlag.vawa_funded, RegimeFlag.voca_funded)
        vawa = {i for i, _, _ in flagged_datasets(a, *flags)}
    for ds in scope:
        i = a.datasets.index(ds)
        f = ds.field(c.field)
        if f is None:
            if c.field not in s.unparsed:
                yield (
                    "consent.field",
                    f"{ds.id} has no field {c.field}; declare it, or limit consent.datasets",
                )
            continue
        if f.values is not None:
            unknown = [v for v in c.valid_values if v not in f.values]
            if unknown:
                yield "consent.valid_values", f"{unknown} are not values of {ds.id}.{c.field}"
        if c.expiry_field is not None:
            e = ds.field(c.expiry_field)
            if e is None and c.expiry_field not in s.unparsed:
                yield "consent.expiry_field", f"{ds.id} has no field {c.expiry_field}"
            elif e is not None and e.type not in (FieldType.date, FieldType.datetime):
                yield "consent.expiry_field", f"{c.expiry_field} in {ds.id} is not a date field"
        handlings = (RowHandling.reject, RowHandling.drop_row)
        if i in vawa:
            continue  # law.check_vawa says it, with the stricter rule VAWA sets
        if consent_gate(ds, c.field, c.valid_values, handlings) is None:
            yield (
                f"datasets[{i}].row_rules",
                f"consent is required but {ds.id} lets rows without it in; add "
                f"{{when: every row, handling: requires_consent, consent_field: {c.field}}}",
            )


@rule("retention", "parties")
def check_retention(s: Subject) -> Iterator[Finding]:
    r = s.agreement.retention
    if r is None or r.destruction is None or r.destruction.certificate_to is None:
        return
    to = r.destruction.certificate_to
    if s.missing(to, [p.id for p in s.agreement.parties]):
        yield "retention.destruction.certificate_to", f"{to} is not a party to this agreement"


@rule("incidents", "parties")
def check_incidents(s: Subject) -> Iterator[Finding]:
    if s.agreement.incidents is None:
        return
    party_ids = [p.id for p in s.agreement.parties]
    for k, contact in enumerate(s.agreement.incidents.contacts):
        at = f"incidents.contacts[{k}]"
        match = CONTACT.match(contact)
        if match is None:
            yield at, f"write {contact!r} as a party and contact, e.g. org:ovp.privacy"
        elif s.missing(match[1], party_ids):
            yield at, f"{match[1]} is not a party to this agreement"


@rule("amendments", "agreement")
def check_amendments(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    for name in duplicates(m.version for m in a.amendments):
        yield "amendments", f"version {name} has more than one amendment entry; merge them"
    if not a.amendments:
        return
    latest = max(a.amendments, key=lambda m: semver_key(m.version))
    if latest.version != a.version:
        i = a.amendments.index(latest)
        if semver_key(latest.version) > semver_key(a.version):
            yield (
                f"amendments[{i}].version",
                f"amendment {latest.version} is later than this agreement's version "
                f"{a.version}; set agreement.version to {latest.version} or fix the entry",
            )
        else:
            yield (
                "amendments",
                f"the latest amendment is {latest.version} but the agreement is version "
                f"{a.version}; add an amendment for {a.version} saying what changed",
            )


@rule("approvals_required")
def check_approvals(s: Subject) -> Iterator[Finding]:
    for name in duplicates(s.agreement.approvals_required):
        yield "approvals_required", f"{name} is listed more than once"
