"""Row rules: masks for reject, drop, aggregate-only, no-linkage and requires-consent."""

from __future__ import annotations

import numpy as np
from validator_factories import (
    make_dataset,
    make_example_dataset,
    make_field,
    make_frame,
    make_rule,
)

from validators import apply_row_rules


def make_ruled_dataset(*rules):
    return make_dataset(
        make_field("status"),
        make_field("consent"),
        make_field("juvenile", "boolean"),
        row_rules=rules,
    )


def test_each_handling_gets_its_own_mask():
    dataset = make_ruled_dataset(
        make_rule("status == SEALED", "reject", cite="statute 1"),
        make_rule("status == NONE", "drop_row"),
        make_rule("juvenile == true", "aggregate_only"),
        make_rule("status in [DV, SA]", "no_linkage"),
    )
    frame = make_frame(
        {
            "status": ["SEALED", "none", "DV", "sa", "OK"],
            "consent": [None] * 5,
            "juvenile": ["TRUE", "false", " true ", None, "true"],
        }
    )
    outcome = apply_row_rules(dataset, frame)
    assert outcome.rejected.tolist() == [True, False, False, False, False]
    assert outcome.drop.tolist() == [False, True, False, False, False]
    assert outcome.aggregate_only.tolist() == [True, False, True, False, True]
    assert outcome.no_linkage.tolist() == [False, False, True, True, False]
    assert outcome.keep.tolist() == [False, False, True, True, True]


def test_reject_rule_gives_a_finding_with_row_numbers_and_offset():
    dataset = make_ruled_dataset(make_rule("status == SEALED", "reject", cite="statute 1"))
    frame = make_frame({"status": ["OK", "SEALED", "sealed"]})
    outcome = apply_row_rules(dataset, frame, row_offset=100)
    (finding,) = outcome.findings
    assert (finding.rule, finding.column, finding.severity) == (
        "row_rule:reject",
        "status",
        "error",
    )
    assert finding.first_rows == (102, 103)
    assert "status == SEALED" in finding.message and "statute 1" in finding.message


def test_no_findings_when_no_row_matches():
    dataset = make_ruled_dataset(make_rule("status == SEALED", "reject"))
    outcome = apply_row_rules(dataset, make_frame({"status": ["OK"]}))
    assert outcome.findings == () and not outcome.rejected.any()


def test_requires_consent_rejects_rows_without_consent():
    dataset = make_ruled_dataset(
        make_rule("status != none", "requires_consent", consent_field="consent")
    )
    consent = [None, "NONE", "false", "No", " n ", "0", "", "YES", "LINKAGE_OK", "true", "x"]
    frame = make_frame({"status": ["OK"] * 10 + ["none"], "consent": consent})
    outcome = apply_row_rules(dataset, frame)
    assert outcome.rejected.tolist() == [True] * 7 + [False] * 4
    (finding,) = outcome.findings
    assert finding.rule == "row_rule:requires_consent" and finding.column == "consent"
    assert finding.failing_rows == 7


def test_requires_consent_with_consent_column_missing_rejects_matching_rows():
    dataset = make_ruled_dataset(
        make_rule("status == OK", "requires_consent", consent_field="consent")
    )
    outcome = apply_row_rules(dataset, make_frame({"status": ["OK", "NO"]}))
    assert outcome.rejected.tolist() == [True, False]


def test_condition_on_a_missing_column_reads_empty():
    dataset = make_ruled_dataset(make_rule("status != x", "no_linkage"))
    outcome = apply_row_rules(dataset, make_frame({"consent": ["a", "b"]}))
    assert outcome.no_linkage.tolist() == [True, True]


def test_example_agreement_rules_apply():
    dataset = make_example_dataset("cvi_participants")
    frame = make_frame(
        {"consent_to_share": ["NONE", "AGGREGATE_ONLY", "LINKAGE_OK"]}, with_ids=False
    )
    outcome = apply_row_rules(dataset, frame)
    assert outcome.drop.tolist() == [True, False, False]
    assert outcome.no_linkage.tolist() == [False, True, False]
    assert outcome.findings == ()


def test_masks_are_positional_whatever_the_index():
    dataset = make_ruled_dataset(make_rule("status == SEALED", "reject"))
    frame = make_frame({"status": ["SEALED", "OK"]})
    frame.index = [9, 3]
    outcome = apply_row_rules(dataset, frame)
    assert isinstance(outcome.rejected, np.ndarray)
    assert outcome.rejected.tolist() == [True, False]


def test_findings_dict_is_json_ready():
    dataset = make_ruled_dataset(make_rule("status == SEALED", "reject"))
    outcome = apply_row_rules(dataset, make_frame({"status": ["SEALED"]}))
    (data,) = outcome.findings_dict()
    assert data["rule"] == "row_rule:reject" and data["first_rows"] == [1]


def test_a_boolean_condition_holds_for_every_spelling_the_field_accepts():
    """The police agreement keeps juvenile records out of linkage with `juvenile_flag == true`.
    A boolean field accepts Y, yes and 1 as true; before, the condition compared text and let
    those rows through to linkage."""
    dataset = make_example_dataset("police_victimizations")
    flags = ["true", "TRUE", "Y", "yes", "1", " y ", "false", "N", "no", "0", None]
    frame = make_frame({"juvenile_flag": flags})
    outcome = apply_row_rules(dataset, frame)
    assert outcome.aggregate_only.tolist() == [True] * 6 + [False] * 5
    not_false = make_ruled_dataset(make_rule("juvenile != no", "no_linkage"))
    outcome = apply_row_rules(not_false, make_frame({"juvenile": flags}))
    assert outcome.no_linkage.tolist() == [True] * 6 + [False] * 4 + [True]


def test_consent_counts_only_in_the_agreements_valid_values_and_ends_on_its_date():
    """The victim-services agreement: consent_to_share must be WRITTEN (valid_values), and
    consent ends on the date in consent_expiry. A rule's consent field without a values list
    used to take anything but NONE/no/0 as consent; an ended consent was never checked."""
    import datetime as dt

    from contracts.loader import load_agreement
    from tests.factories import AGREEMENTS_DIR

    spec = load_agreement(AGREEMENTS_DIR / "dsa-victim-services.yaml")
    dataset = spec.dataset("victim_services_contacts")
    assert dataset is not None
    consent = spec.consent.model_copy()
    frame = make_frame(
        {
            "client_age": ["30"] * 5,
            "consent_to_share": ["WRITTEN", "written ", "VERBAL", "REFUSED", "WRITTEN"],
            "consent_expiry": ["2026-06-30", "2026-01-05", "2027-01-01", "2027-01-01"]
            + ["2026-01-04"],
        }
    )
    today = dt.date(2026, 1, 5)
    outcome = apply_row_rules(dataset, frame, row_offset=10, consent=consent, today=today)
    assert outcome.rejected.tolist() == [False, False, True, True, True]
    by_rule = {f.rule: f for f in outcome.findings}
    assert by_rule["row_rule:requires_consent"].first_rows == (13, 14)
    ended = by_rule["consent_expired"]
    assert (ended.column, ended.severity, ended.first_rows) == ("consent_expiry", "error", (15,))
    assert "2026-01-05" in ended.message and "2027" not in ended.message
    # Without the agreement's consent section: the rule alone, as before (VERBAL, REFUSED pass).
    alone = apply_row_rules(dataset, frame)
    assert not alone.rejected.any()
