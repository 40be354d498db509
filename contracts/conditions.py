"""Row-rule conditions: the small language of ``row_rules[].when``.

Deliberately tiny, so a lawyer can read it and the hub can evaluate it without ``eval``:

    field == value            juvenile_flag == true
    field != value
    field in [a, b, c]        service_domain in [SUD_TREATMENT, VICTIM_SERVICES]

Values compare as text after trimming, case-insensitively (``true`` matches ``TRUE``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONDITION = re.compile(
    r"^\s*(?P<field>[a-z][a-z0-9_]*)\s*(?P<op>==|!=|in)\s*(?P<rest>.+?)\s*$", re.IGNORECASE
)


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[str, ...]

    def matches(self, value: object) -> bool:
        text = "" if value is None else str(value).strip().lower()
        hit = text in self.values
        return not hit if self.op == "!=" else hit


def _literal(token: str) -> str:
    return token.strip().strip("'\"").strip().lower()


def parse_condition(text: str) -> Condition:
    match = _CONDITION.match(text)
    if not match:
        raise ConditionError(
            f"cannot read condition {text!r}: write `field == value`, `field != value` "
            "or `field in [a, b]`"
        )
    op, rest = match["op"].lower(), match["rest"]
    if op == "in":
        if not (rest.startswith("[") and rest.endswith("]")):
            raise ConditionError(f"`in` needs a bracketed list, as in `{match['field']} in [a, b]`")
        values = tuple(_literal(v) for v in rest[1:-1].split(",") if v.strip())
        if not values:
            raise ConditionError("`in` needs at least one value")
    else:
        values = (_literal(rest),)
    return Condition(match["field"], op, values)
