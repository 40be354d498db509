"""Export an agreement as a W3C ODRL 2.2 ``Agreement`` policy in JSON-LD, for partners who use it.

``to_odrl(agreement)`` returns a plain ``dict`` ready for ``json.dumps``. It is an *export*: the
hub enforces the YAML spec natively, and this document states the same terms in ODRL so that a
partner's policy tooling can read them. ODRL's rule is that anything not permitted is
prohibited; the explicit prohibitions below are stated anyway, because they are what a lawyer
looks for, and the policy's ``conflict`` strategy is ``prohibit``.

Vocabularies: the ODRL 2.2 context (``http://www.w3.org/ns/odrl.jsonld``), W3C DPV
(``dpv:``, https://w3id.org/dpv#) for purposes and legal bases, and a small hub profile
(``hub:``, :data:`HUB_NAMESPACE`) for what neither can express: privacy-loss parameters, cell
sizes, field transforms, linkage. The profile namespace and the ``urn:ovphub:`` identifiers are
the hub's own; they are stable but not resolvable.

Mapping (spec → ODRL):

====================================  ============================================================
spec                                  ODRL
====================================  ============================================================
``agreement.id``@``version``          policy ``uid`` ``urn:ovphub:agreement:ID@VERSION``
title, dates, status, SHA-256         ``dcterms:title``, ``hub:effectiveDate``,
                                      ``hub:expiryDate``, ``hub:status``, ``hub:canonicalSha256``
data providers                        policy ``assigner`` (one ``Party``, or a
                                      ``PartyCollection`` whose members are ``partOf`` it); each
                                      dataset's rule has its own provider as ``assigner``
hub operator                          policy ``assignee``
``legal_basis[]``                     ``dpv:hasLegalBasis`` (``dpv:LegalBasis`` with
                                      ``hub:regime``, ``hub:pathway``, ``dcterms:source``)
each dataset                          permission ``use`` on the dataset (an asset ``partOf`` the
                                      agreement's data collection), constrained by ``purpose``
                                      ``isAnyOf`` the permitted purposes and ``dateTime`` within
                                      [effective, expiry]; duties: ``anonymize`` per field not
                                      kept as sent (refined by ``hub:field``/``hub:transform``),
                                      ``delete`` per retention period (``elapsedTime lteq``),
                                      ``obtainConsent`` when rows need consent. Row rules are
                                      stated on the asset as ``hub:rowRule``.
``linkage.link_with``                 permission ``hub:link`` with ``hub:linkedWith isAnyOf``
each approved aggregate               permission ``distribute`` on the aggregate (an asset
                                      ``hub:derivedFrom`` its dataset, ``partOf`` the output
                                      collection) with ``recipient isAnyOf`` allowed recipients,
                                      ``purpose``, ``dateTime``, ``hub:rho`` or ``hub:epsilon``
                                      ``lteq`` one release's spend, ``hub:minCellSize gteq``.
                                      A sum or mean states ``hub:value`` (``hub:field`` or
                                      ``hub:daysBetween``, ``hub:bounds``); a rate states
                                      ``hub:numerator`` (``hub:filter``, ``hub:daysBetween`` and
                                      ``hub:atMostDays``, ``hub:linkedEvent`` with
                                      ``hub:dataset``, ``hub:timeField``, ``hub:filter``,
                                      ``hub:daysFrom``, ``hub:daysTo``).
                                      (ODRL's own ``aggregate`` action means "put into a
                                      collection", not statistical aggregation, so it is not used.)
``purposes.prohibited``               one prohibition ``use`` per purpose (``purpose eq``)
``record_level_release: prohibited``  prohibition ``distribute`` on the data collection
``recipients_denied``                 prohibition ``distribute`` on the outputs, ``recipient
                                      isAnyOf`` the denied recipients
``prohibited_dimensions``             prohibition ``distribute`` on the outputs,
                                      ``hub:dimension isAnyOf``
``linkage.prohibited_with``           prohibition ``hub:link``, ``hub:linkedWith isAnyOf``; no
                                      linkage at all → prohibition ``hub:link`` unconstrained
``reidentification: prohibited``      prohibition ``hub:reidentify``
privacy model, budget, bound          ``hub:privacy`` on the policy
incident notice, statutory clocks     obligations ``inform`` with ``elapsedTime lteq``
``retention.on_termination``          obligation ``delete`` (``hub:trigger`` termination)
====================================  ============================================================
"""

