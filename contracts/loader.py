"""Load agreement YAML into :class:`~contracts.model.Agreement`, reporting every problem at once.

Errors are :class:`Problem` values (file, YAML path, line, sentence) rather than exceptions, so
that lint can show a lawyer the whole list in one run. ``load_agreement`` raises
:class:`AgreementInvalid` carrying that list when a caller needs a valid agreement or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contracts.model import Agreement

AGREEMENTS_DIR = Path(__file__).parent / "agreements"


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(document)'}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "path": self.path, "line": self.line, "message": self.message}


class AgreementInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems[:5]))


def format_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_index(node: yaml.Node, loc: tuple[str | int, ...], index: dict[str, int]) -> None:
    index[format_path(loc)] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index.setdefault(format_path((*loc, key.value)), key.start_mark.line + 1)
            _line_index(value, (*loc, key.value), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*loc, i), index)


def line_of(index: dict[str, int], path: str) -> int | None:
    """The line of the deepest part of ``path`` that exists in the document."""
    while path:
        if path in index:
            return index[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return index.get("")


def _pydantic_problems(file: str, exc: ValidationError, index: dict[str, int]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        # Drop pydantic's internal markers (function-after, tagged unions) from the path.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        path = format_path(loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against `ovphub agreements schema`"
        elif err["type"] == "missing":
            message = "required key is missing"
        problems.append(Problem(file, path, line_of(index, path), message))
    return problems


def parse_agreement(text: str, file: str = "<string>") -> tuple[Agreement | None, list[Problem]]:
    """Parse and lint one agreement document. Returns the model (if it parsed) and all problems."""
    from contracts.lint import lint_agreement  # lint imports this module's Problem

    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(file, "", line, f"not valid YAML: {reason}")]
    if not isinstance(data, dict) or node is None:
        return None, [Problem(file, "", 1, "an agreement must be a YAML mapping")]
    index: dict[str, int] = {}
    _line_index(node, (), index)
    try:
        agreement = Agreement.model_validate(data)
    except ValidationError as exc:
        return None, _pydantic_problems(file, exc, index)
    problems = [
        Problem(file, path, line_of(index, path), message)
        for path, message in lint_agreement(agreement)
    ]
    return agreement, problems


def load_agreement(path: Path | str) -> Agreement:
    """Load one agreement file; raise :class:`AgreementInvalid` listing every problem."""
    path = Path(path)
    agreement, problems = parse_agreement(path.read_text(encoding="utf-8"), str(path))
    if problems or agreement is None:
        raise AgreementInvalid(problems)
    return agreement


def example_agreement_paths() -> list[Path]:
    return sorted(AGREEMENTS_DIR.glob("*.yaml"))
