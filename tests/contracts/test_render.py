"""The plain-language rendering of agreements (contracts.readable.render)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from contracts.model import Agreement
from contracts.readable import aggregate_words as aw
from contracts.readable import render_html, render_markdown
from contracts.readable import words as w
from tests.contracts.contract_factories import EXAMPLES, make_example, make_example_data

RENDERERS = {"markdown": render_markdown, "html": render_html}


def mentions(agreement: Agreement) -> list[str]:
    """What a reader must find in the rendering: every dataset, field, aggregate, party and
    purpose."""
    found = [d.id for d in agreement.datasets]
    found += [f.name for d in agreement.datasets for f in d.fields]
    found += [a.id for a in agreement.outputs.aggregates]
    found += [p.id for p in agreement.parties] + [p.legal_name for p in agreement.parties]
    purposes = agreement.purposes.permitted + agreement.purposes.prohibited
    found += [w.humanize(p)[:1].upper() + w.humanize(p)[1:] for p in purposes]
    return found


def as_text(page: str) -> str:
    """The visible text of a rendered page, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("kind", sorted(RENDERERS))
def test_every_example_renders_and_mentions_everything(name: str, kind: str) -> None:
    agreement = make_example(name)
    text = RENDERERS[kind](agreement)
    # Markdown escapes some characters with backslashes; a reader sees the text without them.
    text = as_text(text) if kind == "html" else text.replace("\\", "")
    missing = [m for m in mentions(agreement) if m not in text]
    assert missing == []


@pytest.mark.parametrize("kind", sorted(RENDERERS))
def test_dates_and_version_come_first(kind: str) -> None:
    agreement = make_example("police")
    text = RENDERERS[kind](agreement)
    top = text[: text.index("Who shares data with whom")]
    for expected in ("1.0.0", "2025-07-01", "2027-06-30", agreement.sha256()):
        assert expected in top


def test_fields_are_described_in_words() -> None:
    text = render_markdown(make_example("police"))
    assert (
        "victim_dob: a direct identifier, used only for linkage, turned into keyed linkage "
        "tokens and never stored." in text
    )
    assert "narrative: a free-text field, not used, dropped at upload and never stored." in text
    assert "victim_home_zip: a quasi-identifier, used in analysis, kept only as ZIP3" in text
    assert "kept only as a band (0–11, 12–17, 18–24, 25–34, 35–44, 45–64, 65–120)" in text


def test_row_rules_are_described_in_words_with_their_citation() -> None:
    text = render_markdown(make_example("police"))
    assert "Rows where juvenile_flag is true are used only in aggregates" in text
    assert "(705 ILCS 405/1-7)" in text
    victim_services = render_markdown(make_example("victim_services"))
    assert "Every row must record the person's consent in consent_to_share" in victim_services
    assert "Rows where client_age is less than 18 are refused" in victim_services


def test_legal_basis_is_named_in_words_with_its_citation() -> None:
    text = render_markdown(make_example("hospital"))
    assert "HIPAA — disclosure to a public health authority (45 CFR 164.512(b))" in text


def test_privacy_and_budget_are_described_in_words() -> None:
    police = render_markdown(make_example("police"))
    assert (
        "zero-concentrated DP, ρ = 0.5 per month, 6 in total; each person counts at most 4 "
        "rows a year" in police
    )
    assert "noisy counts below 11 are suppressed" in police
    assert "Each release spends 40% of the monthly budget (ρ = 0.2)" in police
    hospital = render_markdown(make_example("hospital"))
    assert "pure differential privacy, ε = 2 per month, 24 in total" in hospital


def test_aggregates_state_measure_and_dimensions_in_words() -> None:
    text = render_markdown(make_example("police"))
    assert "count of rows by month and victimization type" in text
    assert (
        "count of distinct people by quarter, victim age and victim sex, counting only rows "
        "where victimization_type is FATAL_SHOOTING or NON_FATAL_SHOOTING" in text
    )


def test_a_mean_states_what_it_adds_up_and_its_bounds() -> None:
    text = render_markdown(make_example("referrals"))
    assert (
        "mean of the days from referral_date to first_service_date (clamped to 0–90 days) by "
        "quarter and to org type, from referrals (dates from referral_date); rows missing "
        "either date are left out, and values outside 0–90 days count as the nearest bound"
    ) in text


def test_a_rate_states_what_its_share_counts() -> None:
    referrals = render_markdown(make_example("referrals"))
    assert (
        "share of rows where followup_done_date is within 7 days after referral_date, by "
        "quarter and to org type"
    ) in referrals
    police = render_markdown(make_example("police"))
    assert (
        "share of people who have a row in ed_injury_visits with injury_intent ASSAULT and "
        "arrival_datetime 1 to 365 days before their incident_datetime, by year, counting only "
        "rows where victimization_type is FATAL_SHOOTING or NON_FATAL_SHOOTING"
    ) in police
    assert "ed_injury_visits is read only to decide who counts in the share" in police


