"""The hub's named checks (``datasets[].checks`` in an agreement), vectorised over text columns.

The catalogue of names and the fields each takes is ``contracts.model.CHECKS``; this module is
the implementation. Each check is a function of the columns it reads — pandas Series of ``str``
or ``None``, one per declared field, in order, sharing one index — and of ``today``, and returns
a numpy boolean array that is true where the row *fails*. Strings are handled by pyarrow
compute kernels; no check loops over rows in Python.

``suite.py`` runs them through great-expectations (``_gx_custom.py``), so their failures come
back with the built-in rules' and are reported the same way; :func:`failing` runs one
directly (handy in tests and notebooks). The words of their findings are in ``wording.py``.

Semantics, decided here once:

* An empty cell passes (``required`` asks for values). ``dates_in_order`` passes a row where
  either date is empty.
* Dates compare by calendar day: the first ten characters of a ``date`` or ``datetime`` value,
  compared as ISO text. A value that is not a valid date is the type check's to report;
  ``validate_extract`` leaves such rows out of these checks' findings, so each bad value is
  reported once.
* ``not_in_future``: the day is not after ``today`` (a time later today is not the future).
* ``dates_in_order``: the first date is on or before the second (a person may be hurt on the
  day they are born, so a birth date equal to the event date passes).
* ICD-10-CM checks read a list of codes separated by ``;``, ``,``, ``|`` or spaces, with or
  without the dot and in any case (``x95.9xxa`` is ``X95.9XXA``). A row passes when at least
  one listed code is of the kind asked for (reference/domain.md A.3):

  - assault: the Assault block X92–Y09, by three-character category. It includes the Y07
    perpetrator codes (reported only with an assault or maltreatment code) and, because the
    block is read as a range, the WHO-only Y05/Y06.
  - firearm: W32–W34 (unintentional), X72–X74 (self-harm), X93–X95 (assault), Y22–Y24
    (undetermined) and Y35.0 (legal intervention involving firearm discharge), less the gas,
    air and spring-operated guns (W34.01-, W34.11-, X74.0-, X95.0-, Y24.0: airgun, paintball,
    BB), which are not powder firearms under CSTE 24-INJ-01.

  The checks test the category only; whether a code exists in the current code set is not
  checked (the field's ``pattern`` checks its shape).
* ``when`` (a condition in the row-rule language) limits a check to matching rows; it is
  evaluated once per distinct value of its field, with ``Condition.matches``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contracts.conditions import Condition, parse_condition
from contracts.model import CHECKS, CheckName

Mask = npt.NDArray[np.bool_]
Failing = Mask
"""Per row, positionally: true where the row fails the check."""

CheckFunction = Callable[[Sequence[pd.Series], dt.date], Failing]

ASSAULT_CATEGORIES = frozenset(
    [f"X{n}" for n in range(92, 100)] + [f"Y{n:02d}" for n in range(0, 10)]
)
FIREARM_CATEGORIES = frozenset(
    {"W32", "W33", "W34", "X72", "X73", "X74", "X93", "X94", "X95", "Y22", "Y23", "Y24"}
)
NOT_POWDER_FIREARMS = frozenset({"W3401", "W3411", "X740", "X950", "Y240"})
"""Gas, air or spring-operated guns (airgun, paintball, BB) inside the firearm categories."""
LEGAL_INTERVENTION_FIREARM = "Y350"
"""Y35.0-: legal intervention involving firearm discharge."""


def _arrow(column: pd.Series) -> pa.Array:
    """The column as one Arrow string array (nulls for empty cells)."""
    array = column.array
    if isinstance(column.dtype, pd.StringDtype) and hasattr(array, "__arrow_array__"):
        arrow = array.__arrow_array__()
    else:
        arrow = pa.array(column.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if arrow.type != pa.string():
        arrow = arrow.cast(pa.string())
    return arrow


def _mask(result: pa.Array | pa.ChunkedArray) -> Failing:
    """A boolean Arrow result as numpy, nulls counting as false (empty cells pass)."""
    filled = pc.fill_null(result, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def _day(column: pd.Series) -> pa.Array:
    return pc.utf8_slice_codeunits(_arrow(column), 0, 10)


# --- ICD-10-CM ---------------------------------------------------------------------------------
# One regular expression per kind, searched in the whole cell (RE2, any case): a code starts at
# the start of the cell or after a separator, and may carry a dot after its category. RE2 has
# no lookahead, so "a firearm category other than its air-gun subcategories" is spelled out as
# the characters that may follow the category. tests/validators/test_custom_checks.py checks
# both expressions against ASSAULT_CATEGORIES, FIREARM_CATEGORIES and NOT_POWDER_FIREARMS.

_START = r"(?:^|[;,|\s])"
ASSAULT_PATTERN = _START + r"(?:X9[2-9]|Y0[0-9])"
FIREARM_PATTERN = (
    _START + r"(?:W3[23]|X7[23]|X9[34]|Y2[23]|Y35\.?0"
    r"|W34\.?(?:$|[^01.]|0(?:$|[^1])|1(?:$|[^1]))"  # not W34.01- or W34.11-
    r"|(?:X74|X95|Y24)\.?(?:$|[^0.])"  # not X74.0-, X95.0-, Y24.0
    r")"
)
EITHER_PATTERN = f"(?:{ASSAULT_PATTERN})|(?:{FIREARM_PATTERN})"


def _lists_code(column: pd.Series, pattern: str) -> Failing:
    """True where a non-empty cell lists no code matching ``pattern``."""
    text = _arrow(column)
    return _mask(pc.invert(pc.match_substring_regex(text, pattern, ignore_case=True)))


def icd10_assault(columns: Sequence[pd.Series], today: dt.date) -> Failing:
    return _lists_code(columns[0], ASSAULT_PATTERN)


def icd10_firearm(columns: Sequence[pd.Series], today: dt.date) -> Failing:
    return _lists_code(columns[0], FIREARM_PATTERN)


def icd10_assault_or_firearm(columns: Sequence[pd.Series], today: dt.date) -> Failing:
    return _lists_code(columns[0], EITHER_PATTERN)


# --- dates -------------------------------------------------------------------------------------


def not_in_future(columns: Sequence[pd.Series], today: dt.date) -> Failing:
    if today == dt.date.max:
        return np.zeros(len(columns[0]), dtype=bool)
    # A value starting with YYYY-MM-DD is dated after today exactly when it sorts at or after
    # tomorrow's YYYY-MM-DD, so the whole text compares without cutting out the day.
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    return _mask(pc.greater_equal(_arrow(columns[0]), pa.scalar(tomorrow)))


def dates_in_order(columns: Sequence[pd.Series], today: dt.date) -> Failing:
    return _mask(pc.greater(_day(columns[0]), _day(columns[1])))


# --- the registry ------------------------------------------------------------------------------

REGISTRY: dict[CheckName, CheckFunction] = {
    CheckName.icd10_assault: icd10_assault,
    CheckName.icd10_firearm: icd10_firearm,
    CheckName.icd10_assault_or_firearm: icd10_assault_or_firearm,
    CheckName.not_in_future: not_in_future,
    CheckName.dates_in_order: dates_in_order,
}
"""Every check of ``contracts.model.CHECKS``, implemented (a test keeps the two in step); the
words of their findings are in ``wording.py``."""


def spread(column: pd.Series, test: Callable[[object], bool]) -> Mask:
    """Per row, ``test`` of ``column``'s value (``None`` for an empty cell): evaluated once per
    distinct value, then spread to the rows."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    hits = np.array([test(u) for u in uniques], dtype=bool)
    out = np.full(len(column), test(None), dtype=bool)
    present = codes >= 0
    out[present] = hits[codes[present]]
    return out


def condition_matches(condition: Condition, column: pd.Series) -> Mask:
    """Per row, whether ``condition`` holds for ``column``'s value (conditions read
    enumerations, so there are few distinct values to evaluate)."""
    if condition.every_row:
        return np.ones(len(column), dtype=bool)
    return spread(column, condition.matches)


def failing(
    name: str,
    columns: Sequence[pd.Series],
    *,
    today: dt.date,
    when: str | None = None,
    condition_column: pd.Series | None = None,
) -> Failing:
    """Per row of ``columns``, whether it fails check ``name`` (limited to rows where ``when``
    holds on ``condition_column``)."""
    check = CheckName(name)
    arity = CHECKS[check].arity
    if len(columns) != arity:
        raise ValueError(f"{name} reads {arity} column(s), got {len(columns)}")
    fails = REGISTRY[check](columns, today)
    if when is not None:
        if condition_column is None:
            raise ValueError(f"the condition `{when}` needs the column it reads")
        fails &= condition_matches(parse_condition(when), condition_column)
    return fails
