"""Invariant: no cell value ever reaches a report (JSON, text or HTML) or an engine error."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd
import pytest
from validator_factories import (
    make_dataset,
    make_example_dataset,
    make_field,
    make_frame,
    make_rule,
)

from validators import apply_row_rules, render_html, validate_extract
from validators.suite import ValidationEngineError, run_suite

# Identifiable values that fail a check each; none of them is agreement text.
SECRETS = {
    "victimization_id": "V2024-ZEBULON",
    "case_number": "QQ99999X",
    "incident_datetime": "2024-13-77T99:99",
    "victimization_type": "MURDER_OF_QUIXOTEWRIGHT",
    "community_area": "999123",
    "victim_first_name": "Zebulon",
    "victim_last_name": "Quixotewright",
    "victim_dob": "1987-02-31",
    "victim_age": "131",
    "victim_sex": "Zorro",
    "victim_home_zip": "9O210",
    "latitude": "forty-one point eight",
    "fatal": "perhaps-xyzzy",
}


def make_leaky_frame(police_frame: pd.DataFrame) -> pd.DataFrame:
    frame = police_frame.head(30).copy()
    for column, secret in SECRETS.items():
        frame.loc[[3, 17], column] = secret
    frame.loc[5, "victimization_id"] = frame.loc[4, "victimization_id"]  # a repeated key
    frame.loc[[3, 17], "juvenile_flag"] = "maybe-plover"
    return frame


def assert_no_secret(text: str) -> None:
    for secret in [*SECRETS.values(), "maybe-plover"]:
        assert secret not in text


def test_report_never_contains_cell_values(police_frame):
    dataset = make_example_dataset("police_victimizations")
    frame = make_leaky_frame(police_frame)
    report = validate_extract(dataset, frame)
    rules = {f.rule for f in report.findings}
    assert {"pattern", "type:datetime", "type:date", "range", "allowed_values"} <= rules
    assert {"keyset", "type:number", "type:boolean", "unique_record_key"} <= rules
    assert_no_secret(json.dumps(report.to_dict()))
    assert_no_secret(report.to_text())
    assert_no_secret(render_html(report))
    assert_no_secret(repr(report))


def test_logs_never_contain_cell_values(police_frame, caplog):
    caplog.set_level(logging.DEBUG)
    validate_extract(make_example_dataset("police_victimizations"), make_leaky_frame(police_frame))
    assert_no_secret(caplog.text)


def test_row_rule_findings_never_contain_cell_values():
    dataset = make_dataset(
        make_field("consent"),
        make_field("status"),
        row_rules=(
            make_rule("status == sealed", "reject"),
            make_rule("status != x", "requires_consent", consent_field="consent"),
        ),
    )
    frame = make_frame({"status": ["SEALED", "Zebulon"], "consent": ["no", None]})
    outcome = apply_row_rules(dataset, frame)
    text = json.dumps([f.to_dict() for f in outcome.findings]) + repr(outcome.findings)
    assert "Zebulon" not in text and "SEALED" not in text


def test_engine_errors_do_not_quote_values():
    dataset = make_dataset(make_field("x", required=True))
    frame = pd.DataFrame({"not_x": pd.Series(["Zebulon"], dtype="str")})
    with pytest.raises(ValidationEngineError) as caught:
        run_suite(dataset, frame, today=dt.date(2026, 11, 15))
    assert "Zebulon" not in str(caught.value)
    assert caught.value.__cause__ is None
