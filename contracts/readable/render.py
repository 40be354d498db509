"""An agreement as a plain-language document: Markdown or self-contained HTML.

``render_markdown(agreement)`` and ``render_html(agreement)`` are pure functions of the model.
The document is written for three readers at once — the lawyer checking terms, the steward
checking what their agency sends, the member of the public asking what happens to people's
data — so it follows the questions they ask, in this order: who shares what with whom and on
what legal basis; for what purposes; what data, field by field and rule by rule; linkage; what
may come out and at what privacy cost; who may see it; how long it is kept; security; incidents;
consent; signatures and approvals; amendments.

Caveats: the document describes the *authored* spec. The status shown is the author's starting
point; the hub's own record (signatures, approvals, lifecycle) is authoritative, which the
document says. Its fingerprint is the SHA-256 of the canonical form, so a reader can check they
hold the text of the version that was signed.
"""

from __future__ import annotations

from contracts.model import Aggregate, Agreement, Dataset, LinkRole, Party
from contracts.readable import aggregate_words as aw
from contracts.readable import words as w
from contracts.readable.document import (
    Block,
    Bullets,
    Document,
    Facts,
    Paragraph,
    Section,
    Table,
    to_html,
    to_markdown,
)

__all__ = ["build_document", "render_html", "render_markdown"]


def render_markdown(agreement: Agreement) -> str:
    """The agreement in plain language, as Markdown."""
    return to_markdown(build_document(agreement))


def render_html(agreement: Agreement) -> str:
    """The agreement in plain language, as one self-contained HTML page (no external assets;
    every value escaped)."""
    return to_html(build_document(agreement))


def build_document(agreement: Agreement) -> Document:
    """The document both writers print."""
    return Document(
        title=agreement.agreement.title,
        blocks=_header(agreement),
        sections=[
            _parties(agreement),
            _purposes(agreement),
            _data(agreement),
            _linkage(agreement),
            _outputs(agreement),
            _recipients(agreement),
            _retention(agreement),
            _security(agreement),
            _incidents(agreement),
            _consent(agreement),
            _signatures(agreement),
            _amendments(agreement),
        ],
    )


def _providers(agreement: Agreement) -> list[Party]:
    return [p for p in agreement.parties if p.role == "data_provider"]


def _operators(agreement: Agreement) -> list[Party]:
    return [p for p in agreement.parties if p.role == "hub_operator"]


def _summary(agreement: Agreement) -> str:
    shares = []
    for party in _providers(agreement):
        titles = [d.title for d in agreement.datasets if d.provider == party.id]
        what = w.join_and(f"“{t}”" for t in titles) if titles else "no dataset yet"
        shares.append(f"{party.legal_name} shares {what}")
    operators = w.join_and(p.legal_name for p in _operators(agreement)) or "the hub operator"
    if not shares:
        shares = ["No provider is named yet"]
    return (
        f"{w.join_and(shares)} with {operators}, which runs the hub. No record ever leaves the "
        "hub: only the approved, differentially private aggregates listed below are published, "
        "and only for the purposes below. Names and other direct identifiers are never stored as "
        "written."
    )


def _header(agreement: Agreement) -> list[Block]:
    head = agreement.agreement
    version = head.version + (f" (replaces {head.supersedes})" if head.supersedes else "")
    rows = [
        ("Agreement", head.id),
        ("Version", version),
        ("Kind", w.TIER_WORDS.get(head.tier, w.humanize(head.tier))),
        ("Status as written", f"{w.humanize(head.status)} (the hub records the current status)"),
        ("In force", f"from {head.effective_date} to {head.expiry_date}"),
    ]
    if head.review_every_months:
        rows.append(("Reviewed", f"every {head.review_every_months} months"))
    if head.governing_law:
        law = head.governing_law
        rows.append(("Governing law", law.state + (f", {law.locality}" if law.locality else "")))
    rows.append(("Fingerprint", f"SHA-256 {agreement.sha256()} of the canonical text"))
    blocks: list[Block] = [Facts(tuple(rows)), Paragraph(_summary(agreement))]
    safes = head.five_safes_summary
    if safes:
        pairs = [
            ("Safe project", safes.project),
            ("Safe people", safes.people),
            ("Safe setting", safes.setting),
            ("Safe data", safes.data),
            ("Safe outputs", safes.outputs),
        ]
        blocks.append(Facts(tuple((k, v) for k, v in pairs if v)))
    return blocks