from __future__ import annotations

from typing import Any

from contracts.model import Agreement, Condition, Dataset, Party, Transform, Value
from contracts.readable import aggregate_words as aw
from contracts.readable import words as w

__all__ = ["DPV_NAMESPACE", "HUB_NAMESPACE", "ODRL_CONTEXT", "to_odrl"]

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
HUB_NAMESPACE = "urn:ovphub:odrl:"
DPV_NAMESPACE = "https://w3id.org/dpv#"
HUB_PROFILE = "urn:ovphub:odrl:profile:1"
CONTEXT: list[Any] = [
    ODRL_CONTEXT,
    {
        "hub": HUB_NAMESPACE,
        "dpv": DPV_NAMESPACE,
        "dcterms": "http://purl.org/dc/terms/",
        "vcard": "http://www.w3.org/2006/vcard/ns#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "odrl": "http://www.w3.org/ns/odrl/2/",
    },
]

JSON = dict[str, Any]


def party_uid(party_id: str) -> str:
    return f"urn:ovphub:party:{party_id}"


def dataset_uid(dataset_id: str) -> str:
    return f"urn:ovphub:dataset:{dataset_id}"


def aggregate_uid(agreement: Agreement, aggregate_id: str) -> str:
    return f"urn:ovphub:aggregate:{agreement.id}:{aggregate_id}"


def policy_uid(agreement: Agreement) -> str:
    return f"urn:ovphub:agreement:{agreement.ref}"


def _date(value: object) -> JSON:
    return {"@value": str(value), "@type": "xsd:date"}


def _duration(value: str) -> JSON:
    return {"@value": value, "@type": "xsd:duration"}


def _constraint(left: str, operator: str, right: Any) -> JSON:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def _purpose_iri(agreement: Agreement, purpose: str) -> JSON:
    return {"@id": agreement.purposes.dpv_map.get(purpose, f"hub:purpose:{purpose}")}


def _recipient_iri(recipient: str) -> JSON:
    if recipient.startswith("org:"):
        return {"@id": party_uid(recipient)}
    return {"@id": f"hub:recipient:{recipient}"}


def _party(party: Party) -> JSON:
    return {
        "@type": "Party",
        "uid": party_uid(party.id),
        "vcard:fn": party.legal_name,
        "hub:role": party.role.value,
        **({"hub:regimeFlag": [f.value for f in party.regime_flags]} if party.regime_flags else {}),
    }


def _assigner(agreement: Agreement) -> JSON | None:
    providers = [p for p in agreement.parties if p.role == "data_provider"]
    if len(providers) == 1:
        return _party(providers[0])
    if not providers:
        return None
    collection = f"{policy_uid(agreement)}:providers"
    return {
        "@type": "PartyCollection",
        "uid": collection,
        "hub:member": [{**_party(p), "partOf": collection} for p in providers],
    }


def _assignee(agreement: Agreement) -> JSON | None:
    operator = next((p for p in agreement.parties if p.role == "hub_operator"), None)
    return _party(operator) if operator else None


def _in_force(agreement: Agreement) -> list[JSON]:
    head = agreement.agreement
    return [
        _constraint("dateTime", "gteq", _date(head.effective_date)),
        _constraint("dateTime", "lteq", _date(head.expiry_date)),
    ]


def _permitted_purposes(agreement: Agreement) -> JSON:
    return _constraint(
        "purpose",
        "isAnyOf",
        [_purpose_iri(agreement, p) for p in agreement.purposes.permitted],
    )


