"""Larger data: 100,000 rows of the police extract, whole and in chunks."""

from __future__ import annotations

import numpy as np
import pytest
from validator_factories import make_example_dataset, make_police_frame

from validators import RecordKeyTracker, ValidationReport, validate_extract


@pytest.mark.slow
def test_hundred_thousand_rows_find_exactly_the_injected_faults():
    dataset = make_example_dataset("police_victimizations")
    frame = make_police_frame(100_000)
    rng = np.random.default_rng(11)
    bad = rng.choice(len(frame), 900, replace=False)
    frame.loc[bad[:300], "victim_dob"] = "1990-02-30"
    frame.loc[bad[300:600], "victim_age"] = "200"
    frame.loc[bad[600:], "victim_sex"] = "Q"
    whole = validate_extract(dataset, frame)
    counts = {f.rule: f.failing_rows for f in whole.findings}
    assert counts == {"type:date": 300, "range": 300, "allowed_values": 300}
    assert whole.finding("type:date", "victim_dob").first_rows[0] == int(np.sort(bad[:300])[0]) + 1

    keys, chunked = RecordKeyTracker(), ValidationReport.empty(dataset.id)
    for offset in range(0, len(frame), 30_000):
        chunk = frame.iloc[offset : offset + 30_000]
        chunked = chunked.merge(
            validate_extract(dataset, chunk, row_offset=offset, record_keys=keys)
        )
    assert chunked.to_dict() == whole.to_dict()
