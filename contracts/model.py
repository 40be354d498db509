"""The agreement spec: what legal staff write, as typed models.

An :class:`Agreement` mirrors the YAML in ``contracts/agreements/`` (see reference/domain.md B.4).
It is the *authored* spec. Everything the hub executes is derived from it (see ``plan.py``).

Parsing is strict (unknown keys are errors) so that a typo in a legal document is caught by
lint, not silently ignored. Cross-field rules (a record key that names a field, a dimension the
dataset does not have, budget shares over 1, ...) live in ``lint.py`` so that *every* problem is
reported in one run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SPEC_VERSION = "ovp-dsa/1.0"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
NAME = r"^[a-z][a-z0-9_]*$"
PARTY_ID = r"^org:[a-z][a-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AgreementStatus(StrEnum):
    draft = "draft"
    under_review = "under_review"
    active = "active"
    suspended = "suspended"
    expired = "expired"
    terminated = "terminated"


class PartyRole(StrEnum):
    data_provider = "data_provider"
    hub_operator = "hub_operator"
    data_recipient = "data_recipient"


class FieldType(StrEnum):
    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"


class FieldClass(StrEnum):
    direct_identifier = "direct_identifier"
    record_identifier = "record_identifier"
    quasi_identifier = "quasi_identifier"
    sensitive_attribute = "sensitive_attribute"
    free_text = "free_text"
    operational = "operational"


class FieldUse(StrEnum):
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


class TimeUnit(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class Geography(StrEnum):
    zip3 = "zip3"
    community_area = "community_area"


class Transform(Strict):
    """One field transform. Authored either as a word (``drop``) or a one-key map
    (``{truncate: month}``, ``{bin: [0, 18, 25]}``, ``{top_code: 90}``, ``{geo_coarsen: zip3}``)."""

    kind: Literal[
        "drop", "keep", "keyed_hash", "linkage_token", "truncate", "bin", "top_code", "geo_coarsen"
    ]
    truncate: TimeUnit | None = None
    bin: tuple[float, ...] | None = None
    top_code: float | None = None
    geo_coarsen: Geography | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_authored(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value:
            if len(value) != 1:
                raise ValueError(
                    "a transform is one word (drop, keep, keyed_hash, linkage_token) or a map "
                    "with exactly one key: truncate, bin, top_code or geo_coarsen"
                )
            ((key, arg),) = value.items()
            return {"kind": key, key: arg}
        return value

    @model_validator(mode="after")
    def _argument_present(self) -> Transform:
        if self.kind == "bin":
            if not self.bin or len(self.bin) < 2 or list(self.bin) != sorted(set(self.bin)):
                raise ValueError("bin needs at least two strictly increasing edges")
        elif (
            self.kind in ("truncate", "top_code", "geo_coarsen")
            and getattr(self, self.kind) is None
        ):
            raise ValueError(f"{self.kind} needs an argument")
        return self

    @property
    def keeps_value(self) -> bool:
        """True when some form of the value is stored with the record (not dropped, not a token)."""
        return self.kind not in ("drop", "linkage_token")

    def authored(self) -> str | dict[str, Any]:
        if self.kind in ("drop", "keep", "keyed_hash", "linkage_token"):
            return self.kind
        arg = getattr(self, self.kind)
        return {self.kind: list(arg) if isinstance(arg, tuple) else arg}


class DatasetField(Strict):
    name: Annotated[str, Field(pattern=NAME)]
    type: FieldType
    required: bool = False
    values: tuple[str, ...] | None = Field(
        default=None, description="Allowed values (an enumeration), compared as text."
    )
    min: float | None = None
    max: float | None = None
    pattern: str | None = Field(default=None, description="Regular expression the text must match.")
    keyset: Literal["community_area", "zip3"] | None = Field(
        default=None,
        description="A public list of values shipped with the hub (contracts/keysets/NAME.txt).",
    )
    class_: FieldClass = Field(alias="class")
    use: FieldUse
    transform: Transform
    link_as: LinkRole | None = None
    description: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        return value


RowHandling = Literal["reject", "drop_row", "aggregate_only", "no_linkage", "requires_consent"]


class RowRule(Strict):
    when: str = Field(
        description="A condition on one field: `field == value` or `field in [a, b]`."
    )
    handling: RowHandling
    cite: str | None = None
    consent_field: str | None = None


class Dataset(Strict):
    id: Annotated[str, Field(pattern=NAME)]
    title: str
    provider: Annotated[str, Field(pattern=PARTY_ID)]
    record_key: str
    unlisted_fields: Literal["reject", "drop"] = "reject"
    fields: tuple[DatasetField, ...]
    row_rules: tuple[RowRule, ...] = ()

    def field(self, name: str) -> DatasetField | None:
        return next((f for f in self.fields if f.name == name), None)


class Party(Strict):
    id: Annotated[str, Field(pattern=PARTY_ID)]
    role: PartyRole
    legal_name: str
    regime_flags: tuple[str, ...] = ()


class LegalBasis(Strict):
    regime: Literal[
        "HIPAA", "PART2", "FERPA", "CJIS", "VAWA", "STATE_STATUTE", "CONSENT", "CONTRACT"
    ]
    pathway: str
    citation: str | None = None


class Purposes(Strict):
    permitted: tuple[str, ...]
    prohibited: tuple[str, ...] = ()


class Linkage(Strict):
    permitted: bool = False
    link_with: tuple[str, ...] = ()
    prohibited_with: tuple[str, ...] = ()


class ContributionBound(Strict):
    max_rows_per_person_per_period: Annotated[int, Field(ge=1)]
    period: Literal["P1M", "P3M", "P1Y"]


class Budget(Strict):
    per_period: Annotated[float, Field(gt=0)]
    period: Literal["P1M", "P3M", "P1Y"]
    lifetime: Annotated[float, Field(gt=0)]


class Privacy(Strict):
    model: Literal["zcdp", "pure_dp"]
    unit: Literal["person"] = "person"
    contribution_bound: ContributionBound
    budget: Budget


TIME_DIMENSIONS = ("month", "quarter", "year")


class Aggregate(Strict):
    id: Annotated[str, Field(pattern=NAME)]
    title: str
    dataset: str
    measure: Literal["count_rows", "count_persons"]
    dimensions: tuple[str, ...]
    time_field: str | None = Field(
        default=None, description="Date field that month/quarter/year dimensions are taken from."
    )
    filters: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    budget_share: Annotated[float, Field(gt=0, le=1)]
    channel: Literal["public_dashboard", "public_report", "partner_report"] = "public_dashboard"


class Outputs(Strict):
    record_level_release: Literal["prohibited"] = "prohibited"
    recipients_allowed: tuple[str, ...]
    recipients_denied: tuple[str, ...] = ()
    privacy: Privacy
    min_cell: Annotated[int, Field(ge=0)] = 0
    prohibited_dimensions: tuple[str, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()


class Retention(Strict):
    pseudonymized_tables: str
    linkage_tokens: str
    aggregates: str = "indefinite"
    on_termination: Literal["destroy", "return_then_destroy"] = "destroy"


class Security(Strict):
    profile: Literal["baseline", "hipaa", "cjis"]


class Signatory(Strict):
    party: str
    name: str
    title: str
    signed_on: dt.date | None = None


class Approval(Strict):
    body: str
    decision: Literal["approved", "rejected", "deferred"]
    date: dt.date


class Header(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    version: Annotated[str, Field(pattern=SEMVER.pattern)]
    title: str
    tier: Literal["mou", "data_sharing_agreement", "data_use_license"] = "data_sharing_agreement"
    status: AgreementStatus
    effective_date: dt.date
    expiry_date: dt.date


class Agreement(Strict):
    spec_version: Literal["ovp-dsa/1.0"]
    agreement: Header
    parties: tuple[Party, ...]
    legal_basis: tuple[LegalBasis, ...] = ()
    purposes: Purposes
    datasets: tuple[Dataset, ...]
    linkage: Linkage = Linkage()
    outputs: Outputs
    retention: Retention | None = None
    security: Security | None = None
    signatories: tuple[Signatory, ...] = ()
    approvals: tuple[Approval, ...] = ()

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
        """The canonical form signatures and hashes are computed over: sorted keys, no spaces,
        defaults made explicit, so two YAML spellings of the same agreement hash the same."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()
