"""Rules an agreement must satisfy beyond its shape. Each check yields ``(yaml_path, sentence)``.

The sentence says what is wrong and what to change, in words legal staff use. Checks are plain
functions over the parsed model; ``lint_agreement`` runs them all and never stops at the first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from contracts.conditions import ConditionError, parse_condition
from contracts.model import (
    TIME_DIMENSIONS,
    Agreement,
    DatasetField,
    FieldClass,
    FieldType,
    PartyRole,
)
from contracts.plan import field_keys

Finding = tuple[str, str]

IDENTIFIER_TRANSFORMS = {"drop", "keyed_hash", "linkage_token"}
TYPE_TRANSFORMS: dict[str, set[FieldType]] = {
    "truncate": {FieldType.date, FieldType.datetime},
    "bin": {FieldType.integer, FieldType.number},
    "top_code": {FieldType.integer, FieldType.number},
    "geo_coarsen": {FieldType.string},
}


def _duplicates(names: list[str]) -> list[str]:
    return [name for name, n in Counter(names).items() if n > 1]


def check_dates(a: Agreement) -> Iterator[Finding]:
    if a.agreement.expiry_date <= a.agreement.effective_date:
        yield (
            "agreement.expiry_date",
            f"expiry {a.agreement.expiry_date} is not after the effective date "
            f"{a.agreement.effective_date}; set an expiry date later than the effective date",
        )


def check_parties(a: Agreement) -> Iterator[Finding]:
    for name in _duplicates([p.id for p in a.parties]):
        yield "parties", f"party {name} is listed more than once; list each party once"
    if not any(p.role == PartyRole.hub_operator for p in a.parties):
        yield "parties", "no party has role hub_operator; add the office that runs the hub"
    party_ids = {p.id for p in a.parties}
    for i, s in enumerate(a.signatories):
        if s.party not in party_ids:
            yield f"signatories[{i}].party", f"{s.party} is not a party to this agreement"


def check_datasets(a: Agreement) -> Iterator[Finding]:
    for name in _duplicates([d.id for d in a.datasets]):
        yield "datasets", f"dataset {name} is declared more than once"
    for i, ds in enumerate(a.datasets):
        at = f"datasets[{i}]"
        provider = a.party(ds.provider)
        if provider is None:
            yield f"{at}.provider", f"{ds.provider} is not one of this agreement's parties"
        elif provider.role != PartyRole.data_provider:
            yield f"{at}.provider", f"{ds.provider} provides data but its role is {provider.role}"
        for name in _duplicates([f.name for f in ds.fields]):
            yield f"{at}.fields", f"field {name} is declared more than once"
        if ds.field(ds.record_key) is None:
            yield f"{at}.record_key", f"record key {ds.record_key} is not one of the fields"
        for j, field in enumerate(ds.fields):
            yield from check_field(field, f"{at}.fields[{j}]")
        for j, rule in enumerate(ds.row_rules):
            rat = f"{at}.row_rules[{j}]"
            try:
                cond = parse_condition(rule.when)
            except ConditionError as exc:
                yield f"{rat}.when", str(exc)
                continue
            if ds.field(cond.field) is None:
                yield f"{rat}.when", f"the condition names {cond.field}, which is not a field"
            if rule.handling == "requires_consent" and (
                rule.consent_field is None or ds.field(rule.consent_field) is None
            ):
                yield (
                    f"{rat}.consent_field",
                    "requires_consent needs consent_field naming the field that records consent",
                )


def check_field(f: DatasetField, at: str) -> Iterator[Finding]:
    kind = f.transform.kind
    if f.class_ == FieldClass.direct_identifier and kind not in IDENTIFIER_TRANSFORMS:
        yield (
            f"{at}.transform",
            f"{f.name} is a direct identifier but is kept ({kind}); "
            "use drop, keyed_hash or linkage_token",
        )
    if f.class_ == FieldClass.free_text and kind != "drop":
        yield (
            f"{at}.transform",
            f"{f.name} is free text and may name people; its transform must be drop",
        )
    if f.class_ == FieldClass.record_identifier and kind not in ("drop", "keyed_hash"):
        yield f"{at}.transform", f"{f.name} is a record identifier; use keyed_hash or drop"
    if kind == "linkage_token" and f.link_as is None:
        yield f"{at}.link_as", f"{f.name} is a linkage token; say what it is with link_as"
    if kind == "linkage_token" and f.use != "linkage_only":
        yield f"{at}.use", f"{f.name} becomes a linkage token; its use must be linkage_only"
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


def dimension_field(a: Agreement, dataset_id: str, dim: str) -> DatasetField | None:
    ds = a.dataset(dataset_id)
    return ds.field(dim) if ds else None


def check_outputs(a: Agreement) -> Iterator[Finding]:
    out = a.outputs
    for name in _duplicates([g.id for g in out.aggregates]):
        yield "outputs.aggregates", f"aggregate {name} is declared more than once"
    total = sum(g.budget_share for g in out.aggregates)
    if total > 1 + 1e-9:
        yield (
            "outputs.aggregates",
            f"budget shares add up to {total:g}; they must add up to at most 1",
        )
    denied = set(out.recipients_denied) & set(out.recipients_allowed)
    for r in sorted(denied):
        yield "outputs.recipients_allowed", f"{r} is both allowed and denied; remove one"
    for i, g in enumerate(out.aggregates):
        at = f"outputs.aggregates[{i}]"
        ds = a.dataset(g.dataset)
        if ds is None:
            yield f"{at}.dataset", f"{g.dataset} is not a dataset of this agreement"
            continue
        if g.time_field is not None:
            tf = ds.field(g.time_field)
            if tf is None or tf.type not in (FieldType.date, FieldType.datetime):
                yield f"{at}.time_field", f"{g.time_field} is not a date field of {ds.id}"
        for k, dim in enumerate(g.dimensions):
            dat = f"{at}.dimensions[{k}]"
            if dim in out.prohibited_dimensions:
                yield dat, f"{dim} is a prohibited dimension in this agreement"
            if dim in TIME_DIMENSIONS:
                if g.time_field is None:
                    yield dat, f"{dim} needs time_field: the date field it is taken from"
                continue
            f = ds.field(dim)
            if f is None:
                yield dat, f"{dim} is not a field of dataset {ds.id}"
            elif not f.transform.keeps_value or f.transform.kind == "keyed_hash":
                yield dat, f"{dim} is not kept for analysis (transform {f.transform.kind})"
            elif field_keys(f) is None:
                yield (
                    dat,
                    f"{dim} has no public list of values; declare `values` so that cells "
                    "come from a public key set, never from the data",
                )
        for fname, values in g.filters.items():
            f = ds.field(fname)
            if f is None:
                yield f"{at}.filters.{fname}", f"{fname} is not a field of dataset {ds.id}"
            elif f.values is not None:
                unknown = [v for v in values if v not in f.values]
                if unknown:
                    yield f"{at}.filters.{fname}", f"values {unknown} are not allowed for {fname}"


def check_linkage(a: Agreement) -> Iterator[Finding]:
    if a.linkage.permitted and not a.linkage.link_with:
        yield "linkage.link_with", "linkage is permitted but link_with names no dataset"
    clash = set(a.linkage.link_with) & set(a.linkage.prohibited_with)
    for name in sorted(clash):
        yield "linkage.link_with", f"{name} is both in link_with and prohibited_with"
    has_tokens = any(f.transform.kind == "linkage_token" for ds in a.datasets for f in ds.fields)
    if a.linkage.permitted and not has_tokens:
        yield "linkage.permitted", "linkage is permitted but no field is a linkage_token"


CHECKS: tuple[Callable[[Agreement], Iterator[Finding]], ...] = (
    check_dates,
    check_parties,
    check_datasets,
    check_outputs,
    check_linkage,
)


def lint_agreement(a: Agreement) -> list[Finding]:
    return [finding for check in CHECKS for finding in check(a)]
