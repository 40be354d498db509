"""Load agreement YAML into :class:`~contracts.model.Agreement`, reporting every problem at once.

Errors are :class:`Problem` values (file, YAML path, line, sentence) rather than exceptions, so
that lint can show a lawyer the whole list in one run. ``load_agreement`` raises
:class:`AgreementInvalid` carrying that list when a caller needs a valid agreement or nothing.

A document with structural errors is still linted: :func:`salvage` sets aside what does not
parse (an unknown key, a field with a bad type, a broken section) and the semantic rules run on
the rest, so one run shows structural and legal problems together. Rules that read a section
that did not parse are skipped, references to items that were set aside are not reported as
references to nothing, findings inside a part set aside are not reported twice, and paths always
point into the document as written (list positions before anything was set aside).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from contracts.lint import Subject, lint_across, lint_subject
from contracts.model import Agreement

AGREEMENTS_DIR = Path(__file__).parent / "agreements"

__all__ = [
    "AGREEMENTS_DIR",
    "AgreementInvalid",
    "Problem",
    "analyse",
    "example_agreement_paths",
    "format_path",
    "lint_agreements",
    "load_agreement",
    "parse_agreement",
    "parse_path",
    "salvage",
]


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


Loc = tuple[str | int, ...]
MAX_PRUNES = 500  # per section; each pass sets aside one part, so this bounds the work
_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_NAME_KEYS = ("id", "name", "party")
_LAST_PART = re.compile(r"^(.+?)(\[\d+\]|\.[^.\[\]]+)$")


def _parent_of(path: str) -> str | None:
    """The path holding ``path``: ``parties`` for ``parties[2]``, ``security`` for
    ``security.hosting``; ``None`` for a top-level key."""
    match = _LAST_PART.match(path)
    return match[1] if match else None


STAND_INS: dict[tuple[str, ...], Any] = {
    ("outputs", "privacy"): {
        "model": "zcdp",
        "contribution_bound": {"max_rows_per_person_per_period": 1, "period": "P1Y"},
        "budget": {"per_period": 1.0, "period": "P1Y", "lifetime": 1.0},
    },
    ("outputs", "recipients_allowed"): [],
}
"""Valid stand-ins for required parts that no lint rule reads the content of: when one of them
is broken, the stand-in keeps the rest of its section lintable (the part itself is reported
by the structural error and set aside, so nothing is said about the stand-in)."""


def format_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_path(path: str) -> Loc:
    return tuple(int(m[1]) if m[1] else m[2] for m in _PATH_PART.finditer(path))


def clean_loc(loc: Sequence[str | int]) -> Loc:
    """A pydantic error location without its internal markers (``function-after[...]``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


@dataclass
class Pruned:
    """What was set aside to make a document parse, and how to map paths back to it.

    ``kept`` maps a list's path (as written) to the original positions of the items still in
    it; ``paths`` are the parts (as written) that were removed."""

    kept: dict[str, list[int]] = field(default_factory=dict)
    paths: set[str] = field(default_factory=set)

    def to_original(self, loc: Loc) -> Loc:
        out: list[str | int] = []
        for part in loc:
            if isinstance(part, int):
                positions = self.kept.get(format_path(out))
                out.append(positions[part] if positions and part < len(positions) else part)
            else:
                out.append(part)
        return tuple(out)

    def covers(self, original_path: str) -> bool:
        """True when the path lies in a part that was set aside (and so already reported), or
        holds a part that was set aside directly (a list one of whose items went, a mapping one
        of whose keys went): what a rule finds missing there may be that very part."""
        return any(
            original_path == b
            or original_path.startswith((b + ".", b + "["))
            or _parent_of(b) == original_path
            for b in self.paths
        )


@dataclass(frozen=True)
class Salvage:
    """The lint subject made of what parsed, and what was set aside to get it."""

    subject: Subject
    pruned: Pruned = field(default_factory=Pruned)

    def original(self, path: str) -> str:
        """``path`` (in the salvaged agreement) as a path in the document as written."""
        return format_path(self.pruned.to_original(parse_path(path)))

    def set_aside(self, original_path: str) -> bool:
        return self.pruned.covers(original_path)


@cache
def _adapter(section: str) -> TypeAdapter[Any]:
    annotation = Agreement.model_fields[section].annotation
    assert annotation is not None
    return TypeAdapter(annotation)


def _child(node: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    if isinstance(node, dict) and part in node:
        return True, node[part]
    return False, None


def _navigable(value: Any, loc: Loc) -> Loc:
    """The longest prefix of ``loc`` that exists in ``value``."""
    node, depth = value, 0
    for part in loc:
        found, node = _child(node, part)
        if not found:
            break
        depth += 1
    return loc[:depth]


def _set_aside(value: Any, loc: Loc, section: str, out: Pruned, names: set[str]) -> None:
    """Remove the part of ``value`` at ``loc`` (a list item or a mapping key)."""
    parent = value
    for part in loc[:-1]:
        _, parent = _child(parent, part)
    last = loc[-1]
    container = out.to_original((section, *loc[:-1]))
    if isinstance(parent, list) and isinstance(last, int):
        positions = out.kept.setdefault(format_path(container), list(range(len(parent))))
        original = positions.pop(last)
        item = parent.pop(last)
        out.paths.add(format_path((*container, original)))
        if isinstance(item, dict):
            names.update(v for k in _NAME_KEYS if isinstance(v := item.get(k), str))
    else:
        path = format_path((*container, last))
        shape = tuple(p for p in (section, *loc) if isinstance(p, str))
        if shape in STAND_INS and path not in out.paths:
            parent[last] = copy.deepcopy(STAND_INS[shape])
        else:
            del parent[last]
        out.paths.add(path)


def _salvage_section(section: str, value: Any, out: Pruned, names: set[str]) -> Any:
    """Validate one top-level section, setting aside parts until the rest parses. Returns the
    parsed value, or raises ``LookupError`` when nothing of the section can be kept."""
    for _ in range(MAX_PRUNES):
        try:
            return _adapter(section).validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = clean_loc(err["loc"])
            if err["type"] == "missing":
                loc = loc[:-1]  # the part that lacks the key goes
            loc = _navigable(value, loc)
            if not loc:
                break
            _set_aside(value, loc, section, out, names)
    raise LookupError(section)


def salvage(data: dict[str, Any]) -> Salvage:
    """The parts of an agreement document that parse, as a (possibly partial) lint subject.

    Each top-level section is validated on its own; within it, the smallest failing part — an
    unknown or invalid key, else the list item holding it — is set aside until the rest parses.
    A section that cannot be kept at all is left out, and rules that read it are skipped."""
    out = Pruned()
    sections: dict[str, Any] = {}
    parsed: set[str] = set()
    names: set[str] = set()
    for section, info in Agreement.model_fields.items():
        if section not in data:
            if not info.is_required():
                parsed.add(section)
            continue
        try:
            value = copy.deepcopy(data[section])
            sections[section] = _salvage_section(section, value, out, names)
            parsed.add(section)
        except LookupError:
            out.paths.add(section)
    agreement = Agreement.model_construct(**sections)
    return Salvage(Subject(agreement, frozenset(parsed), frozenset(names)), out)


def _line_index(node: yaml.Node, loc: tuple[str | int, ...], index: dict[str, int]) -> None:
    # A key's own line wins over its value's, so a block list is found at its key.
    index.setdefault(format_path(loc), node.start_mark.line + 1)
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


def _structural_message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key; check its spelling against `ovphub agreements schema`"
    if err["type"] == "missing":
        return "required key is missing; add it"
    message = str(err["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be"):
        message = "should be" + message.removeprefix("Input should be")
        value = err.get("input")
        if isinstance(value, str | int | float | bool) and len(str(value)) <= 40:
            message += f", not {value!r}"
    return message


@dataclass
class Analysis:
    """One document, parsed as far as it goes: the agreement if it is valid, the salvaged
    part for lint otherwise, every problem, and the line of every path."""

    file: str
    agreement: Agreement | None = None
    salvaged: Salvage | None = None
    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def problem(self, path: str, message: str) -> Problem:
        return Problem(self.file, path, line_of(self.lines, path), message)


def analyse(text: str, file: str = "<string>") -> Analysis:
    """Parse one document and lint everything that parsed."""
    out = Analysis(file)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        out.problems.append(Problem(file, "", line, f"not valid YAML: {reason}"))
        return out
    if not isinstance(data, dict) or node is None:
        out.problems.append(Problem(file, "", 1, "an agreement must be a YAML mapping"))
        return out
    _line_index(node, (), out.lines)
    structural: list[Problem] = []
    try:
        out.agreement = Agreement.model_validate(data)
        out.salvaged = Salvage(Subject(out.agreement))
    except ValidationError as exc:
        for err in exc.errors():
            path = format_path(clean_loc(err["loc"]))
            structural.append(out.problem(path, _structural_message(err)))
        out.salvaged = salvage(data)
    semantic = []
    for found, message in lint_subject(out.salvaged.subject):
        path = out.salvaged.original(found)
        if not out.salvaged.set_aside(path):
            semantic.append(out.problem(path, message))
    out.problems = _in_document_order(structural + semantic)
    return out


def _in_document_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 30)


def parse_agreement(text: str, file: str = "<string>") -> tuple[Agreement | None, list[Problem]]:
    """Parse and lint one agreement document. Returns the model (if it parsed) and all problems,
    structural and semantic together."""
    result = analyse(text, file)
    return result.agreement, result.problems


def _analyse_parsed(agreement: Agreement) -> Analysis:
    subject = Subject(agreement)
    problems = [Problem(agreement.ref, p, None, m) for p, m in lint_subject(subject)]
    return Analysis(agreement.ref, agreement, Salvage(subject), problems)


def lint_agreements(sources: Iterable[Path | tuple[str, str] | Agreement]) -> list[Problem]:
    """Lint several agreements together: every problem of each, then the rules across them
    (datasets named in link_with exist and name the agreement back, one agreement per dataset,
    one legal name per party). The set is taken to be every agreement the hub will hold.

    ``sources`` are paths, ``(file name, text)`` pairs, or parsed agreements (e.g. the versions
    a hub holds; their problems name ``id@version`` as the file and have no line)."""
    analyses = []
    for source in sources:
        if isinstance(source, Agreement):
            analyses.append(_analyse_parsed(source))
        elif isinstance(source, Path):
            analyses.append(analyse(source.read_text(encoding="utf-8"), str(source)))
        else:
            analyses.append(analyse(source[1], source[0]))
    problems = [p for a in analyses for p in a.problems]
    usable = [a for a in analyses if a.salvaged is not None]
    subjects = [a.salvaged.subject for a in usable if a.salvaged is not None]
    for n, found, message in lint_across(subjects):
        owner = usable[n]
        assert owner.salvaged is not None
        path = owner.salvaged.original(found)
        if not owner.salvaged.set_aside(path):
            problems.append(owner.problem(path, message))
    return problems


def load_agreement(path: Path | str) -> Agreement:
    """Load one agreement file; raise :class:`AgreementInvalid` listing every problem."""
    path = Path(path)
    agreement, problems = parse_agreement(path.read_text(encoding="utf-8"), str(path))
    if problems or agreement is None:
        raise AgreementInvalid(problems)
    return agreement


def example_agreement_paths() -> list[Path]:
    return sorted(AGREEMENTS_DIR.glob("*.yaml"))
