"""Pseudonymization: from a validated raw row to stored values and keyed linkage tokens.

Per field, as the agreement says: ``drop`` (gone), ``keep`` (normalized text), ``keyed_hash``
(HMAC-SHA256 with the dataset's record key), ``linkage_token`` (only tokens survive),
``truncate`` (dates), ``bin`` (ages), ``top_code``, ``geo_coarsen`` (ZIP3).

Linkage tokens are stored in the columns of :data:`TOKEN_COLUMNS`, each hashed in its
*family*'s domain; two records agree on a family when any of their columns of that family hold
the same token:

==========  =====================================================  ==========================
family      columns: tokens (before hashing)                        catches
==========  =====================================================  ==========================
``fn``      ``t_fn`` first word; ``t_fn2`` its nickname group or    nicknames (Bill/William),
            the joined words of a compound first name               compound first names
``fi``      ``t_fi`` first initial                                  first-name typos
``fsx``     ``t_fsx`` Soundex of the first word                     spelling variants
``mn``      ``t_mn`` first word of the middle name
``ln``      ``t_ln`` whole surname; ``t_ln2``/``t_ln3`` first and   hyphenated/double surnames
            last word of a compound one
``lsx``     ``t_lsx`` Soundex of the whole surname                  surname typos
``fh``      ``t_fh1``/``t_fh2`` the first word's two halves, each   a letter mistyped
            with its length (:func:`name_halves`)
``lh``      ``t_lh1``/``t_lh2`` the same of the whole surname       a letter mistyped
``dob``     ``t_dob`` YYYYMMDD; ``t_dob2`` day/month swapped        day/month slips
``by``      ``t_by`` birth year                                     day or month typos
``ay``      ``t_ay``/``t_ay2`` the two birth years an age allows    a birth date left out
            on its date (``link_as: age``), hashed in the ``by``    where the age is given
            domain, so they equal a dated record's ``t_by``;
            ``t_ay`` alone for a birth date of 1 January         a placeholder birthday
            (:data:`YEAR_ONLY_DAY`)
``md``      ``t_md``/``t_md2`` month and day (and their swap)       birth-year typos
``ym``      ``t_ym`` birth year and month                           birth-day typos
``sex``     ``t_sex`` M / F / X
``zip3``    ``t_zip3`` first three ZIP digits
``zip``     ``t_zip`` the whole ZIP or postcode
``pid``     ``t_pid`` a person identifier (SSN, state id), letters  a person's name or birth
            and digits only                                         date recorded differently
``st``      ``t_st`` the address line's words and numbers           moves between agencies'
``stn``     ``t_stn`` the street without its numbers                records of one address
``loc``     ``t_loc`` the locality (city, town, suburb)
``hn``      ``t_hn`` the house number, when a field of its own
``sw``      ``t_sw`` the first name's joined words, hashed in the   first name and surname
            ``ln`` domain (:data:`HASH_DOMAIN`), so it equals the   swapped
            ``t_ln`` of a record that holds the names swapped
``ca``      ``t_ca`` a home community area's number                 an agency that records
            (``link_as: community_area``, :func:`community_areas`)  the area, not the ZIP
``az``      ``t_az1``-``t_az3`` the ZIPs the area spans, hashed in
            the ``zip`` domain, so one equals the ``t_zip`` of a
            record at a ZIP in the area. ``ca`` and ``az`` only
            for a record without a ZIP
==========  =====================================================  ==========================

The stored value of a ``keyed_hash`` field that is the record key is the record key's own
token (``HMAC("record_key|" + key)``), which saves one HMAC per row.

Raw values exist only in memory for the duration of one chunk; nothing here writes or logs them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jellyfish
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from contracts.conditions import boolean_word
from contracts.model import (
    COARSENED_AT_INGEST,
    Dataset,
    DatasetField,
    FieldType,
    Geography,
    LinkRole,
)
from contracts.plan import bin_label
from hub.errors import AgreementRefused
from hub.keys import Hasher, KeyStore
from validators.keys import normalize_record_key

NICKNAMES = Path(__file__).parent / "data" / "nicknames.txt"
SUFFIXES = {"JR", "SR", "II", "III", "IV", "V", "2ND", "3RD"}
PLACEHOLDER_NAMES = Path(__file__).parent / "data" / "placeholder_names.txt"
COMMUNITY_AREAS = Path(__file__).parent / "data" / "community_areas.txt"

#: The token columns of a first name, and of a surname (a middle name goes with the first).
FIRST_NAME_COLUMNS = ("t_fn", "t_fn2", "t_fi", "t_fsx", "t_fh1", "t_fh2", "t_sw", "t_mn")
SURNAME_COLUMNS = ("t_ln", "t_ln2", "t_ln3", "t_lsx", "t_lh1", "t_lh2")


@dataclass(frozen=True)
class Placeholders:
    """The names of :data:`PLACEHOLDER_NAMES`, normalized and joined (see that file)."""

    surnames: frozenset[str]
    firsts: frozenset[str]
    names: frozenset[tuple[str, str]]


@cache
def placeholders() -> Placeholders:
    surnames, firsts, names = set(), set(), set()
    for line in PLACEHOLDER_NAMES.read_text().splitlines():
        kind, *words = line.split("#")[0].split() or [""]
        if kind == "surname":
            surnames.add("".join(normalize_name(words[0])))
        elif kind == "first":
            firsts.add("".join(normalize_name(words[0])))
        elif kind == "name":
            names.add(("".join(normalize_name(words[0])), "".join(normalize_name(words[1]))))
    return Placeholders(frozenset(surnames), frozenset(firsts), frozenset(names))


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


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")


def parse_date(value: str) -> dt.date | None:
    """Dates as agencies write them: ISO (with or without time), US ``MM/DD/YYYY``, ``YYYYMMDD``."""
    text = value.strip()
    iso = _ISO_DATE.match(text)
    if iso is not None:  # the common case, without strptime's cost
        try:
            return dt.date(int(iso[1]), int(iso[2]), int(iso[3]))
        except ValueError:
            return None
    for fmt in ("%m/%d/%Y", "%Y%m%d", "%m-%d-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
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
    """``"true"``/``"false"`` as stored, from any spelling a boolean field accepts."""
    return boolean_word(value)


@cache
def nickname_groups() -> dict[str, str]:
    """Every name in the nickname table → one representative of its group (the alphabetically
    first name of the connected group, e.g. BILL, WILL, WILLIAM, LIAM → BILL).

    Hashed in the ``fn`` family beside the name itself, it makes Bill and William share a token
    without storing more than two first-name tokens per record."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for nick, canonicals in nickname_table().items():
        for canonical in canonicals:
            a, b = find(nick), find(canonical)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {name: find(name) for name in parent}


