"""The linkage report: what a run did, its model, and link rates by group, for admins only.

One hub is linked once per module (four example agencies, 300 synthetic people) and each test
reads a copy of it."""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from contracts.model import Dataset
from factories import (
    DB_FILE,
    copy_hub,
    example_agreements,
    make_actor,
    make_agreement_data,
    make_seed,
    upload_all,
)
from hub.auth.policies import Actor, Role
from hub.auth.service import actor_of, ensure_admin, get_user
from hub.cli.main import app
from hub.context import Hub
from hub.db.models import LinkageRun, PersonLink, Record
from hub.errors import NotAllowed, NotFound
from hub.linkage.engine import EngineSettings
from hub.linkage.link_rates import MIN_GROUP, age_band, group_fields, rate_row
from hub.linkage.report import blocking_rules, linkage_report, threshold_rationale
from hub.linkage.report_page import render_report
from hub.linkage.service import run_linkage
from hub.pseudonymize import TOKEN_COLUMNS
from hub.synth import generate

LINKED = ["cvi_participants", "ed_injury_visits", "police_victimizations", "referrals"]


def build_linked(hub: Hub, extracts: Path) -> None:
    upload_all(hub, extracts)
    make_actor(hub, "analyst", Role.analyst)
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))


@pytest.fixture(scope="module")
def linked_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub folder with the four linking agencies uploaded and linked once. (Its copies get key
    stores of their own; nothing here needs the keys the records were made with.)"""
    extracts = tmp_path_factory.mktemp("report-extracts")
    generate(extracts, people=300, seed=5)
    where = tmp_path_factory.mktemp("report-seed") / "hub"
    return make_seed(where, lambda hub: build_linked(hub, extracts))


@pytest.fixture
def linked(hub: Hub, linked_seed: Path) -> Hub:
    copy_hub(linked_seed, hub)
    return hub


def actor(hub: Hub, name: str = "admin") -> Actor:
    with hub.session() as s:
        return actor_of(ensure_admin(s) if name == "admin" else get_user(s, name))


def report_of(hub: Hub, run_id: int | None = None, as_: str = "admin") -> dict[str, Any]:
    who = actor(hub, as_)
    with hub.session() as s:
        return linkage_report(s, who, run_id)


# --- what the page shows ----------------------------------------------------------------------


def test_the_page_shows_the_run_threshold_estimates_and_m_u_of_every_level(linked: Hub) -> None:
    report = report_of(linked)
    page = render_report(report)
    with linked.session() as s:
        run = s.scalars(select(LinkageRun)).one()
        params = run.params
    assert report["run"]["id"] == run.id and report["run"]["latest"] is True
    assert report["run"]["records"] == run.records and report["run"]["persons"] == run.persons
    assert report["run"]["trained"] == "priors" and report["audit"]["actor"] == "test"
    threshold = EngineSettings().threshold
    assert report["threshold"]["probability"] == threshold
    assert f"match probability of at least <strong>{threshold:g}</strong>" in page
    assert report["threshold"]["why"] in page.replace("&#x27;", "'")
    # The estimates table: one row per threshold the run estimated.
    assert report["estimates"] == params["estimates"] and len(report["estimates"]) >= 3
    for e in report["estimates"]:
        assert f"<td class='num'>{e['precision']:.4g}</td>" in page
        assert f"<td class='num'>{e['recall']:.4g}</td>" in page
    assert f"{threshold:g} (this run)" in page
    # m/u: every level of every comparison the model has, with its weight.
    levels = [
        (c["output_column_name"], lv)
        for c in params["model"]["comparisons"]
        for lv in c["comparison_levels"]
        if not lv.get("is_null_level")
    ]
    assert len(levels) >= 12
    for name, lv in levels:
        assert f"<td>{name}</td><td>{lv['label_for_charts']}" in page.replace("&#x27;", "'")
        assert f"<td class='num'>{lv['m_probability']:.4g}</td>" in page
    assert "<svg" in page and "threshold</text>" in page  # the histogram with its line
    assert "first name (first word, nickname group or compound name) and surname" in page
    assert "<script" not in page and "default-src 'none'" in page


def counted_by_hand(hub: Hub) -> dict[str, tuple[int, int]]:
    """Per dataset: linkable records, and those whose person id some other dataset's record
    has too."""
    with hub.session() as s:
        rows = s.execute(
            select(
                Record.dataset_id, Record.no_linkage, Record.aggregate_only, PersonLink.person_id
            ).join(PersonLink, PersonLink.record_id == Record.id)
        ).all()
    datasets_of: dict[str, set[str]] = defaultdict(set)
    for ds, _, _, pid in rows:
        datasets_of[pid].add(ds)
    counted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ds, no_linkage, aggregate_only, pid in rows:
        if not (no_linkage or aggregate_only):
            counted[ds][0] += 1
            counted[ds][1] += len(datasets_of[pid]) > 1
    return {ds: (n, k) for ds, (n, k) in counted.items()}


def test_link_rates_count_records_shared_with_another_dataset_for_each_agency(
    linked: Hub,
) -> None:
    report = report_of(linked)
    by_agency = {r["dataset"]: r for r in report["link_rates"]["by_agency"]}
    assert sorted(by_agency) == LINKED == report["run"]["datasets"]
    page = render_report(report)
    for ds, (records, linked_records) in counted_by_hand(linked).items():
        row = by_agency[ds]
        assert (row["records"], row["linked"]) == (records, linked_records), ds
        assert 0 < row["rate"] < 1
        provider = row["provider"]
        assert f"<td>{ds}</td><td>{provider}</td><td class='num'>{records:,}</td>" in page
        assert f"<td class='num'>{row['display']}</td>" in page
    assert "with at least one record of another dataset" in page


def test_link_rates_by_age_band_sex_and_race_use_each_contracts_fields(linked: Hub) -> None:
    rates = report_of(linked)["link_rates"]
    assert rates["fields"]["police_victimizations"] == {
        "provider": "org:police",
        "age": "victim_age (age bins)",
        "sex": "victim_sex",
        "race": "victim_race",
    }
    assert rates["fields"]["referrals"]["age"] == "none"  # its records count as unknown
    for dim in ("by_age_band", "by_sex", "by_race"):
        shown = {r["dataset"] for r in rates[dim]}
        assert set(LINKED) <= shown, dim
        # Every agency's groups add up to its linkable records.
        for ds in LINKED:
            total = next(r["records"] for r in rates["by_agency"] if r["dataset"] == ds)
            parts = [r for r in rates[dim] if r["dataset"] == ds]
            if not any(r["suppressed"] for r in parts):
                assert sum(r["records"] for r in parts) == total, (dim, ds)
    bands = {r["group"] for r in rates["by_age_band"] if r["dataset"] == "ed_injury_visits"}
    assert {"18-24", "25-34"} <= bands
    assert {r["group"] for r in rates["by_age_band"] if r["dataset"] == "referrals"} == {"unknown"}
    assert {r["dataset"] for r in rates["by_race"]} == set(LINKED)  # race: per agency only
    assert "all agencies" in {r["dataset"] for r in rates["by_sex"]}


def test_groups_under_ten_records_show_lt10_and_no_figures(linked: Hub) -> None:
    report = report_of(linked)
    page = render_report(report)
    rows = [r for dim in ("by_age_band", "by_sex", "by_race") for r in report["link_rates"][dim]]
    suppressed = [r for r in rows if r["suppressed"]]
    assert suppressed, "the synthetic data has small groups"
    for r in suppressed:
        assert (r["records"], r["linked"], r["rate"], r["display"]) == (None, None, None, "<10")
        ds = f"<strong>{r['dataset']}</strong>" if r["dataset"] == "all agencies" else r["dataset"]
        cell = f"<td>{ds}</td><td>{r['group']}</td><td class='num suppressed'>&lt;10"
        assert cell in page
    assert all(r["records"] >= MIN_GROUP for r in rows if not r["suppressed"])
    assert json.dumps(report).count('"<10"') == len(suppressed)


def test_rate_rows_suppress_below_ten_records() -> None:
    assert rate_row(9, 9)["display"] == "<10" and rate_row(9, 9)["records"] is None
    assert rate_row(10, 3) == {
        "records": 10,
        "linked": 3,
        "rate": 0.3,
        "suppressed": False,
        "display": "30.0%",
    }


def test_no_record_key_token_or_person_id_appears_in_the_page_or_the_json(linked: Hub) -> None:
    report = report_of(linked)
    shown = render_report(report) + json.dumps(report)
    with linked.session() as s:
        records = s.scalars(select(Record)).all()
        secrets = {r.record_key for r in records}
        for r in records:
            secrets |= {str(getattr(r, c)) for c in TOKEN_COLUMNS if getattr(r, c) is not None}
            # Stored hashes (case numbers, MRNs...) are 64 hex digits.
            secrets |= {v for v in r.values.values() if isinstance(v, str) and len(v) >= 20}
        secrets |= set(s.scalars(select(PersonLink.person_id)))
    assert len(secrets) > 1000
    found = [x for x in secrets if x in shown]
    assert found == []


# --- runs -------------------------------------------------------------------------------------


def test_an_earlier_run_is_reported_with_a_caveat_on_its_link_rates(linked: Hub) -> None:
    second = linked.transact(lambda s: run_linkage(s, "test", linked.today()))
    latest, first = report_of(linked), report_of(linked, second.run_id - 1)
    assert latest["run"]["id"] == second.run_id and latest["run"]["latest"] is True
    assert first["run"]["latest"] is False
    assert "This is not the latest run" in render_report(first)
    assert "This is not the latest run" not in render_report(latest)
    changes = latest["changes"]
    assert changes["merges"] == second.merges and changes["splits"] == second.splits


def test_a_run_with_nothing_to_link_is_reported_too(hub: Hub) -> None:
    hub.transact(lambda s: run_linkage(s, "test", hub.today()))
    report = report_of(hub)
    assert report["run"]["records"] == 0 and report["run"]["trained"] == "none"
    assert report["comparisons"] == [] and report["histogram"] == []
    assert report["link_rates"]["by_agency"] == []
    page = render_report(report)
    assert "No model: the run had nothing to compare." in page
    assert "The run scored no pairs." in page


def test_an_unknown_run_is_not_found(linked: Hub) -> None:
    with pytest.raises(NotFound, match="no linkage run 999"):
        report_of(linked, 999)


def test_before_any_run_the_report_says_to_run_linkage(hub: Hub) -> None:
    with pytest.raises(NotFound, match="ovphub link run"):
        report_of(hub)


def test_only_admins_see_the_report(linked: Hub) -> None:
    with pytest.raises(NotAllowed, match="may not linkage read"):
        report_of(linked, as_="analyst")


# --- fields, bands and the threshold's reason -------------------------------------------------


def test_age_bands_come_from_bins_ages_or_birth_years() -> None:
    def band(value: str | None, kind: str = "bins") -> str:
        return age_band(value, kind, 2026)[0]

    assert [band(v) for v in ("10-17", "0-11", "18-24", "65-120", "18-<25")] == [
        "0-17",
        "0-17",
        "18-24",
        "65+",
        "18-24",
    ]
    assert band("35-80") == "35-80"  # straddles bands: kept as the agency binned it
    assert band("70", "years") == "65+" and band("2001", "birth_year") == "25-34"
    assert band(None) == band("junk") == band("-3", "years") == band("18", "") == "unknown"


def test_group_fields_are_found_in_every_example_contract() -> None:
    found = {d.id: group_fields(d).describe() for a in example_agreements() for d in a.datasets}
    assert found["ed_injury_visits"] == {
        "age": "age_years (age bins)",
        "sex": "sex",
        "race": "race",
    }
    assert found["cvi_participants"]["age"] == "age (age bins)"
    assert found["school_attendance"] == {"age": None, "sex": "sex", "race": "race_ethnicity"}
    assert found["victim_services_contacts"]["sex"] == "client_sex"  # by name, no link_as
    assert found["referrals"] == {"age": None, "sex": None, "race": None}


def test_a_stored_birth_year_gives_the_age_band() -> None:
    data = make_agreement_data()
    (police,) = data["datasets"]
    police["fields"] = [f for f in police["fields"] if f["name"] != "victim_age"] + [
        {
            "name": "victim_birth_year",
            "type": "integer",
            "class": "quasi_identifier",
            "use": "analysis",
            "transform": "keep",
        }
    ]
    fields = group_fields(Dataset.model_validate(police))
    assert (fields.age, fields.age_kind) == ("victim_birth_year", "birth_year")


@pytest.mark.parametrize("floored", [True, False])
def test_agreement_thresholds_are_listed_exactly_and_said_to_change_nothing_at_or_below(
    floored: bool,
) -> None:
    """A run records that agreements only raise its threshold (``thresholds_floored``); for
    such a run an agreement at or below its threshold changes nothing. A run made before says
    how it linked then."""
    from hub.linkage.report_page import _threshold_section

    section = _threshold_section(
        {
            "threshold": {
                "probability": 0.5,
                "default": 0.5,
                "why": "",
                "agreements": {"a": 0.3, "b": 0.999999},
                "floored": floored,
            }
        }
    )
    assert "<code>b</code>: 0.999999</li>" in section
    lowered = "<code>a</code>: 0.3 (at or below this run's threshold, so it changes nothing)"
    assert (lowered in section) is floored
    assert ("can only make linkage stricter:" in section) is floored


def test_the_threshold_rationale_is_the_engines_own_comment() -> None:
    why = threshold_rationale()
    assert f"{EngineSettings().threshold:g}" in why
    assert why.startswith("Pairs at or above this match probability")
    assert not re.search(r"`|:func:|:attr:", why)


def test_blocking_rules_are_the_ones_the_model_ran_in_words(linked: Hub) -> None:
    report = report_of(linked)
    with linked.session() as s:
        model = s.scalars(select(LinkageRun)).one().params["model"]
    ran = model["blocking_rules_to_generate_predictions"]
    assert len(report["blocking_rules"]) == len(ran) >= 7
    for rule in report["blocking_rules"]:
        assert rule["words"] and not any(re.search(r"\b[kt]_\w+", w) for w in rule["words"])
    assert report["blocking_rules"][0]["families"] == ["fn", "ln"]


def test_blocking_rules_in_words_name_swapped_names_and_none_without_a_model() -> None:
    assert blocking_rules({}) == []
    swapped = {"blocking_rule": "l.t_sw = r.t_ln AND l.t_ln = r.t_sw AND (l.k_mask & r.k_bit) <> 0"}
    (rule,) = blocking_rules({"blocking_rules_to_generate_predictions": [swapped]})
    assert rule == {
        "families": ["ln~sw"],
        "words": ["first name and surname swapped"],
        "permitted_only": True,
    }


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def cli(linked_seed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``ovphub`` configured (``HUB_*``) on a copy of the linked hub."""
    data = tmp_path / "var"
    data.mkdir()
    shutil.copyfile(linked_seed / DB_FILE, data / DB_FILE)
    monkeypatch.setenv("HUB_DATA_DIR", str(data))
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{data / DB_FILE}")
    monkeypatch.setenv("HUB_KEY_FILE", str(tmp_path / "keys" / "hub.key"))
    monkeypatch.delenv("HUB_ENVIRONMENT", raising=False)
    return CliRunner()


