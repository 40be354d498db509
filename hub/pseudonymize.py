"""Pseudonymization: from a validated raw row to stored values and keyed linkage tokens.

Per field, as the agreement says: ``drop`` (gone), ``keep`` (normalized text), ``keyed_hash``
(HMAC-SHA256 with the dataset's record key), ``linkage_token`` (only tokens survive),
``truncate`` (dates), ``bin`` (ages), ``top_code``, ``geo_coarsen`` (ZIP3).

Linkage tokens come in *families*; two records agree on a family when their token sets share a
token. Variants are hashed in the family's domain so that they compare with each other:

==========  =====================================================  ==========================
family      tokens (before hashing)                                 catches
==========  =====================================================  ==========================
``fn``      normalized first name, and its canonical forms          nicknames (Bill/William)
``fi``      first initial                                           first-name typos
``fsx``     Soundex of each ``fn`` variant                          spelling variants
``ln``      normalized surname, and each part of a compound one     hyphenated/double surnames
``lsx``     Soundex of each ``ln`` variant                          surname typos
``dob``     YYYYMMDD, and the day/month-swapped date when valid     day/month slips
``by``      birth year                                              day or month typos
``md``      birth month and day (and their swap)                    birth-year typos
``sex``     M / F / X
``zip3``    first three ZIP digits
==========  =====================================================  ==========================

Raw values exist only in memory for the duration of one chunk; nothing here writes or logs them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jellyfish

from contracts.model import Dataset, DatasetField, FieldType, LinkRole
from contracts.plan import bin_label
from hub.keys import Hasher, KeyStore

NICKNAMES = Path(__file__).parent / "data" / "nicknames.txt"
SUFFIXES = {"JR", "SR", "II", "III", "IV", "V", "2ND", "3RD"}
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}
LINKAGE_PURPOSE = "linkage"


def record_purpose(dataset_id: str) -> str:
    return f"record:{dataset_id}"


@cache
def nickname_table() -> dict[str, frozenset[str]]:
    """Nickname → the canonical names it may stand for (ALEX → ALEXANDER, ALEJANDRO, ...)."""
    table: dict[str, set[str]] = {}
    for line in NICKNAMES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        canonical, _, rest = line.partition(":")
        for nick in rest.split():
            table.setdefault(nick, set()).add(canonical.strip())
    return {k: frozenset(v) for k, v in table.items()}


def normalize_name(value: str) -> list[str]:
    """Upper-case ASCII words of a name, accents and punctuation removed, suffixes dropped.

    ``"José  O'Neil-Smith Jr."`` → ``["JOSE", "ONEIL", "SMITH"]``.
    """
    text = unicodedata.normalize("NFKD", value)
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = re.sub(r"['`’.]", "", text)
    words = re.split(r"[^A-Z0-9]+", text)
    return [w for w in words if w and w not in SUFFIXES]


def parse_date(value: str) -> dt.date | None:
    """Dates as agencies write them: ISO (with or without time), US ``MM/DD/YYYY``, ``YYYYMMDD``."""
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%m-%d-%Y"):
        try:
            return dt.datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text, fmt).date()
        except ValueError:
            continue
    return None


def truncate_date(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def normalize_bool(value: str) -> str | None:
    low = value.strip().lower()
    if low in TRUE_WORDS:
        return "true"
    if low in FALSE_WORDS:
        return "false"
    return None


def first_name_variants(value: str) -> set[str]:
    words = normalize_name(value)
    if not words:
        return set()
    variants = {words[0], "".join(words)}
    for w in list(variants):
        variants |= nickname_table().get(w, frozenset())
    return variants


def last_name_variants(value: str) -> set[str]:
    words = normalize_name(value)
    if not words:
        return set()
    return {"".join(words), *words} if len(words) > 1 else {words[0]}


def linkage_families(role: LinkRole, value: str) -> dict[str, set[str]]:
    """The plaintext token variants of one identifying value, by family (hashed by the caller)."""
    if role in (LinkRole.first_name, LinkRole.middle_name):
        fn = first_name_variants(value)
        if role == LinkRole.middle_name:
            return {"mn": fn} if fn else {}
        return {"fn": fn, "fi": {v[0] for v in fn}, "fsx": {jellyfish.soundex(v) for v in fn}}
    if role == LinkRole.last_name:
        ln = last_name_variants(value)
        return {"ln": ln, "lsx": {jellyfish.soundex(v) for v in ln}} if ln else {}
    if role == LinkRole.birth_date:
        day = parse_date(value)
        if day is None:
            return {}
        dob = {day.strftime("%Y%m%d")}
        if day.day <= 12 and day.day != day.month:
            with contextlib.suppress(ValueError):
                dob.add(dt.date(day.year, day.day, day.month).strftime("%Y%m%d"))
        md = {d[4:] for d in dob}
        return {"dob": dob, "by": {str(day.year)}, "md": md}
    if role == LinkRole.sex:
        sex = value.strip().upper()[:1]
        return {"sex": {sex}} if sex in ("M", "F", "X") else {}
    if role == LinkRole.zip:
        digits = re.sub(r"\D", "", value)
        return {"zip3": {digits[:3]}} if len(digits) >= 3 else {}
    return {}


def transform_value(f: DatasetField, value: str | None, record_hasher: Hasher) -> str | None:
    """The stored form of one validated value (``None`` when empty or not representable)."""
    if value is None or value.strip() == "":
        return None
    t = f.transform
    text = value.strip()
    if t.kind == "keyed_hash":
        return record_hasher.token(f"{f.name}|{text}")
    if t.kind == "truncate" and t.truncate is not None:
        day = parse_date(text)
        return truncate_date(day, t.truncate.value).isoformat() if day else None
    if t.kind == "bin" and t.bin is not None:
        return bin_label(float(text), t.bin, integer=f.type == FieldType.integer)
    if t.kind == "top_code" and t.top_code is not None:
        number = min(float(text), t.top_code)
        return str(int(number)) if f.type == FieldType.integer else f"{number:g}"
    if t.kind == "geo_coarsen":
        digits = re.sub(r"\D", "", text)
        return digits[:3] if len(digits) >= 3 else None
    # keep
    if f.type == FieldType.boolean:
        return normalize_bool(text)
    if f.type in (FieldType.date, FieldType.datetime):
        day = parse_date(text)
        return day.isoformat() if day else None
    return text


@dataclass(frozen=True)
class PseudonymizedRow:
    record_key: str
    values: dict[str, str | None]
    tokens: list[tuple[str, str]]  # (family, keyed token)


class Pseudonymizer:
    """Turns validated raw rows of one dataset into :class:`PseudonymizedRow` values."""

    def __init__(self, dataset: Dataset, keys: KeyStore) -> None:
        self.dataset = dataset
        self.key_id = keys.active_key_id
        self.record_hasher = Hasher(keys, record_purpose(dataset.id))
        self.link_hasher = Hasher(keys, LINKAGE_PURPOSE)
        self.stored = [f for f in dataset.fields if f.transform.keeps_value]
        self.linked = [(f.name, f.link_as) for f in dataset.fields if f.link_as is not None]

    def record_key(self, raw_key: str) -> str:
        return self.record_hasher.token(f"record_key|{raw_key.strip()}")

    def tokens(self, row: dict[str, str | None]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, role in self.linked:
            value = row.get(name)
            if value is None or not value.strip():
                continue
            for family, variants in linkage_families(role, value).items():
                out.extend(
                    (family, self.link_hasher.token(f"{family}|{v}")) for v in sorted(variants)
                )
        return out

    def row(self, row: dict[str, str | None], with_tokens: bool = True) -> PseudonymizedRow:
        raw_key = row.get(self.dataset.record_key) or ""
        values = {
            f.name: transform_value(f, row.get(f.name), self.record_hasher) for f in self.stored
        }
        return PseudonymizedRow(
            self.record_key(raw_key), values, self.tokens(row) if with_tokens else []
        )

    def rows(
        self, rows: Iterable[dict[str, str | None]], link_flags: Iterable[bool]
    ) -> list[PseudonymizedRow]:
        return [self.row(r, linkable) for r, linkable in zip(rows, link_flags, strict=True)]
