"""Rules the law sets, switched on by a provider's regime flags or the agreement's legal basis.

Each rule is the mechanical part of a legal requirement (reference/domain.md B.2); the sentence
it reports names the law, so legal staff can see why. What counts as compliant:

* **VAWA / VOCA** (provider flagged ``vawa_funded`` or ``voca_funded``): no individual record,
  even hashed or tokenized, without the survivor's informed, written, reasonably time-limited
  consent. The agreement must require consent (``consent.required``, a consent field, valid
  values and an ``expiry_field``), and each of the provider's datasets must refuse every row
  without it: a ``requires_consent`` rule whose condition covers every row (``every row``, or a
  condition that matches every declared value), or a ``reject`` rule on the consent field that
  matches every value other than valid consent (``consent_to_share != WRITTEN``). Dropping such
  rows silently is not enough: the provider must learn that it sent them.
* **42 CFR Part 2** (``part2_program``): each dataset is aggregate-only for every row, or gated on
  per-row consent as above (reject or requires_consent).
* **FERPA** (provider flagged ``ferpa_agency``, or a FERPA legal basis): the dataset states
  ``ferpa.basis`` (matching a FERPA legal basis) and a ``ferpa.destruction_date`` after the
  effective date; audit/evaluation names the authorized representative; student records are
  linked only under ``audit_evaluation`` or ``studies``.
* **CJIS** (``cjis_agency``): ``security.profile: cjis``, and a cjis profile states the CJIS
  minimums (US or on-premises hosting, FIPS 140 encryption at rest, MFA, fingerprint checks,
  CJIS security-awareness training).
* **Juvenile records** (``juvenile_records``): a dataset with a juvenile flag or an age field
  has an aggregate_only (or stricter: reject, drop_row) rule matching every juvenile row.
* **HIPAA** (``hipaa_covered``, or a HIPAA legal basis): record-level rows come only under the
  ``public_health_authority`` or ``limited_data_set_dua`` pathway. Every dataset the hub takes
  is record-level (rows are pseudonymized, not pre-aggregated), and tokens derived from names
  and birth dates are not a Safe Harbor re-identification code, so the de-identified pathways
  do not cover them.
"""

from __future__ import annotations

from collections.abc import Iterator

from contracts.lint.base import (
    Finding,
    Subject,
    conditions,
    consent_gate,
    covers_every_row,
    flagged_datasets,
    juvenile_fields,
    rule,
    selects_juveniles,
)
from contracts.model import (
    FERPA_LINKABLE_PATHWAYS,
    HIPAA_RECORD_LEVEL_PATHWAYS,
    Regime,
    RegimeFlag,
    RowHandling,
)

REFUSE = (RowHandling.reject,)
CJIS_TRAINING = "cjis_security_awareness"


@rule("parties", "datasets", "consent")
def check_vawa(s: Subject) -> Iterator[Finding]:
    a, c = s.agreement, s.agreement.consent
    for i, ds, flag in flagged_datasets(a, RegimeFlag.vawa_funded, RegimeFlag.voca_funded):
        law = "VAWA 34 U.S.C. 12291(b)(2)" if flag == "vawa_funded" else "VOCA 28 CFR 94.115"
        who = f"{ds.provider} is {flag}: {law} forbids sharing a survivor's record, even hashed"
        in_scope = not c.datasets or ds.id in c.datasets
        if not c.required or c.field is None or not in_scope:
            yield (
                "consent",
                f"{who} or tokenized, without written, time-limited consent; set "
                f"consent.required: true, the consent field and its valid values for {ds.id}",
            )
            continue
        expiry = ds.field(c.expiry_field) if c.expiry_field else None
        if c.expiry_field is None:
            yield (
                "consent.expiry_field",
                f"{who}, without consent that is time-limited; set consent.expiry_field to the "
                "date field recording when each consent ends",
            )
        elif expiry is not None and not expiry.required:
            yield (
                f"datasets[{i}].fields[{ds.fields.index(expiry)}].required",
                f"{who}, without consent that is time-limited; make {expiry.name} required so "
                "every row says when its consent ends",
            )
        if consent_gate(ds, c.field, c.valid_values, REFUSE) is None:
            yield (
                f"datasets[{i}].row_rules",
                f"{who}, without consent recorded for that row; add {{when: every row, "
                f"handling: requires_consent, consent_field: {c.field}}} so that rows without "
                "it are refused",
            )


@rule("parties", "datasets", "consent")
def check_part2(s: Subject) -> Iterator[Finding]:
    a, c = s.agreement, s.agreement.consent
    for i, ds, _ in flagged_datasets(a, RegimeFlag.part2_program):
        aggregate_only = any(
            h == RowHandling.aggregate_only and covers_every_row(cond, ds)
            for _, h, cond in conditions(ds)
        )
        gated = (
            c.field is not None
            and (not c.datasets or ds.id in c.datasets)
            and consent_gate(ds, c.field, c.valid_values, REFUSE) is not None
        )
        if aggregate_only or gated:
            continue
        yield (
            f"datasets[{i}].row_rules",
            f"{ds.provider} is a 42 CFR Part 2 program: its records may leave it only "
            "de-identified or with each patient's consent; add {when: every row, handling: "
            "aggregate_only}, or require consent and refuse rows without it",
        )


def _ferpa_datasets(s: Subject) -> list[int]:
    a = s.agreement
    flagged = [i for i, _, _ in flagged_datasets(a, RegimeFlag.ferpa_agency)]
    flagged += [i for i, ds in enumerate(a.datasets) if ds.ferpa and i not in flagged]
    if not flagged and any(b.regime == Regime.FERPA for b in a.legal_basis):
        return list(range(len(a.datasets)))
    return sorted(flagged)