def test_link_report_writes_the_page_of_the_latest_run(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "linkage.html"
    result = cli.invoke(app, ["link", "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert "<h1>Linkage report: run 1</h1>" in page and "police_victimizations" in page
    again = cli.invoke(app, ["link", "report", "--run", "1", "--out", str(out)])
    assert again.exit_code == 0 and out.read_text(encoding="utf-8") == page


def test_link_report_refuses_a_non_admin_and_an_unknown_run(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "linkage.html"
    denied = cli.invoke(app, ["--as", "analyst", "link", "report", "--out", str(out)])
    assert denied.exit_code == 1 and "may not linkage read" in denied.stderr
    unknown = cli.invoke(app, ["link", "report", "--run", "42", "--out", str(out)])
    assert unknown.exit_code == 1 and "no linkage run 42" in unknown.stderr
    assert "Traceback" not in denied.output + unknown.output and not out.exists()


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_report_on_postgresql(pg_hub: Hub, tmp_path: Path) -> None:
    generate(tmp_path / "x", people=300, seed=5)
    build_linked(pg_hub, tmp_path / "x")
    report = report_of(pg_hub)
    by_agency = {
        r["dataset"]: (r["records"], r["linked"]) for r in report["link_rates"]["by_agency"]
    }
    assert by_agency == counted_by_hand(pg_hub)
    rates = report["link_rates"]
    assert rates["fields"]["ed_injury_visits"]["age"] == "age_years (age bins)"
    assert {"18-24", "unknown"} <= {r["group"] for r in rates["by_age_band"]}
    assert "<h1>Linkage report: run 1</h1>" in render_report(report)
