from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from contracts.loader import (
    AGREEMENTS_DIR,
    example_agreement_paths,
    lint_agreements,
    load_agreement,
    parse_agreement,
)
from factories import POLICE, make_agreement_data
from hub.cli.main import app


def total_share(text: str) -> str:
    """The budget shares of an agreement's aggregates added up, as lint shows the total."""
    aggregates = yaml.safe_load(text)["outputs"]["aggregates"]
    return f"{sum(g['budget_share'] for g in aggregates):g}"


def test_every_example_agreement_lints_clean() -> None:
    paths = example_agreement_paths()
    assert {p.name for p in paths} >= {
        "dsa-police-victimizations.yaml",
        "dsa-hospital-ed-injury.yaml",
        "dsa-cvi-participants.yaml",
        "dsa-referrals.yaml",
        "dsa-school-attendance.yaml",
        "dsa-victim-services.yaml",
    }
    for path in paths:
        agreement, problems = parse_agreement(path.read_text(), str(path))
        assert agreement is not None
        assert problems == [], [str(p) for p in problems]


def test_the_examples_lint_clean_together() -> None:
    assert lint_agreements(example_agreement_paths()) == []


def test_a_broken_agreement_shows_structural_and_legal_problems_together() -> None:
    text = POLICE.read_text()
    edits = [
        ("  tier: data_sharing_agreement\n", "  tierr: data_sharing_agreement\n"),
        ("expiry_date: 2027-06-30", "expiry_date: 2024-01-01"),
        ("{name: case_number, type: string,", "{name: case_number, type: text,"),
        ("values: [M, F, X, U], class: quasi_identifier,", "values: [M, F, X, U], klass: x,"),
        ("transform: linkage_token, link_as: first_name", "transform: keep"),
        ("budget_share: 0.4", "budget_share: 0.7"),
        ("[month, victimization_type]", "[month, block_address, not_a_field]"),
        ("  prohibited: [", "  prohibited: [program_evaluation, "),
        (
            '  - {party: "org:police", name: Jordan Example',
            '  - {party: "org:ovp", name: J Example',
        ),
        ("  profile: cjis\n", "  profile: baseline\n"),
        ('handling: aggregate_only, cite: "705 ILCS 405/1-7"', "handling: no_linkage"),
        ("subcontractors:", "subcontractorz:"),
        ("    model: zcdp\n", "    model: laplace\n"),
    ]
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)

    agreement, problems = parse_agreement(text, "broken.yaml")

    assert agreement is None
    lines = text.splitlines()
    found = {(p.path, p.message.split(";")[0].split(",")[0]) for p in problems}
    expected = {
        # structural
        ("agreement.tierr", "unknown key"),
        ("datasets[0].fields[1].type", "should be 'string'"),
        ("datasets[0].fields[17].class", "required key is missing"),
        ("datasets[0].fields[17].klass", "unknown key"),
        ("outputs.privacy.model", "should be 'zcdp' or 'pure_dp'"),
        ("subcontractorz", "unknown key"),
        # semantic and legal, from the parts that parsed
        ("agreement.expiry_date", "expiry 2024-01-01 is not after the effective date 2025-07-01"),
        ("parties[0]", "org:police (data_provider) has no signatory"),
        ("purposes.permitted[2]", "program_evaluation is both permitted and prohibited"),
        (
            "datasets[0].fields[12].transform",
            "victim_first_name is a direct identifier but is kept (keep)",
        ),
        ("datasets[0].row_rules", "org:police holds juvenile records"),
        ("outputs.aggregates", f"budget shares add up to {total_share(text)}"),
        (
            "outputs.aggregates[0].dimensions[1]",
            "block_address is a prohibited dimension in this agreement",
        ),
        (
            "outputs.aggregates[0].dimensions[2]",
            "not_a_field is not a field of dataset police_victimizations",
        ),
        ("security.profile", "org:police is a CJIS agency"),
    }
    assert expected <= found, sorted(found)
    for p in problems:
        assert p.line is not None, str(p)
        line = lines[p.line - 1]
        key = p.path.rsplit(".", 1)[-1].split("[")[0]
        if "missing" in p.message:  # a missing key is shown on the line of what lacks it
            assert "victim_sex" in line, (str(p), line)
        elif p.path.startswith("parties["):  # a party is shown on its own line
            assert "org:police" in line, (str(p), line)
        else:
            assert key in line, (str(p), line)
    # The field set aside for its bad key is not reported again as missing elsewhere: the
    # second aggregate breaks counts down by victim_sex, which did not parse.
    assert not any("victim_sex is not a field" in p.message for p in problems)
    # Problems come in document order.
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)


def test_paths_point_into_the_document_as_written_after_a_field_is_set_aside() -> None:
    data = make_agreement_data()
    fields = data["datasets"][0]["fields"]
    fields[0]["type"] = "text"  # victimization_id: set aside
    fields[1]["type"] = "text"  # case_number: set aside
    narrative = next(i for i, f in enumerate(fields) if f["name"] == "narrative")
    fields[narrative]["transform"] = "keep"
    _, problems = parse_agreement(yaml.safe_dump(data, sort_keys=False), "x.yaml")
    assert any(
        p.path == f"datasets[0].fields[{narrative}].transform" and "free text" in p.message
        for p in problems
    ), [str(p) for p in problems]
    # The record key names a field that was set aside: no second, misleading problem.
    assert not any(p.path == "datasets[0].record_key" for p in problems)


def test_a_section_that_cannot_parse_skips_only_the_rules_that_read_it() -> None:
    data = make_agreement_data()
    data["parties"] = "org:police and org:ovp"  # not a list: nothing of it can be kept
    data["purposes"]["prohibited"].append("program_evaluation")
    _, problems = parse_agreement(yaml.safe_dump(data, sort_keys=False), "x.yaml")
    paths = {p.path for p in problems}
    assert "parties" in paths
    assert "purposes.permitted[2]" in paths
    # Rules that need the parties (signatories, provider, regime flags) stay silent.
    assert not any(p.path.startswith(("signatories", "datasets[0].provider")) for p in problems)


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
    total = f"budget shares add up to {total_share(text)};"
    assert any(total in p.message for p in problems)
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
    text = POLICE.read_text().replace("budget_share: 0.4", "budget_share: 0.9")
    broken.write_text(text)
    runner = CliRunner()
    bad = runner.invoke(app, ["agreements", "lint", str(broken)])
    assert bad.exit_code == 1
    assert "broken.yaml:" in bad.output
    assert f"budget shares add up to {total_share(text)};" in bad.output
    good = runner.invoke(app, ["agreements", "lint", *map(str, example_agreement_paths())])
    assert good.exit_code == 0, good.output


def test_cli_schema_is_json_schema() -> None:
    import json

    result = CliRunner().invoke(app, ["agreements", "schema"])
    schema = json.loads(result.output)
    assert "properties" in schema and "datasets" in schema["properties"]


def test_a_typo_inside_a_section_is_not_also_reported_as_the_section_missing() -> None:
    text = (AGREEMENTS_DIR / "dsa-school-attendance.yaml").read_text()
    text = text.replace("basis: audit_evaluation", "basis: audit_evaluaton")
    _, problems = parse_agreement(text, "schools.yaml")
    assert [p.path for p in problems] == ["datasets[0].ferpa.basis"]
    assert problems[0].message.startswith("should be 'studies', 'audit_evaluation'")
