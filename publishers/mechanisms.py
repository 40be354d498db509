"""Calibrated noise with OpenDP, and the accuracy that noise allows.

Two mechanisms, chosen by the agreement's ``privacy.model``:

==========  ======================  ===============  ==================================
model       mechanism               loss             closed form (checked with ``map``)
==========  ======================  ===============  ==================================
``zcdp``    ``discrete_gaussian``   rho (ρ)          ρ = Δ2² / (2σ²)  →  σ = Δ2 / √(2ρ)
``pure_dp`` ``discrete_laplace``    epsilon (ε)      ε = Δ1 / b       →  b = Δ1 / ε
==========  ======================  ===============  ==================================

The scale is solved in closed form, then the real OpenDP measurement's privacy map is asked
what it costs; the scale is nudged up until ``meas.map(Δ) <= loss`` and the mapped value is
what the release reports as spent. Noise comes only from OpenDP's sampler (never numpy's),
on integer vectors, so there is no floating-point leakage and nothing here can be seeded: a
repeated request returns the same numbers only because the hub caches the release.

Accuracy. ``error_bound_95`` is OpenDP's ``discrete_*_scale_to_accuracy(scale, 0.05)``: with
probability at least 95%, a cell's noise is smaller in magnitude than this. It is the error
against the *bounded* count; rows dropped by contribution bounding are a separate, one-sided
(downward) bias that no interval here covers. Clamping at zero never makes a cell's error
larger (true counts are never negative), so the bound holds after post-processing too.

Totals of ``n`` cells carry the sum of ``n`` independent noise draws. :func:`sum_error_bound`
computes that sum's distribution exactly (the n-fold convolution of the noise's probability
mass function, by FFT) and reads off the same kind of 95% bound; see its docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import opendp.prelude as dp

from publishers.bounding import Sensitivity
from publishers.cells import IntArray
from publishers.errors import PublisherError

dp.enable_features("contrib")

ALPHA = 0.05
PrivacyModel = Literal["zcdp", "pure_dp"]

MECHANISM = {"zcdp": "discrete_gaussian", "pure_dp": "discrete_laplace"}
LOSS_UNIT = {"zcdp": "rho", "pure_dp": "epsilon"}

FloatArray = npt.NDArray[np.float64]


class CalibrationFailed(PublisherError):
    """OpenDP's privacy map would not come in under the requested loss (should not happen)."""


def make_measurement(model: PrivacyModel, scale: float) -> dp.Measurement:
    """The OpenDP measurement that adds integer noise of ``scale`` to a vector of counts.

    The input metric is over floats so that an irrational sensitivity (k·√P) is passed as is
    rather than rounded up to an integer; the data are 64-bit integers either way.
    """
    if model == "zcdp":
        domain = dp.vector_domain(dp.atom_domain(T=dp.i64, nan=False))
        return dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=float(scale))
    if model == "pure_dp":
        domain = dp.vector_domain(dp.atom_domain(T=dp.i64))
        return dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=float(scale))
    raise PublisherError(f"unknown privacy model {model!r}; expected zcdp or pure_dp")


def error_bound(model: PrivacyModel, scale: float, alpha: float = ALPHA) -> float:
    """OpenDP's (1 - alpha) bound on one cell's absolute noise: P(|noise| >= bound) <= alpha."""
    if model == "zcdp":
        return float(dp.discrete_gaussian_scale_to_accuracy(float(scale), float(alpha), T=float))
    bound = float(dp.discrete_laplacian_scale_to_accuracy(float(scale), float(alpha), T=float))
    if math.isfinite(bound) and bound >= 1:
        return bound
    # OpenDP's closed form underflows (-inf) at scales far below one unit; there the noise is
    # almost surely 0, and P(|noise| >= 1) = 2q / (1 + q) with q = exp(-1/scale) says so.
    q = math.exp(-1.0 / scale)
    if 2 * q / (1 + q) <= alpha:
        return 1.0
    raise CalibrationFailed(f"no accuracy for a discrete Laplace of scale {scale:g}")


@dataclass(frozen=True)
class Calibration:
    """A noise scale whose privacy loss, by OpenDP's own map, is within the requested loss."""

    privacy_model: PrivacyModel
    mechanism: str
    scale: float
    sensitivity: float
    loss_requested: float
    loss: float
    error_bound_95: float

    @property
    def loss_unit(self) -> str:
        return LOSS_UNIT[self.privacy_model]


def calibrate(model: PrivacyModel, sensitivity: Sensitivity, loss: float) -> Calibration:
    """Find the smallest (closed-form) scale whose OpenDP privacy map is at most ``loss``."""
    if not loss > 0:
        raise PublisherError(f"the privacy loss to spend must be positive, not {loss!r}")
    if model == "zcdp":
        d_in = sensitivity.l2
        scale = d_in / math.sqrt(2 * loss)
    else:
        d_in = sensitivity.l1
        scale = d_in / loss
    for _ in range(64):
        spent = float(make_measurement(model, scale).map(float(d_in)))
        if spent <= loss:
            return Calibration(
                privacy_model=model,
                mechanism=MECHANISM[model],
                scale=scale,
                sensitivity=d_in,
                loss_requested=loss,
                loss=spent,
                error_bound_95=error_bound(model, scale),
            )
        # The map rounds conservatively; a hair more noise brings it under the loss.
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
    raise CalibrationFailed(
        f"no {MECHANISM[model]} scale near {scale:g} maps sensitivity {d_in:g} within "
        f"{LOSS_UNIT[model]} = {loss:g}"
    )


