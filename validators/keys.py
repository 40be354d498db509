"""Record-key uniqueness across the chunks of one file, without keeping the keys.

:class:`RecordKeyTracker` remembers a keyed 64-bit digest of every record key it has seen
(SipHash-2-4 via ``pandas.util.hash_pandas_object`` with a random 128-bit key made per tracker
and never stored). Digests cannot be turned back into keys without that key, which lives only
in this object's memory for the duration of one upload.

Semantics: a row *repeats* its key when an earlier row of the same file (in this chunk or a
previous one) has the same key after :func:`normalize_record_key`, the normalization the hub
applies before it stores the key (``hub.pseudonymize.Pseudonymizer.record_key``): two keys this
tracker passes as distinct are never stored as one. The first occurrence is not reported; every
later one is. Empty cells are skipped (``required`` reports them). This is why chunked and
whole-file validation report the same rows, as long as chunks are fed in file order.

Caveats:

* Two different keys collide with probability about n²/2⁶⁵ (for a million keys, about 3 in
  10⁸). A collision would wrongly report a repeat; it can never hide one.
* Memory is 8 bytes per distinct key (10M keys: 80 MB), kept in a few sorted arrays that are
  merged as they grow, so checking a chunk costs O(chunk × log(keys seen)).
"""

from __future__ import annotations

import secrets

import numpy as np
import numpy.typing as npt
import pandas as pd


def normalize_record_key(value: object) -> str:
    """A record key as it is compared and stored: its text without surrounding whitespace
    (``" V1 "`` is ``"V1"``); an empty cell (``None`` or ``NaN``) is ``""``. Validation
    (uniqueness) and pseudonymization (the stored keyed hash) both go through this one
    function."""
    if isinstance(value, str):
        return value.strip()
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return ""
    return str(value).strip()


class RecordKeyTracker:
    """Tell which rows repeat a record key already seen in this file. Use one per upload."""

    def __init__(self) -> None:
        self._hash_key = secrets.token_hex(8)  # 16 characters: SipHash's 128-bit key
        self._levels: list[npt.NDArray[np.uint64]] = []

    def __len__(self) -> int:
        """How many distinct keys have been seen."""
        return sum(len(level) for level in self._levels)

    def repeats(self, keys: pd.Series) -> npt.NDArray[np.bool_]:
        """Per row of ``keys`` (positionally), whether its key was already seen; then remember
        the new keys. Call once per chunk, in file order."""
        present = keys.notna().to_numpy()
        out = np.zeros(len(keys), dtype=bool)
        if not present.any():
            return out
        digests = self._digest(keys[present])
        repeated = pd.Series(digests).duplicated(keep="first").to_numpy(copy=True)
        for level in self._levels:
            at = np.searchsorted(level, digests).clip(max=len(level) - 1)
            repeated |= level[at] == digests
        self._remember(np.unique(digests[~repeated]))
        out[present] = repeated
        return out

    def _digest(self, keys: pd.Series) -> npt.NDArray[np.uint64]:
        text = np.array(
            [normalize_record_key(k) for k in keys.to_numpy(dtype=object)], dtype=object
        )
        return pd.util.hash_array(text, hash_key=self._hash_key)

    def _remember(self, new: npt.NDArray[np.uint64]) -> None:
        if len(new) == 0:
            return
        self._levels.append(new)
        # Keep levels geometrically sized so lookups touch O(log n) arrays.
        while len(self._levels) > 1 and len(self._levels[-2]) <= 2 * len(self._levels[-1]):
            top = self._levels.pop()
            self._levels[-1] = np.sort(np.concatenate([self._levels[-1], top]))