#: Stored token columns (on ``records``) and the family each is hashed in. Two records agree on
#: a family when any of their columns of that family hold the same token.
TOKEN_COLUMNS: dict[str, str] = {
    "t_fn": "fn",  # first word of the first name
    "t_fn2": "fn",  # its nickname group, or the joined words of a compound first name
    "t_fi": "fi",
    "t_fsx": "fsx",
    "t_mn": "mn",
    "t_ln": "ln",  # the whole surname, words joined
    "t_ln2": "ln",  # first word of a compound surname
    "t_ln3": "ln",  # last word of a compound surname
    "t_lsx": "lsx",
    "t_dob": "dob",
    "t_dob2": "dob",  # day and month swapped, when that is a real, different date
    "t_by": "by",
    "t_md": "md",
    "t_md2": "md",
    "t_ym": "ym",  # birth year and month
    "t_sex": "sex",
    "t_zip3": "zip3",
    "t_sw": "sw",  # the first name keyed as a surname: compared crosswise with t_ln
    "t_zip": "zip",  # the whole ZIP or postcode
    "t_pid": "pid",  # a person identifier (SSN, state id)
    "t_st": "st",  # the address line, words and numbers
    "t_stn": "stn",  # the street's words without numbers
    "t_loc": "loc",  # the locality
    "t_hn": "hn",  # the house number, when it is a field of its own
    "t_ay": "ay",  # the birth year an age allows when the birthday has passed on its date
    "t_ay2": "ay",  # ... and when it has not (the year before)
    "t_ca": "ca",  # a home community area (see AREA_COLUMNS)
    "t_az1": "az",  # the ZIPs it spans
    "t_az2": "az",
    "t_az3": "az",
    "t_fh1": "fh",  # the first word's first half, with its length (name_halves)
    "t_fh2": "fh",  # ... and its second half
    "t_lh1": "lh",  # the surname's first half, with its length
    "t_lh2": "lh",  # ... and its second half
}