@rule("parties", "datasets", "legal_basis", "agreement", "linkage")
def check_ferpa(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    ferpa_bases = {b.pathway for b in a.legal_basis if b.regime == Regime.FERPA}
    for i in _ferpa_datasets(s):
        ds, at = a.datasets[i], f"datasets[{i}]"
        terms = ds.ferpa
        if terms is None:
            yield (
                at,
                f"{ds.id} holds student records under FERPA, which requires the written "
                "agreement to state the exception used and when the records will be destroyed; "
                "add ferpa: {basis: audit_evaluation, destruction_date: YYYY-MM-DD}",
            )
            continue
        if terms.destruction_date is None:
            yield (
                f"{at}.ferpa.destruction_date",
                f"FERPA requires a date by which {ds.id} is destroyed; set ferpa.destruction_date",
            )
        elif terms.destruction_date <= a.agreement.effective_date:
            yield (
                f"{at}.ferpa.destruction_date",
                f"destruction date {terms.destruction_date} is not after the effective date "
                f"{a.agreement.effective_date}; set the date the records will be destroyed",
            )
        if terms.basis not in ferpa_bases:
            yield (
                f"{at}.ferpa.basis",
                f"{ds.id} is shared under FERPA {terms.basis} but legal_basis has no FERPA "
                f"{terms.basis} entry; add {{regime: FERPA, pathway: {terms.basis}}}",
            )
        if terms.basis == "audit_evaluation":
            rep = terms.authorized_representative
            if rep is None or s.missing(rep, [p.id for p in a.parties]):
                yield (
                    f"{at}.ferpa.authorized_representative",
                    "FERPA audit/evaluation (34 CFR 99.35) needs the educational authority to "
                    "designate its authorized representative in writing; name that party",
                )
        tokens = any(f.transform.kind == "linkage_token" for f in ds.fields)
        if a.linkage.permitted and tokens and terms.basis not in FERPA_LINKABLE_PATHWAYS:
            yield (
                f"{at}.ferpa.basis",
                f"student records may be linked only under FERPA audit_evaluation or studies, "
                f"not {terms.basis}; change the basis or share school-level aggregates only "
                "(no linkage tokens)",
            )


@rule("parties", "datasets", "security")
def check_cjis(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    for _, ds, _ in flagged_datasets(a, RegimeFlag.cjis_agency):
        if a.security is None or a.security.profile != "cjis":
            path = "security" if a.security is None else "security.profile"
            yield (
                path,
                f"{ds.provider} is a CJIS agency, so the CJIS Security Policy binds everyone "
                "with access to its data; set security.profile: cjis",
            )
            return


@rule("security")
def check_cjis_profile(s: Subject) -> Iterator[Finding]:
    sec = s.agreement.security
    if sec is None or sec.profile != "cjis":
        return
    if sec.hosting not in ("us_only", "on_premises"):
        yield "security.hosting", "the cjis profile needs hosting: us_only (or on_premises)"
    if sec.encryption_at_rest != "fips_140_validated":
        yield (
            "security.encryption_at_rest",
            "the cjis profile needs encryption_at_rest: fips_140_validated",
        )
    if sec.mfa_required is not True:
        yield "security.mfa_required", "the cjis profile needs mfa_required: true"
    staff = sec.personnel
    if staff is None or staff.background_check != "fingerprint":
        yield (
            "security.personnel.background_check",
            "the cjis profile needs fingerprint-based background checks for everyone with "
            "access; set personnel.background_check: fingerprint",
        )
    if staff is None or CJIS_TRAINING not in staff.training:
        yield (
            "security.personnel.training",
            f"the cjis profile needs security-awareness training; add {CJIS_TRAINING}",
        )


@rule("parties", "datasets")
def check_juvenile(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    strict = (RowHandling.aggregate_only, RowHandling.reject, RowHandling.drop_row)
    for i, ds, _ in flagged_datasets(a, RegimeFlag.juvenile_records):
        markers = juvenile_fields(ds)
        if not markers:
            continue
        covered = any(
            h in strict and any(selects_juveniles(cond, f) for f in markers)
            for _, h, cond in conditions(ds)
        )
        if not covered:
            f = markers[0]
            example = f"{f.name} == true" if f.type == "boolean" else f"{f.name} < 18"
            yield (
                f"datasets[{i}].row_rules",
                f"{ds.provider} holds juvenile records, which state law keeps confidential; "
                f'add {{when: "{example}", handling: aggregate_only, cite: <statute>}} so '
                "juvenile rows are counted but never linked",
            )


@rule("parties", "datasets", "legal_basis")
def check_hipaa(s: Subject) -> Iterator[Finding]:
    a = s.agreement
    hipaa = [(k, b) for k, b in enumerate(a.legal_basis) if b.regime == Regime.HIPAA]
    flagged = list(flagged_datasets(a, RegimeFlag.hipaa_covered))
    if not flagged and not hipaa:
        return
    if any(b.pathway in HIPAA_RECORD_LEVEL_PATHWAYS for _, b in hipaa):
        return
    pathways = " or ".join(HIPAA_RECORD_LEVEL_PATHWAYS)
    for k, b in hipaa:
        yield (
            f"legal_basis[{k}].pathway",
            f"record-level HIPAA data may come only under {pathways}, not {b.pathway}: tokens "
            "made from names and birth dates are not a Safe Harbor code; change the pathway",
        )
    if not hipaa:
        provider = flagged[0][1].provider
        yield (
            "legal_basis",
            f"{provider} is a HIPAA covered entity sending record-level data; add a HIPAA "
            "legal basis with pathway public_health_authority (45 CFR 164.512(b)) or "
            "limited_data_set_dua (164.514(e))",
        )