def _party_line(party: Party) -> str:
    line = f"{party.legal_name} ({party.id}): {w.ROLE_WORDS.get(party.role, party.role)}"
    if party.org_type:
        line += f", {w.ORG_TYPE_WORDS.get(party.org_type, w.humanize(party.org_type))}"
    if party.regime_flags:
        flags = w.join_and(w.FLAG_WORDS.get(f, w.humanize(f)) for f in party.regime_flags)
        line += f"; {flags}"
    contacts = party.contacts
    if contacts:
        people = [
            f"{role} contact {c.name}" + (f", {c.title}" if c.title else "")
            for role, c in (
                ("business", contacts.business),
                ("privacy", contacts.privacy),
                ("security", contacts.security),
            )
            if c is not None
        ]
        if people:
            line += f". Contacts: {'; '.join(people)}"
    return line + "."


def _parties(agreement: Agreement) -> Section:
    section = Section("Who shares data with whom")
    section.blocks.append(Bullets(tuple(_party_line(p) for p in agreement.parties)))
    if agreement.legal_basis:
        section.children.append(
            Section(
                "Legal basis",
                [
                    Paragraph("The sharing rests on:"),
                    Bullets(tuple(w.legal_basis(b) for b in agreement.legal_basis)),
                ],
            )
        )
    else:
        section.blocks.append(Paragraph("No legal basis is stated."))
    return section


def _purposes(agreement: Agreement) -> Section:
    purposes = agreement.purposes
    dpv = purposes.dpv_map

    def purpose(name: str) -> str:
        text = w.humanize(name)
        return text[:1].upper() + text[1:] + (f" ({dpv[name]})" if name in dpv else "")

    blocks: list[Block] = [
        Paragraph("The data may be used only for:"),
        Bullets(tuple(purpose(p) for p in purposes.permitted)),
    ]
    if purposes.prohibited:
        blocks += [
            Paragraph("It may never be used for:"),
            Bullets(tuple(purpose(p) for p in purposes.prohibited)),
        ]
    blocks.append(Paragraph("Anything not listed as permitted is not allowed."))
    return Section("What the data may be used for", blocks)


def _delivery(dataset: Dataset) -> str | None:
    d = dataset.delivery
    if d is None:
        return None
    how = {"upload": "uploaded", "sftp": "sent by SFTP", "api": "sent through the API"}
    text = f"{how.get(d.channel, d.channel)} as {d.format.upper()}, {w.humanize(d.frequency)}"
    if d.max_lag_days is not None:
        text += f", at most {d.max_lag_days} days after the events it records"
    if d.encryption:
        text += f", encrypted in transit ({d.encryption})"
    return text[:1].upper() + text[1:]


def _dataset(agreement: Agreement, dataset: Dataset) -> Section:
    rows = [("Sent by", f"{w.party_name(agreement, dataset.provider)} ({dataset.provider})")]
    if dataset.description:
        rows.append(("One row is", dataset.description))
    if dataset.population:
        rows.append(("Who is in it", dataset.population))
    delivery = _delivery(dataset)
    if delivery:
        rows.append(("Delivery", delivery))
    rows.append(("Each row is identified by", dataset.record_key))
    if dataset.one_record_per_person:
        rows.append(("Each person is in", "one row at most; linkage never joins two of its rows"))
    rows.append(
        (
            "Columns not listed",
            "make the upload be refused"
            if dataset.unlisted_fields == "reject"
            else "are dropped at upload",
        )
    )
    if dataset.schema_ref:
        rows.append(("Schema", dataset.schema_ref))
    section = Section(f"{dataset.title} ({dataset.id})", [Facts(tuple(rows))])
    fields = tuple(
        f"{w.field_sentence(f)} Checked at upload: {w.field_checks(f)}." for f in dataset.fields
    )
    section.children.append(Section(f"Fields of {dataset.id}", [Bullets(fields)]))
    if dataset.row_rules:
        rules = tuple(
            w.row_rule_sentence(r)[:1].upper() + w.row_rule_sentence(r)[1:] + "."
            for r in dataset.row_rules
        )
        section.children.append(Section(f"Row rules of {dataset.id}", [Bullets(rules)]))
    if dataset.ferpa:
        f = dataset.ferpa
        basis, cite = w.PATHWAY_WORDS.get(("FERPA", f.basis), (w.humanize(f.basis), None))
        terms = [("FERPA exception", basis + (f" ({cite})" if cite else ""))]
        if f.destruction_date:
            terms.append(("Every record destroyed by", str(f.destruction_date)))
        if f.authorized_representative:
            rep = f.authorized_representative
            terms.append(("Authorized representative", f"{w.party_name(agreement, rep)}"))
        if f.education_program:
            terms.append(("Education program evaluated", f.education_program))
        section.children.append(Section(f"FERPA terms of {dataset.id}", [Facts(tuple(terms))]))
    return section


