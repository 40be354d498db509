"""great-expectations expectations for the hub's named checks (``validators/custom.py``).

Importing this module imports great-expectations (seconds), so only ``suite.py`` imports it,
inside a function. Defining the classes registers the metrics and expectations with
great-expectations' global registries, which is why they live at module level (defined once).

Two expectations, one per great-expectations domain, both dispatching on the ``check`` name to
the registry in ``custom.py``:

* :class:`ExpectColumnValuesToPassOvpCheck` for a check that reads one column (and whose
  condition, if any, reads the same column). great-expectations leaves empty cells out of a
  column map, as for every built-in rule.
* :class:`ExpectMulticolumnValuesToPassOvpCheck` for a check that reads several columns, or
  one column and a condition on another. ``column_list`` holds the check's fields in order,
  then the condition's field if it is not one of them; every row is passed
  (``ignore_row_if="never"``), since the checks treat empty cells themselves.

``today`` is a suite parameter (``{"$PARAMETER": "ovp_today"}``), bound at each run to the day
``validate_extract`` is given, so one cached suite serves every day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

import pandas as pd
from great_expectations.core.suite_parameters import SuiteParameterDict
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)

from contracts.conditions import parse_condition
from contracts.model import CHECKS, CheckName
from validators.custom import failing

COLUMN_METRIC = "column_values.ovp_custom_check"
MULTICOLUMN_METRIC = "multicolumn_values.ovp_custom_check"
TODAY = "ovp_today"
"""The suite parameter holding the day checks compare against (ISO text)."""


def _day(today: Any) -> dt.date:
    if isinstance(today, dt.date):
        return today
    if not isinstance(today, str):
        raise ValueError(f"the {TODAY} suite parameter was not bound to a day")
    return dt.date.fromisoformat(today)


class ColumnValuesPassOvpCheck(ColumnMapMetricProvider):
    condition_metric_name = COLUMN_METRIC
    condition_value_keys = ("check", "when", "today")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column: pd.Series, check: str, today: Any, when: str | None = None, **kwargs: Any
    ) -> pd.Series:
        fails = failing(check, [column], today=_day(today), when=when, condition_column=column)
        return pd.Series(~fails, index=column.index)


class MulticolumnValuesPassOvpCheck(MulticolumnMapMetricProvider):
    condition_metric_name = MULTICOLUMN_METRIC
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )
    condition_value_keys = ("check", "when", "today")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls,
        column_list: pd.DataFrame,
        check: str,
        today: Any,
        when: str | None = None,
        **kwargs: Any,
    ) -> pd.Series:
        arity = CHECKS[CheckName(check)].arity
        columns = [column_list.iloc[:, i] for i in range(arity)]
        condition = None
        if when is not None:
            field = parse_condition(when).field
            condition = column_list[field] if field else columns[0]
        fails = failing(check, columns, today=_day(today), when=when, condition_column=condition)
        return pd.Series(~fails, index=column_list.index)


class ExpectColumnValuesToPassOvpCheck(ColumnMapExpectation):
    """Expect each non-empty value to pass the hub's named ``check`` (see validators/custom.py),
    on rows where the condition ``when`` holds."""

    check: str
    when: str | None = None
    today: str | SuiteParameterDict | None = None

    map_metric = COLUMN_METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "check", "when", "today")


class ExpectMulticolumnValuesToPassOvpCheck(MulticolumnMapExpectation):
    """Expect each row to pass the hub's named ``check`` on the first columns of
    ``column_list`` (the rest hold the condition's field), where the condition ``when`` holds."""

    check: str
    when: str | None = None
    today: str | SuiteParameterDict | None = None
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"

    map_metric = MULTICOLUMN_METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "check", "when", "today")