def _dataset_asset(agreement: Agreement, dataset: Dataset) -> JSON:
    asset: JSON = {
        "@type": "Asset",
        "uid": dataset_uid(dataset.id),
        "partOf": f"{policy_uid(agreement)}:data",
        "dcterms:title": dataset.title,
        "hub:provider": party_uid(dataset.provider),
        "hub:recordKey": dataset.record_key,
    }
    if dataset.row_rules:
        asset["hub:rowRule"] = [
            {
                "hub:when": r.when,
                "hub:handling": r.handling.value,
                **({"dcterms:source": r.cite} if r.cite else {}),
            }
            for r in dataset.row_rules
        ]
    return asset


def _transform(transform: Transform) -> str:
    """``keyed_hash``, ``truncate:day``, ``bin:0,12,18``, ``geo_coarsen:zip3`` — a plain string,
    since a JSON object here would be read as an RDF node and lost."""
    authored = transform.authored()
    if isinstance(authored, str):
        return authored
    ((kind, arg),) = authored.items()
    shown = ",".join(w.number(x) for x in arg) if isinstance(arg, list) else str(arg)
    if isinstance(arg, float):
        shown = w.number(arg)
    return f"{kind}:{shown}"


def _anonymize_duties(dataset: Dataset) -> list[JSON]:
    return [
        {
            "action": [
                {
                    "rdf:value": {"@id": "odrl:anonymize"},
                    "refinement": [
                        _constraint("hub:field", "eq", f.name),
                        _constraint("hub:transform", "eq", _transform(f.transform)),
                    ],
                }
            ]
        }
        for f in dataset.fields
        if f.transform.kind != "keep"
    ]


def _delete_duties(agreement: Agreement, dataset: Dataset) -> list[JSON]:
    r = agreement.retention
    if r is None:
        return []
    duties = []
    for part, period in (
        ("raw_upload", r.raw_upload),
        ("pseudonymized_tables", r.pseudonymized_tables),
        ("linkage_tokens", r.linkage_tokens),
    ):
        duty: JSON = {
            "action": "delete",
            "target": f"{dataset_uid(dataset.id)}:{part}",
            "constraint": [_constraint("elapsedTime", "lteq", _duration(period))],
        }
        if r.destruction:
            duty["hub:method"] = r.destruction.method
            duty["hub:within"] = _duration(r.destruction.within)
        duties.append(duty)
    return duties


def _dataset_permission(agreement: Agreement, dataset: Dataset, assignee: str | None) -> JSON:
    duties = _anonymize_duties(dataset) + _delete_duties(agreement, dataset)
    consent = agreement.consent
    if consent.required and (not consent.datasets or dataset.id in consent.datasets):
        duty: JSON = {"action": "obtainConsent"}
        if consent.field:
            duty["hub:consentField"] = consent.field
            duty["hub:validValue"] = list(consent.valid_values)
        if consent.expiry_field:
            duty["hub:consentExpiryField"] = consent.expiry_field
        duties.append(duty)
    rule: JSON = {
        "uid": f"{policy_uid(agreement)}:use:{dataset.id}",
        "target": _dataset_asset(agreement, dataset),
        "assigner": party_uid(dataset.provider),
        "action": "use",
        "constraint": [_permitted_purposes(agreement), *_in_force(agreement)],
        "duty": duties,
    }
    if assignee:
        rule["assignee"] = assignee
    return rule


def _value(value: Value) -> JSON:
    out: JSON = {"hub:bounds": list(value.bounds)}
    if value.field is not None:
        out["hub:field"] = value.field
    if value.days_between is not None:
        out["hub:daysBetween"] = list(value.days_between)
    return out


def _numerator(condition: Condition) -> JSON:
    out: JSON = {}
    if condition.filters:
        out["hub:filter"] = {k: list(v) for k, v in condition.filters.items()}
    if condition.days_between is not None:
        out["hub:daysBetween"] = list(condition.days_between)
        out["hub:atMostDays"] = condition.at_most_days
    event = condition.linked
    if event is not None:
        linked: JSON = {
            "hub:dataset": dataset_uid(event.dataset),
            "hub:timeField": event.time_field,
            "hub:daysFrom": event.days_from,
            "hub:daysTo": event.days_to,
        }
        if event.filters:
            linked["hub:filter"] = {k: list(v) for k, v in event.filters.items()}
        out["hub:linkedEvent"] = linked
    return out


