"""Plain factories for agreement tests: example documents as data, and lint over data."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml

from contracts.loader import AGREEMENTS_DIR, Problem, parse_agreement, parse_path
from contracts.model import Agreement

EXAMPLES = {
    "police": "dsa-police-victimizations.yaml",
    "hospital": "dsa-hospital-ed-injury.yaml",
    "cvi": "dsa-cvi-participants.yaml",
    "referrals": "dsa-referrals.yaml",
    "schools": "dsa-school-attendance.yaml",
    "victim_services": "dsa-victim-services.yaml",
}


@cache
def _example_text(name: str) -> str:
    return (AGREEMENTS_DIR / EXAMPLES[name]).read_text(encoding="utf-8")


def make_example_text(name: str) -> str:
    """The YAML text of an example agreement."""
    return _example_text(name)


def make_example_data(name: str) -> dict[str, Any]:
    """An example agreement as plain data (a fresh copy, free to edit)."""
    data: dict[str, Any] = yaml.safe_load(_example_text(name))
    return copy.deepcopy(data)


def make_example(name: str) -> Agreement:
    return Agreement.model_validate(make_example_data(name))


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def lint_data(data: dict[str, Any], file: str = "test.yaml") -> list[Problem]:
    """Every problem of an agreement given as data."""
    return parse_agreement(to_yaml(data), file)[1]


def field_of(data: dict[str, Any], name: str, dataset: int = 0) -> dict[str, Any]:
    """The field called ``name`` of a dataset, as data (edit it in place)."""
    fields: list[dict[str, Any]] = data["datasets"][dataset]["fields"]
    return next(f for f in fields if f["name"] == name)


def field_index(data: dict[str, Any], name: str, dataset: int = 0) -> int:
    fields: list[dict[str, Any]] = data["datasets"][dataset]["fields"]
    return next(i for i, f in enumerate(fields) if f["name"] == name)


def set_at(data: Any, path: str, value: Any) -> None:
    """Set the value at a YAML path (``outputs.aggregates[0].budget_share``)."""
    *head, last = parse_path(path)
    for part in head:
        data = data[part]
    data[last] = value


def delete_at(data: Any, path: str) -> None:
    *head, last = parse_path(path)
    for part in head:
        data = data[part]
    del data[last]


def get_at(data: Any, path: str) -> Any:
    for part in parse_path(path):
        data = data[part]
    return data