@pytest.mark.parametrize(
    ("days_from", "days_to", "words"),
    [
        (-365, -1, "1 to 365 days before X"),
        (-7, -7, "exactly 7 days before X"),
        (0, 0, "on the same day as X"),
        (0, 1, "within 1 day after X"),
        (-30, 0, "within 30 days before X"),
        (-30, 30, "between 30 days before and 30 days after X"),
        (1, 14, "1 to 14 days after X"),
    ],
)
def test_a_window_of_days_reads_as_words(days_from: int, days_to: int, words: str) -> None:
    assert aw.window(days_from, days_to, "X") == words


def test_a_rate_of_people_with_conditions_on_their_own_and_linked_rows() -> None:
    data = make_example_data("police")
    numerator = data["outputs"]["aggregates"][2]["numerator"]
    numerator["filters"] = {"gunshot_injury": ["YES"]}
    numerator["linked"]["days_from"] = -30
    numerator["linked"]["days_to"] = 30
    aggregate = Agreement.model_validate(data).outputs.aggregates[2]
    assert aw.numerator(aggregate) == (
        "people with a row where gunshot_injury is YES and who have a row in ed_injury_visits "
        "with injury_intent ASSAULT and arrival_datetime between 30 days before and 30 days "
        "after that row's incident_datetime"
    )
    data["outputs"]["aggregates"][2]["measure"] = "rate_rows"
    aggregate = Agreement.model_validate(data).outputs.aggregates[2]
    assert aw.numerator(aggregate).startswith(
        "rows where gunshot_injury is YES and the same person has a row in ed_injury_visits"
    )


def test_recipients_retention_and_linkage_are_in_words() -> None:
    text = render_markdown(make_example("victim_services"))
    assert "may be seen by: the public, City of Example Office of Violence Prevention" in text
    assert "They may never be given to: law enforcement." in text
    assert "**Pseudonymized records:** 2 years" in text
    assert "**Linkage tokens:** not kept" in text
    assert "These records are never linked with any other data." in text
    assert "the data is returned to its provider, then destroyed" in text


def test_the_fields_linkage_compares_are_named_and_an_age_says_its_date() -> None:
    text = render_markdown(make_example("police"))
    assert (
        "Linkage compares keyed tokens of these fields of police_victimizations: "
        "victim_first_name, victim_last_name, victim_dob, victim_age (as the birth years it "
        "allows on incident_datetime), victim_sex and victim_home_zip." in text
    )
    assert "Linkage compares" not in render_markdown(make_example("victim_services"))


def test_a_dataset_of_one_record_per_person_says_so() -> None:
    data = make_example_data("police")
    assert "Each person is in" not in render_markdown(Agreement.model_validate(data))
    data["datasets"][0]["one_record_per_person"] = True
    assert (
        "**Each person is in:** one row at most; linkage never joins two of its rows"
        in render_markdown(Agreement.model_validate(data))
    )


def test_iso_durations_read_as_words() -> None:
    assert w.duration("P3Y") == "3 years"
    assert w.duration("P1Y") == "1 year"
    assert w.duration("PT24H") == "24 hours"
    assert w.duration("P1Y6M") == "1 year and 6 months"
    assert w.duration("P2W3DT4H") == "2 weeks, 3 days and 4 hours"
    assert w.duration("indefinite") == "indefinitely"
    assert w.is_zero_duration("P0D")


MALICIOUS = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"


def make_malicious() -> Agreement:
    data = make_example_data("police")
    data["agreement"]["title"] = MALICIOUS
    data["parties"][0]["legal_name"] = MALICIOUS
    data["datasets"][0]["fields"][0]["description"] = MALICIOUS
    data["amendments"][0]["summary"] = "| broken | table\n# heading"
    return Agreement.model_validate(data)


def test_html_escapes_every_value() -> None:
    page = render_html(make_malicious())
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;img" in page
    assert MALICIOUS in as_text(page)


def test_html_is_self_contained() -> None:
    page = render_html(make_example("schools"))
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page)
    for tag in ("<script", "<link", "<img", "<iframe", "src=", "url("):
        assert tag not in page
    assert "Content-Security-Policy" in page


def test_markdown_escapes_markup_and_keeps_one_line_per_value() -> None:
    text = render_markdown(make_malicious())
    assert not re.search(r"(?<!\\)<", text), "every < is escaped"
    assert text.splitlines()[0] == (
        "# \\<script\\>alert('x')\\</script\\> \\& \\<img src=x onerror=alert(1)\\>"
    )
    assert "\n# heading" not in text
    assert "\\| broken \\| table \\# heading" in text


class TagBalance(HTMLParser):
    """Fails on any element closed out of order or left open."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-3:])
        self.open.pop()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_html_is_well_formed(name: str) -> None:
    parser = TagBalance()
    parser.feed(render_html(make_example(name)))
    parser.close()
    assert parser.open == []


def test_a_match_threshold_says_it_only_tightens() -> None:
    data = make_example_data("police")
    data["linkage"]["method"] = {"match_threshold": 0.95}
    text = render_markdown(Agreement.model_validate(data))
    assert (
        "two records link only at a match probability of at least 0.95, or the hub's or the "
        "other dataset's threshold if higher" in text
    )


def test_a_linked_community_area_says_it_is_compared_as_zip_codes() -> None:
    assert "home_community_area (as the ZIP codes the area spans)" in render_markdown(
        make_example("cvi")
    )