def _data(agreement: Agreement) -> Section:
    section = Section(
        "What data is shared",
        [
            Paragraph(
                "Each field is listed with how identifying it is, what the hub may use it for, "
                "and what the hub does to it the moment it arrives."
            )
        ],
    )
    section.children = [_dataset(agreement, d) for d in agreement.datasets]
    return section


def _linked_fields(agreement: Agreement) -> list[str]:
    """Per dataset, the fields linkage compares (as keyed tokens), and what an age is read as."""
    out = []
    for d in agreement.datasets:
        named = []
        for f in d.fields:
            if f.link_as == LinkRole.age and f.age_at:
                named.append(f"{f.name} (as the birth years it allows on {f.age_at})")
            elif f.link_as == LinkRole.community_area:
                named.append(f"{f.name} (as the ZIP codes the area spans)")
            elif f.link_as is not None:
                named.append(f.name)
        if named:
            out.append(
                f"Linkage compares keyed tokens of these fields of {d.id}: {w.join_and(named)}."
            )
    return out


def _linkage(agreement: Agreement) -> Section:
    link = agreement.linkage
    blocks: list[Block] = []
    if not link.permitted:
        blocks.append(Paragraph("These records are never linked with any other data."))
    elif link.link_with:
        blocks.append(
            Paragraph(
                "Records may be linked, by keyed tokens only and only where the other dataset's "
                "agreement allows it too, with: " + w.join_and(link.link_with) + "."
            )
        )
    else:
        blocks.append(Paragraph("Linkage is allowed, but no dataset to link with is named."))
    if link.permitted:
        blocks.extend(Paragraph(text) for text in _linked_fields(agreement))
    if link.prohibited_with:
        lead = "They are never linked with" if link.permitted else "In particular, never with"
        blocks.append(Paragraph(f"{lead}: {w.join_and(link.prohibited_with)}."))
    if link.method:
        m = link.method
        text = (
            f"Records are matched on {w.LINKAGE_METHOD_WORDS.get(m.type, m.type)}; the keys "
            f"are held by {w.KEY_CUSTODY_WORDS.get(m.key_custody, m.key_custody)}"
        )
        if m.match_threshold is not None:
            text += (
                "; two records link only at a match probability of at least "
                f"{w.number(m.match_threshold)}, or the hub's or the other dataset's "
                "threshold if higher"
            )
        blocks.append(Paragraph(text + "."))
    if link.key_rotation_days:
        blocks.append(Paragraph(f"Linkage keys are rotated every {link.key_rotation_days} days."))
    blocks.append(Paragraph("Re-identifying anyone is prohibited."))
    if link.permitted and link.linked_outputs_only:
        blocks.append(Paragraph("Linked records never leave the hub; only aggregates do."))
    return Section("Linkage", blocks)


def _aggregate(agreement: Agreement, aggregate: Aggregate) -> str:
    budget = agreement.outputs.privacy.budget
    symbol = w.loss_symbol(agreement.outputs.privacy.model)
    spend = w.number(round(aggregate.budget_share * budget.per_period, 12))
    text = (
        f"{aggregate.id} — {aggregate.title}: {aw.aggregate_brief(aggregate)}, from "
        f"{aggregate.dataset}"
    )
    if aggregate.time_field:
        text += f" (dates from {aggregate.time_field})"
    for note in _measure_notes(aggregate):
        text += f"; {note}"
    text += (
        f". Each release spends {w.percent(aggregate.budget_share)} of the "
        f"{w.period_adjective(budget.period)} budget ({symbol} = {spend}); published "
        f"{'on' if aggregate.channel == 'public_dashboard' else 'in'} "
        f"{w.CHANNEL_WORDS.get(aggregate.channel, w.humanize(aggregate.channel))}"
    )
    if aggregate.cadence:
        text += f", {w.humanize(aggregate.cadence)}"
    if aggregate.provider_review_days:
        text += (
            f"; providers may review it for {aggregate.provider_review_days} days before its "
            "first publication"
        )
    if aggregate.requires_linkage:
        text += f"; needs linkage with {w.join_and(aggregate.requires_linkage)}"
    return text + "."


