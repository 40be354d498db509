"""The sentence for each kind of change the diff finds.

A rule is registered for a path pattern (``datasets[*].fields[*].required``) and returns a
sentence, or ``None`` to fall back to the generic one, which names the path in words ("changes
the delivery frequency of dataset referrals from weekly to daily"). A rule for ``a.b.*`` covers
everything under ``a.b`` that has no rule of its own. Rules read the two agreements for context
— a field's class and transform, the budget's period and symbol, a party's legal name — and
never fail on a value they do not expect: the diff must describe every change, including
changes to agreements that do not lint. The rules for what an aggregate counts (its filters,
the value of a sum or mean, the numerator of a rate) are in ``measure_sentences.py``.
"""

from __future__ import annotations

from contracts.model import Agreement, LegalBasis, RowRule
from contracts.readable import aggregate_words as aw
from contracts.readable import measure_sentences  # noqa: F401  (registers its rules)
from contracts.readable import words as w
from contracts.readable.phrasing import (
    RULES,
    Ctx,
    Difference,
    fmt,
    generic,
    more,
    pattern,
    rule,
    toggle,
    words_for,
)

__all__ = ["sentence"]


def sentence(d: Difference, before: Agreement, after: Agreement) -> str:
    """The plain-language sentence for one difference."""
    c = Ctx(d, before, after)
    key = pattern(d.loc)
    candidates = [key] + [key.rsplit(".", n)[0] + ".*" for n in range(1, key.count(".") + 1)]
    for candidate in candidates:
        found = RULES.get(candidate)
        if found is not None:
            text = found(c)
            if text is not None:
                return text
            break
    return generic(c)


# --- header, parties, law, purposes --------------------------------------------------------------


@rule("agreement.title")
def _title(c: Ctx) -> str:
    return f"changes the title from “{c.d.old}” to “{c.d.new}”"


@rule("agreement.tier")
def _tier(c: Ctx) -> str:
    return f"changes the kind of agreement from {words_for(w.TIER_WORDS, c.d.old)} to " + words_for(
        w.TIER_WORDS, c.d.new
    )


@rule("agreement.status")
def _status(c: Ctx) -> str:
    return f"changes the status from {fmt(c.d.old).replace('_', ' ')} to " + fmt(c.d.new).replace(
        "_", " "
    )


@rule("parties[*]")
def _party(c: Ctx) -> str | None:
    item = c.value
    if not isinstance(item, dict):
        return None
    role = words_for(w.ROLE_WORDS, item.get("role"))
    if c.d.kind == "added":
        return f"adds party {item.get('legal_name')} ({c.keys[0]}) as {role}"
    return f"removes party {item.get('legal_name')} ({c.keys[0]})"


@rule("parties[*].role")
def _party_role(c: Ctx) -> str:
    return (
        f"changes the role of {c.keys[0]} from {words_for(w.ROLE_WORDS, c.d.old)} to "
        f"{words_for(w.ROLE_WORDS, c.d.new)}"
    )


@rule("parties[*].legal_name")
def _party_name(c: Ctx) -> str | None:
    if c.d.kind != "changed":
        return None
    return f"renames party {c.keys[0]} from “{c.d.old}” to “{c.d.new}”"


