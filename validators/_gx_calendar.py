"""A great-expectations expectation for "the value starts with a real calendar date".

Importing this module imports great-expectations (seconds), so only ``suite.py`` imports it,
inside a function. Defining the classes registers the metric and the expectation with
great-expectations' global registries, which is why they live at module level (defined once).

Why not ``expect_column_values_to_match_strftime_format``: it calls ``datetime.strptime`` per
value (slow) and accepts ``2024-3-9``. Here the format is left to a regular expression and this
metric only answers "is ``YYYY-MM-DD`` at the start a day that exists", vectorised by pandas.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

METRIC = "column_values.ovp_start_with_calendar_date"


class ColumnValuesStartWithCalendarDate(ColumnMapMetricProvider):
    condition_metric_name = METRIC

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        head = column.astype(str).str.slice(0, 10)
        return pd.to_datetime(head, format="%Y-%m-%d", errors="coerce").notna()


class ExpectColumnValuesToStartWithCalendarDate(ColumnMapExpectation):
    """Expect each non-empty value to begin with ``YYYY-MM-DD`` naming a real calendar day."""

    map_metric = METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
