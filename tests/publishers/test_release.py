import datetime as dt
import json

import numpy as np
import pytest

from contracts.loader import example_agreement_paths, load_agreement
from publishers import release as release_module
from publishers.errors import ReleaseRefused
from publishers.release import compute_release, preview, privacy_cost, release_terms
from tests.publishers.factories import (
    HOSPITAL,
    POLICE,
    agreement_declaring,
    make_agreement,
    make_area_agreement,
    make_linked_rows,
    make_police_rows,
    make_rows,
    make_rows_for,
)

WINDOW = {"window_start": dt.date(2025, 7, 1), "window_end": dt.date(2026, 6, 30)}
EXAMPLE_AGGREGATES = [
    (path.stem, aggregate.id)
    for path in example_agreement_paths()
    for aggregate in load_agreement(path).outputs.aggregates
]


def make_release(agreement_id: str = POLICE, aggregate_id: str = "viol_monthly", **kwargs):
    agreement = make_agreement(agreement_id)
    rows = make_rows_for(agreement, aggregate_id, 3000, persons=1200, seed=4)
    return compute_release(agreement, aggregate_id, rows, **WINDOW, seed=1, **kwargs)


@pytest.mark.parametrize(("agreement_id", "aggregate_id"), EXAMPLE_AGGREGATES)
def test_every_example_aggregate_releases_within_its_cost(agreement_id, aggregate_id):
    agreement = make_agreement(agreement_id)
    aggregate = agreement.aggregate(aggregate_id)
    rows = make_rows_for(agreement, aggregate_id, 2000, persons=700)
    linked = make_linked_rows(agreement, aggregate_id, rows)
    others = [agreement_declaring(d) for d in linked]
    terms = release_terms(agreement, aggregate_id, others)
    release = compute_release(agreement, aggregate_id, rows, **WINDOW, linked=linked, terms=terms)
    assert release.privacy_loss <= terms.loss
    assert release.privacy_loss == pytest.approx(terms.loss)
    values = [c["value"] for c in release.cells if c["value"] is not None]
    if aggregate.measure in ("count_rows", "count_persons", "sum"):
        assert all(isinstance(v, int) and v >= 0 for v in values)
    elif aggregate.measure == "mean":
        lower, upper = aggregate.value.bounds
        assert all(lower <= v <= upper for v in values)
    else:
        assert all(0 <= v <= 1 for v in values)
    json.dumps(release.to_manifest())


def test_privacy_cost_is_the_budget_share_of_the_per_period_budget():
    agreement = make_agreement(POLICE)  # per_period 0.5, viol_monthly share 0.4
    assert privacy_cost(agreement, "viol_monthly") == pytest.approx(0.2)


def test_a_zcdp_agreement_gets_discrete_gaussian_noise_and_a_pure_dp_one_discrete_laplace():
    police = make_release(POLICE, "viol_monthly")
    hospital = make_release(HOSPITAL, "ed_assault_monthly")
    assert (police.mechanism, police.privacy_model) == ("discrete_gaussian", "zcdp")
    assert (hospital.mechanism, hospital.privacy_model) == ("discrete_laplace", "pure_dp")
    assert police.to_manifest()["privacy_loss_unit"] == "rho"
    assert hospital.to_manifest()["privacy_loss_unit"] == "epsilon"


def test_an_aggregate_the_agreement_does_not_approve_is_refused():
    agreement = make_agreement(POLICE)
    rows = make_rows([], columns=["person_id"])
    for call in (
        lambda: compute_release(agreement, "ed_assault_monthly", rows, **WINDOW),
        lambda: preview(agreement, "ed_assault_monthly", **WINDOW),
        lambda: privacy_cost(agreement, "ed_assault_monthly"),
    ):
        with pytest.raises(ReleaseRefused, match="does not approve"):
            call()


def test_preview_needs_no_data_and_matches_the_release():
    agreement = make_agreement(POLICE)
    before = preview(agreement, "viol_demog_qtr", WINDOW["window_start"], WINDOW["window_end"])
    release = make_release(POLICE, "viol_demog_qtr")
    assert before["cells"] == len(release.cells) == 4 * 7 * 4
    assert before["cost"] == privacy_cost(agreement, "viol_demog_qtr")
    assert before["noise_scale"] == release.noise_scale
    assert before["error_bound_95"] == release.error_bound_95
    assert before["total_error_bound_95"] == release.total_error_bound_95
    json.dumps(before)


def test_the_public_manifest_carries_no_exact_row_counts():
    release = make_release()
    keys: set[str] = set()

    def collect(value):
        if isinstance(value, dict):
            keys.update(value)
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)

    collect(json.loads(json.dumps(release.to_manifest())))
    report = release.processing_report()["rows"]
    assert not keys & {"rows", *report}
    assert report["received"] == 3000
    assert (
        sum(v for k, v in report.items() if k not in ("received", "used")) + report["used"]
        == report["received"]
    )


