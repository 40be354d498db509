from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from contracts.loader import example_agreement_paths, load_agreement, parse_agreement
from factories import POLICE, make_agreement_data
from hub.cli.main import app


def test_every_example_agreement_lints_clean() -> None:
    paths = example_agreement_paths()
    assert len(paths) >= 4
    for path in paths:
        agreement, problems = parse_agreement(path.read_text(), str(path))
        assert agreement is not None
        assert problems == [], [str(p) for p in problems]


def test_a_broken_agreement_reports_every_problem_at_once_with_path_and_line() -> None:
    text = POLICE.read_text()
    text = text.replace(
        "transform: linkage_token, link_as: first_name", "transform: keep", 1
    )  # direct identifier kept
    text = text.replace("expiry_date: 2027-06-30", "expiry_date: 2024-01-01")
    text = text.replace("budget_share: 0.4", "budget_share: 0.7")
    text = text.replace("[month, victimization_type]", "[month, block_address, not_a_field]")
    text = text.replace(
        "type: string, class: free_text, use: none, transform: drop",
        "type: string, class: free_text, use: none, transform: keep",
    )
    _, problems = parse_agreement(text, "broken.yaml")
    by_path = {p.path: p for p in problems}
    assert "agreement.expiry_date" in by_path
    assert any("victim_first_name is a direct identifier" in p.message for p in problems)
    assert any("narrative is free text" in p.message for p in problems)
    assert any("budget shares add up to 1.4" in p.message for p in problems)
    assert any("block_address is a prohibited dimension" in p.message for p in problems)
    assert any("not_a_field is not a field" in p.message for p in problems)
    assert len(problems) >= 6
    lines = text.splitlines()
    expiry = by_path["agreement.expiry_date"]
    assert expiry.line is not None and "expiry_date" in lines[expiry.line - 1]


def test_structural_problems_name_the_yaml_path() -> None:
    data = make_agreement_data()
    data["agreement"]["tierr"] = data["agreement"].pop("tier")
    del data["datasets"][0]["fields"][0]["type"]
    _, problems = parse_agreement(yaml.safe_dump(data), "x.yaml")
    paths = {p.path for p in problems}
    assert "agreement.tierr" in paths
    assert "datasets[0].fields[0].type" in paths


def test_invalid_yaml_is_a_problem_not_a_crash() -> None:
    agreement, problems = parse_agreement("agreement: [unclosed", "bad.yaml")
    assert agreement is None
    assert problems and "not valid YAML" in problems[0].message


def test_canonical_hash_ignores_yaml_spelling() -> None:
    a = load_agreement(POLICE)
    reordered = yaml.safe_dump(make_agreement_data(), sort_keys=True)
    b, problems = parse_agreement(reordered)
    assert not problems and b is not None
    assert a.sha256() == b.sha256()


def test_cli_lint_exits_nonzero_and_lists_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(POLICE.read_text().replace("budget_share: 0.4", "budget_share: 0.9"))
    runner = CliRunner()
    bad = runner.invoke(app, ["agreements", "lint", str(broken)])
    assert bad.exit_code == 1
    assert "broken.yaml:" in bad.output and "budget shares add up to 1.8" in bad.output
    good = runner.invoke(app, ["agreements", "lint", *map(str, example_agreement_paths())])
    assert good.exit_code == 0, good.output


def test_cli_schema_is_json_schema() -> None:
    import json

    result = CliRunner().invoke(app, ["agreements", "schema"])
    schema = json.loads(result.output)
    assert "properties" in schema and "datasets" in schema["properties"]
