"""How an agency writes a true identity down: the errors linkage has to survive.

Every record's name, birth date and address pass through :func:`render_identity` with that
agency's :class:`SourceStyle`. Two layers of variation:

* **per person and agency** (:class:`SourceProfile`, stable across that person's records at
  that agency, as a registration is reused): whether both surnames or a hyphen are kept, whether
  a suffix is written into the last name, whether accents survive, the casing of a registration.
* **per record**: typos (substitution, transposition, deletion, insertion), a nickname in place
  of the legal first name, first and last name swapped, stray spaces, a missing, swapped
  (day↔month), mistyped or placeholder (1 January) birth date, a stale or wrong zip.

Rates are "a few per cent each", from the record-linkage literature's usual ranges rather than
from any one agency; CVI programs get the most nicknames and missing birth dates
(reference/domain.md A.5). Caveat: the errors are independent draws, so combinations (a typo
*and* a nickname) occur at the product of the rates, which is lower than in some real systems.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass

from hub.synth.names import NameBank, fold_accents
from hub.synth.population import Person, Residence, pick

UPPER, TITLE, LOWER, AS_WRITTEN = "upper", "title", "lower", "as_written"

# Neighbouring keys on a QWERTY keyboard, for realistic substitutions and insertions.
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS):
                near += [
                    _KEYBOARD_ROWS[_other][i]
                    for i in (_c - 1, _c, _c + 1)
                    if 0 <= i < len(_KEYBOARD_ROWS[_other])
                ]
        _NEIGHBOURS[_ch] = "".join(near)
_ROMAN = re.compile(r"\b(Ii|Iii|Iv)\b")


@dataclass(frozen=True)
class SourceStyle:
    """One agency's habits. Probabilities are per record unless the name says profile."""

    casing: tuple[tuple[str, float], ...]
    casing_per_record: bool
    keep_accents: float
    nickname: float
    typo_first: float
    typo_last: float
    swap_names: float
    spacing: float
    suffix_in_last: float
    both_surnames: float
    hyphenate: float
    dob_missing: float
    dob_swap: float
    dob_typo: float
    dob_placeholder: float
    stale_zip: float
    wrong_zip: float
    zip_missing: float


POLICE_STYLE = SourceStyle(
    casing=((UPPER, 1.0),),
    casing_per_record=False,
    keep_accents=0.0,
    nickname=0.03,
    typo_first=0.03,
    typo_last=0.03,
    swap_names=0.005,
    spacing=0.01,
    suffix_in_last=0.6,
    both_surnames=0.35,
    hyphenate=0.3,
    dob_missing=0.055,
    dob_swap=0.015,
    dob_typo=0.02,
    dob_placeholder=0.0,
    stale_zip=0.3,
    wrong_zip=0.02,
    zip_missing=0.04,
)
ED_STYLE = SourceStyle(
    casing=((TITLE, 0.8), (UPPER, 0.2)),
    casing_per_record=False,
    keep_accents=0.6,
    nickname=0.02,
    typo_first=0.025,
    typo_last=0.025,
    swap_names=0.005,
    spacing=0.02,
    suffix_in_last=0.4,
    both_surnames=0.7,
    hyphenate=0.5,
    dob_missing=0.025,
    dob_swap=0.02,
    dob_typo=0.02,
    dob_placeholder=0.0,
    stale_zip=0.5,
    wrong_zip=0.015,
    zip_missing=0.03,
)
CVI_STYLE = SourceStyle(
    casing=((AS_WRITTEN, 0.55), (TITLE, 0.1), (UPPER, 0.2), (LOWER, 0.15)),
    casing_per_record=True,
    keep_accents=0.5,
    nickname=0.15,
    typo_first=0.04,
    typo_last=0.04,
    swap_names=0.01,
    spacing=0.03,
    suffix_in_last=0.2,
    both_surnames=0.3,
    hyphenate=0.2,
    dob_missing=0.20,
    dob_swap=0.03,
    dob_typo=0.03,
    dob_placeholder=0.05,
    stale_zip=0.4,
    wrong_zip=0.02,
    zip_missing=0.05,
)
REFERRAL_STYLE = SourceStyle(
    casing=((AS_WRITTEN, 0.45), (UPPER, 0.4), (LOWER, 0.05), (TITLE, 0.1)),
    casing_per_record=True,
    keep_accents=0.3,
    nickname=0.06,
    typo_first=0.03,
    typo_last=0.03,
    swap_names=0.01,
    spacing=0.02,
    suffix_in_last=0.3,
    both_surnames=0.5,
    hyphenate=0.4,
    dob_missing=0.04,
    dob_swap=0.02,
    dob_typo=0.02,
    dob_placeholder=0.01,
    stale_zip=0.4,
    wrong_zip=0.02,
    zip_missing=0.05,
)


@dataclass(frozen=True)
class SourceProfile:
    """How one agency holds one person: decided once, reused for all their records there."""

    casing: str
    keep_accents: bool
    last_name: str
    """The surname as this agency registered it (one or both surnames, suffix or not)."""


@dataclass(frozen=True)
class RecordedIdentity:
    """A person's identity as one record holds it; any field may be empty."""

    first: str
    middle_initial: str
    last: str
    dob: dt.date | None
    zip: str
    address: str
    residence: Residence
    """The residence the record's zip and address came from (stale after a move)."""


