"""The great-expectations side: one ephemeral context, one suite per dataset, run on a frame.

``compile_suite(dataset)`` turns :func:`checks.compile_checks` into a great-expectations 1.x
``ExpectationSuite``; each expectation's ``meta["ovp_checks"]`` lists the checks it answers, so
results map back to rules without parsing great-expectations' output. :func:`run_suite`
validates a prepared frame and returns, per check, the positions of the failing rows.

Caveats, all great-expectations behaviour this module works around:

* Importing great_expectations takes seconds, so it is imported inside functions only.
* One ephemeral (in-memory) context serves the process, with progress bars off. Each dataset
  gets a cached suite and a whole-dataframe batch definition on one pandas data source.
* The pandas execution engine keeps the last batch's dataframe and some metrics after a run.
  That would keep an extract (identifiers included) in memory after validation, so every run
  clears them; and because that state is shared, runs are serialised by a lock (the work is
  CPU-bound under the GIL anyway).
* Results are requested as ``COMPLETE`` with ``exclude_unexpected_values`` so that results carry
  row positions, never the failing values themselves. (great-expectations still computes the
  values internally; they are dropped with the result.)
* The agreement's named checks (``custom.py``) are custom expectations (``_gx_custom.py``);
  the day they compare against is the suite parameter ``ovp_today``, bound per run, so the
  cached suite does not depend on the date.
* An expectation that raises becomes a :class:`ValidationEngineError` naming the rule and
  column only: great-expectations' exception text can quote a cell value.
* great-expectations fingerprints each batch with an unkeyed MD5 of the whole frame; setting
  its module-level ``HASH_THRESHOLD`` to 0 turns that off for the process (see
  ``_build_data_source``).
* Each run has a fixed cost of about 0.25 s for the 35 field expectations of the police example
  (great-expectations rebuilds expectation configurations thousands of times while planning:
  ``Expectation.configuration`` is a property that builds a new object on every access, about
  4,700 times a run). During a run that property is memoized per expectation object
  (:func:`_configurations_memoized`): the objects are not changed while a run plans and
  evaluates, so the same configuration comes back; it saves about 0.1 s of every 100,000-row
  chunk (0.62 -> 0.51 s, same report). On top of that, roughly 2.5 µs per row. Chunks of
  100,000 rows or more keep that cost small: measured 190,000 rows/s on 100,000 rows and
  300,000 rows/s on 1,000,000 rows (2 cores), before the memoizing.
  The police example's two named checks (37 expectations in all) add about 0.15 s of
  computation per 1,000,000 rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from contracts.model import Dataset
from validators.checks import Check, compile_checks

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.expectations.expectation import Expectation

_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}
_LOCK = threading.RLock()  # guards building and running; see the module docstring
_SOURCE = "ovp_extracts"


class ValidationEngineError(RuntimeError):
    """great-expectations failed to evaluate a check (a bug or a bad pattern, not bad data)."""


_source: Any = None


def _data_source() -> Any:
    """The process's ephemeral great-expectations context and its pandas data source."""
    global _source
    with _LOCK:
        if _source is None:
            _source = _build_data_source()
        return _source


def _build_data_source() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # great-expectations fingerprints every batch with an unkeyed MD5 of the whole frame (twice
    # per run, a quarter of the run time) just to label it. The label is unused here, and an
    # unkeyed digest of identifiers is better not made at all. A zero threshold skips it.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context.data_sources.add_pandas(_SOURCE)


def _expectation(check: Check) -> Expectation:
    import great_expectations.expectations as gxe

    from validators._gx_calendar import ExpectColumnValuesToStartWithCalendarDate

    column = check.column
    kind = check.expectation
    if kind == "custom":
        return _custom_expectation(check)
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=column)
    if kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(
            column=column, value_set=list(check.kwarg("value_set"))
        )
    if kind == "match_regex":
        return gxe.ExpectColumnValuesToMatchRegex(column=column, regex=check.kwarg("regex"))
    if kind == "calendar_date":
        expectation: Expectation = ExpectColumnValuesToStartWithCalendarDate(column=column)
        return expectation
    if kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=check.kwarg("min_value"), max_value=check.kwarg("max_value")
        )
    raise ValueError(f"unknown expectation kind {kind!r}")


def _custom_expectation(check: Check) -> Expectation:
    """A named check: a column map on one column, a multicolumn map on several."""
    from validators._gx_custom import (
        TODAY,
        ExpectColumnValuesToPassOvpCheck,
        ExpectMulticolumnValuesToPassOvpCheck,
    )

    kwargs: dict[str, Any] = {
        "check": check.kwarg("check"),
        "when": check.kwarg("when"),
        "today": {"$PARAMETER": TODAY},
    }
    columns = list(check.columns)
    expectation: Expectation
    if len(columns) == 1:
        expectation = ExpectColumnValuesToPassOvpCheck(column=columns[0], **kwargs)
    else:
        expectation = ExpectMulticolumnValuesToPassOvpCheck(column_list=columns, **kwargs)
    return expectation


