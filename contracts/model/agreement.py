"""The agreement as a whole: header, parties, law, purposes, governance sections."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Literal

from pydantic import Field, model_validator

from contracts.model.datasets import Dataset
from contracts.model.outputs import Aggregate, Outputs
from contracts.model.vocabulary import (
    PATHWAYS,
    AgreementStatus,
    Duration,
    DurationOrIndefinite,
    Name,
    OrgType,
    PartyId,
    PartyRole,
    Regime,
    RegimeFlag,
    Strict,
    Version,
)

SIGNING_FORM_HEADER = b"ovp-dsa signing form 1\n"


class GoverningLaw(Strict):
    """Whose law governs the agreement."""

    state: str = Field(pattern=r"^[A-Z]{2}$", description="Two-letter state code, e.g. IL.")
    locality: str | None = Field(default=None, description="City or county, if any.")


class FiveSafes(Strict):
    """A one-line summary per Five Safes dimension (project, people, setting, data, outputs)."""

    project: str | None = Field(default=None, description="Why the data is shared.")
    people: str | None = Field(default=None, description="Who may work with it.")
    setting: str | None = Field(default=None, description="Where it is held and processed.")
    data: str | None = Field(default=None, description="What is shared, and how identifying.")
    outputs: str | None = Field(default=None, description="What may come out.")


class Header(Strict):
    """The agreement's identity, version, tier, status and term."""

    id: str = Field(
        pattern=r"^[a-z][a-z0-9-]*$", description="Stable agreement id, e.g. dsa-police-001."
    )
    version: Version = Field(
        description="Semver: MAJOR = scope or legal change, MINOR = new output, PATCH = contacts "
        "and typos. Each change is a new version."
    )
    supersedes: Version | None = Field(default=None, description="The version this one replaces.")
    title: str = Field(description="Plain-language title.")
    tier: Literal["mou", "data_sharing_agreement", "data_use_license"] = Field(
        default="data_sharing_agreement",
        description="AISP tier: mou (vision, governance), data_sharing_agreement (data in), "
        "data_use_license (per-project use).",
    )
    status: AgreementStatus = Field(
        description="Starting lifecycle status; the hub records later changes itself."
    )
    effective_date: dt.date = Field(description="First day data may flow.")
    expiry_date: dt.date = Field(description="Last day data may flow; the hub stops after it.")
    review_every_months: int | None = Field(
        default=None, ge=1, description="How often the parties review the agreement."
    )
    governing_law: GoverningLaw | None = Field(default=None, description="Governing law.")
    five_safes_summary: FiveSafes | None = Field(
        default=None, description="Five Safes summary for readers."
    )


class Contact(Strict):
    """A named person to reach at a party."""

    name: str = Field(description="Full name.")
    title: str | None = Field(default=None, description="Job title.")
    email: str | None = Field(default=None, description="Work e-mail.")
    phone: str | None = Field(default=None, description="Work phone.")


class Contacts(Strict):
    """A party's business, privacy and security contacts."""

    business: Contact | None = Field(default=None, description="Business contact.")
    privacy: Contact | None = Field(default=None, description="Privacy officer.")
    security: Contact | None = Field(default=None, description="Security officer.")


class Party(Strict):
    """An organisation that is party to the agreement."""

    id: PartyId = Field(description="Party id, `org:` and a lower-case name.")
    role: PartyRole = Field(description="What the party does under this agreement.")
    legal_name: str = Field(description="The party's legal name.")
    org_type: OrgType | None = Field(default=None, description="The kind of organisation.")
    regime_flags: tuple[RegimeFlag, ...] = Field(
        default=(), description="Legal regimes that bind the party's records."
    )
    contacts: Contacts | None = Field(default=None, description="Who to reach, and for what.")


