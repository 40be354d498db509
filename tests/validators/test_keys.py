"""RecordKeyTracker: repeats across chunks, by digest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from validators import RecordKeyTracker


def test_tracker_flags_repeats_within_and_across_chunks():
    tracker = RecordKeyTracker()
    first = tracker.repeats(pd.Series(["a", "b", "a", None], dtype=object))
    second = tracker.repeats(pd.Series(["c", "b", None, "c"], dtype=object))
    assert first.tolist() == [False, False, True, False]
    assert second.tolist() == [False, True, False, True]
    assert len(tracker) == 3


def test_tracker_keeps_no_key_text():
    tracker = RecordKeyTracker()
    tracker.repeats(pd.Series(["Zebulon-Quixotewright"], dtype=object))
    state = repr(vars(tracker)) + repr([level.tobytes() for level in tracker._levels])
    assert "Zebulon" not in state


def test_trackers_digest_differently():
    keys = pd.Series(["a", "b"], dtype=object)
    one, two = RecordKeyTracker(), RecordKeyTracker()
    assert one._digest(keys).tolist() != two._digest(keys).tolist()


def test_tracker_matches_a_set_over_many_chunks():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 5000, 20_000).astype(str)
    tracker, seen, expected, got = RecordKeyTracker(), set(), [], []
    for start in range(0, len(keys), 700):
        chunk = keys[start : start + 700]
        got.extend(tracker.repeats(pd.Series(chunk, dtype=object)).tolist())
        for k in chunk:
            expected.append(k in seen)
            seen.add(k)
    assert got == expected
    assert len(tracker) == len(seen)


def test_tracker_treats_non_string_keys_as_their_text():
    tracker = RecordKeyTracker()
    assert tracker.repeats(pd.Series([1, "1"], dtype=object)).tolist() == [False, True]