def _measure_notes(aggregate: Aggregate) -> list[str]:
    """What a reader needs to know about how a sum, mean or share is counted."""
    notes = []
    value = aggregate.value
    if value is not None:
        missing = (
            "rows missing either date"
            if value.days_between is not None
            else f"rows without {value.field}"
        )
        notes.append(
            f"{missing} are left out, and values outside {aw.bounds(value)} count as the nearest "
            "bound, which limits what one person can change"
        )
    if aggregate.measure == "rate_persons":
        notes.append(
            "a person counts in the share of a cell when any of their rows there meets the "
            "condition"
        )
    for event in aggregate.linked_events:
        notes.append(
            f"{event.dataset} is read only to decide who counts in the share, and none of it is "
            "published"
        )
    return notes


def _outputs(agreement: Agreement) -> Section:
    out = agreement.outputs
    p = out.privacy
    rows = [
        ("Record-level release", "prohibited: no row, token or identifier ever leaves the hub"),
        ("Privacy guarantee", w.privacy(p)),
        (
            "Whom it protects",
            "each linked person, not each row; a person whom linkage wrongly splits into k "
            "records can lose up to k times the stated privacy",
        ),
    ]
    if p.budget.delta_for_reporting is not None:
        rows.append(
            ("δ for reporting", f"{w.number(p.budget.delta_for_reporting)} (changes no noise)")
        )
    rows.append(
        (
            "Smallest published count",
            f"noisy counts below {out.min_cell} are suppressed"
            if out.min_cell
            else "no suppression of small counts",
        )
    )
    if out.prohibited_dimensions:
        rows.append(("Counts are never broken down by", w.join_and(out.prohibited_dimensions)))
    blocks: list[Block] = [Facts(tuple(rows))]
    if out.aggregates:
        blocks += [
            Paragraph("Only these aggregates may be computed and published:"),
            Bullets(tuple(_aggregate(agreement, a) for a in out.aggregates)),
        ]
    else:
        blocks.append(Paragraph("No aggregate is approved yet, so nothing may come out."))
    return Section("What may come out", blocks)


def _recipients(agreement: Agreement) -> Section:
    out = agreement.outputs
    allowed = [f"{w.recipient(agreement, r)}" for r in out.recipients_allowed]
    blocks: list[Block] = [
        Paragraph(
            "Published aggregates may be seen by: " + w.join_and(allowed) + "."
            if allowed
            else "No recipient is allowed yet."
        )
    ]
    if out.recipients_denied:
        denied = w.join_and(w.recipient(agreement, r) for r in out.recipients_denied)
        blocks.append(Paragraph(f"They may never be given to: {denied}."))
    return Section("Who may see it", blocks)


def _kept(value: str, never: str) -> str:
    return never if w.is_zero_duration(value) else w.duration(value)


def _retention(agreement: Agreement) -> Section:
    r = agreement.retention
    if r is None:
        return Section("How long it is kept", [Paragraph("The agreement sets no retention.")])
    rows = [
        ("Uploaded files", _kept(r.raw_upload, "not kept: files are streamed, never stored")),
        ("Pseudonymized records", _kept(r.pseudonymized_tables, "not kept")),
        ("Linkage tokens", _kept(r.linkage_tokens, "not kept")),
        ("Published aggregates", _kept(r.aggregates, "not kept")),
        ("When the agreement ends", w.TERMINATION_WORDS.get(r.on_termination, r.on_termination)),
    ]
    if r.destruction:
        d = r.destruction
        text = f"by {d.method}, within {w.duration(d.within)} of falling due"
        if d.certificate_to:
            text += f"; a certificate goes to {w.party_name(agreement, d.certificate_to)}"
        rows.append(("Destruction", text))
    return Section("How long it is kept", [Facts(tuple(rows))])


