"""Outputs: what may leave the hub — approved aggregates only, under a privacy budget."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from contracts.model.vocabulary import Name, Strict

TIME_DIMENSIONS = ("month", "quarter", "year")
Period = Literal["P1M", "P3M", "P1Y"]
Measure = Literal["count_rows", "count_persons", "sum", "mean", "rate_rows", "rate_persons"]

#: Measures that add up a per-row number (need ``value``) and those that are a share (need
#: ``numerator``).
VALUE_MEASURES = ("sum", "mean")
RATE_MEASURES = ("rate_rows", "rate_persons")


class ContributionBound(Strict):
    """How many rows one person may contribute to a release; rows beyond it are left out, so
    the noise can be calibrated to one person."""

    max_rows_per_person_per_period: int = Field(
        ge=1, description="Most rows one person contributes in each period."
    )
    period: Period = Field(description="The period the bound is counted over.")


class Budget(Strict):
    """The privacy loss releases may spend: ρ for zcdp, ε for pure_dp."""

    per_period: float = Field(gt=0, description="Loss all releases together may spend per period.")
    period: Period = Field(description="The budget period (ISO-8601: P1M month, P3M, P1Y).")
    lifetime: float = Field(
        gt=0, description="Loss the agreement may ever spend; then releases stop."
    )
    delta_for_reporting: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="δ used only to report zcdp budgets as (ε, δ); it changes no noise.",
    )


class Privacy(Strict):
    """The differential-privacy guarantee every release under the agreement keeps."""

    model: Literal["zcdp", "pure_dp"] = Field(
        description="zcdp (zero-concentrated DP, budget in ρ) or pure_dp (budget in ε)."
    )
    unit: Literal["person"] = Field(
        default="person",
        description="Whom the guarantee protects: the linked person, not the row.",
    )
    contribution_bound: ContributionBound = Field(description="Rows one person may contribute.")
    budget: Budget = Field(description="Privacy loss per period and over the agreement's life.")


class Value(Strict):
    """The number a ``sum`` or ``mean`` adds up, one per row: an integer field, or the days
    between two date fields of the row. Rows without it are left out; values outside
    ``bounds`` are clamped into them, which is what bounds one person's influence."""

    field: str | None = Field(default=None, description="An integer field of the dataset.")
    days_between: tuple[str, str] | None = Field(
        default=None,
        description="Two date fields [start, end]: the value is end minus start, in days.",
    )
    bounds: tuple[int, int] = Field(
        description="[lower, upper]: values are clamped into this range before they are added."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Value:
        if (self.field is None) == (self.days_between is None):
            raise ValueError("give exactly one of field or days_between")
        if self.bounds[0] > self.bounds[1]:
            raise ValueError(f"bounds {list(self.bounds)}: the lower bound is above the upper")
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        return self.days_between if self.days_between is not None else (str(self.field),)


class LinkedEvent(Strict):
    """The same linked person has a row in another dataset, dated near this row."""

    dataset: str = Field(description="The other dataset (it must be in requires_linkage).")
    time_field: str = Field(description="The other dataset's date field.")
    filters: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Only the other dataset's rows with these values count."
    )
    days_from: int = Field(
        description="The other row's date minus this row's date is at least this (e.g. -365)."
    )
    days_to: int = Field(description="... and at most this (e.g. -1 for 'before this row').")

    @model_validator(mode="after")
    def _window(self) -> LinkedEvent:
        if self.days_from > self.days_to:
            raise ValueError(f"days_from {self.days_from} is after days_to {self.days_to}")
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.time_field, *(f for f in self.filters if f != self.time_field))