def _aggregate_permission(agreement: Agreement, index: int) -> JSON:
    out = agreement.outputs
    aggregate = out.aggregates[index]
    p = out.privacy
    spend = round(aggregate.budget_share * p.budget.per_period, 12)
    target: JSON = {
        "@type": "Asset",
        "uid": aggregate_uid(agreement, aggregate.id),
        "partOf": f"{policy_uid(agreement)}:outputs",
        "dcterms:title": aggregate.title,
        "dcterms:description": aw.aggregate_brief(aggregate),
        "hub:derivedFrom": dataset_uid(aggregate.dataset),
        "hub:measure": aggregate.measure,
        "hub:dimension": list(aggregate.dimensions),
        "hub:channel": aggregate.channel,
    }
    if aggregate.filters:
        target["hub:filter"] = {k: list(v) for k, v in aggregate.filters.items()}
    if aggregate.requires_linkage:
        target["hub:requiresLinkage"] = [dataset_uid(d) for d in aggregate.requires_linkage]
    if aggregate.value is not None:
        target["hub:value"] = _value(aggregate.value)
    if aggregate.numerator is not None:
        target["hub:numerator"] = _numerator(aggregate.numerator)
    constraints = [
        _constraint("recipient", "isAnyOf", [_recipient_iri(r) for r in out.recipients_allowed]),
        _permitted_purposes(agreement),
        *_in_force(agreement),
        _constraint("hub:rho" if p.model == "zcdp" else "hub:epsilon", "lteq", spend),
    ]
    if out.min_cell:
        constraints.append(_constraint("hub:minCellSize", "gteq", out.min_cell))
    return {
        "uid": f"{policy_uid(agreement)}:release:{aggregate.id}",
        "target": target,
        "action": "distribute",
        "constraint": constraints,
    }


def _linkage_rules(agreement: Agreement, data: str) -> tuple[list[JSON], list[JSON]]:
    link = agreement.linkage
    base = policy_uid(agreement)
    permissions: list[JSON] = []
    prohibitions: list[JSON] = []
    if link.permitted and link.link_with:
        permissions.append(
            {
                "uid": f"{base}:link",
                "target": data,
                "action": "hub:link",
                "constraint": [
                    _constraint(
                        "hub:linkedWith",
                        "isAnyOf",
                        [{"@id": dataset_uid(d)} for d in link.link_with],
                    ),
                    *_in_force(agreement),
                ],
            }
        )
    if not link.permitted:
        prohibitions.append({"uid": f"{base}:no-link", "target": data, "action": "hub:link"})
    if link.prohibited_with:
        prohibitions.append(
            {
                "uid": f"{base}:no-link-with",
                "target": data,
                "action": "hub:link",
                "constraint": [
                    _constraint(
                        "hub:linkedWith",
                        "isAnyOf",
                        [{"@id": dataset_uid(d)} for d in link.prohibited_with],
                    )
                ],
            }
        )
    prohibitions.append(
        {"uid": f"{base}:no-reidentification", "target": data, "action": "hub:reidentify"}
    )
    return permissions, prohibitions


def _prohibitions(agreement: Agreement, data: str, outputs: str) -> list[JSON]:
    base = policy_uid(agreement)
    out = agreement.outputs
    rules: list[JSON] = [
        {
            "uid": f"{base}:no-purpose:{purpose}",
            "target": data,
            "action": "use",
            "constraint": [_constraint("purpose", "eq", _purpose_iri(agreement, purpose))],
        }
        for purpose in agreement.purposes.prohibited
    ]
    rules.append(
        {
            "uid": f"{base}:no-record-level-release",
            "target": data,
            "action": "distribute",
            "hub:recordLevel": True,
        }
    )
    if out.recipients_denied:
        rules.append(
            {
                "uid": f"{base}:no-recipient",
                "target": outputs,
                "action": "distribute",
                "constraint": [
                    _constraint(
                        "recipient",
                        "isAnyOf",
                        [_recipient_iri(r) for r in out.recipients_denied],
                    )
                ],
            }
        )
    if out.prohibited_dimensions:
        rules.append(
            {
                "uid": f"{base}:no-dimension",
                "target": outputs,
                "action": "distribute",
                "constraint": [
                    _constraint("hub:dimension", "isAnyOf", list(out.prohibited_dimensions))
                ],
            }
        )
    return rules