def compile_suite(dataset: Dataset) -> ExpectationSuite:
    """The dataset's contract as a great-expectations ``ExpectationSuite`` (a new object).

    Expectations read the columns of the frame ``run.py`` prepares (declared fields, plus a
    derived numeric column per range check). Identical expectations are added once, with every
    check they answer listed in ``meta["ovp_checks"]`` (indexes into ``compile_checks``).
    """
    import great_expectations as gx

    _data_source()  # a suite needs a current context, even one it is never saved in
    checks = compile_checks(dataset)
    grouped: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[int]] = {}
    for i, check in enumerate(checks):
        grouped.setdefault((check.expectation, check.column, check.kwargs), []).append(i)
    suite = gx.ExpectationSuite(name=f"ovp-{dataset.id}")
    for indexes in grouped.values():
        expectation = _expectation(checks[indexes[0]])
        expectation.meta = {"ovp_checks": indexes}
        suite.add_expectation(expectation)
    return suite


@dataclass(frozen=True)
class _Compiled:
    checks: tuple[Check, ...]
    suite: ExpectationSuite
    batch_definition: BatchDefinition


_asset_counter = iter(range(1, 1 << 62))


@lru_cache(maxsize=128)
def compiled(dataset: Dataset) -> _Compiled:
    """Checks, suite and batch definition for ``dataset``, built once per distinct contract."""
    with _LOCK:
        asset = _data_source().add_dataframe_asset(f"{dataset.id}-{next(_asset_counter)}")
        return _Compiled(
            checks=compile_checks(dataset),
            suite=compile_suite(dataset),
            batch_definition=asset.add_batch_definition_whole_dataframe("whole"),
        )


Failures = Mapping[int, npt.NDArray[np.int64]]
"""Per check index, the sorted positions (0-based) of the frame rows that failed it."""


def run_suite(dataset: Dataset, frame: pd.DataFrame, *, today: dt.date) -> Failures:
    """Validate ``frame`` (RangeIndex, prepared by ``run.py``) against the dataset's suite.

    ``today`` is the day named checks such as ``not_in_future`` compare against; it is bound
    to the suite's ``ovp_today`` parameter for this run only."""
    unit = compiled(dataset)
    failures: dict[int, npt.NDArray[np.int64]] = {}
    if frame.empty or not unit.checks:
        return failures
    with _LOCK, _configurations_memoized():
        try:
            batch = unit.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            results = batch.validate(
                unit.suite,
                result_format=dict(_RESULT_FORMAT),
                expectation_parameters={"ovp_today": today.isoformat()},
            )
        except Exception as exc:
            # Not chained: the original message may quote a cell value.
            raise ValidationEngineError(
                f"great-expectations failed on {dataset.id} ({type(exc).__name__})"
            ) from None
        finally:
            _forget_batches()
    for result in results.results:
        config = result.expectation_config
        if config is None:
            raise ValidationEngineError("great-expectations returned a result without its check")
        indexes: list[int] = list((config.meta or {}).get("ovp_checks", []))
        if result.success:
            continue
        found = (result.result or {}).get("unexpected_index_list")
        if found is None:  # great-expectations caught an exception (its text is not shown)
            first = unit.checks[indexes[0]] if indexes else None
            where = f"{first.rule} on {first.field}" if first else config.type
            raise ValidationEngineError(f"great-expectations could not evaluate {where}")
        positions = np.sort(np.asarray(found, dtype=np.int64))
        for i in indexes:
            failures[i] = positions
    return failures


@contextlib.contextmanager
def _configurations_memoized() -> Iterator[None]:
    """For the length of one run (under :data:`_LOCK`, as every use of great-expectations here
    is), ``Expectation.configuration`` returns the configuration it built first for each
    expectation object; afterwards the property is as it was."""
    from great_expectations.expectations.expectation import Expectation

    original = Expectation.__dict__["configuration"]
    built: dict[int, tuple[Any, Any]] = {}  # id -> (the object, kept alive; its configuration)

    def configuration(self: Any) -> Any:
        held = built.get(id(self))
        if held is None or held[0] is not self:
            held = built[id(self)] = (self, original.fget(self))
        return held[1]

    Expectation.configuration = property(configuration)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Expectation.configuration = original  # type: ignore[method-assign]
        built.clear()


def _forget_batches() -> None:
    """Drop the extract and cached metrics great-expectations keeps after a run."""
    engine = _data_source().get_execution_engine()
    manager = engine.batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()
    metric_cache = getattr(engine, "_metric_cache", None)
    if isinstance(metric_cache, dict):
        metric_cache.clear()
