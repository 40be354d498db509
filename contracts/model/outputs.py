"""Outputs: what may leave the hub — approved aggregates only, under a privacy budget."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.model.vocabulary import Name, Strict

TIME_DIMENSIONS = ("month", "quarter", "year")
Period = Literal["P1M", "P3M", "P1Y"]


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


class Aggregate(Strict):
    """An approved aggregate: the only kind of output the hub computes."""

    id: Name = Field(description="Stable aggregate id, as analysts request it.")
    title: str = Field(description="Plain-language title shown in the catalogue.")
    dataset: str = Field(description="The dataset of this agreement it is computed from.")
    measure: Literal["count_rows", "count_persons"] = Field(
        description="count_rows (events) or count_persons (distinct linked people)."
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
