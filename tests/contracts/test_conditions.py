from __future__ import annotations

import pytest

from contracts.conditions import ConditionError, parse_condition


def test_every_row_matches_every_value_including_empty() -> None:
    cond = parse_condition("every row")
    assert cond.every_row and cond.field == ""
    assert all(cond.matches(v) for v in ("", None, "WRITTEN", "0"))
    assert parse_condition("  Every  Row ").every_row


@pytest.mark.parametrize(
    ("text", "yes", "no"),
    [
        ("victim_age < 18", ["17", "0", " 17 "], ["18", "", "abc", None]),
        ("victim_age <= 17", ["17"], ["17.5"]),
        ("age_years > 89", ["90"], ["89"]),
        ("age_years >= 90", ["90", "90.0"], ["89.9"]),
    ],
)
def test_ordering_operators_compare_numbers(text: str, yes: list[str], no: list[object]) -> None:
    cond = parse_condition(text)
    assert all(cond.matches(v) for v in yes)
    assert not any(cond.matches(v) for v in no)


def test_equality_and_lists_still_compare_text() -> None:
    assert parse_condition("juvenile_flag == true").matches("TRUE")
    assert parse_condition("consent_to_share != WRITTEN").matches("")
    assert parse_condition("domain in [A, b]").matches("B")


def test_a_boolean_value_matches_every_spelling_of_it() -> None:
    for cell in ("Y", "yes", "1", " True ", "t"):
        assert parse_condition("juvenile_flag == true").matches(cell), cell
        assert parse_condition("juvenile_flag in [yes]").matches(cell), cell
        assert not parse_condition("juvenile_flag != y").matches(cell), cell
    for cell in ("N", "no", "0", "false", "", None, "maybe"):
        assert not parse_condition("juvenile_flag == true").matches(cell), cell
    # A value that is not a boolean still compares as text.
    assert not parse_condition("status == YES_SIR").matches("y")
    assert not parse_condition("status in [yes, SEALED]").matches("1")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("victim_age < eighteen", "compares numbers"),
        ("every rows", "cannot read condition"),
        ("service_domain in SUD", "bracketed list"),
        ("service_domainin [SUD]", "cannot read condition"),
    ],
)
def test_unreadable_conditions_say_how_to_write_them(text: str, says: str) -> None:
    with pytest.raises(ConditionError, match=says):
        parse_condition(text)