#: Columns hashed in another family's domain, so that they can be compared across families.
HASH_DOMAIN: dict[str, str] = {
    "t_sw": "ln",
    "t_ay": "by",
    "t_ay2": "by",
    "t_az1": "zip",
    "t_az2": "zip",
    "t_az3": "zip",
}

#: The columns of a community area's ZIPs. An area spanning more ZIPs than this (Chicago's Loop
#: has six) gets no area tokens at all: a ZIP outside the few kept would read as evidence
#: against a match.
AREA_ZIP_COLUMNS = ("t_az1", "t_az2", "t_az3")
#: Every column of a community area (the area itself, then its ZIPs).
AREA_COLUMNS = ("t_ca", *AREA_ZIP_COLUMNS)


@cache
def community_areas() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Community area (its number, and its name in upper case) → its number and the ZIPs it
    spans, from :data:`COMMUNITY_AREAS` (``NUMBER|NAME|ZIPS|...``)."""
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in COMMUNITY_AREAS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        number, name, zips, *_ = line.split("|")
        table[number.strip()] = table[_plain(name)] = (number.strip(), tuple(zips.split()))
    return table


#: How :func:`age_birth_years` takes an age and the date it was taken on as one value.
AGE_AT = "@"


#: A birth date on this (month, day) is linked as its year alone (``t_ay``, as an age that fixes
#: the year): 1 January is what many systems enter when only the year is known (the synthetic
#: CVI and referral extracts do so for 5% and 1% of people). As a whole date it made two people
#: born the same year agree on the birth date (+12.5 bits) and a person's placeholder disagree
#: with their real birthday. Measured on the synthetic population of 20,000 people: F1
#: 0.9777 -> 0.9812 (precision 0.9806 -> 0.9881); a real 1 January birthday keeps only the
#: year's evidence.
YEAR_ONLY_DAY = (1, 1)


#: Names shorter than this get no halves (:func:`name_halves`): a half of one letter says little.
HALVES_MIN_LETTERS = 4


def name_halves(word: str) -> dict[str, str]:
    """The two halves of a normalized name, each with the name's length: ``{"1": "6<DEN",
    "2": "6>NIS"}`` for DENNIS. A name mistyped by one letter (DENGIS, MXRK for MARK), or with
    two neighbouring letters swapped within one half (OWESN for OWENS), keeps one half whole,
    where its Soundex often changes (MXRK M620 against M262). A letter left out or added
    changes the length, so only Soundex or the initial can still catch it. Names shorter than
    :data:`HALVES_MIN_LETTERS` get none."""
    n = len(word)
    if n < HALVES_MIN_LETTERS:
        return {}
    return {"1": f"{n}<{word[: n // 2]}", "2": f"{n}>{word[n // 2 :]}"}


def linkage_columns(role: LinkRole, value: str) -> dict[str, str]:
    """The plaintext token variants of one identifying value, by token column (the caller
    hashes each as ``family|variant``)."""
    if role in (LinkRole.first_name, LinkRole.middle_name):
        words = normalize_name(value)
        if not words:
            return {}
        if role == LinkRole.middle_name:
            return {"t_mn": words[0]}
        first = words[0]
        out = {
            "t_fn": first,
            "t_fi": first[0],
            "t_fsx": jellyfish.soundex(first),
            "t_sw": "".join(words),
            **{f"t_fh{k}": half for k, half in name_halves(first).items()},
        }
        group = nickname_groups().get(first)
        if group is not None and group != first:
            out["t_fn2"] = group
        elif len(words) > 1:
            out["t_fn2"] = "".join(words)
        return out
    if role == LinkRole.last_name:
        words = normalize_name(value)
        if not words:
            return {}
        joined = "".join(words)
        out = {
            "t_ln": joined,
            "t_lsx": jellyfish.soundex(joined),
            **{f"t_lh{k}": half for k, half in name_halves(joined).items()},
        }
        if len(words) > 1:
            out["t_ln2"], out["t_ln3"] = words[0], words[-1]
        return out
    if role == LinkRole.birth_date:
        day = parse_date(value)
        if day is None:
            return {}
        if (day.month, day.day) == YEAR_ONLY_DAY:
            return {"t_ay": str(day.year)}
        out = {
            "t_dob": f"{day.year:04d}{day.month:02d}{day.day:02d}",
            "t_by": str(day.year),
            "t_md": f"{day.month:02d}{day.day:02d}",
            "t_ym": f"{day.year:04d}{day.month:02d}",
        }
        if day.day <= 12 and day.day != day.month:
            with contextlib.suppress(ValueError):
                swapped = dt.date(day.year, day.day, day.month)
                out["t_md2"] = f"{swapped.month:02d}{swapped.day:02d}"
                out["t_dob2"] = f"{swapped.year:04d}" + out["t_md2"]
        return out
    if role == LinkRole.sex:
        sex = value.strip().upper()[:1]
        return {"t_sex": sex} if sex in ("M", "F", "X") else {}
    if role == LinkRole.zip:
        digits = re.sub(r"\D", "", value)
        whole = digits[:5] if len(digits) == 9 else digits  # ZIP+4: the ZIP
        return {"t_zip3": digits[:3], "t_zip": whole} if len(digits) >= 3 else {}
    if role == LinkRole.person_identifier:
        ident = re.sub(r"[^0-9A-Z]", "", _plain(value))
        return {"t_pid": ident} if len(ident) >= 4 else {}
    if role == LinkRole.street:
        words = _plain(value).split()
        if not words:
            return {}
        out = {"t_st": " ".join(words)}
        named = [w for w in words if not any(ch.isdigit() for ch in w)]
        if named:
            out["t_stn"] = " ".join(named)
        return out
    if role == LinkRole.house_number:
        number = re.sub(r"[^0-9A-Z]", "", _plain(value))
        return {"t_hn": number} if number else {}
    if role == LinkRole.locality:
        words = _plain(value).split()
        return {"t_loc": "".join(words)} if words else {}
    if role == LinkRole.community_area:
        text = _plain(value)
        found = community_areas().get(text.lstrip("0") if text.isdigit() else text)
        if found is None or len(found[1]) > len(AREA_ZIP_COLUMNS):
            return {}
        number, zips = found
        return {"t_ca": number, **dict(zip(AREA_ZIP_COLUMNS, zips, strict=False))}
    return {}  # LinkRole.age: see Pseudonymizer._age_tokens (it needs the age's date too)


def age_birth_years(value: str) -> dict[str, str]:
    """``AGE@DATE`` (see :data:`AGE_AT`): the two birth years a whole age on that date allows,
    ``t_ay`` when the birthday had passed and ``t_ay2`` when it had not. Nothing for an age
    that is not a whole number from 0 to 130 or a date that does not parse."""
    age_text, _, day_text = value.partition(AGE_AT)
    age, day = whole_age(age_text), parse_date(day_text)
    if age is None or day is None:
        return {}
    year = day.year - age
    return {"t_ay": str(year), "t_ay2": str(year - 1)}


def whole_age(text: str) -> int | None:
    """An age in whole years from 0 to 130 (``26`` or ``26.0``), else ``None``."""
    try:
        age = float(text.strip())
    except ValueError:
        return None
    return int(age) if age.is_integer() and 0 <= age <= 130 else None


def _plain(value: str) -> str:
    """Upper case, accents and punctuation gone, single spaces: for identifiers and places."""
    text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().upper()
    return " ".join(re.sub(r"[^0-9A-Z]+", " ", text).split())


def linkage_families(role: LinkRole, value: str) -> dict[str, set[str]]:
    """:func:`linkage_columns` grouped by family (what two records must share to agree)."""
    out: dict[str, set[str]] = {}
    for column, variant in linkage_columns(role, value).items():
        out.setdefault(TOKEN_COLUMNS[column], set()).add(variant)
    return out


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
    if t.kind == "geo_coarsen" and t.geo_coarsen == Geography.zip3:
        digits = re.sub(r"\D", "", text)
        return digits[:3] if len(digits) >= 3 else None
    if t.kind == "geo_coarsen":  # not in COARSENED_AT_INGEST: lint and the Pseudonymizer refuse
        raise ValueError(f"{f.name}: the hub cannot coarsen a location to {t.geo_coarsen}")
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


@dataclass(frozen=True)
class PseudonymizedFrame:
    """One chunk, pseudonymized column by column (pyarrow arrays of equal length)."""

    record_key: pa.StringArray
    # stored field → its stored text (null when empty); dictionary-encoded except the record key
    values: dict[str, pa.Array]
    tokens: dict[str, pa.Array]  # token column → int64 token (null when absent or unlinkable)

    def __len__(self) -> int:
        return len(self.record_key)


def _codes(column: pd.Series | None, length: int) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Each row's index into the column's distinct non-empty values (-1 when empty)."""
    if column is None:
        return np.full(length, -1, dtype=np.intp), []
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    return codes, [str(u) for u in uniques]