def add_noise(calibration: Calibration, counts: IntArray) -> IntArray:
    """Apply the calibrated OpenDP measurement to the bounded counts; returns noisy integers.

    The measurement is rebuilt and its privacy map re-checked here, so a calibration that was
    altered after the fact cannot spend more than it reports.
    """
    meas = make_measurement(calibration.privacy_model, calibration.scale)
    spent = float(meas.map(float(calibration.sensitivity)))
    if spent > calibration.loss_requested:
        raise CalibrationFailed(
            f"the measurement would spend {spent:g}, more than the {calibration.loss_requested:g} "
            "requested; nothing was released"
        )
    noisy = meas([int(c) for c in counts])
    if len(noisy) != len(counts):  # pragma: no cover - OpenDP contract
        raise CalibrationFailed("the measurement returned a vector of the wrong length")
    return np.asarray(noisy, dtype=np.int64)


def _noise_pmf(model: PrivacyModel, scale: float, support: IntArray) -> FloatArray:
    x = support.astype(np.float64)
    log_p = -(x * x) / (2 * scale * scale) if model == "zcdp" else -np.abs(x) / scale
    p = np.exp(log_p - log_p.max())
    return np.asarray(p / p.sum(), dtype=np.float64)


def _noise_cdf(model: PrivacyModel, scale: float, x: IntArray) -> FloatArray:
    """P(noise <= x). Exact for the discrete Laplace; for the discrete Gaussian, the normal
    CDF with a continuity correction. Only used once the lattice is coarsened, which takes
    σ·(√n + 1) > ~59,000; at such scales the two differ by far less than could move a 95%
    bound by one bin."""
    xf = x.astype(np.float64)
    if model == "pure_dp":
        q = math.exp(-1.0 / scale)
        upper = 1.0 - np.power(q, np.maximum(xf, -1.0) + 1.0) / (1.0 + q)
        lower = np.power(q, np.maximum(-xf, 0.0)) / (1.0 + q)
        return np.asarray(np.where(xf >= 0, upper, lower), dtype=np.float64)
    erf = np.frompyfunc(math.erf, 1, 1)
    z = (xf + 0.5) / (scale * math.sqrt(2.0))
    return np.asarray(0.5 * (1.0 + np.asarray(erf(z), dtype=np.float64)), dtype=np.float64)


def _tail_cutoff(model: PrivacyModel, scale: float) -> int:
    """A point beyond which one draw's probability mass is below 1e-17."""
    if model == "zcdp":
        return math.ceil(scale * math.sqrt(2 * math.log(1e17))) + 1
    return math.ceil(scale * math.log(1e17)) + 1


def _binned_noise(model: PrivacyModel, scale: float, width: int) -> tuple[FloatArray, int]:
    """One draw's distribution on bins of ``width`` integers centred on multiples of it:
    bin ``j`` holds the integers within ``width/2`` of ``j·width``. Returns the masses for
    ``j = -half..half`` and ``half``."""
    t_one = _tail_cutoff(model, scale)
    if width == 1:
        support = np.arange(-t_one, t_one + 1, dtype=np.int64)
        return _noise_pmf(model, scale, support), t_one
    half = math.ceil(t_one / width)
    j = np.arange(-half, half + 1, dtype=np.int64)
    lo = np.ceil((j - 0.5) * width).astype(np.int64)
    hi = np.ceil((j + 0.5) * width).astype(np.int64) - 1
    mass = np.clip(_noise_cdf(model, scale, hi) - _noise_cdf(model, scale, lo - 1), 0.0, None)
    return np.asarray(mass / mass.sum(), dtype=np.float64), half


MAX_LATTICE = 1 << 20


def sum_error_bound(model: PrivacyModel, scale: float, n: int, alpha: float = ALPHA) -> float:
    """A (1 - alpha) bound on the absolute value of the sum of ``n`` independent noise draws.

    Method: the noise's probability mass function (discrete Gaussian ∝ exp(-x²/2σ²), discrete
    Laplace ∝ exp(-|x|/b), truncated where the remaining mass is below 1e-17) is convolved
    with itself ``n`` times by FFT, and the result is the smallest integer ``t`` with
    ``P(|sum| >= t) <= alpha`` — the same meaning as OpenDP's per-cell accuracy, which it
    reproduces for ``n = 1`` (rounded up to an integer; that case asks OpenDP directly).
    When the scale is so large that the lattice would exceed 2^20 points, values are grouped
    into bins of width ``w`` (see :func:`_binned_noise`) and ``n·w/2`` is added, which keeps
    the bound conservative. Mass that the truncation or the FFT's wrap-around moves is counted
    as if it were in the tail.
    """
    if n <= 0:
        return 0.0
    if n == 1:
        return float(math.ceil(error_bound(model, scale, alpha)))
    t_one = _tail_cutoff(model, scale)
    reach = min(n * t_one, math.ceil(t_one * (math.sqrt(n) + 1)))
    width = max(1, math.ceil((2 * reach + 1) / MAX_LATTICE))
    pmf, half = _binned_noise(model, scale, width)
    length = 1 << (2 * (math.ceil(reach / width) + half) + 1).bit_length()
    lattice = np.zeros(length, dtype=np.float64)
    lattice[np.arange(-half, half + 1) % length] = pmf
    total = np.fft.irfft(np.fft.rfft(lattice) ** n, length)
    total = np.clip(total, 0.0, None)
    k = length // 2 - 1
    at_abs = np.concatenate(([total[0]], total[1 : k + 1] + total[length - k : length][::-1]))
    lost = max(0.0, 1.0 - float(at_abs.sum()))
    tail = np.cumsum(at_abs[::-1])[::-1] + lost  # tail[t] = P(|sum| >= t)
    below = np.flatnonzero(tail <= alpha)
    t = int(below[0]) if below.size else k + 1
    return float(t * width + (n * width / 2 if width > 1 else 0))