def _obligations(agreement: Agreement) -> list[JSON]:
    base = policy_uid(agreement)
    rules: list[JSON] = []
    i = agreement.incidents
    if i is not None:
        clocks = [("contract", i.notify_provider_within)]
        clocks += [(c.regime.value, c.max) for c in i.statutory]
        for source, within in clocks:
            rules.append(
                {
                    "uid": f"{base}:incident-notice:{source}",
                    "target": f"{base}:data",
                    "action": "inform",
                    "hub:event": "incident",
                    "hub:basis": source,
                    "constraint": [_constraint("elapsedTime", "lteq", _duration(within))],
                    **({"hub:notify": list(i.contacts)} if i.contacts else {}),
                }
            )
    r = agreement.retention
    if r is not None:
        rules.append(
            {
                "uid": f"{base}:on-termination",
                "target": f"{base}:data",
                "action": "delete",
                "hub:trigger": "termination",
                "hub:returnFirst": r.on_termination == "return_then_destroy",
            }
        )
    return rules


def _privacy(agreement: Agreement) -> JSON:
    p = agreement.outputs.privacy
    loss = "hub:rho" if p.model == "zcdp" else "hub:epsilon"
    block: JSON = {
        "hub:model": p.model,
        "hub:unit": p.unit,
        f"{loss}PerPeriod": p.budget.per_period,
        "hub:budgetPeriod": _duration(p.budget.period),
        f"{loss}Lifetime": p.budget.lifetime,
        "hub:maxRowsPerPerson": p.contribution_bound.max_rows_per_person_per_period,
        "hub:contributionPeriod": _duration(p.contribution_bound.period),
        "hub:minCellSize": agreement.outputs.min_cell,
    }
    if p.budget.delta_for_reporting is not None:
        block["hub:deltaForReporting"] = p.budget.delta_for_reporting
    return block


def to_odrl(agreement: Agreement) -> JSON:
    """The agreement as an ODRL 2.2 ``Agreement`` (JSON-LD), following the mapping above."""
    head = agreement.agreement
    base = policy_uid(agreement)
    data, outputs = f"{base}:data", f"{base}:outputs"
    assignee = _assignee(agreement)
    assignee_uid = assignee["uid"] if assignee else None
    link_permissions, link_prohibitions = _linkage_rules(agreement, data)
    policy: JSON = {
        "@context": CONTEXT,
        "@type": "Agreement",
        "uid": base,
        "profile": HUB_PROFILE,
        "conflict": "prohibit",
        "dcterms:title": head.title,
        "hub:agreementId": head.id,
        "hub:version": head.version,
        "hub:status": head.status.value,
        "hub:effectiveDate": _date(head.effective_date),
        "hub:expiryDate": _date(head.expiry_date),
        "hub:canonicalSha256": agreement.sha256(),
    }
    assigner = _assigner(agreement)
    if assigner:
        policy["assigner"] = assigner
    if assignee:
        policy["assignee"] = assignee
    policy["dpv:hasLegalBasis"] = [
        {
            "@type": "dpv:LegalBasis",
            "hub:regime": b.regime.value,
            "hub:pathway": b.pathway,
            "dcterms:description": w.legal_basis(b),
            **({"dcterms:source": b.citation} if b.citation else {}),
        }
        for b in agreement.legal_basis
    ]
    policy["hub:privacy"] = _privacy(agreement)
    policy["permission"] = [
        *(_dataset_permission(agreement, d, assignee_uid) for d in agreement.datasets),
        *link_permissions,
        *(_aggregate_permission(agreement, i) for i in range(len(agreement.outputs.aggregates))),
    ]
    policy["prohibition"] = _prohibitions(agreement, data, outputs) + link_prohibitions
    obligations = _obligations(agreement)
    if obligations:
        policy["obligation"] = obligations
    return policy
