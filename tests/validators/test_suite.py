"""The great-expectations suite: compiled from the contract, cached, and forgetful."""

from __future__ import annotations

from validator_factories import (
    make_dataset,
    make_example_dataset,
    make_field,
    make_frame,
    make_police_frame,
)

from validators import compile_checks, compile_suite, validate_extract
from validators.suite import _data_source, compiled


def test_compile_suite_returns_a_great_expectations_suite_mapping_every_check():
    from great_expectations.core import ExpectationSuite

    dataset = make_example_dataset("police_victimizations")
    suite = compile_suite(dataset)
    assert isinstance(suite, ExpectationSuite)
    answered = sorted(i for e in suite.expectations for i in e.meta["ovp_checks"])
    assert answered == list(range(len(compile_checks(dataset))))


def test_identical_expectations_are_added_once_and_answer_both_checks():
    dataset = make_dataset(make_field("x", "integer", pattern=r"^[+-]?[0-9]+\Z"))
    suite = compile_suite(dataset)
    shared = [e for e in suite.expectations if len(e.meta["ovp_checks"]) == 2]
    assert len(shared) == 1
    report = validate_extract(dataset, make_frame({"x": ["1", "x"]}))
    assert {f.rule for f in report.findings} == {"type:integer", "pattern"}


def test_suite_and_batch_definition_are_built_once_per_dataset():
    dataset = make_example_dataset("referrals")
    assert compiled(dataset) is compiled(dataset)


def test_great_expectations_forgets_the_extract_after_a_run():
    dataset = make_dataset(make_field("x", required=True))
    validate_extract(dataset, make_frame({"x": ["Zebulon", None]}))
    engine = _data_source().get_execution_engine()
    assert engine.batch_manager.batch_data_cache == {}
    assert not engine._metric_cache


def test_importing_validators_does_not_import_great_expectations():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, validators; assert 'great_expectations' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_concurrent_validations_each_get_their_own_results():
    from concurrent.futures import ThreadPoolExecutor

    dataset = make_dataset(make_field("x", required=True))

    def failing_rows(k: int) -> tuple[int, ...]:
        values = ["v" if i % (k + 2) else None for i in range(200)]
        finding = validate_extract(dataset, make_frame({"x": values})).finding("required", "x")
        assert finding is not None
        return finding.first_rows[:3]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(failing_rows, range(8)))
    assert results == [(1, 1 + k + 2, 1 + 2 * (k + 2)) for k in range(8)]


def test_memoized_configurations_give_the_same_report_and_end_with_the_run(monkeypatch):
    """A run memoizes ``Expectation.configuration``; the report is the one great-expectations
    gives without it, and the property is great-expectations' own again after the run."""
    import contextlib

    from great_expectations.expectations.expectation import Expectation

    from validators import suite

    dataset = make_example_dataset("police_victimizations")
    frame = make_police_frame(300)
    frame.loc[[3, 40, 41], "victim_sex"] = "Q"  # not an allowed value
    frame.loc[[7], "victim_dob"] = "2999-01-01"  # after the incident
    original = Expectation.__dict__["configuration"]
    memoized = validate_extract(dataset, frame)
    assert Expectation.__dict__["configuration"] is original
    monkeypatch.setattr(suite, "_configurations_memoized", contextlib.nullcontext)
    plain = validate_extract(dataset, frame)
    assert memoized == plain and not memoized.ok
    assert {f.column for f in memoized.findings} >= {"victim_sex", "victim_dob"}