def test_manifest_describes_mechanism_loss_accuracy_and_bounding():
    m = make_release().to_manifest()
    assert m["agreement"] == "dsa-police-victimizations@1.0.0"
    assert m["mechanism"] == "discrete_gaussian" and m["privacy_unit"] == "linked_person"
    assert m["contribution_bound"] == {"max_rows_per_person_per_period": 4, "period": "P1Y"}
    assert m["periods"] == 2  # the window touches two calendar years
    assert m["sensitivity"]["l1"] == 8.0
    assert m["window"] == {"start": "2025-07-01", "end": "2026-06-30"}
    assert m["error_bound_95"] > 0 and m["total_error_bound_95"] > m["error_bound_95"]
    assert len(m["totals"]) == 12 and len(m["cells"]) == 12 * 5


def test_suppression_is_decided_on_noisy_values_not_true_counts(monkeypatch):
    agreement = make_agreement(POLICE)  # min_cell 11
    records = [
        {
            "person_id": f"p{i}",
            "incident_datetime": "2025-07-02",
            "victimization_type": "FATAL_SHOOTING",
        }
        for i in range(200)
    ]
    rows = make_rows(records)
    true_seen = {}

    def fake_noise(calibration, counts):
        true_seen["counts"] = counts.copy()
        noisy = np.full(counts.shape, 50, dtype=np.int64)
        noisy[0] = 3  # the cell with 200 true rows comes out small
        return noisy

    monkeypatch.setattr(release_module, "add_noise", fake_noise)
    release = compute_release(agreement, "viol_monthly", rows, **WINDOW)
    assert true_seen["counts"][0] == 200
    assert release.cells[0]["suppressed"] and release.cells[0]["value"] is None
    # Cells with no rows at all are published, because their noisy value is 50.
    assert all(c["value"] == 50 for c in release.cells[1:])


def test_the_noise_comes_from_opendp_not_numpy(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("numpy randomness was used")

    for name in (
        "default_rng",
        "normal",
        "laplace",
        "randint",
        "random",
        "choice",
        "shuffle",
        "permutation",
        "RandomState",
        "Generator",
    ):
        monkeypatch.setattr(np.random, name, forbidden)
    agreement = make_agreement(POLICE)
    record = {"person_id": "p", "incident_datetime": "2025-08-01"}
    rows = make_rows([{**record, "victimization_type": "FATAL_SHOOTING"}])
    release = compute_release(agreement, "viol_monthly", rows, **WINDOW)
    assert len(release.cells) == 60


def test_repeated_computation_redraws_noise_so_the_hub_must_cache():
    # The engine never returns cached numbers itself (invariant 4 lives in the hub); this
    # documents why: the same request computed twice gives different noisy values.
    a, b = make_release(), make_release()
    assert [c["value"] for c in a.cells] != [c["value"] for c in b.cells]


@pytest.mark.slow
def test_a_million_rows_by_month_and_community_area_are_noised_once_as_one_vector(monkeypatch):
    # How fast this runs is bench/bench_release.py's figure; here, what it does: every row is
    # accounted for, and the mechanism runs once over the whole key-set, not once per cell.
    noised: list[int] = []
    real_add_noise = release_module.add_noise

    def counting_add_noise(calibration, counts):
        noised.append(len(counts))
        return real_add_noise(calibration, counts)

    monkeypatch.setattr(release_module, "add_noise", counting_add_noise)
    agreement = make_area_agreement()
    rows = make_police_rows(1_000_000, persons=300_000)
    window = {"window_start": dt.date(2024, 1, 1), "window_end": dt.date(2025, 12, 31)}
    release = compute_release(agreement, "test_agg", rows, **window, seed=1)
    assert len(release.cells) == 24 * 77
    assert noised == [24 * 77]
    counts = release.row_counts
    assert counts.received == 1_000_000
    accounted = (
        counts.used
        + counts.out_of_window
        + counts.filtered_out
        + counts.out_of_key_set
        + counts.dropped_by_bounding
        + counts.merged_into_person_cells
    )
    assert accounted == counts.received


def test_an_aggregate_without_dimensions_is_a_single_cell_with_no_totals():
    from tests.publishers.factories import make_agreement_with

    agreement = make_agreement_with(dimensions=())
    rows = make_rows_for(agreement, "test_agg", 500, persons=300)
    release = compute_release(agreement, "test_agg", rows, **WINDOW)
    assert [c["key"] for c in release.cells] == [{}]
    assert release.totals == () and release.total_error_bound_95 == 0.0
