from __future__ import annotations

from contracts.loader import load_agreement
from contracts.model import LinkRole
from factories import POLICE, make_police_row
from hub.keys import InMemoryKeyStore
from hub.pseudonymize import (
    Pseudonymizer,
    first_name_variants,
    last_name_variants,
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
    assert "WILLIAM" in first_name_variants("Bill")
    assert {"ALEXANDER", "ALEJANDRO", "ALEXANDRA"} <= first_name_variants("alex")


def test_compound_surnames_yield_each_part() -> None:
    assert last_name_variants("Garcia-Lopez") == {"GARCIALOPEZ", "GARCIA", "LOPEZ"}


def test_birth_dates_in_agency_formats_parse_and_swap() -> None:
    assert parse_date("04/17/1999") == parse_date("1999-04-17") == parse_date("19990417")
    fam = linkage_families(LinkRole.birth_date, "1999-03-05")
    assert fam["dob"] == {"19990305", "19990503"}
    assert fam["by"] == {"1999"}
    assert linkage_families(LinkRole.birth_date, "1999-03-25")["dob"] == {"19990325"}


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
