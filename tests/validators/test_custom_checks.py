"""The named checks an agreement declares under ``datasets[].checks``: each catches what it
should and passes what it should, with row numbers; the agreement sets the severity; the report
never quotes a value; lint refuses declarations the hub could not run."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from validator_factories import make_dataset, make_example_dataset, make_field, make_frame

from contracts.loader import AGREEMENTS_DIR, parse_agreement
from contracts.model import CHECKS, Dataset
from validators import RecordKeyTracker, ValidationReport, compile_suite, validate_extract
from validators.custom import (
    ASSAULT_CATEGORIES,
    FIREARM_CATEGORIES,
    LEGAL_INTERVENTION_FIREARM,
    NOT_POWDER_FIREARMS,
    REGISTRY,
    failing,
)
from validators.wording import WORDS

TODAY = dt.date(2026, 11, 15)  # the demo clock


def failing_rows(name: str, columns: list[pd.Series]) -> np.ndarray:
    """The 0-based positions of the rows that fail check ``name``, run without
    great-expectations."""
    return np.flatnonzero(failing(name, columns, today=TODAY))


def make_checked_dataset(*checks: dict[str, Any], fields: tuple[Any, ...] = ()) -> Dataset:
    """A dataset of codes, dates and an intent, with ``checks`` declared."""
    base = make_dataset(
        make_field("dx", pattern=r"^[A-Za-z]\d{2}"),
        make_field("intent", values=["ASSAULT", "SELF_HARM", "UNINTENTIONAL"]),
        make_field("dob", "date"),
        make_field("event", "datetime"),
        make_field("seen", "date"),
        *fields,
    )
    return Dataset.model_validate({**base.model_dump(by_alias=True), "checks": list(checks)})


def check(name: str, *fields: str, **extra: Any) -> dict[str, Any]:
    return {"check": name, "fields": list(fields), **extra}


def validate(dataset: Dataset, columns: dict[str, list[str | None]], **kwargs: Any):
    return validate_extract(
        dataset, make_frame(columns), today=kwargs.pop("today", TODAY), **kwargs
    )


def rows_of(report: ValidationReport, rule: str, column: str) -> tuple[int, ...]:
    finding = report.finding(rule, column)
    return finding.first_rows if finding is not None else ()


# --- ICD-10-CM ----------------------------------------------------------------------------------

ASSAULT_CODES = ["X92.0XXA", "X93.XXXA", "X99.1XXA", "Y00.XXXA", "Y04.0XXA", "Y07.01", "Y09"]
FIREARM_CODES = [
    "W32.0XXA",
    "W33.00XA",
    "W34.00XA",
    "W34.19XA",
    "X72.XXXA",
    "X73.1XXA",
    "X74.9XXA",
    "X93.XXXA",
    "X94.0XXA",
    "X95.9XXA",
    "Y22.XXXA",
    "Y23.0XXA",
    "Y24.9XXA",
    "Y35.001A",
]
AIR_GUNS = ["W34.010A", "W34.110A", "X74.01XA", "X95.01XA", "X95.02XA", "Y24.0XXA"]
NEITHER = ["S71.101A", "W26.0XXA", "X78.1XXA", "Y35.391A", "Y28.1XXA", "X91.XXXA", "Y10"]


def test_icd10_assault_passes_every_category_of_the_assault_block_and_no_other():
    dataset = make_checked_dataset(check("icd10_assault", "dx"))
    report = validate(dataset, {"dx": ASSAULT_CODES + NEITHER})
    assert rows_of(report, "check:icd10_assault", "dx") == tuple(
        range(len(ASSAULT_CODES) + 1, len(ASSAULT_CODES) + len(NEITHER) + 1)
    )


def test_icd10_assault_finds_the_code_anywhere_in_the_list_in_any_case_with_or_without_dots():
    dataset = make_checked_dataset(check("icd10_assault", "dx"))
    values = ["S71.112A;X95.9XXA;Y92.410", "s01.409a; y04.0xxa", "S0181XA,Y0000XA", "S0181XA;S01"]
    report = validate(dataset, {"dx": values})
    finding = report.finding("check:icd10_assault", "dx")
    assert finding is not None
    assert (finding.failing_rows, finding.first_rows, finding.severity) == (1, (4,), "error")


def test_icd10_firearm_passes_powder_firearms_of_every_intent():
    dataset = make_checked_dataset(check("icd10_firearm", "dx"))
    assert validate(dataset, {"dx": FIREARM_CODES}).ok


def test_icd10_firearm_refuses_air_paintball_and_bb_guns_and_other_mechanisms():
    dataset = make_checked_dataset(check("icd10_firearm", "dx"))
    report = validate(dataset, {"dx": ["X93.XXXA", *AIR_GUNS, *NEITHER]})
    finding = report.finding("check:icd10_firearm", "dx")
    assert finding is not None
    assert finding.first_rows == tuple(range(2, 2 + len(AIR_GUNS) + len(NEITHER)))


def test_icd10_assault_or_firearm_passes_either_kind():
    dataset = make_checked_dataset(check("icd10_assault_or_firearm", "dx"))
    values = ["Y04.0XXA", "W32.0XXA", "X95.01XA", "W34.010A", "S01.409A", None]
    report = validate(dataset, {"dx": values})
    assert rows_of(report, "check:icd10_assault_or_firearm", "dx") == (4, 5)


def reference_kinds(code: str) -> tuple[bool, bool]:
    """(assault, firearm) for one code, from the documented category sets."""
    c = code.upper().replace(".", "")
    assault = c[:3] in ASSAULT_CATEGORIES
    powder = c[:3] in FIREARM_CATEGORIES and not {c[:4], c[:5]} & NOT_POWDER_FIREARMS
    return assault, powder or c.startswith(LEGAL_INTERVENTION_FIREARM)


def every_external_cause_code() -> list[str]:
    suffixes = ["", ".", ".0", ".01", ".010A", ".02XA", ".09XA", ".1", ".11", ".110A", ".19XA"]
    suffixes += [".2XXA", ".8XXA", ".9XXA", ".0XXA", ".00XA", ".001A", ".391A", "XXXA"]
    codes = []
    for letter in "VWXY":
        for number in range(100):
            for suffix in suffixes:
                code = f"{letter}{number:02d}{suffix}"
                codes += [code, code.replace(".", ""), code.lower()]
    return codes


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("icd10_assault", lambda a, f: a),
        ("icd10_firearm", lambda a, f: f),
        ("icd10_assault_or_firearm", lambda a, f: a or f),
    ],
)
def test_icd10_checks_agree_with_the_documented_categories_for_every_external_cause(name, kind):
    codes = every_external_cause_code()
    cells = [f"S01.409A;{c} ;Y92.410" if i % 2 else c for i, c in enumerate(codes)]
    failing = set(failing_rows(name, [pd.Series(cells, dtype=object)]).tolist())
    wrong = [c for i, c in enumerate(codes) if (i in failing) == kind(*reference_kinds(c))]
    assert wrong == []


def test_a_check_passes_empty_cells():
    dataset = make_checked_dataset(
        check("icd10_assault", "dx"),
        check("not_in_future", "event"),
        check("dates_in_order", "dob", "event"),
    )
    report = validate(
        dataset, {"dx": [None, None], "dob": [None, "2030-01-01"], "event": [None] * 2}
    )
    assert report.ok and report.findings == ()


def test_a_condition_limits_the_check_to_matching_rows():
    dataset = make_checked_dataset(check("icd10_assault", "dx", when="intent == ASSAULT"))
    report = validate(
        dataset,
        {
            "dx": ["X78.1XXA", "X78.1XXA", "Y04.0XXA", "S01.409A", "W19.XXXA"],
            "intent": ["SELF_HARM", "ASSAULT", "ASSAULT", None, "UNINTENTIONAL"],
        },
    )
    finding = report.finding("check:icd10_assault", "dx")
    assert finding is not None and finding.first_rows == (2,)
    assert "where `intent == ASSAULT`" in finding.message


def test_a_value_failing_its_pattern_is_not_reported_again_by_the_check():
    dataset = make_checked_dataset(check("icd10_assault", "dx"))
    report = validate(dataset, {"dx": ["nonsense", "S01.409A"]})
    assert rows_of(report, "pattern", "dx") == (1,)
    assert rows_of(report, "check:icd10_assault", "dx") == (2,)


# --- dates --------------------------------------------------------------------------------------


def test_not_in_future_compares_calendar_days_with_the_injected_today():
    dataset = make_checked_dataset(check("not_in_future", "event"), check("not_in_future", "seen"))
    report = validate(
        dataset,
        {
            "event": [
                "2026-11-15T23:59",
                "2026-11-16T00:00",
                "2025-01-01 08:00",
                "2027-01-01 00:00",
            ],
            "seen": ["2026-11-14", "2026-11-15", "2026-11-16", None],
        },
    )
    assert rows_of(report, "check:not_in_future", "event") == (2, 4)
    assert rows_of(report, "check:not_in_future", "seen") == (3,)
    later = validate(
        dataset, {"event": ["2026-11-16T00:00"], "seen": [None]}, today=TODAY.replace(day=16)
    )
    assert later.ok


def test_not_in_future_defaults_to_the_system_date():
    dataset = make_checked_dataset(check("not_in_future", "seen"))
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    report = validate_extract(
        dataset, make_frame({"seen": [dt.date.today().isoformat(), tomorrow]})
    )
    assert rows_of(report, "check:not_in_future", "seen") == (2,)


def test_dates_in_order_refuses_a_birth_after_the_event_and_allows_the_same_day():
    dataset = make_checked_dataset(check("dates_in_order", "dob", "event"))
    report = validate(
        dataset,
        {
            "dob": ["2000-01-01", "2024-05-02", "2024-05-01", None, "2024-05-02"],
            "event": [
                "2024-05-01T10:00",
                "2024-05-01T10:00",
                "2024-05-01T00:00",
                "2024-05-01T10:00",
                None,
            ],
        },
    )
    finding = report.finding("check:dates_in_order", "dob")
    assert finding is not None
    assert (finding.failing_rows, finding.first_rows) == (1, (2,))
    assert finding.subject == "a dob later than the row's event"


def test_two_orderings_on_the_same_first_field_are_reported_apart():
    dataset = make_checked_dataset(
        check("dates_in_order", "dob", "event"), check("dates_in_order", "dob", "seen")
    )
    report = validate(
        dataset,
        {
            "dob": ["2024-05-02", "2024-05-02"],
            "event": ["2024-05-01T10:00", "2024-06-01T10:00"],
            "seen": ["2024-06-01", "2024-05-01"],
        },
    )
    found = {f.subject: f.first_rows for f in report.findings}
    assert found == {
        "a dob later than the row's event": (1,),
        "a dob later than the row's seen": (2,),
    }


def test_a_date_failing_its_type_is_reported_once_as_a_type_failure():
    dataset = make_checked_dataset(
        check("dates_in_order", "dob", "event"), check("not_in_future", "event")
    )
    report = validate(
        dataset,
        {"dob": ["2025-02-30", "2024-01-01"], "event": ["2024-01-01T10:00", "2099-01-01T25:00"]},
    )
    assert {(f.rule, f.column, f.first_rows) for f in report.findings} == {
        ("type:date", "dob", (1,)),
        ("type:datetime", "event", (2,)),
    }


# --- severity, reports, great-expectations ------------------------------------------------------


def test_a_warning_check_is_reported_but_does_not_reject_the_extract():
    dataset = make_checked_dataset(check("not_in_future", "seen", severity="warning"))
    report = validate(dataset, {"seen": ["2027-01-01", "2026-01-01"]})
    finding = report.finding("check:not_in_future", "seen")
    assert finding is not None and finding.severity == "warning" and finding.first_rows == (1,)
    assert report.ok and report.warnings == (finding,)


def test_an_error_check_rejects_the_extract():
    dataset = make_checked_dataset(check("not_in_future", "seen"))
    assert not validate(dataset, {"seen": ["2027-01-01"]}).ok


def test_the_report_never_contains_a_checked_value():
    dataset = make_checked_dataset(
        check("icd10_firearm", "dx", when="intent == ASSAULT"),
        check("dates_in_order", "dob", "event"),
        check("not_in_future", "seen", severity="warning"),
    )
    values = {
        "dx": ["S71.837A", "Q12.345Z"],
        "intent": ["ASSAULT", "ASSAULT"],
        "dob": ["1987-06-05", "1993-09-19"],
        "event": ["1986-04-03T02:01", "1991-12-13T14:15"],
        "seen": ["2031-07-29", "2032-08-30"],
    }
    report = validate(dataset, values)
    assert {f.rule for f in report.findings} == {
        "check:icd10_firearm",
        "check:dates_in_order",
        "check:not_in_future",
    }
    text = json.dumps(report.to_dict()) + report.to_text()
    for name, column in values.items():
        if name == "intent":
            continue  # its value is agreement text, quoted by the condition
        for value in column:
            assert value is not None
            for piece in (value, value[:10], value.replace(".", "")):
                assert piece not in text


def test_chunks_report_the_same_rows_as_the_whole_file():
    dataset = make_checked_dataset(check("dates_in_order", "dob", "seen"))
    dob = ["2024-01-02" if i % 7 == 3 else "2000-01-01" for i in range(30)]
    frame = make_frame({"dob": dob, "seen": ["2024-01-01"] * 30})
    whole = validate_extract(dataset, frame, today=TODAY)
    keys, merged = RecordKeyTracker(), ValidationReport.empty(dataset.id)
    for offset in range(0, 30, 8):
        chunk = frame.iloc[offset : offset + 8].reset_index(drop=True)
        merged = merged.merge(
            validate_extract(dataset, chunk, row_offset=offset, record_keys=keys, today=TODAY)
        )
    assert merged.findings == whole.findings
    assert rows_of(whole, "check:dates_in_order", "dob") == (4, 11, 18, 25)


def test_checks_run_as_great_expectations_expectations_that_answer_them():
    dataset = make_checked_dataset(
        check("icd10_assault", "dx"),
        check("icd10_assault", "dx", when="intent == ASSAULT"),
        check("dates_in_order", "dob", "event"),
    )
    kinds = [e.expectation_type for e in compile_suite(dataset).expectations]
    assert kinds.count("expect_column_values_to_pass_ovp_check") == 1
    assert kinds.count("expect_multicolumn_values_to_pass_ovp_check") == 2


def test_every_check_of_the_catalogue_is_implemented():
    assert set(REGISTRY) == set(CHECKS)
    assert set(WORDS) == set(CHECKS)


def test_checks_run_without_great_expectations_on_reader_shaped_columns():
    codes = pd.Series(["X93.XXXA", None, "S01.409A"], dtype=object)
    assert failing_rows("icd10_firearm", [codes]).tolist() == [2]
    born = pd.Series(["2024-01-02", "2024-01-01"], dtype=object)
    event = pd.Series(["2024-01-01T00:00", "2024-01-01T00:00"], dtype=object)
    assert failing_rows("dates_in_order", [born, event]).tolist() == [0]


# --- the example agreements ---------------------------------------------------------------------


def test_police_example_refuses_a_future_incident_and_a_birth_after_it(police_frame):
    dataset = make_example_dataset("police_victimizations")
    frame = police_frame.iloc[:10].copy()
    frame.loc[2, "incident_datetime"] = "2026-11-16T01:00"
    frame.loc[5, "victim_dob"] = frame.loc[5, "incident_datetime"][:8] + "28"
    frame.loc[5, "incident_datetime"] = frame.loc[5, "incident_datetime"][:8] + "01T00:00"
    report = validate_extract(dataset, frame, today=TODAY)
    assert rows_of(report, "check:not_in_future", "incident_datetime") == (3,)
    assert rows_of(report, "check:dates_in_order", "victim_dob") == (6,)
    assert not report.ok


def test_ed_example_checks_codes_against_intent_and_mechanism():
    dataset = make_example_dataset("ed_injury_visits")
    declared = {(c.check.value, c.when, c.severity) for c in dataset.checks}
    assert ("icd10_assault", "injury_intent == ASSAULT", "error") in declared
    assert ("icd10_firearm", "injury_mechanism == FIREARM", "error") in declared
    assert ("icd10_assault_or_firearm", "hvip_referred == true", "warning") in declared


# --- lint -----------------------------------------------------------------------------------------


def lint_police_checks(checks: list[dict[str, Any]]) -> list[str]:
    data = yaml.safe_load((AGREEMENTS_DIR / "dsa-police-victimizations.yaml").read_text())
    data["datasets"][0]["checks"] = checks
    _, problems = parse_agreement(yaml.safe_dump(data, sort_keys=False), "police.yaml")
    return [f"{p.path}: {p.message}" for p in problems]


def test_lint_refuses_an_unknown_check_name_and_lists_the_known_ones():
    problems = lint_police_checks([check("not_in_futur", "incident_datetime")])
    assert len(problems) == 1
    assert problems[0].startswith("datasets[0].checks[0].check: ")
    for name in CHECKS:
        assert name in problems[0]


def test_lint_refuses_an_unknown_field_a_wrong_type_and_a_wrong_count():
    problems = lint_police_checks(
        [
            check("not_in_future", "incident_datetme"),
            check("icd10_assault", "incident_datetime"),
            check("dates_in_order", "victim_dob"),
            check("not_in_future", "incident_datetime", when="victim_agee < 18"),
        ]
    )
    assert problems == [
        "datasets[0].checks[0].fields[0]: incident_datetme is not a field of dataset "
        "police_victimizations; name one of its fields",
        "datasets[0].checks[1].fields[0]: icd10_assault reads a list of ICD-10-CM codes, from a "
        "string field, but incident_datetime is datetime",
        "datasets[0].checks[2].fields: dates_in_order takes 2 fields (the earlier date, the "
        "later date), but 1 is listed; list exactly 2, in that order",
        "datasets[0].checks[3].when: the condition names victim_agee, which is not a field",
    ]


def test_lint_refuses_a_severity_other_than_error_or_warning():
    problems = lint_police_checks([check("not_in_future", "incident_datetime", severity="fatal")])
    assert len(problems) == 1 and problems[0].startswith("datasets[0].checks[0].severity: ")


@pytest.mark.parametrize("name", ["police_victimizations", "ed_injury_visits", "referrals"])
def test_every_declared_check_of_an_example_becomes_one_expectation(name: str):
    dataset = make_example_dataset(name)
    kinds = [e.expectation_type for e in compile_suite(dataset).expectations]
    assert dataset.checks
    assert sum(k.endswith("_to_pass_ovp_check") for k in kinds) == len(dataset.checks)