class Condition(Strict):
    """When a row (or person) counts in a rate's numerator: every part given must hold."""

    filters: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="The row's field has one of these values."
    )
    days_between: tuple[str, str] | None = Field(
        default=None, description="Two date fields [start, end] of the row, end not missing."
    )
    at_most_days: int | None = Field(
        default=None, ge=0, description="end - start is between 0 and this many days."
    )
    linked: LinkedEvent | None = Field(
        default=None, description="The same person has a matching row in a linked dataset."
    )

    @model_validator(mode="after")
    def _something(self) -> Condition:
        if (self.days_between is None) != (self.at_most_days is None):
            raise ValueError("days_between and at_most_days go together")
        if not self.filters and self.days_between is None and self.linked is None:
            raise ValueError("give at least one of filters, days_between or linked")
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        """Fields of the aggregate's own dataset the condition reads."""
        names = list(self.filters)
        names += [f for f in self.days_between or () if f not in names]
        return tuple(names)


class Aggregate(Strict):
    """An approved aggregate: the only kind of output the hub computes."""

    id: Name = Field(description="Stable aggregate id, as analysts request it.")
    title: str = Field(description="Plain-language title shown in the catalogue.")
    dataset: str = Field(description="The dataset of this agreement it is computed from.")
    measure: Measure = Field(
        description=(
            "count_rows (events), count_persons (distinct linked people), sum or mean of a "
            "bounded value per row, rate_rows (share of rows) or rate_persons (share of people) "
            "meeting the numerator condition."
        )
    )
    dimensions: tuple[str, ...] = Field(
        description="What the counts are broken down by: fields, or month, quarter, year."
    )
    time_field: str | None = Field(
        default=None, description="Date field that month/quarter/year dimensions are taken from."
    )
    filters: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Only rows whose field has one of these values count."
    )
    budget_share: float = Field(
        gt=0, le=1, description="Share of the per-period budget one release of it spends."
    )
    channel: Literal["public_dashboard", "public_report", "partner_report"] = Field(
        default="public_dashboard", description="Where the aggregate is published."
    )
    cadence: Literal["weekly", "monthly", "quarterly", "annually", "on_request"] | None = Field(
        default=None, description="How often it is released."
    )
    provider_review_days: int = Field(
        default=0,
        ge=0,
        description="Days providers may preview it before its first publication (0 = none).",
    )
    requires_linkage: tuple[str, ...] = Field(
        default=(), description="Datasets it needs linked to its own (each must be in link_with)."
    )
    value: Value | None = Field(
        default=None, description="For sum and mean: the bounded number each row adds."
    )
    numerator: Condition | None = Field(
        default=None, description="For rate_rows and rate_persons: what the share counts."
    )

    @model_validator(mode="after")
    def _measure_parts(self) -> Aggregate:
        wants_value = self.measure in VALUE_MEASURES
        wants_numerator = self.measure in RATE_MEASURES
        if wants_value != (self.value is not None):
            raise ValueError(
                f"measure {self.measure} "
                + ("needs a value" if wants_value else "takes no value (only sum and mean do)")
            )
        if wants_numerator != (self.numerator is not None):
            raise ValueError(
                f"measure {self.measure} "
                + (
                    "needs a numerator"
                    if wants_numerator
                    else "takes no numerator (only rate_rows and rate_persons do)"
                )
            )
        return self

    @property
    def linked_events(self) -> tuple[LinkedEvent, ...]:
        if self.numerator is not None and self.numerator.linked is not None:
            return (self.numerator.linked,)
        return ()


class Outputs(Strict):
    """What may come out of the hub, for whom, and at what privacy cost."""

    record_level_release: Literal["prohibited"] = Field(
        default="prohibited", description="Record-level data never leaves the hub."
    )
    recipients_allowed: tuple[str, ...] = Field(
        description="Who may receive outputs: public, a party id, or a recipient category."
    )
    recipients_denied: tuple[str, ...] = Field(
        default=(), description="Who may never receive outputs, e.g. law_enforcement."
    )
    privacy: Privacy = Field(description="The privacy model, unit, bound and budget.")
    min_cell: int = Field(
        default=0, ge=0, description="Noisy counts below this are suppressed (0 = none)."
    )
    prohibited_dimensions: tuple[str, ...] = Field(
        default=(), description="Fields no aggregate may break counts down by."
    )
    aggregates: tuple[Aggregate, ...] = Field(default=(), description="The approved aggregates.")
