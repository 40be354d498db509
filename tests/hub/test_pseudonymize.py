from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.loader import load_agreement
from contracts.model import LinkRole
from factories import POLICE, make_police_row
from hub.keys import InMemoryKeyStore
from hub.pseudonymize import (
    Pseudonymizer,
    age_birth_years,
    linkage_families,
    normalize_name,
    parse_date,
)


def make_pseudonymizer(keys: InMemoryKeyStore | None = None) -> Pseudonymizer:
    dataset = load_agreement(POLICE).dataset("police_victimizations")
    assert dataset is not None
    return Pseudonymizer(dataset, keys or InMemoryKeyStore.generate())


def families_of(p: Pseudonymizer, row: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for fam, tok in p.tokens(dict(row)):
        out.setdefault(fam, set()).add(tok)
    return out


def test_names_are_normalized_for_case_accents_punctuation_and_suffixes() -> None:
    assert normalize_name("  José  O'Neil-Smith Jr. ") == ["JOSE", "ONEIL", "SMITH"]
    assert normalize_name("DE LA CRUZ III") == ["DE", "LA", "CRUZ"]


def test_nicknames_map_to_canonical_first_names() -> None:
    def shares_fn(a: str, b: str) -> bool:
        fam_a = linkage_families(LinkRole.first_name, a)["fn"]
        return bool(fam_a & linkage_families(LinkRole.first_name, b)["fn"])

    assert shares_fn("Bill", "William")
    assert all(shares_fn("alex", n) for n in ("ALEXANDER", "ALEJANDRO", "ALEXANDRA"))
    assert shares_fn("Josh", "Joshua") and shares_fn("Dre", "DeAndre")


def test_a_nickname_shared_by_two_names_does_not_make_them_one() -> None:
    """Names joined through a nickname they share are one group (nickname_groups): a nickname
    of two different names (Chris: Christopher and Christine; Jerry: Gerald and Jeremiah; Dre:
    Andre and DeAndre) would join them, so the table leaves it to one of them."""
    from collections import Counter

    from hub.pseudonymize import nickname_groups

    groups = nickname_groups()
    for a, b in (("ANDRE", "DEANDRE"), ("CHRISTINE", "CHRISTOPHER"), ("JEREMIAH", "GERALD")):
        assert groups.get(a, a) != groups.get(b, b), (a, b)
    assert max(Counter(groups.values()).values()) <= 10


def test_compound_surnames_yield_each_part() -> None:
    assert linkage_families(LinkRole.last_name, "Garcia-Lopez")["ln"] == {
        "GARCIALOPEZ",
        "GARCIA",
        "LOPEZ",
    }


def test_birth_dates_in_agency_formats_parse_and_swap() -> None:
    assert parse_date("04/17/1999") == parse_date("1999-04-17") == parse_date("19990417")
    fam = linkage_families(LinkRole.birth_date, "1999-03-05")
    assert fam["dob"] == {"19990305", "19990503"}
    assert fam["by"] == {"1999"} and fam["ym"] == {"199903"}
    assert linkage_families(LinkRole.birth_date, "1999-03-25")["dob"] == {"19990325"}


def test_an_age_on_its_date_gives_the_two_birth_years_it_allows() -> None:
    """26 on 14 March 2026: born in 2000 if the birthday had passed, else in 1999."""
    assert age_birth_years("26@2026-03-14T22:15:00") == {"t_ay": "2000", "t_ay2": "1999"}
    assert age_birth_years("26.0@03/14/2026") == {"t_ay": "2000", "t_ay2": "1999"}
    for value in ("26.5@2026-03-14", "26@", "@2026-03-14", "old@2026-03-14", "-1@2026-03-14"):
        assert age_birth_years(value) == {}, value


def test_a_record_with_only_an_age_meets_a_dated_record_on_the_birth_year() -> None:
    """The age's years are hashed as birth years, so they equal a dated record's ``t_by``; a
    wrong age does not. A record without its age's date (or without an age) gets none."""
    p = make_pseudonymizer()
    dated = families_of(p, make_police_row(1, victim_dob="1999-04-17", victim_age="26"))
    undated = families_of(p, make_police_row(2, victim_dob="", victim_age="26"))
    older = families_of(p, make_police_row(3, victim_dob="", victim_age="31"))
    assert dated["by"] <= undated["ay"] and len(undated["ay"]) == 2
    assert not dated["by"] & older["ay"]
    assert "by" not in undated and "ay" not in families_of(p, make_police_row(4, victim_age=""))
    assert "ay" not in families_of(p, make_police_row(5, incident_datetime=""))
    # Beside a birth date an age adds nothing (and would tell which side of the event day the
    # birthday falls): a dated record gets no age tokens.
    assert "ay" not in dated
    rows = [
        make_police_row(6, victim_dob=""),
        make_police_row(7, victim_dob="", incident_datetime=None),  # type: ignore[arg-type]
    ]
    assert p.frame(pd.DataFrame(rows)).tokens["t_ay"].null_count == 1


def test_a_first_of_january_birth_date_links_as_its_birth_year_only() -> None:
    """1 January stands in for an unknown birthday (the synthetic CVI extract writes it for 5%
    of its participants): such a date gives the birth year alone, hashed as a birth year in
    ``t_ay``, like an age that fixes the year; no date, month-day or year-month token that
    would make two people born the same year agree as if on a whole date. Its age, if any,
    adds no other year."""
    p = make_pseudonymizer()
    placeholder = families_of(p, make_police_row(1, victim_dob="1999-01-01", victim_age="26"))
    dated = families_of(p, make_police_row(2, victim_dob="1999-04-17", victim_age="26"))
    assert set(placeholder) & {"dob", "by", "md", "ym"} == set()
    assert placeholder["ay"] == dated["by"]
    assert "dob" in families_of(p, make_police_row(3, victim_dob="1999-01-02"))
    rows = [
        make_police_row(4, victim_dob="1999-01-01", victim_age="26"),
        make_police_row(5, victim_dob="", victim_age="26"),
        make_police_row(6, victim_dob="1999-01-01", victim_age="26"),
    ]
    tokens = p.frame(pd.DataFrame(rows), np.array([True, True, False])).tokens
    year = p.link_token("by", "1999")
    assert tokens["t_ay"].to_pylist() == [year, p.link_token("by", "2000"), None]
    assert tokens["t_ay2"].to_pylist() == [None, year, None]
    assert "t_dob" not in tokens  # no row has a whole birth date


def test_age_tokens_of_a_chunk_are_those_of_each_row() -> None:
    """The chunk path works per distinct age, date and birth year; it must give each row what
    :func:`age_birth_years` gives it, invalid and unlinkable rows included."""
    p = make_pseudonymizer()
    ages = ["26", "26.0", "0", "120", "26.5", None, "40"]  # as validation lets them through
    days = ["2026-03-14T22:15:00", "03/14/2026", "2025-12-31", None, "not a date"]
    rows = [
        make_police_row(
            i,
            victim_age=ages[i % 7],  # type: ignore[arg-type]
            incident_datetime=days[i % 5],  # type: ignore[arg-type]
            victim_dob="1999-04-17" if i % 13 == 5 else "",
        )
        for i in range(70)
    ]
    linkable = np.array([i % 11 != 3 for i in range(70)])
    tokens = p.frame(pd.DataFrame(rows), linkable).tokens
    for i, row in enumerate(rows):
        age, day = row["victim_age"], row["incident_datetime"]
        undated = not row["victim_dob"]
        want = age_birth_years(f"{age}@{day}") if age and day and linkable[i] and undated else {}
        for column in ("t_ay", "t_ay2"):
            got = tokens[column][i].as_py()
            expected = p.link_token("by", want[column]) if column in want else None
            assert got == expected, (i, column)


def test_a_name_mistyped_by_one_letter_keeps_one_half() -> None:
    """The halves (with the name's length) of a name and of the same name with one letter
    mistyped, or two neighbouring letters swapped within a half, share a token; other names
    of that length do not, and names shorter than four letters have none."""

    def halves(role: LinkRole, name: str) -> set[str]:
        return linkage_families(role, name).get(
            "fh" if role == LinkRole.first_name else "lh", set()
        )

    first, last = LinkRole.first_name, LinkRole.last_name
    for right, wrong in (("Dennis", "Dengis"), ("Mark", "Mxrk"), ("Sean", "SEQN")):
        assert halves(first, right) & halves(first, wrong), (right, wrong)
    for right, wrong in (("Weathers", "Weatgers"), ("Owens", "Owesn"), ("Mack", "MAFK")):
        assert halves(last, right) & halves(last, wrong), (right, wrong)
    assert not halves(first, "Mark") & halves(first, "John")
    assert not halves(first, "Dennis") & halves(first, "Denis")  # a letter left out: no
    assert halves(first, "Al") == halves(last, "Cox") == set()


def test_the_halves_of_a_name_are_stored_as_keyed_tokens_only() -> None:
    """What is stored for a half is the keyed token of the half, never its letters."""
    p = make_pseudonymizer()
    row = make_police_row(1, victim_first_name="Dennis", victim_last_name="Mack")
    tokens = p.frame(pd.DataFrame([row])).tokens
    expected = {
        "t_fh1": p.link_token("fh", "6<DEN"),
        "t_fh2": p.link_token("fh", "6>NIS"),
        "t_lh1": p.link_token("lh", "4<MA"),
        "t_lh2": p.link_token("lh", "4>CK"),
    }
    assert {c: tokens[c][0].as_py() for c in expected} == expected
    assert p.link_token("fh", "6<DEN") != p.link_token("lh", "6<DEN")  # one domain per family


def test_placeholder_names_give_no_name_tokens() -> None:
    """Unknown trauma patients ("Xray Trauma"), John and Jane Doe and "Baby Boy" newborns are
    many different people under one name: their name tokens are dropped (the surname of a
    newborn is kept), and they keep every other token."""
    p = make_pseudonymizer()
    first_names = {"t_fn", "t_fn2", "t_fi", "t_fsx", "t_fh1", "t_fh2", "t_sw", "t_mn"}
    names = first_names | {"t_ln", "t_ln2", "t_ln3", "t_lsx", "t_lh1", "t_lh2"}

    def columns(first: str, last: str) -> set[str]:
        row = make_police_row(1, victim_first_name=first, victim_last_name=last)
        out = p.frame(pd.DataFrame([row, make_police_row(2)])).tokens
        return {c for c, values in out.items() if values[0].is_valid}

    for first, last in (("Xray", "Trauma"), ("YANKEE", "trauma"), ("John", "Doe"), ("jane", "DOE")):
        kept = columns(first, last)
        assert not kept & names, (first, last)
        assert {"t_dob", "t_sex", "t_zip"} <= kept
    newborn = columns("Baby Boy", "Whitfield")
    assert {"t_ln", "t_lh1"} <= newborn and not newborn & first_names
    assert {"t_fn", "t_ln"} <= columns("John", "Doe-Smith") and {"t_fn", "t_ln"} <= columns(
        "Jon", "Doe"
    )


def test_same_person_at_two_agencies_shares_tokens_despite_nickname_and_case() -> None:
    p = make_pseudonymizer()
    a = families_of(p, make_police_row(1, victim_first_name="William", victim_last_name="Hayes"))
    b = families_of(p, make_police_row(2, victim_first_name="BILL", victim_last_name="hayes"))
    assert a["fn"] & b["fn"] and a["ln"] & b["ln"] and a["dob"] & b["dob"]


def test_swapped_day_and_month_still_share_a_dob_token() -> None:
    p = make_pseudonymizer()
    a = families_of(p, make_police_row(1, victim_dob="1999-03-05"))
    b = families_of(p, make_police_row(2, victim_dob="1999-05-03"))
    assert a["dob"] & b["dob"]


def test_swapped_first_name_and_surname_meet_crosswise_only() -> None:
    p = make_pseudonymizer()
    a = families_of(p, make_police_row(1, victim_first_name="Jamal", victim_last_name="Owens"))
    b = families_of(p, make_police_row(2, victim_first_name="OWENS", victim_last_name="jamal"))
    # b's surname token is a's first name keyed as a surname, and the other way round ...
    assert a["sw"] == b["ln"] and b["sw"] == a["ln"]
    # ... while the families proper do not agree.
    assert not a["fn"] & b["fn"] and not a["ln"] & b["ln"]


def test_tokens_depend_on_the_key() -> None:
    row = make_police_row(1)
    a = make_pseudonymizer(InMemoryKeyStore.generate()).tokens(dict(row))
    b = make_pseudonymizer(InMemoryKeyStore.generate()).tokens(dict(row))
    assert {t for _, t in a}.isdisjoint({t for _, t in b})


def test_stored_values_hold_no_direct_identifier_and_transforms_apply() -> None:
    p = make_pseudonymizer()
    raw = make_police_row(7)
    out = p.row(dict(raw))
    dumped = repr(out.values)
    for field in (
        "victim_first_name",
        "victim_last_name",
        "victim_dob",
        "victim_home_address",
        "narrative",
        "block_address",
        "latitude",
        "victim_middle_initial",
    ):
        assert field not in out.values
    for value in ("Marquise", "Whitfield", "1999-04-17", "1234 N Example St", "V2026-000007"):
        assert value not in dumped
    assert out.values["victim_age"] == "25-34"
    assert out.values["victim_home_zip"] == "606"
    assert out.values["incident_datetime"] == "2026-03-14"
    assert out.values["fatal"] == "false"
    assert len(out.values["victimization_id"] or "") == 64  # keyed hash
    assert len(out.record_key) == 64


def test_unlinkable_rows_get_no_tokens() -> None:
    p = make_pseudonymizer()
    [linked, unlinked] = p.rows([make_police_row(1), make_police_row(2)], [True, False])
    assert linked.tokens and not unlinked.tokens


def test_dates_truncate_to_each_unit_and_unparseable_dates_are_not_stored() -> None:
    import datetime as dt

    from hub.pseudonymize import truncate_date

    day = dt.date(2026, 8, 27)  # a Thursday
    assert truncate_date(day, "day") == day
    assert truncate_date(day, "week") == dt.date(2026, 8, 24)
    assert truncate_date(day, "month") == dt.date(2026, 8, 1)
    assert truncate_date(day, "quarter") == dt.date(2026, 7, 1)
    assert truncate_date(day, "year") == dt.date(2026, 1, 1)
    assert parse_date("27 August 2026") is None


def test_booleans_in_agency_spellings_normalize_and_others_are_not_stored() -> None:
    from hub.pseudonymize import normalize_bool

    assert {normalize_bool(v) for v in ("Y", "yes", "TRUE", "1", "t")} == {"true"}
    assert {normalize_bool(v) for v in ("N", "no", "False", "0", "f")} == {"false"}
    assert normalize_bool("maybe") is None


def test_empty_names_and_dates_make_no_tokens() -> None:
    assert linkage_families(LinkRole.first_name, "  .. ") == {}
    assert linkage_families(LinkRole.last_name, "-") == {}
    assert linkage_families(LinkRole.birth_date, "not a date") == {}
    assert linkage_families(LinkRole.sex, "Q") == {}
    assert linkage_families(LinkRole.zip, "12") == {}
    assert linkage_families(LinkRole.zip, "60651-1234") == {"zip3": {"606"}, "zip": {"60651"}}
    assert linkage_families(LinkRole.middle_name, "Lee")["mn"] == {"LEE"}
    assert linkage_families(LinkRole.person_identifier, "12-3") == {}
    assert linkage_families(LinkRole.street, " ,. ") == {}
    assert linkage_families(LinkRole.locality, "") == {}
    assert linkage_families(LinkRole.house_number, "-") == {}


def test_identifier_and_address_tokens_survive_formatting() -> None:
    assert linkage_families(LinkRole.zip, "2615") == {"zip3": {"261"}, "zip": {"2615"}}
    ssn = linkage_families(LinkRole.person_identifier, "123-45-6789")
    assert (
        ssn
        == linkage_families(LinkRole.person_identifier, " 123 45 6789")
        == {"pid": {"123456789"}}
    )
    assert linkage_families(LinkRole.street, "12  Mary's St.") == {
        "st": {"12 MARY S ST"},
        "stn": {"MARY S ST"},
    }
    assert linkage_families(LinkRole.street, "Flat 3, 12 Mary's St")["stn"] == {"FLAT MARY S ST"}
    assert linkage_families(LinkRole.locality, "St. Kilda-East") == {"loc": {"STKILDAEAST"}}
    assert linkage_families(LinkRole.locality, "Pérez") == {"loc": {"PEREZ"}}
    assert linkage_families(LinkRole.house_number, "12a") == {"hn": {"12A"}}


def test_top_code_and_zip3_transforms() -> None:
    from contracts.model import DatasetField
    from hub.pseudonymize import transform_value

    hasher = make_pseudonymizer().record_hasher
    age = DatasetField.model_validate(
        {
            "name": "age",
            "type": "integer",
            "class": "quasi_identifier",
            "use": "analysis",
            "transform": {"top_code": 90},
        }
    )
    assert transform_value(age, "97", hasher) == "90"
    assert transform_value(age, "45", hasher) == "45"
    zip5 = DatasetField.model_validate(
        {
            "name": "zip",
            "type": "string",
            "class": "quasi_identifier",
            "use": "analysis",
            "transform": {"geo_coarsen": "zip3"},
        }
    )
    assert transform_value(zip5, "60651", hasher) == "606"
    assert transform_value(zip5, "6", hasher) is None
    assert transform_value(zip5, "   ", hasher) is None


def test_an_area_the_hub_cannot_place_is_refused_not_stored_as_digits() -> None:
    # Before: {geo_coarsen: community_area} kept the first three digits of whatever the field
    # held ("012XX W MAIN ST" -> "012", a ZIP -> its ZIP3), stored as a community area.
    import pytest

    from contracts.model import DatasetField
    from hub.errors import AgreementRefused
    from hub.pseudonymize import transform_value

    area = DatasetField.model_validate(
        {
            "name": "block_address",
            "type": "string",
            "class": "quasi_identifier",
            "use": "analysis",
            "transform": {"geo_coarsen": "community_area"},
        }
    )
    with pytest.raises(ValueError, match="block_address"):
        transform_value(area, "012XX W MAIN ST", make_pseudonymizer().record_hasher)
    dataset = load_agreement(POLICE).dataset("police_victimizations")
    assert dataset is not None
    fields = [area if f.name == "block_address" else f for f in dataset.fields]
    with pytest.raises(AgreementRefused, match="block_address.*community_area"):
        Pseudonymizer(dataset.model_copy(update={"fields": fields}), InMemoryKeyStore.generate())


def test_a_swapped_date_that_is_not_a_real_date_is_not_offered() -> None:
    # 2000-02-13 swaps to month 13: no swapped variant; 2000-12-12 is its own swap.
    assert linkage_families(LinkRole.birth_date, "2000-02-13")["dob"] == {"20000213"}
    assert linkage_families(LinkRole.birth_date, "2000-12-12")["dob"] == {"20001212"}


def test_kept_dates_are_normalized_to_iso_and_unknown_roles_make_no_tokens() -> None:
    from contracts.model import DatasetField
    from hub.pseudonymize import transform_value

    hasher = make_pseudonymizer().record_hasher
    kept = DatasetField.model_validate(
        {
            "name": "d",
            "type": "date",
            "class": "operational",
            "use": "analysis",
            "transform": "keep",
        }
    )
    assert transform_value(kept, "04/17/2026", hasher) == "2026-04-17"
    assert transform_value(kept, "soon", hasher) is None


def test_rows_with_empty_identifying_values_skip_those_tokens() -> None:
    p = make_pseudonymizer()
    families = families_of(p, make_police_row(1, victim_first_name=" ", victim_dob=""))
    assert "fn" not in families and "dob" not in families and "ln" in families


def test_a_community_area_gives_the_zips_it_spans_hashed_as_zips() -> None:
    """A home community area (``link_as: community_area``) gives the ZIPs of the shipped
    crosswalk, hashed as ZIPs, so one equals the ``t_zip`` of a record at a ZIP in the area.
    Beside a ZIP the area adds nothing; an area of more ZIPs than its columns (the Loop, six)
    or one not in the crosswalk gives none."""
    data = load_agreement(POLICE).model_dump(by_alias=True, mode="json")
    fields = data["datasets"][0]["fields"]
    area = next(f for f in fields if f["name"] == "community_area")
    area["link_as"] = "community_area"
    dataset = type(load_agreement(POLICE)).model_validate(data).dataset("police_victimizations")
    assert dataset is not None
    p = Pseudonymizer(dataset, InMemoryKeyStore.generate())
    austin = families_of(p, make_police_row(1, community_area="25", victim_home_zip=""))
    at_zip = families_of(p, make_police_row(2, community_area="1", victim_home_zip="60651"))
    assert austin["az"] == {str(p.link_token("zip", z)) for z in ("60644", "60651", "60639")}
    assert at_zip["zip"] <= austin["az"] and not {"az", "ca"} & set(at_zip)
    # Two areas of the same single ZIP are still two areas.
    south_chicago = families_of(p, make_police_row(5, community_area="46", victim_home_zip=""))
    calumet_heights = families_of(p, make_police_row(6, community_area="48", victim_home_zip=""))
    assert south_chicago["az"] == calumet_heights["az"]
    assert south_chicago["ca"] != calumet_heights["ca"] and len(austin["ca"]) == 1
    by_name = families_of(p, make_police_row(3, community_area="austin", victim_home_zip=""))
    assert by_name["az"] == austin["az"]
    for other in ("32", "99", ""):
        row = make_police_row(4, community_area=other, victim_home_zip="")
        assert not {"az", "ca"} & set(families_of(p, row)), other