class LegalBasis(Strict):
    """A legal authority the sharing rests on: a regime and a pathway within it."""

    regime: Regime = Field(description="The body of law.")
    pathway: Name = Field(
        description="The pathway within the regime. HIPAA: public_health_authority, "
        "limited_data_set_dua, de_identified_safe_harbor, de_identified_expert_determination, "
        "authorization, research_waiver, health_oversight. PART2: de_identified_public_health, "
        "patient_consent, research, audit_evaluation, qualified_service_organization. FERPA: "
        "studies, audit_evaluation, parental_consent, de_identified, directory_information. "
        "CJIS: management_control_agreement, information_exchange_agreement, security_addendum. "
        "VAWA: written_time_limited_consent, aggregate_non_identifying, "
        "statutory_or_court_mandate. STATE_STATUTE, CONSENT, CONTRACT: any lower-case name."
    )
    citation: str | None = Field(default=None, description="The statute, rule or clause.")

    @model_validator(mode="after")
    def _pathway_of_regime(self) -> LegalBasis:
        allowed = PATHWAYS.get(self.regime)
        if allowed is not None and self.pathway not in allowed:
            raise ValueError(
                f"{self.pathway} is not a {self.regime.value} pathway; use one of: "
                + ", ".join(allowed)
            )
        return self


class Purposes(Strict):
    """What the data may, and may never, be used for."""

    permitted: tuple[Name, ...] = Field(description="Purposes the data may be used for.")
    prohibited: tuple[Name, ...] = Field(default=(), description="Purposes never allowed.")
    dpv_map: dict[str, str] = Field(
        default_factory=dict, description="Optional W3C DPV term per purpose, for ODRL export."
    )


class LinkageMethod(Strict):
    """How records are matched."""

    type: Literal["keyed_hash_tokens", "bloom_clk"] = Field(
        default="keyed_hash_tokens", description="Keyed hash tokens or Bloom-filter CLKs."
    )
    key_custody: Literal["hub", "linkage_unit"] = Field(
        default="hub", description="Who holds the linkage keys."
    )
    match_threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description=(
            "Match probability at or above which records link: it can raise the hub's own "
            "threshold and the other dataset's, never lower them."
        ),
    )

    @property
    def hub_can_carry_out(self) -> bool:
        """Whether the hub can link this way: keyed hash tokens made with keys it holds.
        Lint refuses the rest; an agreement stored before that rule is not linked."""
        return self.type == "keyed_hash_tokens" and self.key_custody == "hub"


class Linkage(Strict):
    """Whether and with what this agreement's datasets may be linked. The hub links two
    datasets only when both their agreements permit it and name each other."""

    permitted: bool = Field(default=False, description="Linkage is allowed at all.")
    link_with: tuple[str, ...] = Field(
        default=(), description="Datasets (of any agreement) these datasets may be linked with."
    )
    prohibited_with: tuple[str, ...] = Field(
        default=(), description="Datasets they may never be linked with."
    )
    method: LinkageMethod | None = Field(default=None, description="How records are matched.")
    key_rotation_days: int | None = Field(
        default=None, ge=1, description="Days between linkage-key rotations."
    )
    reidentification: Literal["prohibited"] = Field(
        default="prohibited", description="Re-identifying anyone is never allowed."
    )
    linked_outputs_only: bool = Field(
        default=True, description="Linked records never leave the hub; only aggregates do."
    )


class Destruction(Strict):
    """How data is destroyed, and who receives the certificate."""

    method: str = Field(description='Destruction method, e.g. "NIST SP 800-88 purge".')
    certificate_to: PartyId | None = Field(
        default=None, description="Party that receives the certificate of destruction."
    )
    within: Duration = Field(default="P30D", description="Time allowed to destroy, once due.")


class Retention(Strict):
    """How long each kind of data is kept (ISO-8601 durations)."""

    raw_upload: Duration = Field(
        default="P0D", description="Raw uploaded files (the hub streams them: P0D)."
    )
    pseudonymized_tables: Duration = Field(description="Pseudonymized records.")
    linkage_tokens: Duration = Field(description="Linkage tokens.")
    aggregates: DurationOrIndefinite = Field(
        default="indefinite", description="Published aggregates: a duration or indefinite."
    )
    destruction: Destruction | None = Field(default=None, description="How data is destroyed.")
    on_termination: Literal["destroy", "return_then_destroy"] = Field(
        default="destroy", description="What happens to the data when the agreement ends."
    )


