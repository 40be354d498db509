"""Row-rule conditions: the small language of ``row_rules[].when``.

Deliberately tiny, so a lawyer can read it and the hub can evaluate it without ``eval``:

    field == value            juvenile_flag == true
    field != value            consent_to_share != WRITTEN
    field in [a, b, c]        service_domain in [SUD_TREATMENT, VICTIM_SERVICES]
    field < n                 victim_age < 18         (also <=, >, >=; numbers only)
    every row                 every row               (the rule applies to all rows)

Values compare as text after trimming, case-insensitively (``true`` matches ``TRUE``). A value
that spells a boolean matches every spelling of it (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`),
since boolean fields accept them all and store them as ``true``/``false``: ``juvenile_flag ==
true`` holds for ``Y``, ``yes`` and ``1`` too. The ordering operators read the cell as a number;
an empty or non-numeric cell never matches them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONDITION = re.compile(
    r"^\s*(?P<field>[a-z][a-z0-9_]*)\s*(?P<op>==|!=|<=|>=|<|>|\bin\b)\s*(?P<rest>.+?)\s*$",
    re.IGNORECASE,
)
_EVERY_ROW = re.compile(r"^\s*every\s+row\s*$", re.IGNORECASE)
ORDERING = ("<", "<=", ">", ">=")
EVERY_ROW = "every row"
NO_CONSENT = frozenset({"", "none", "false", "no", "n", "0"})
"""Consent values (trimmed, lower-cased) that mean "no consent" to a ``requires_consent`` rule;
any other value counts as consent, unless the agreement lists its valid_values
(validators/rules.py, at upload)."""


TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
"""The spellings of a boolean (trimmed, lower-cased) that boolean fields accept."""


def boolean_word(text: str) -> str | None:
    """``"true"`` or ``"false"`` for a spelling of one (any case, trimmed), else ``None``."""
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return "true"
    if low in FALSE_WORDS:
        return "false"
    return None


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    """A parsed condition. ``op`` is ``==``, ``!=``, ``in``, an ordering operator, or ``all``
    (``every row``, whose ``field`` is empty)."""

    field: str
    op: str
    values: tuple[str, ...]

    @property
    def every_row(self) -> bool:
        return self.op == "all"

    def matches(self, value: object) -> bool:
        if self.op == "all":
            return True
        text = "" if value is None else str(value).strip().lower()
        if self.op in ORDERING:
            return _compare(text, self.op, float(self.values[0]))
        hit = text in self.values
        if not hit:
            wanted = {boolean_word(v) for v in self.values}
            hit = None not in wanted and boolean_word(text) in wanted
        return not hit if self.op == "!=" else hit


def _compare(text: str, op: str, bound: float) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    if op == "<":
        return number < bound
    if op == "<=":
        return number <= bound
    if op == ">":
        return number > bound
    return number >= bound


def _literal(token: str) -> str:
    return token.strip().strip("'\"").strip().lower()


def parse_condition(text: str) -> Condition:
    if _EVERY_ROW.match(text):
        return Condition("", "all", ())
    match = _CONDITION.match(text)
    if not match:
        raise ConditionError(
            f"cannot read condition {text!r}: write `field == value`, `field != value`, "
            "`field in [a, b]`, `field < number` or `every row`"
        )
    op, rest = match["op"].lower(), match["rest"]
    if op == "in":
        if not (rest.startswith("[") and rest.endswith("]")):
            raise ConditionError(f"`in` needs a bracketed list, as in `{match['field']} in [a, b]`")
        values = tuple(_literal(v) for v in rest[1:-1].split(",") if v.strip())
        if not values:
            raise ConditionError("`in` needs at least one value")
    elif op in ORDERING:
        try:
            float(_literal(rest))
        except ValueError:
            raise ConditionError(
                f"`{op}` compares numbers; write a number, as in `{match['field']} {op} 18`"
            ) from None
        values = (_literal(rest),)
    else:
        values = (_literal(rest),)
    return Condition(match["field"], op, values)
