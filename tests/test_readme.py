"""The README must stay true: every ``ovphub`` command it shows parses against the CLI, the make
targets it names exist (and CI runs ``make test``), and its "Serve the API" sequence works."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import warnings
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hub import context
from hub.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TODAY = dt.date(2026, 11, 15)


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.M | re.S)


def shell_lines(block: str) -> list[str]:
    """Lines of a shell block with backslash continuations joined."""
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def readme_ovphub_commands() -> list[list[str]]:
    """Every ``ovphub`` invocation in the code blocks and the command table, as words."""
    commands = []
    for block in code_blocks(README):
        for line in shell_lines(block):
            words = shlex.split(line, comments=True)
            at = [i for i, w in enumerate(words) if w.split("/")[-1] == "ovphub"]
            if at:
                commands.append(words[at[0] + 1 :])
    for row in re.findall(r"^\|(.*)\|\s*$", README, flags=re.M):
        first_cell = row.split("|")[0]
        for span in re.findall(r"`([^`]*)`", first_cell):
            if span.startswith("ovphub "):
                commands.append(shlex.split(span)[1:])
    return commands


def is_group(command: Any) -> bool:
    return bool(getattr(command, "commands", None))


def check_parses(words: list[str]) -> None:
    """Walk ``words`` through the command tree: subcommands, options (and their values) and
    arguments must all exist, and every required parameter of the command must be given."""
    command: Any = typer.main.get_command(app)
    given: set[str] = set()
    positional = 0
    i = 0
    while i < len(words):
        word = words[i].strip("[]").removesuffix("...")
        if word.startswith("-"):
            param = next((p for p in command.params if word in (*p.opts, *p.secondary_opts)), None)
            assert param is not None, f"ovphub {' '.join(words)}: no option {word}"
            given.add(param.name)
            i += 1 if getattr(param, "is_flag", False) else 2
            continue
        default = getattr(command, "default_command", None)
        if is_group(command) and word not in command.commands and default:
            command, given, positional = command.commands[default], set(), 0
            continue  # the word is the implied command's first argument
        if is_group(command):
            assert word in command.commands, f"ovphub {' '.join(words)}: no command {word}"
            command, given, positional = command.commands[word], set(), 0
        else:
            arguments = [p for p in command.params if p.param_type_name == "argument"]
            assert positional < len(arguments) or (arguments and arguments[-1].nargs == -1), (
                f"ovphub {' '.join(words)}: unexpected argument {word}"
            )
            given.add(arguments[min(positional, len(arguments) - 1)].name)
            positional += 1
        i += 1
    assert not is_group(command), f"ovphub {' '.join(words)}: names a group, not a command"
    required = {p.name for p in command.params if p.required}
    assert required <= given, f"ovphub {' '.join(words)}: missing {required - given}"


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.M))


def test_the_readme_shows_ovphub_commands_from_its_blocks_and_its_table() -> None:
    commands = readme_ovphub_commands()
    shown = {" ".join(c[:2]) for c in commands}
    assert {"agreements load", "users add", "users token", "link run", "keys init"} <= shown
    assert len(commands) >= 15


@pytest.mark.parametrize("words", readme_ovphub_commands(), ids=" ".join)
def test_every_ovphub_command_in_the_readme_parses_against_the_cli(words: list[str]) -> None:
    check_parses(words)


def test_the_command_checker_catches_a_wrong_command() -> None:
    """Guard for the guard: a renamed option or command would be caught."""
    for wrong in (["link", "evaluate", "--truth-file", "x"], ["agreement", "load"], ["link"]):
        with pytest.raises(AssertionError):
            check_parses(wrong)
    with pytest.raises(AssertionError, match="missing"):
        check_parses(["upload", "FILE", "--agreement", "ID"])


def test_the_two_first_commands_and_every_make_target_in_the_readme_exist() -> None:
    assert "make demo" in README and "make test" in README
    targets = makefile_targets()
    assert {"demo", "test", "check", "serve", "bench"} <= targets
    named = set(re.findall(r"(?:^|`)make ([a-z][\w-]*)", README, flags=re.M))
    assert named and named <= targets, named - targets


def test_ci_runs_make_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\s*$", ci, flags=re.M)


def serve_the_api_block() -> list[str]:
    section = README.split("## Serve the API", 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(section)
    assert len(blocks) == 2
    return shell_lines(blocks[1])


def test_the_serve_the_api_sequence_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Load agreements, add the steward, issue a token (the CLI), then the README's curl upload
    of the synthetic police extract through the API built as `make serve` builds it."""
    from hub.api import app as api_app
    from hub.synth import generate

    data = tmp_path / "var"
    monkeypatch.setenv("HUB_DATA_DIR", str(data))
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{data / 'hub.db'}")
    monkeypatch.setenv("HUB_KEY_FILE", str(tmp_path / "hub.key"))
    monkeypatch.delenv("HUB_ENVIRONMENT", raising=False)
    build = context.build_hub

    def pinned(*args: Any, **kwargs: Any) -> context.Hub:
        hub = build(*args, **kwargs)
        hub.today = lambda: TODAY
        return hub

    monkeypatch.setattr(context, "build_hub", pinned)
    monkeypatch.setattr(api_app, "build_hub", pinned)

    lines = serve_the_api_block()
    runner = CliRunner()
    token = ""
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[0].endswith("ovphub"):
            result = runner.invoke(app, words[1:])
            assert result.exit_code == 0, (line, result.output)
            if words[1:3] == ["users", "token"]:
                token = result.stdout.strip()
    assert token.startswith("ovp_")

    curl = shlex.split(next(line for line in lines if line.startswith("curl")))
    header = curl[curl.index("-H") + 1].replace("$TOKEN", token)
    fields = dict(curl[i + 1].split("=", 1) for i, w in enumerate(curl) if w == "-F")
    path = "/" + curl[-1].split("/", 3)[3]
    extract_name = Path(fields.pop("file").removeprefix("@")).name
    generate(tmp_path / "extracts", people=150, seed=2)
    content = (tmp_path / "extracts" / extract_name).read_bytes()

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    name, value = header.split(": ", 1)
    with TestClient(api_app.create_app()) as client:
        response = client.post(
            path,
            headers={name: value},
            files={"file": (extract_name, content, "text/csv")},
            data=fields,
        )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["status"] == "accepted" and receipt["uploader"] == "steward-police"
    assert receipt["rows_accepted"] > 0