@rule("parties[*].regime_flags")
def _flag(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    flag = f"{c.value} ({words_for(w.FLAG_WORDS, c.value)})"
    party = w.party_name(c.after, c.keys[0])
    if c.d.kind == "added":
        return f"marks {party} with the flag {flag}"
    return f"removes the flag {flag} from {party}"


@rule("parties[*].contacts", "parties[*].contacts.*")
def _contact(c: Ctx) -> str | None:
    loc = c.d.loc
    if len(loc) == 4 and c.d.kind != "changed":
        party = w.party_name(c.after, c.keys[0])
        if c.d.kind == "added":
            return f"adds a {loc[3]} contact for {party}: {fmt(c.d.new)}"
        return f"removes the {loc[3]} contact of {party}"
    if len(loc) == 3:
        party = w.party_name(c.after, c.keys[0])
        if c.d.kind == "added":
            return f"adds contacts for {party}: {fmt(c.d.new)}"
        return f"removes the contacts of {party}" if c.d.kind == "removed" else None
    role = loc[3] if len(loc) > 3 else "contact"
    what = w.humanize(loc[4]) if len(loc) > 4 else "details"
    party = w.party_name(c.after, c.keys[0])
    if c.d.old is None:
        return f"sets the {what} of {party}'s {role} contact to {fmt(c.d.new)}"
    if c.d.new is None:
        return f"removes the {what} of {party}'s {role} contact (was {fmt(c.d.old)})"
    return f"changes the {what} of {party}'s {role} contact from {fmt(c.d.old)} to {fmt(c.d.new)}"


@rule("legal_basis[*]")
def _basis(c: Ctx) -> str | None:
    item = c.value
    regime, _, pathway = c.keys[0].partition(":")
    try:
        words = w.legal_basis(LegalBasis.model_validate(item))
    except ValueError:
        words = f"{regime} {w.humanize(pathway)}"
    return f"{'adds' if c.d.kind == 'added' else 'removes'} the legal basis {words}"


@rule("purposes.permitted", "purposes.prohibited")
def _purpose(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    which = c.d.loc[-1]
    name = w.humanize(str(c.value))
    if c.d.kind == "added":
        return f"adds {name} to the {which} purposes"
    return f"removes {name} from the {which} purposes"


@rule("purposes.dpv_map.*")
def _dpv(c: Ctx) -> str:
    purpose = w.humanize(c.d.loc[-1])
    if c.d.kind == "added":
        return f"maps the purpose {purpose} to the DPV term {fmt(c.d.new)}"
    if c.d.kind == "removed":
        return f"removes the DPV term of the purpose {purpose} (was {fmt(c.d.old)})"
    return f"maps the purpose {purpose} to the DPV term {fmt(c.d.new)} instead of {fmt(c.d.old)}"


# --- datasets, fields, row rules ----------------------------------------------------------------


@rule("datasets[*]")
def _dataset(c: Ctx) -> str | None:
    item = c.value
    if c.d.kind == "removed":
        return f"removes dataset {c.keys[0]}"
    if not isinstance(item, dict):
        return None
    return (
        f"adds dataset {c.keys[0]} (“{item.get('title')}”, sent by "
        f"{w.party_name(c.after, str(item.get('provider')))})"
    )


@rule("datasets[*].unlisted_fields")
def _unlisted(c: Ctx) -> str:
    if c.d.new == "drop":
        return f"makes uploads of dataset {c.keys[0]} drop columns the agreement does not list"
    return f"makes uploads of dataset {c.keys[0]} with unlisted columns be refused"


@rule("datasets[*].fields[*]")
def _field(c: Ctx) -> str | None:
    side = c.after if c.d.kind == "added" else c.before
    field = c.field(side)
    if field is None:
        return None
    verb = "adds" if c.d.kind == "added" else "removes"
    return f"{verb} field {field.name}{c.in_dataset()} ({w.field_brief(field)})"


@rule("datasets[*].fields[*].required")
def _required(c: Ctx) -> str | None:
    return toggle(c, f"makes {c.field_ref()} a required field", f"makes {c.field_ref()} optional")


@rule("datasets[*].fields[*].transform")
def _transform(c: Ctx) -> str | None:
    old, new = c.field(c.before), c.field(c.after)
    if old is None or new is None:
        return None
    before, after = w.transform_name(old.transform), w.transform_name(new.transform)
    if before == after:  # only an argument the transform does not use changed
        before, after = f"({fmt(c.d.old)})", f"({fmt(c.d.new)})"
    return f"changes the transform of {c.keys[1]}{c.in_dataset()} from {before} to {after}"


@rule("datasets[*].fields[*].class")
def _class(c: Ctx) -> str:
    return (
        f"reclassifies {c.field_ref()} from {words_for(w.CLASS_WORDS, c.d.old)} to "
        f"{words_for(w.CLASS_WORDS, c.d.new)}"
    )


@rule("datasets[*].fields[*].use")
def _use(c: Ctx) -> str:
    return (
        f"changes {c.field_ref()} from {words_for(w.USE_WORDS, c.d.old)} to "
        f"{words_for(w.USE_WORDS, c.d.new)}"
    )


@rule("datasets[*].fields[*].values")
def _values(c: Ctx) -> str | None:
    if c.d.element:
        if c.d.kind == "added":
            return f"allows the value {c.value} in {c.field_ref()}"
        return f"no longer allows the value {c.value} in {c.field_ref()}"
    if c.d.old is None:
        return f"limits {c.field_ref()} to the values {fmt(c.d.new)}"
    if c.d.new is None:
        return f"stops limiting {c.field_ref()} to a list of values"
    return None


@rule("datasets[*].row_rules[*]")
def _row_rule(c: Ctx) -> str | None:
    try:
        words = w.row_rule_sentence(RowRule.model_validate(c.value))
    except ValueError:
        words = w.rows_where(c.keys[1])
    if c.d.kind == "added":
        return f"adds the rule{c.in_dataset()}: {words}"
    return f"removes the rule{c.in_dataset()}: {words}"


@rule("datasets[*].row_rules[*].handling")
def _handling(c: Ctx) -> str:
    return (
        f"changes what happens to {w.rows_where(c.keys[1])}{c.in_dataset()}: from "
        f"{words_for(w.HANDLING_SHORT, c.d.old)} to {words_for(w.HANDLING_SHORT, c.d.new)}"
    )


# --- linkage, outputs ----------------------------------------------------------------------------


@rule("linkage.permitted")
def _linkage(c: Ctx) -> str | None:
    return toggle(c, "allows linkage", "stops allowing linkage altogether")


@rule("linkage.link_with")
def _link_with(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    verb = "allows" if c.d.kind == "added" else "stops allowing"
    return f"{verb} linkage with {c.value}"


@rule("linkage.prohibited_with")
def _prohibited_with(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    verb = "forbids" if c.d.kind == "added" else "no longer forbids"
    return f"{verb} linkage with {c.value}"


@rule("outputs.recipients_allowed", "outputs.recipients_denied")
def _recipients(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    who = w.recipient(c.after if c.d.kind == "added" else c.before, str(c.value))
    allowed = c.d.loc[-1] == "recipients_allowed"
    if allowed:
        if c.d.kind == "added":
            return f"adds {who} to the recipients"
        return f"removes {who} from the recipients"
    if c.d.kind == "added":
        return f"denies {who} any output"
    return f"no longer denies {who} outputs"


@rule("outputs.min_cell")
def _min_cell(c: Ctx) -> str | None:
    return more(c, "the minimum cell size")


@rule("outputs.prohibited_dimensions")
def _prohibited_dimension(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    if c.d.kind == "added":
        return f"prohibits breaking counts down by {c.value}"
    return f"no longer prohibits breaking counts down by {c.value}"


@rule("outputs.privacy.model")
def _model(c: Ctx) -> str:
    return (
        f"changes the privacy model from {words_for(w.MODEL_WORDS, c.d.old)} to "
        f"{words_for(w.MODEL_WORDS, c.d.new)}"
    )


@rule("outputs.privacy.budget.per_period")
def _per_period(c: Ctx) -> str | None:
    p = c.after.outputs.privacy
    noun = f"the {w.period_adjective(p.budget.period)} budget"
    return more(c, noun, w.number, f"{w.loss_symbol(p.model)}=")


@rule("outputs.privacy.budget.lifetime")
def _lifetime(c: Ctx) -> str | None:
    symbol = w.loss_symbol(c.after.outputs.privacy.model)
    return more(c, "the lifetime budget", w.number, f"{symbol}=")


@rule("outputs.privacy.budget.period", "outputs.privacy.contribution_bound.period")
def _period(c: Ctx) -> str:
    what = "budget" if c.d.loc[-2] == "budget" else "contribution bound"
    return (
        f"counts the {what} per {w.period_noun(str(c.d.new))} instead of per "
        f"{w.period_noun(str(c.d.old))}"
    )


@rule("outputs.privacy.contribution_bound.max_rows_per_person_per_period")
def _bound(c: Ctx) -> str:
    period = w.period_noun(c.after.outputs.privacy.contribution_bound.period)
    return f"lets each person count at most {fmt(c.d.new)} rows a {period} instead of " + fmt(
        c.d.old
    )


@rule("outputs.aggregates[*]")
def _aggregate(c: Ctx) -> str | None:
    if c.d.kind == "removed":
        return f"removes aggregate {c.keys[0]}"
    found = c.after.aggregate(c.keys[0])
    if found is None:
        return None
    return f"adds aggregate {found.id} ({aw.aggregate_brief(found)})"


@rule("outputs.aggregates[*].dimensions")
def _dimension(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    if c.d.kind == "added":
        return f"adds the dimension {w.humanize(str(c.value))} to aggregate {c.keys[0]}"
    return f"removes the dimension {w.humanize(str(c.value))} from aggregate {c.keys[0]}"


@rule("outputs.aggregates[*].measure")
def _measure(c: Ctx) -> str:
    return (
        f"makes aggregate {c.keys[0]} a {words_for(w.MEASURE_WORDS, c.d.new)} instead of a "
        f"{words_for(w.MEASURE_WORDS, c.d.old)}"
    )


@rule("outputs.aggregates[*].budget_share")
def _share(c: Ctx) -> str | None:
    return more(c, f"the budget share of aggregate {c.keys[0]}", w.percent)


@rule("outputs.aggregates[*].channel")
def _channel(c: Ctx) -> str:
    return (
        f"moves aggregate {c.keys[0]} from {words_for(w.CHANNEL_WORDS, c.d.old)} to "
        f"{words_for(w.CHANNEL_WORDS, c.d.new)}"
    )


@rule("outputs.aggregates[*].provider_review_days")
def _review(c: Ctx) -> str:
    return (
        f"gives providers {fmt(c.d.new)} day{'' if c.d.new == 1 else 's'} instead of "
        f"{fmt(c.d.old)} to review aggregate "
        f"{c.keys[0]} before its first publication"
    )


# --- retention, security, incidents, consent, governance ----------------------------------------

_KEPT = {
    "raw_upload": "uploaded files",
    "pseudonymized_tables": "pseudonymized records",
    "linkage_tokens": "linkage tokens",
    "aggregates": "published aggregates",
}


@rule("retention.raw_upload", "retention.pseudonymized_tables", "retention.linkage_tokens")
@rule("retention.aggregates")
def _kept(c: Ctx) -> str:
    what = _KEPT[c.d.loc[-1]]
    return f"changes how long {what} are kept from {fmt(c.d.old, True)} to {fmt(c.d.new, True)}"


@rule("retention.on_termination")
def _termination(c: Ctx) -> str:
    return (
        f"changes what happens when the agreement ends from “"
        f"{words_for(w.TERMINATION_WORDS, c.d.old)}” to “{words_for(w.TERMINATION_WORDS, c.d.new)}”"
    )


@rule("retention", "security", "incidents", "subcontractors")
def _section(c: Ctx) -> str | None:
    name = {"retention": "retention terms", "incidents": "incident terms"}.get(
        c.d.loc[0], f"{c.d.loc[0]} terms"
    )
    if c.d.kind == "added":
        return f"adds the {name}"
    if c.d.kind == "removed":
        return f"removes the {name}"
    return None


@rule("incidents.notify_provider_within")
def _notice(c: Ctx) -> str:
    old, new = fmt(c.d.old, True), fmt(c.d.new, True)
    return f"changes the incident notice to providers from {old} to {new}"


@rule("incidents.statutory[*]")
def _statutory(c: Ctx) -> str:
    regime = words_for(w.REGIME_WORDS, c.keys[0])
    item = c.value if isinstance(c.value, dict) else {}
    if c.d.kind == "added":
        return f"adds the {regime} notice deadline of {fmt(item.get('max'), True)}"
    return f"removes the {regime} notice deadline"


@rule("incidents.statutory[*].max")
def _statutory_max(c: Ctx) -> str:
    regime = words_for(w.REGIME_WORDS, c.keys[0])
    old, new = fmt(c.d.old, True), fmt(c.d.new, True)
    return f"changes the {regime} notice deadline from {old} to {new}"


@rule("subcontractors.allowed")
def _subcontractors(c: Ctx) -> str | None:
    return toggle(c, "allows subcontractors", "stops allowing subcontractors")


@rule("consent.required")
def _consent(c: Ctx) -> str | None:
    return toggle(c, "requires the person's consent on every row", "no longer requires consent")


@rule("consent.valid_values")
def _consent_value(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    if c.d.kind == "added":
        return f"accepts {c.value} as valid consent"
    return f"no longer accepts {c.value} as valid consent"


@rule("signatories[*]")
def _signatory(c: Ctx) -> str | None:
    item = c.value if isinstance(c.value, dict) else {}
    party = w.party_name(c.after, c.keys[0])
    if c.d.kind == "added":
        return f"adds signatory {item.get('name')} ({item.get('title')}) for {party}"
    return f"removes the signatory for {party} ({item.get('name')})"


@rule("approvals_required")
def _approval_required(c: Ctx) -> str | None:
    if not c.d.element:
        return None
    body = w.humanize(str(c.value))
    if c.d.kind == "added":
        return f"requires approval by the {body}"
    return f"no longer requires approval by the {body}"


@rule("approvals[*]")
def _approval(c: Ctx) -> str | None:
    item = c.value if isinstance(c.value, dict) else {}
    what = f"the {w.humanize(str(item.get('body')))} decision ({item.get('decision')}) of " + str(
        item.get("date")
    )
    return f"{'records' if c.d.kind == 'added' else 'removes'} {what}"


@rule("amendments[*]")
def _amendment(c: Ctx) -> str | None:
    item = c.value if isinstance(c.value, dict) else {}
    if c.d.kind == "added":
        return f"adds amendment {c.keys[0]} of {item.get('date')}: “{item.get('summary')}”"
    return f"removes amendment {c.keys[0]}"