class Personnel(Strict):
    """Who may work with the data."""

    background_check: Literal["none", "name_based", "fingerprint"] = Field(
        default="none", description="Background check staff must pass."
    )
    training: tuple[Name, ...] = Field(default=(), description="Training staff must complete.")
    annual_attestation: bool = Field(
        default=False, description="Staff attest to the rules every year."
    )


class Security(Strict):
    """The security controls the hub operates under."""

    profile: Literal["baseline", "hipaa", "cjis"] = Field(
        description="Control profile: baseline, hipaa (HIPAA Security Rule) or cjis (CJIS "
        "Security Policy: US hosting, FIPS 140 encryption, MFA, fingerprint checks, training)."
    )
    hosting: Literal["us_only", "on_premises", "any"] | None = Field(
        default=None, description="Where the hub and its backups may be hosted."
    )
    encryption_at_rest: Literal["fips_140_validated", "aes_256", "none"] | None = Field(
        default=None, description="Encryption of stored data."
    )
    mfa_required: bool | None = Field(default=None, description="Staff sign in with MFA.")
    personnel: Personnel | None = Field(default=None, description="Personnel controls.")
    audit_log_retention: Duration | None = Field(
        default=None, description="How long audit logs are kept."
    )


class StatutoryClock(Strict):
    """A breach-notice deadline set by law."""

    regime: Regime = Field(description="The law that sets the deadline.")
    max: Duration = Field(description="Latest notice after discovery, e.g. P60D for HIPAA.")


class Incidents(Strict):
    """Who is told of an incident, and how fast."""

    notify_provider_within: Duration = Field(
        description="Contractual deadline to notify providers, e.g. PT24H."
    )
    statutory: tuple[StatutoryClock, ...] = Field(
        default=(), description="Statutory deadlines, tracked separately."
    )
    contacts: tuple[str, ...] = Field(
        default=(),
        description="Who is notified: party contacts such as org:police.security.",
    )


class Consent(Strict):
    """Consent the rows must carry. Required for VAWA/VOCA victim-service records, Part 2
    records shared at record level, and wherever a program shares only with consent."""

    required: bool = Field(default=False, description="Rows need the person's consent.")
    field: str | None = Field(default=None, description="The field that records consent.")
    valid_values: tuple[str, ...] = Field(
        default=(), description="Values of that field that count as valid consent."
    )
    expiry_field: str | None = Field(
        default=None, description="Date field after which the consent is no longer valid."
    )
    datasets: tuple[str, ...] = Field(
        default=(), description="Datasets the consent applies to (empty: all of them)."
    )
    cite: str | None = Field(default=None, description="The statute or clause requiring it.")

    def expiry_for(self, dataset_id: str) -> str | None:
        """The field holding the date ``dataset_id``'s rows' consent ends, if it has one."""
        if not self.required or self.expiry_field is None:
            return None
        return self.expiry_field if not self.datasets or dataset_id in self.datasets else None


class Subcontractors(Strict):
    """Whether the hub operator may use subcontractors."""

    allowed: bool = Field(default=False, description="Subcontractors may handle the data.")
    flow_down_required: bool = Field(
        default=True, description="Subcontractors are bound by the same terms."
    )


class Signatory(Strict):
    """Who signs for a party. The hub records the signatures themselves."""

    party: PartyId = Field(description="The party this person signs for.")
    name: str = Field(description="Full name.")
    title: str = Field(description="Job title.")
    signed_on: dt.date | None = Field(
        default=None, description="Historical note only; the hub records signatures."
    )


