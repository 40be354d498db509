"""The record key as validation compares it and as the hub stores it: one normalization, so
two keys validation passes as distinct are never stored as one; and linkage tokens are never
computed for rows that may not be linked."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from contracts.loader import load_agreement as load_agreement_file
from contracts.model import Agreement, Dataset
from factories import (
    POLICE,
    load_agreement,
    make_actor,
    make_agreement_data,
    make_police_csv,
    make_police_row,
    upload_as_police_steward,
)
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import Record
from hub.errors import UploadRejected
from hub.keys import InMemoryKeyStore
from hub.pseudonymize import Pseudonymizer
from validators import RecordKeyTracker, normalize_record_key

DATASET = "police_victimizations"
KEYS = ["V1", " V1", "V1 ", "\tV1\n", "v1", "V 1", "V1\u00a0", " ", "", "  "]


def police_dataset() -> Dataset:
    dataset = load_agreement_file(POLICE).dataset(DATASET)
    assert dataset is not None
    return dataset


def test_validation_reports_a_repeat_exactly_when_the_stored_keys_would_collide() -> None:
    pseudo = Pseudonymizer(police_dataset(), InMemoryKeyStore.generate())
    for first in KEYS:
        for second in KEYS:
            repeated = RecordKeyTracker().repeats(pd.Series([first, second], dtype=object))
            collide = pseudo.record_key(first) == pseudo.record_key(second)
            assert repeated.tolist() == [False, collide], (first, second)


def test_surrounding_whitespace_is_not_part_of_a_record_key() -> None:
    assert normalize_record_key(" V1\t") == "V1"
    assert normalize_record_key(None) == normalize_record_key(float("nan")) == ""
    tracker = RecordKeyTracker()
    assert tracker.repeats(pd.Series([" A1", "B2"], dtype=object)).tolist() == [False, False]
    assert tracker.repeats(pd.Series(["A1 ", None], dtype=object)).tolist() == [True, False]


@pytest.fixture
def unpatterned_hub(hub: Hub) -> Hub:
    """The police agreement with no pattern on the record key, so spaces around it pass."""
    data = make_agreement_data()
    (key_field,) = (f for f in data["datasets"][0]["fields"] if f["name"] == "victimization_id")
    del key_field["pattern"]
    load_agreement(hub, Agreement.model_validate(data))
    make_actor(hub, "steward-police", Role.steward, "org:police")
    return hub


upload = upload_as_police_steward


def test_a_key_repeated_with_spaces_around_it_is_rejected_as_a_repeat(
    unpatterned_hub: Hub,
) -> None:
    rows = [make_police_row(1), make_police_row(2), make_police_row(3)]
    rows[2]["victimization_id"] = f" {rows[0]['victimization_id']} "
    with pytest.raises(UploadRejected) as info:
        upload(unpatterned_hub, make_police_csv(rows))
    findings = info.value.extra["report"]["findings"]
    (repeat,) = (f for f in findings if f["rule"] == "unique_record_key")
    assert repeat["first_rows"] == [3]
    assert rows[0]["victimization_id"] not in str(info.value.extra)


def test_a_key_resent_with_spaces_around_it_corrects_the_stored_record(
    unpatterned_hub: Hub,
) -> None:
    upload(unpatterned_hub, make_police_csv([make_police_row(1)]))
    resent = make_police_row(1, victim_sex="F")
    resent["victimization_id"] = f"  {resent['victimization_id']}"
    receipt = upload(unpatterned_hub, make_police_csv([resent]))
    assert (receipt.rows_added, receipt.rows_replaced) == (0, 1)
    with unpatterned_hub.session() as s:
        assert len(s.execute(select(Record.id)).all()) == 1


class CountingPseudonymizer(Pseudonymizer):
    """Records every linkage token it is asked to compute (family and plaintext variant)."""

    asked: list[str]

    def link_token(self, family: str, variant: str) -> int:
        self.asked = [*getattr(self, "asked", []), f"{family}|{variant}"]
        return super().link_token(family, variant)


def test_no_linkage_token_is_computed_for_a_row_that_may_not_be_linked() -> None:
    keys = InMemoryKeyStore.generate()
    pseudo = CountingPseudonymizer(police_dataset(), keys)
    linkable = make_police_row(1)
    private = make_police_row(
        2, victim_first_name="Zebediah", victim_last_name="Quillfeather", victim_dob="1988-11-23"
    )
    out = pseudo.rows([linkable, private], [True, False])
    assert out[0].tokens and out[1].tokens == []
    asked = " ".join(pseudo.asked)
    for variant in ("ZEBEDIAH", "QUILLFEATHER", "19881123", "1988", "1123"):
        assert variant not in asked
    alone = Pseudonymizer(police_dataset(), keys).rows([linkable], [True])
    assert out[0] == alone[0]