def make_profile(person: Person, style: SourceStyle, rng: random.Random) -> SourceProfile:
    last = person.last
    if person.second_last:
        if rng.random() < style.both_surnames:
            joiner = "-" if rng.random() < style.hyphenate else " "
            last = f"{person.last}{joiner}{person.second_last}"
        elif rng.random() < 0.1:
            last = person.second_last  # registered under the mother's surname only
    if person.suffix and rng.random() < style.suffix_in_last:
        last = f"{last}{',' if rng.random() < 0.2 else ''} {person.suffix}"
    return SourceProfile(
        casing=pick(rng, style.casing),
        keep_accents=rng.random() < style.keep_accents,
        last_name=last,
    )


def render_identity(
    person: Person,
    style: SourceStyle,
    profile: SourceProfile,
    day: dt.date,
    rng: random.Random,
    bank: NameBank,
    all_zips: tuple[str, ...],
) -> RecordedIdentity:
    """The identity one record of ``person`` on ``day`` holds, errors included."""
    first = person.first
    if rng.random() < style.nickname:
        nicknames = bank.nicknames_for(first)
        if nicknames:
            first = rng.choice(nicknames)
    last = profile.last_name
    if not profile.keep_accents:
        first, last = fold_accents(first), fold_accents(last)
    if rng.random() < style.typo_first:
        first = typo(first, rng)
    if rng.random() < style.typo_last:
        last = typo(last, rng)
    if rng.random() < style.swap_names:
        first, last = last, first
    casing = pick(rng, style.casing) if style.casing_per_record else profile.casing
    first, last = apply_case(first, casing), apply_case(last, casing)
    if rng.random() < style.spacing:
        first, last = _stray_space(first, last, rng)
    middle = ""
    if person.middle and rng.random() < 0.75:
        middle = fold_accents(person.middle[0]).upper()

    residence = person.residence_on(day)
    if rng.random() < style.stale_zip:
        residence = person.previous_residence(day) or residence
    zip_code = residence.zip
    roll = rng.random()
    if roll < style.zip_missing:
        zip_code = ""
    elif roll < style.zip_missing + style.wrong_zip:
        zip_code = rng.choice(all_zips)
    return RecordedIdentity(
        first=first,
        middle_initial=middle,
        last=last,
        dob=recorded_dob(person.dob, style, rng),
        zip=zip_code,
        address=residence.address,
        residence=residence,
    )


def recorded_dob(true_dob: dt.date, style: SourceStyle, rng: random.Random) -> dt.date | None:
    """The birth date a record holds: usually the truth, sometimes missing or wrong."""
    roll = rng.random()
    if roll < style.dob_missing:
        return None
    roll -= style.dob_missing
    if roll < style.dob_swap:
        return swap_day_month(true_dob) or true_dob
    roll -= style.dob_swap
    if roll < style.dob_typo:
        return dob_typo(true_dob, rng)
    roll -= style.dob_typo
    if roll < style.dob_placeholder:
        return true_dob.replace(month=1, day=1)
    return true_dob


def swap_day_month(day: dt.date) -> dt.date | None:
    """``1998-03-07`` → ``1998-07-03``; ``None`` when the swap is not a different valid date."""
    if day.day > 12 or day.day == day.month:
        return None
    return dt.date(day.year, day.day, day.month)


def dob_typo(day: dt.date, rng: random.Random) -> dt.date:
    """A keying error in a birth date: day off by one, year off by one or ten, digits swapped."""
    kind = rng.random()
    try:
        if kind < 0.35:
            return day + dt.timedelta(days=rng.choice((-1, 1)))
        if kind < 0.7:
            return day.replace(year=day.year + rng.choice((-1, 1)))
        if kind < 0.8:
            return day.replace(year=day.year + rng.choice((-10, 10)))
        swapped = int(f"{day.day:02d}"[::-1])
        if 1 <= swapped <= 28 and swapped != day.day:
            return day.replace(day=swapped)
        return day + dt.timedelta(days=rng.choice((-1, 1)))
    except ValueError:  # 29 February moved to a year without one
        return day + dt.timedelta(days=1)


def typo(text: str, rng: random.Random) -> str:
    """One keying error at a letter: substitution, transposition, deletion or insertion.

    Names shorter than three letters are returned unchanged (a typo would erase them).
    """
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 3:
        return text
    i = rng.choice(letters[1:])  # the first letter is the one people get right
    ch = text[i]
    kind = rng.random()
    if kind < 0.35:
        replacement = _near_key(ch, rng)
        return text[:i] + replacement + text[i + 1 :]
    if kind < 0.6:
        j = i + 1
        if j < len(text) and text[j].isalpha() and text[j] != ch:
            return text[:i] + text[j] + ch + text[j + 1 :]
        return text[:i] + text[i + 1 :]
    if kind < 0.85:
        return text[:i] + text[i + 1 :]
    extra = ch if rng.random() < 0.6 else _near_key(ch, rng)
    return text[:i] + extra + text[i:]


def _near_key(ch: str, rng: random.Random) -> str:
    near = _NEIGHBOURS.get(fold_accents(ch).lower(), "")
    out = rng.choice(near) if near else "e"
    return out.upper() if ch.isupper() else out


def apply_case(text: str, casing: str) -> str:
    if casing == UPPER:
        return text.upper()
    if casing == LOWER:
        return text.lower()
    if casing == TITLE:
        # A system's naive title-casing: McDonald → Mcdonald, DeShawn → Deshawn; keeps III.
        return _ROMAN.sub(lambda m: m.group(1).upper(), text.title())
    return text


def _stray_space(first: str, last: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.random()
    if kind < 0.4:
        return f"{first} ", last
    if kind < 0.7:
        return first, f" {last}"
    if " " in last:
        return first, last.replace(" ", "  ", 1)
    return first, f"{last} "