def _spread(results: list[Any], codes: npt.NDArray[np.intp], kind: pa.DataType) -> pa.Array:
    """Per-distinct-value ``results`` laid out by row (null where the code is -1)."""
    indices = pa.array(codes, type=pa.int64(), mask=codes < 0)
    return pc.take(pa.array(results, type=kind), indices)


def _dictionary(results: list[str | None], codes: npt.NDArray[np.intp]) -> pa.DictionaryArray:
    """Per-distinct-value ``results`` as a dictionary array by row: null where the code is -1
    or the result is ``None``. Kept encoded, so the writer turns each distinct stored value
    into JSON once rather than once per row."""
    missing = np.fromiter((r is None for r in results), dtype=bool, count=len(results))
    if missing.any():
        dead = codes >= 0
        dead[dead] = missing[codes[dead]]
        codes = np.where(dead, -1, codes)
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    dictionary = pa.array(["" if r is None else r for r in results], pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _drop_placeholder_names(
    names: dict[LinkRole, tuple[npt.NDArray[np.intp], list[str]]],
    tokens: dict[str, pa.Array],
    n: int,
) -> None:
    """Null the name tokens of rows under a placeholder name (:func:`placeholders`): all of
    them for a placeholder surname or full name, the first name's for a placeholder first name.
    ``names``: for the first name and the surname, each row's code into its distinct values'
    joined words (-1 where empty). Worked out per distinct value, then laid out by row."""
    if not names:
        return
    known = placeholders()
    no_codes: tuple[npt.NDArray[np.intp], list[str]] = (np.full(n, -1, dtype=np.intp), [])
    fcodes, firsts = names.get(LinkRole.first_name, no_codes)
    lcodes, lasts = names.get(LinkRole.last_name, no_codes)

    def per_row(
        values: list[str], wanted: Collection[str], codes: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.bool_]:
        flags = np.array([v in wanted for v in values] + [False], dtype=bool)
        return flags[codes]  # code -1 reads the trailing False

    whole = per_row(lasts, known.surnames, lcodes)
    full_surnames = {family for _, family in known.names}
    for i in np.flatnonzero(per_row(lasts, full_surnames, lcodes)):
        given = firsts[fcodes[i]] if fcodes[i] >= 0 else ""
        whole[i] |= (given, lasts[lcodes[i]]) in known.names
    first = whole | per_row(firsts, known.firsts, fcodes)
    for columns, rows in ((FIRST_NAME_COLUMNS, first), (SURNAME_COLUMNS, whole)):
        if not rows.any():
            continue
        mask = pa.array(rows)
        for column in columns:
            if column in tokens:
                tokens[column] = pc.if_else(mask, pa.nulls(n, pa.int64()), tokens[column])


class Pseudonymizer:
    """Turns validated raw chunks of one dataset into stored values and linkage tokens.

    Work is done once per *distinct* value of a column, not per row: names, dates and codes
    repeat, so a million-row chunk needs a few hundred thousand normalizations and HMACs.
    Linkage tokens are the first 8 bytes of HMAC-SHA256 as a signed 64-bit integer: enough
    against chance collisions within a family (about 3e-8 for a million distinct values), and
    compact enough to store and compare by the million.
    """

    _CACHE_LIMIT = 2_000_000

    def __init__(self, dataset: Dataset, keys: KeyStore) -> None:
        self.dataset = dataset
        self.key_id = keys.active_key_id
        self.record_hasher = Hasher(keys, record_purpose(dataset.id))
        self.link_hasher = Hasher(keys, LINKAGE_PURPOSE)
        self.stored = [f for f in dataset.fields if f.transform.keeps_value]
        for f in self.stored:
            area = f.transform.geo_coarsen
            if area is not None and area not in COARSENED_AT_INGEST:
                # Lint refuses such agreements; one registered before it did is refused here,
                # before any row is read, rather than stored wrong.
                raise AgreementRefused(
                    f"{dataset.id}.{f.name}: the agreement asks to coarsen it to {area.value}, "
                    "which the hub cannot do (it ships no boundaries or geocoder); amend the "
                    "agreement to coarsen a ZIP to zip3 or to keep an area the agency sends"
                )
        self.linked = [(f, f.link_as) for f in dataset.fields if f.link_as is not None]
        self._tokens: dict[str, int] = {}

    def record_key(self, raw_key: str | None) -> str:
        """The stored record key: the keyed hash of the key as validation compared it
        (:func:`validators.keys.normalize_record_key`, so keys it passed as distinct stay
        distinct)."""
        return self.record_hasher.token(f"record_key|{normalize_record_key(raw_key)}")

    def link_token(self, family: str, variant: str) -> int:
        text = f"{family}|{variant}"
        token = self._tokens.get(text)
        if token is None:
            if len(self._tokens) >= self._CACHE_LIMIT:
                self._tokens.clear()
            token = self.link_hasher.int64(text)
            self._tokens[text] = token
        return token

    def frame(
        self, df: pd.DataFrame, linkable: npt.NDArray[np.bool_] | None = None
    ) -> PseudonymizedFrame:
        """Pseudonymize a validated chunk (columns named as the dataset's fields; values
        ``str`` or ``None``). Rows where ``linkable`` is false get no tokens."""
        n = len(df)
        keys = df.get(self.dataset.record_key, None)
        raw_keys = keys.to_numpy(dtype=object) if keys is not None else np.full(n, None)
        record_key = pa.array(
            self.record_hasher.tokens(f"record_key|{normalize_record_key(k)}" for k in raw_keys),
            pa.string(),
        )
        values: dict[str, pa.Array] = {}
        for f in self.stored:
            if f.name == self.dataset.record_key and f.transform.kind == "keyed_hash":
                values[f.name] = record_key  # the record key's own keyed hash: no second HMAC
                continue
            codes, uniques = _codes(df.get(f.name, None), n)
            out: list[str | None]
            if f.transform.kind == "keyed_hash":  # as transform_value, in one pass
                texts = [u.strip() for u in uniques]
                hashed = iter(self.record_hasher.tokens(f"{f.name}|{t}" for t in texts if t))
                out = [next(hashed) if t else None for t in texts]
            else:
                out = [transform_value(f, u, self.record_hasher) for u in uniques]
            values[f.name] = _dictionary(out, codes)
        tokens: dict[str, pa.Array] = {}
        names: dict[LinkRole, tuple[npt.NDArray[np.intp], list[str]]] = {}
        for f, role in self.linked:
            assert role is not None
            if role == LinkRole.age:
                continue  # below, once the birth dates are known
            codes, uniques = _codes(df.get(f.name, None), n)
            if linkable is not None and not linkable.all():
                # An unlinkable row gets a null token, and a value only such rows hold is never
                # normalized or hashed at all.
                codes = np.where(linkable, codes, -1)
                needed = np.zeros(len(uniques), dtype=bool)
                needed[codes[codes >= 0]] = True
                variants = [
                    linkage_columns(role, u) if keep else {}
                    for u, keep in zip(uniques, needed, strict=True)
                ]
            else:
                variants = [linkage_columns(role, u) for u in uniques]
            if role in (LinkRole.first_name, LinkRole.last_name):
                # The joined words (t_sw of a first name, t_ln of a surname) of each distinct
                # value, for _drop_placeholder_names.
                key = "t_sw" if role == LinkRole.first_name else "t_ln"
                names[role] = (codes, [v.get(key, "") for v in variants])
            for column in {c for v in variants for c in v}:
                family = HASH_DOMAIN.get(column, TOKEN_COLUMNS[column])
                found = [
                    self.link_token(family, v[column]) if column in v else None for v in variants
                ]
                tokens[column] = _spread(found, codes, pa.int64())
        # An age only where the birth date is missing: beside one, it adds nothing, and whether
        # t_by equals t_ay or t_ay2 would tell whether the birthday came before the event day.
        undated = np.ones(n, dtype=bool)
        for column in ("t_dob", "t_ay"):
            if column in tokens:
                undated &= ~tokens[column].is_valid().to_numpy(zero_copy_only=False)
        for f, role in self.linked:
            if role == LinkRole.age:
                aged = undated if linkable is None else undated & linkable
                made = self._age_tokens(df, f, aged)
                for column, found in made.items():
                    tokens[column] = (
                        pc.coalesce(tokens[column], found) if column in tokens else found
                    )
        if "t_zip" in tokens and AREA_COLUMNS[0] in tokens:
            # An area only where the ZIP is missing: beside one, it adds nothing.
            zipped = tokens["t_zip"].is_valid()
            for column in AREA_COLUMNS:
                if column in tokens:
                    tokens[column] = pc.if_else(zipped, pa.nulls(n, pa.int64()), tokens[column])
        _drop_placeholder_names(names, tokens, n)
        return PseudonymizedFrame(record_key, values, tokens)

    def _age_tokens(
        self, df: pd.DataFrame, f: DatasetField, linkable: npt.NDArray[np.bool_] | None
    ) -> dict[str, pa.Array]:
        """``t_ay``/``t_ay2`` of an age field (:func:`age_birth_years`, row by row), worked out
        per distinct age, per distinct date and per distinct birth year rather than per row."""
        n = len(df)
        age_codes, ages = _codes(df.get(f.name, None), n)
        day_codes, days = _codes(df.get(f.age_at, None) if f.age_at else None, n)
        age_of = np.array([whole_age(a) for a in ages] + [None], dtype=float)  # NaN: not one
        year_of = np.array(
            [d.year if (d := parse_date(text)) else None for text in days] + [None], dtype=float
        )
        born = year_of[day_codes] - age_of[age_codes]  # code -1 reads the trailing NaN
        if linkable is not None:
            born[~linkable] = np.nan
        known = ~np.isnan(born)
        codes, years = pd.factorize(born[known].astype(np.int64))
        out: dict[str, pa.Array] = {}
        if not len(years):
            return out
        rows = np.full(n, -1, dtype=np.intp)
        rows[known] = codes
        for column, back in (("t_ay", 0), ("t_ay2", 1)):
            found = [self.link_token(HASH_DOMAIN[column], str(int(y) - back)) for y in years]
            out[column] = _spread(found, rows, pa.int64())
        return out

    # Row-at-a-time views of :meth:`frame`, for tests and tools.

    def rows(
        self, rows: Iterable[dict[str, str | None]], link_flags: Iterable[bool]
    ) -> list[PseudonymizedRow]:
        rows = list(rows)
        names = [f.name for f in self.dataset.fields]
        df = pd.DataFrame([[r.get(n) for n in names] for r in rows], columns=names, dtype=object)
        out = self.frame(df, np.array(list(link_flags), dtype=bool))
        values = {k: v.to_pylist() for k, v in out.values.items()}
        tokens = {k: v.to_pylist() for k, v in out.tokens.items()}
        result = []
        for i, key in enumerate(out.record_key.to_pylist()):
            toks = sorted(
                {(TOKEN_COLUMNS[c], str(t[i])) for c, t in tokens.items() if t[i] is not None}
            )
            result.append(PseudonymizedRow(key, {k: v[i] for k, v in values.items()}, toks))
        return result

    def row(self, row: dict[str, str | None], with_tokens: bool = True) -> PseudonymizedRow:
        return self.rows([row], [with_tokens])[0]

    def tokens(self, row: dict[str, str | None]) -> list[tuple[str, str]]:
        return self.row(row).tokens