class Approval(Strict):
    """A governance decision recorded before the hub kept approvals itself (history only)."""

    body: Name = Field(description="The governance body.")
    decision: Literal["approved", "rejected", "deferred"] = Field(description="Its decision.")
    date: dt.date = Field(description="Date of the decision.")
    minutes_ref: str | None = Field(default=None, description="Where the decision is minuted.")


class Amendment(Strict):
    """One entry of the change history."""

    version: Version = Field(description="The version the amendment produced.")
    date: dt.date = Field(description="Date of the amendment.")
    summary: str = Field(description="What changed, in plain language.")
    approved_by: tuple[Name, ...] = Field(default=(), description="Bodies that approved it.")


class Agreement(Strict):
    """A data-sharing agreement, as legal staff write it (reference/domain.md B.4)."""

    spec_version: Literal["ovp-dsa/1.0"] = Field(description="Version of this spec format.")
    agreement: Header = Field(description="Identity, version, status and term.")
    parties: tuple[Party, ...] = Field(description="Every party, with its role.")
    legal_basis: tuple[LegalBasis, ...] = Field(
        default=(), description="The legal authorities the sharing rests on."
    )
    purposes: Purposes = Field(description="Permitted and prohibited purposes.")
    datasets: tuple[Dataset, ...] = Field(description="The extracts providers send.")
    linkage: Linkage = Field(default=Linkage(), description="Linkage rules.")
    outputs: Outputs = Field(description="What may come out, for whom, at what privacy cost.")
    retention: Retention | None = Field(default=None, description="How long data is kept.")
    security: Security | None = Field(default=None, description="Security controls.")
    incidents: Incidents | None = Field(default=None, description="Incident notification.")
    subcontractors: Subcontractors | None = Field(default=None, description="Subcontracting.")
    consent: Consent = Field(default=Consent(), description="Consent the rows must carry.")
    signatories: tuple[Signatory, ...] = Field(
        default=(), description="Who must sign, one per data provider and the hub operator."
    )
    approvals_required: tuple[Name, ...] = Field(
        default=(), description="Governance bodies that must approve before activation."
    )
    approvals: tuple[Approval, ...] = Field(
        default=(), description="Past approvals, for history; the hub records approvals."
    )
    amendments: tuple[Amendment, ...] = Field(
        default=(), description="Change history; the latest entry is this version."
    )

    @property
    def id(self) -> str:
        return self.agreement.id

    @property
    def version(self) -> str:
        return self.agreement.version

    @property
    def ref(self) -> str:
        """``id@version``, the form stamped on every upload and release."""
        return f"{self.agreement.id}@{self.agreement.version}"

    def dataset(self, dataset_id: str) -> Dataset | None:
        return next((d for d in self.datasets if d.id == dataset_id), None)

    def aggregate(self, aggregate_id: str) -> Aggregate | None:
        return next((a for a in self.outputs.aggregates if a.id == aggregate_id), None)

    def party(self, party_id: str) -> Party | None:
        return next((p for p in self.parties if p.id == party_id), None)

    def in_force_on(self, day: dt.date) -> bool:
        return self.agreement.effective_date <= day <= self.agreement.expiry_date

    def canonical_json(self) -> str:
        """The canonical form hashes are computed over: sorted keys, no spaces, defaults made
        explicit, so two YAML spellings of the same agreement hash the same."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def signing_form(self) -> bytes:
        """The bytes every signature is made over: the agreement's text without the state the
        hub manages (``agreement.status``, ``signatories[].signed_on``, ``approvals``), so that
        activating a version keeps its signatures while any edit to its terms breaks them.

        Values equal to their default are left out, so the same terms spelled with or without
        a default value sign the same, and a later spec release that adds an optional section
        does not invalidate signatures already made. A header line names the form, so these
        bytes can never be mistaken for another signed message.
        """
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data.get("agreement", {}).pop("status", None)
        data.pop("approvals", None)
        for signatory in data.get("signatories", []):
            signatory.pop("signed_on", None)
        return SIGNING_FORM_HEADER + _canonical_bytes(data)


def _canonical_bytes(data: Any) -> bytes:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")
