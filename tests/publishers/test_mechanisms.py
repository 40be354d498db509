import math
import random

import numpy as np
import pytest

from publishers import mechanisms
from publishers.bounding import Sensitivity
from publishers.mechanisms import (
    add_noise,
    calibrate,
    error_bound,
    make_measurement,
    sum_error_bound,
)


def make_sensitivity(l1: float = 8.0, l2: float = 4 * math.sqrt(2)) -> Sensitivity:
    return Sensitivity(l1=l1, l2=l2, bound=4, periods=2, nested=True)


@pytest.mark.parametrize("model", ["zcdp", "pure_dp"])
def test_spent_loss_never_exceeds_the_requested_loss(model):
    rng = random.Random(model)
    for _ in range(300):
        k, periods = rng.randint(1, 20), rng.randint(1, 60)
        sens = make_sensitivity(float(k * periods), k * math.sqrt(periods))
        loss = rng.choice([1e-4, 0.003, 0.05, 0.1, 0.25, 0.5, 1.0, 3.7, 10.0]) * rng.random()
        if loss == 0:
            continue
        cal = calibrate(model, sens, loss)
        assert cal.loss <= loss
        assert cal.loss == pytest.approx(loss, rel=1e-9)  # and not needlessly less
        assert float(make_measurement(model, cal.scale).map(cal.sensitivity)) == cal.loss


def test_zcdp_uses_discrete_gaussian_with_the_closed_form_scale():
    cal = calibrate("zcdp", make_sensitivity(l2=5.0), 0.125)
    assert cal.mechanism == "discrete_gaussian"
    assert cal.scale == pytest.approx(5.0 / math.sqrt(2 * 0.125))
    assert cal.sensitivity == 5.0 and cal.loss_unit == "rho"


def test_pure_dp_uses_discrete_laplace_with_the_closed_form_scale():
    cal = calibrate("pure_dp", make_sensitivity(l1=8.0), 0.5)
    assert cal.mechanism == "discrete_laplace"
    assert cal.scale == pytest.approx(16.0)
    assert cal.sensitivity == 8.0 and cal.loss_unit == "epsilon"


@pytest.mark.parametrize("model", ["zcdp", "pure_dp"])
def test_the_mechanism_really_adds_noise(model):
    cal = calibrate(model, make_sensitivity(), 0.5)
    true = np.full(500, 100, dtype=np.int64)
    first, second = add_noise(cal, true), add_noise(cal, true)
    assert first.dtype == np.int64
    assert (first != true).mean() > 0.5
    assert (first != second).mean() > 0.5


@pytest.mark.parametrize(("model", "loss"), [("zcdp", 0.01), ("pure_dp", 0.2)])
def test_empirical_coverage_of_the_95_percent_error_bound_is_near_95_percent(model, loss):
    cal = calibrate(model, make_sensitivity(), loss)
    assert cal.scale > 20  # a scale where the discrete bound is not conservative by much
    true = np.arange(4000, dtype=np.int64)
    error = np.abs(add_noise(cal, true) - true)
    coverage = float((error < cal.error_bound_95).mean())
    assert 0.93 <= coverage <= 0.97
    # The check has teeth: a scale off by 2x either way would be caught.
    assert float((error < error_bound(model, cal.scale / 2)).mean()) < 0.90
    assert float((error < error_bound(model, cal.scale * 2)).mean()) > 0.99


@pytest.mark.parametrize("model", ["zcdp", "pure_dp"])
@pytest.mark.parametrize("scale", [0.4, 1.0, 3.0, 12.6, 40.0, 333.3])
def test_total_bound_for_one_cell_agrees_with_opendp(model, scale):
    assert sum_error_bound(model, scale, 1) == math.ceil(error_bound(model, scale))


@pytest.mark.parametrize("model", ["zcdp", "pure_dp"])
def test_totals_use_the_same_noise_distribution_as_opendp(model):
    for scale in (0.7, 2.5, 10.3, 123.4):
        t_one = mechanisms._tail_cutoff(model, scale)
        support = np.arange(-t_one, t_one + 1)
        pmf = mechanisms._noise_pmf(model, scale, support)
        tail = [pmf[np.abs(support) >= t].sum() for t in range(t_one + 1)]
        assert next(t for t, p in enumerate(tail) if p <= 0.05) == math.ceil(
            error_bound(model, scale)
        )


@pytest.mark.parametrize("model", ["zcdp", "pure_dp"])
def test_total_bound_for_two_cells_matches_a_direct_convolution(model):
    scale = 3.3
    t_one = mechanisms._tail_cutoff(model, scale)
    support = np.arange(-t_one, t_one + 1)
    pmf = mechanisms._noise_pmf(model, scale, support)
    pair = np.convolve(pmf, pmf)
    values = np.arange(-2 * t_one, 2 * t_one + 1)
    tail = [pair[np.abs(values) >= t].sum() for t in range(2 * t_one + 1)]
    expected = next(t for t, p in enumerate(tail) if p <= 0.05)
    assert sum_error_bound(model, scale, 2) == expected


@pytest.mark.parametrize(("model", "loss"), [("zcdp", 0.02), ("pure_dp", 0.5)])
def test_empirical_coverage_of_the_total_bound_is_near_95_percent(model, loss):
    cal = calibrate(model, make_sensitivity(), loss)
    n = 12
    noise = add_noise(cal, np.zeros(3000 * n, dtype=np.int64)).reshape(3000, n).sum(axis=1)
    bound = sum_error_bound(model, cal.scale, n)
    assert 0.93 <= float((np.abs(noise) < bound).mean()) <= 0.97


def test_total_bound_grows_like_the_square_root_of_the_cell_count_for_gaussian_noise():
    scale = 10.0
    for n in (4, 25, 77):
        assert sum_error_bound("zcdp", scale, n) == pytest.approx(
            1.96 * scale * math.sqrt(n), rel=0.03
        )


@pytest.mark.parametrize("model", ["zcdp", "pure_dp"])
def test_total_bound_stays_conservative_when_the_lattice_is_coarsened(model):
    # At a huge scale the sum's distribution is binned; the bound may only grow.
    scale, n = 2e5, 3
    sd = scale * (1.0 if model == "zcdp" else math.sqrt(2))
    normal = 1.96 * sd * math.sqrt(n)
    bound = sum_error_bound(model, scale, n)
    assert bound >= 0.99 * normal
    assert bound <= 1.1 * normal


def test_a_non_positive_loss_is_refused():
    with pytest.raises(Exception, match="positive"):
        calibrate("zcdp", make_sensitivity(), 0.0)


def test_a_calibration_altered_to_spend_more_than_requested_is_refused():
    import dataclasses

    cal = calibrate("zcdp", make_sensitivity(), 0.1)
    tampered = dataclasses.replace(cal, scale=cal.scale / 2)
    with pytest.raises(mechanisms.CalibrationFailed, match="more than"):
        add_noise(tampered, np.zeros(3, dtype=np.int64))
