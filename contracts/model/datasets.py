"""Datasets: what a provider sends, field by field, and what the hub does with each row."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from contracts.model.checks import CheckName
from contracts.model.vocabulary import (
    FieldClass,
    FieldType,
    FieldUse,
    Geography,
    LinkRole,
    Name,
    PartyId,
    RowHandling,
    Strict,
    TimeUnit,
)

TransformKind = Literal[
    "drop", "keep", "keyed_hash", "linkage_token", "truncate", "bin", "top_code", "geo_coarsen"
]
TRANSFORM_WORDS = ("drop", "keep", "keyed_hash", "linkage_token")


class Transform(Strict):
    """One field transform. Authored either as a word (``drop``) or a one-key map
    (``{truncate: month}``, ``{bin: [0, 18, 25]}``, ``{top_code: 90}``, ``{geo_coarsen: zip3}``)."""

    kind: TransformKind = Field(description="Which transform (the authored word or map key).")
    truncate: TimeUnit | None = Field(default=None, description="Unit a date is truncated to.")
    bin: tuple[float, ...] | None = Field(
        default=None, description="Increasing bin edges; bins are [e0, e1), [e1, e2), ..."
    )
    top_code: float | None = Field(default=None, description="Values above this are set to it.")
    geo_coarsen: Geography | None = Field(
        default=None, description="Area a location is coarsened to."
    )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Editors validate what legal staff type, which is the authored form, not the model.
        def one_key(key: str, value: dict[str, Any], description: str) -> dict[str, Any]:
            return {
                "type": "object",
                "properties": {key: value},
                "required": [key],
                "additionalProperties": False,
                "description": description,
            }

        return {
            "description": (
                "What the hub does to the value at ingest. drop: never stored; keep: stored "
                "as sent; keyed_hash: HMAC-SHA256 under a per-agreement key; linkage_token: "
                "keyed tokens for linkage, value not stored. Or one of the maps below."
            ),
            "anyOf": [
                {"type": "string", "enum": list(TRANSFORM_WORDS)},
                one_key(
                    "truncate",
                    {"type": "string", "enum": [u.value for u in TimeUnit]},
                    "Truncate a date or datetime to a calendar unit.",
                ),
                one_key(
                    "bin",
                    {"type": "array", "items": {"type": "number"}, "minItems": 2},
                    "Replace a number by its bin, given increasing edges.",
                ),
                one_key("top_code", {"type": "number"}, "Cap a number at this value."),
                one_key(
                    "geo_coarsen",
                    {"type": "string", "enum": [g.value for g in Geography]},
                    "Replace a location by the area holding it.",
                ),
            ],
        }

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
        if self.kind in TRANSFORM_WORDS:
            return self.kind
        arg = getattr(self, self.kind)
        return {self.kind: list(arg) if isinstance(arg, tuple) else arg}


class DatasetField(Strict):
    """One column of the extract: its type and allowed values (checked at upload), how
    identifying it is, what the hub may use it for and how it is transformed at ingest."""

    name: Name = Field(description="Column name as it appears in the extract header.")
    type: FieldType = Field(description="How the column's text is read.")
    required: bool = Field(default=False, description="Every row must have a value.")
    values: tuple[str, ...] | None = Field(
        default=None, description="Allowed values (an enumeration), compared as text."
    )
    min: float | None = Field(default=None, description="Smallest allowed number.")
    max: float | None = Field(default=None, description="Largest allowed number.")
    pattern: str | None = Field(default=None, description="Regular expression the text must match.")
    keyset: Literal["community_area", "zip3"] | None = Field(
        default=None,
        description="A public list of values shipped with the hub (contracts/keysets/NAME.txt).",
    )
    class_: FieldClass = Field(alias="class", description="How identifying the field is.")
    use: FieldUse = Field(description="What the hub may do with the field.")
    transform: Transform = Field(description="What the hub does to the value at ingest.")
    link_as: LinkRole | None = Field(
        default=None, description="What the field means to linkage (for linkage tokens and sex)."
    )
    age_at: Name | None = Field(
        default=None,
        description="For link_as: age, the date field the age was taken on (the event's date); "
        "linkage compares the birth years the age allows.",
    )
    description: str | None = Field(default=None, description="What the field records.")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        return value


class RowRule(Strict):
    """A rule on whole rows, e.g. juvenile rows are aggregate-only, rows without written
    consent are refused."""

    when: str = Field(
        description=(
            "Which rows the rule applies to: `field == value`, `field != value`, "
            "`field in [a, b]`, `field < n` (also <=, >, >=), or `every row`."
        )
    )
    handling: RowHandling = Field(description="What happens to the rows the rule matches.")
    cite: str | None = Field(default=None, description="The statute or clause behind the rule.")
    consent_field: str | None = Field(
        default=None,
        description="For requires_consent: the field that records the person's consent.",
    )


class DatasetCheck(Strict):
    """A named check the hub runs on every row at upload, beyond what the fields declare, e.g.
    ``{check: dates_in_order, fields: [victim_dob, incident_datetime]}``. The agreement decides
    whether a failing row rejects the upload (error) or is only reported (warning)."""

    check: CheckName = Field(description="Which of the hub's checks to run.")
    fields: tuple[Name, ...] = Field(
        min_length=1,
        description="The fields the check reads, in the order the check takes them "
        "(dates_in_order: the earlier date, then the later one).",
    )
    when: str | None = Field(
        default=None,
        description="Only rows matching this condition are checked (the row-rule language: "
        "`injury_intent == ASSAULT`); every row when absent.",
    )
    severity: Literal["error", "warning"] = Field(
        default="error",
        description="error: failing rows reject the upload; warning: they are reported and "
        "the upload goes ahead.",
    )


class FerpaTerms(Strict):
    """What FERPA requires a written agreement to state for student records disclosed under
    the studies or audit/evaluation exceptions (34 CFR 99.31(a)(6), 99.35)."""

    basis: Literal[
        "studies", "audit_evaluation", "parental_consent", "de_identified", "directory_information"
    ] = Field(description="The FERPA exception the disclosure is made under.")
    destruction_date: dt.date | None = Field(
        default=None,
        description="Date by which every record disclosed under this agreement is destroyed.",
    )
    authorized_representative: PartyId | None = Field(
        default=None,
        description="For audit_evaluation: the party the educational authority designates.",
    )
    education_program: str | None = Field(
        default=None,
        description="For audit_evaluation: the education program being audited or evaluated.",
    )


class Delivery(Strict):
    """How and how often the provider sends the extract."""

    channel: Literal["upload", "sftp", "api"] = Field(
        default="upload", description="How files reach the hub."
    )
    format: Literal["csv", "parquet", "xlsx"] = Field(default="csv", description="File format.")
    frequency: Literal["daily", "weekly", "monthly", "quarterly", "annually", "ad_hoc"] = Field(
        default="monthly", description="How often an extract is sent."
    )
    max_lag_days: int | None = Field(
        default=None, ge=0, description="Most days between an event and the extract holding it."
    )
    encryption: str | None = Field(default=None, description="Encryption in transit, e.g. pgp.")


class Dataset(Strict):
    """One extract a provider sends under the agreement."""

    id: Name = Field(description="Stable dataset id, unique across all agreements.")
    title: str = Field(description="Plain-language name of the dataset.")
    description: str | None = Field(default=None, description="What one row is, and who is in it.")
    provider: PartyId = Field(description="The party that sends this dataset.")
    schema_ref: str | None = Field(default=None, description="Reference to an external schema.")
    population: str | None = Field(
        default=None, description="Which events or people the extract covers."
    )
    delivery: Delivery | None = Field(default=None, description="How the extract is sent.")
    record_key: str = Field(description="The field that identifies a row within this dataset.")
    one_record_per_person: bool = Field(
        default=False,
        description="Each person is in at most one row of the dataset, across all its uploads "
        "(a roster or a deduplicated register): linkage never puts two of its rows in one "
        "person.",
    )
    unlisted_fields: Literal["reject", "drop"] = Field(
        default="reject",
        description="What happens to a column the agreement does not list: reject the upload "
        "or drop the column.",
    )
    fields: tuple[DatasetField, ...] = Field(description="Every column the extract may carry.")
    row_rules: tuple[RowRule, ...] = Field(
        default=(), description="Rules on whole rows, applied at upload."
    )
    checks: tuple[DatasetCheck, ...] = Field(
        default=(), description="Named checks run on every row at upload, beyond the fields' own."
    )
    ferpa: FerpaTerms | None = Field(
        default=None, description="FERPA terms, required for records of a FERPA agency."
    )

    def field(self, name: str) -> DatasetField | None:
        return next((f for f in self.fields if f.name == name), None)