def _security(agreement: Agreement) -> Section:
    s = agreement.security
    rows: list[tuple[str, str]] = []
    if s is not None:
        rows.append(("Security profile", w.PROFILE_WORDS.get(s.profile, s.profile)))
        if s.hosting:
            rows.append(("Hosted", w.HOSTING_WORDS.get(s.hosting, s.hosting)))
        if s.encryption_at_rest:
            rows.append(
                ("Stored data", w.ENCRYPTION_WORDS.get(s.encryption_at_rest, s.encryption_at_rest))
            )
        if s.mfa_required is not None:
            rows.append(("Multi-factor sign-in", "required" if s.mfa_required else "not required"))
        if s.personnel:
            staff = [w.BACKGROUND_WORDS.get(s.personnel.background_check, "")]
            if s.personnel.training:
                staff.append("training in " + w.join_and(map(w.humanize, s.personnel.training)))
            if s.personnel.annual_attestation:
                staff.append("a yearly attestation of the rules")
            rows.append(("Staff need", w.join_and(x for x in staff if x)))
        if s.audit_log_retention:
            rows.append(("Audit log kept", w.duration(s.audit_log_retention)))
    sub = agreement.subcontractors
    if sub is not None:
        text = "allowed" if sub.allowed else "not allowed"
        if sub.allowed:
            text += ", bound by the same terms" if sub.flow_down_required else ""
        rows.append(("Subcontractors", text))
    if not rows:
        return Section("Security", [Paragraph("The agreement sets no security controls.")])
    return Section("Security", [Facts(tuple(rows))])


def _incidents(agreement: Agreement) -> Section:
    i = agreement.incidents
    if i is None:
        return Section("Incidents", [Paragraph("The agreement sets no incident notice.")])
    blocks: list[Block] = [
        Paragraph(
            "The hub operator tells the providers of any incident within "
            f"{w.duration(i.notify_provider_within)} of discovering it."
        )
    ]
    if i.statutory:
        clocks = [
            f"{w.REGIME_WORDS.get(c.regime, c.regime)}: within {w.duration(c.max)}"
            for c in i.statutory
        ]
        blocks.append(Paragraph("Deadlines set by law, tracked separately:"))
        blocks.append(Bullets(tuple(clocks)))
    if i.contacts:
        who = w.join_and(w.contact_ref(agreement, c) for c in i.contacts)
        blocks.append(Paragraph(f"Who is told: {who}."))
    return Section("Incidents", blocks)


def _consent(agreement: Agreement) -> Section:
    c = agreement.consent
    if not c.required:
        return Section(
            "Consent", [Paragraph("This agreement does not require per-person consent.")]
        )
    text = "Every row must carry the person's consent"
    if c.datasets:
        text += f" (in {w.join_and(c.datasets)})"
    if c.field:
        text += f": {c.field} must be {w.join_and(c.valid_values, 'or') or 'filled in'}"
    text += "."
    if c.expiry_field:
        text += f" Consent ends on the date in {c.expiry_field}; after it the row is not used."
    if c.cite:
        text += f" Basis: {c.cite}."
    return Section("Consent", [Paragraph(text)])


def _signatures(agreement: Agreement) -> Section:
    section = Section(
        "Signatures and approvals",
        [
            Paragraph(
                "The version becomes active only when every party has signed it and every "
                "required approval is recorded in the hub. Any edit after signing invalidates "
                "the signatures."
            )
        ],
    )
    signers = tuple(
        f"{s.name}, {s.title}, for {w.party_name(agreement, s.party)} ({s.party})"
        + (f"; signed on {s.signed_on} (as written in the spec)" if s.signed_on else "")
        for s in agreement.signatories
    )
    section.blocks.append(Paragraph("Signatories:"))
    section.blocks.append(Bullets(signers) if signers else Paragraph("None named yet."))
    if agreement.approvals_required:
        section.blocks.append(
            Paragraph(
                "Required approvals: "
                + w.join_and(w.humanize(b) for b in agreement.approvals_required)
                + "."
            )
        )
    if agreement.approvals:
        section.blocks.append(Paragraph("Approvals recorded in the spec:"))
        section.blocks.append(
            Bullets(
                tuple(
                    f"{w.humanize(a.body)}: {a.decision} on {a.date}"
                    + (f" (minutes {a.minutes_ref})" if a.minutes_ref else "")
                    for a in agreement.approvals
                )
            )
        )
    return section


def _amendments(agreement: Agreement) -> Section:
    if not agreement.amendments:
        return Section("Amendments", [Paragraph("No amendments are recorded.")])
    rows = tuple(
        (
            a.version,
            str(a.date),
            a.summary,
            w.join_and(map(w.humanize, a.approved_by)) if a.approved_by else "—",
        )
        for a in agreement.amendments
    )
    return Section("Amendments", [Table(("Version", "Date", "What changed", "Approved by"), rows)])
