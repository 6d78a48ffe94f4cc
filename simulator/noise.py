"""Per-rank compute noise and stragglers, drawn from the run's own seeded numpy Generator.

A rank's compute in one iteration is its nominal time times a factor: lognormal with mean 1 and
coefficient of variation ``cv``, times ``straggler_slowdown`` with probability
``straggler_prob``. A synchronous collective starts when the slowest rank posts it, which is why
the analytic fidelity, for a strategy that waits for a step's gradients within that step, needs
only the maximum factor over ranks per iteration. A strategy that waits ``lag`` steps later
(``delayed``) lets ranks drift apart by up to ``lag`` steps and so absorbs part of the noise:
:func:`pacing_factors` gives the analytic fidelity's one representative rank the factors at
which rank 0 of such a group advances (the rank the detailed engine reports).

GPUs of one model also differ in speed for good (manufacturing, power management): the
device's ``speed_spread``. A synchronous group of N such GPUs runs at its slowest, so
:func:`spread_factors` makes one rank that slow for the whole run, by the expected maximum of
N normal draws, and leaves the others at the median; both fidelities then pace on it as they
do on noise, and a one-GPU baseline is the median GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from vocab.errors import SpecError


@dataclass(frozen=True)
class NoiseSpec:
    """Compute noise per rank and iteration; all zero means perfectly symmetric ranks."""

    cv: float = 0.0
    straggler_prob: float = 0.0
    straggler_slowdown: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.cv, (int, float)) or not 0 <= self.cv < 10:
            raise SpecError("noise.cv", self.cv, "a coefficient of variation in [0, 10)")
        if not isinstance(self.straggler_prob, (int, float)) or not 0 <= self.straggler_prob <= 1:
            raise SpecError("noise.straggler_prob", self.straggler_prob, "a probability in [0, 1]")
        if not isinstance(self.straggler_slowdown, (int, float)) or self.straggler_slowdown < 1:
            raise SpecError("noise.straggler_slowdown", self.straggler_slowdown, "a factor >= 1")

    @property
    def is_zero(self) -> bool:
        return self.cv == 0 and self.straggler_prob == 0


def as_noise(noise: NoiseSpec | Mapping[str, Any] | float | None) -> NoiseSpec:
    """Accept a NoiseSpec, a dict of its fields, a bare CV, or None (no noise)."""
    if noise is None:
        return NoiseSpec()
    if isinstance(noise, NoiseSpec):
        return noise
    if isinstance(noise, Mapping):
        unknown = set(noise) - {"cv", "straggler_prob", "straggler_slowdown"}
        if unknown:
            raise SpecError("noise", sorted(unknown)[0],
                            "keys cv, straggler_prob, straggler_slowdown")
        return NoiseSpec(**noise)
    if isinstance(noise, (int, float)) and not isinstance(noise, bool):
        return NoiseSpec(cv=float(noise))
    raise SpecError("noise", noise, "a NoiseSpec, a dict of its fields or a CV number")


def rank_factors(noise: NoiseSpec, rng: np.random.Generator, iterations: int,
                 ranks: int) -> np.ndarray:
    """Compute-time factors, shape ``(iterations, ranks)``; ones when there is no noise."""
    if noise.is_zero:
        return np.ones((iterations, ranks))
    factors = np.ones((iterations, ranks))
    if noise.cv > 0:
        sigma2 = np.log1p(noise.cv ** 2)
        factors = rng.lognormal(-sigma2 / 2, np.sqrt(sigma2), size=(iterations, ranks))
    if noise.straggler_prob > 0:
        slow = rng.random((iterations, ranks)) < noise.straggler_prob
        factors = np.where(slow, factors * noise.straggler_slowdown, factors)
    return factors


def pacing_factors(factors: np.ndarray, lag: int = 0) -> np.ndarray:
    """Per-iteration compute factors, shape ``(iterations, 1)``, at which rank 0 of a group of
    ranks with per-rank ``factors`` (shape ``(iterations, ranks)``) advances when each rank,
    after its step ``t``, waits for every rank to have finished step ``t - lag``.

    This is the max-plus recurrence of the ranks' step starts ``S``: finish ``F = S + f[t]``,
    then ``S' = max(F, max over ranks of F[t - lag])``; the factors returned are the increments
    of rank 0's start, so they sum to its elapsed time. ``lag=0`` (every rank waits for the
    slowest each step) gives the maximum over ranks, every rank starting each step together;
    a longer lag lets a rank that was slow in one step catch up in the next, and the average
    comes down towards the mean factor. Communication time is not part of the recurrence: the
    engine adds it.

    Rank 0, not the latest start, because it is the rank the detailed engine reports and the
    one :func:`spread_factors` makes the slowest GPU. Over a long run every rank advances at
    the group's rate (none gets more than ``lag`` steps ahead), and that rate is at least the
    slowest GPU's own mean factor, which its start shows from the first step. The latest start
    does not: in the first steps, before the faster ranks have drifted ahead, a noisy rank
    is often behind the slow GPU, and the slow GPU then overtakes it; over a short window the
    latest start gains less than the group's rate (below the slow GPU's own pace: 0.6 % at
    64 ranks over 10 steps after a warm-up of 3, CV 0.05, spread 1.5 %).
    """
    iterations, ranks = factors.shape
    if ranks == 1 or lag <= 0:   # every rank starts each step when the slowest has finished
        return factors.max(axis=1, keepdims=True)
    start = np.zeros(ranks)
    all_done = np.empty(iterations)           # when every rank had finished step t
    first = np.empty(iterations + 1)          # rank 0's starts
    first[0] = 0.0
    for t in range(iterations):
        finish = start + factors[t]
        all_done[t] = finish.max()
        start = np.maximum(finish, all_done[t - lag]) if t >= lag else finish
        first[t + 1] = start[0]
    return np.diff(first)[:, None]


def expected_max_normal(n: int) -> float:
    """Expected largest of ``n`` standard normal draws, by Blom's (1958) order-statistic
    approximation ``inv_cdf((n - 0.375) / (n + 0.25))``: 0 for one draw, 1.05 for 4 (exact
    1.03), 2.58 for 128 (exact 2.60); within 4 % of the exact value at 2 draws, 1 % from 8."""
    if n < 1:
        raise ValueError(f"n={n}: expected at least one draw")
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def spread_factors(spread: float, ranks: int) -> np.ndarray:
    """Static per-rank compute factors, shape ``(1, ranks)``, for GPUs whose speeds spread
    with coefficient of variation ``spread``: the first rank at ``1 + spread * E[max of ranks
    normals]``, the others 1. Only the slowest sets a synchronous group's pace, and equal
    factors keep the detailed engine's rank classes few; it is rank 0 because the engine
    reports rank 0's iterations, so even a run too short for a ``delayed`` group to fall back
    to the slow rank's pace reports that pace, and :func:`pacing_factors` paces the analytic
    fidelity's one rank as rank 0."""
    factors = np.ones((1, ranks))
    if spread > 0 and ranks > 1:
        factors[0, 0] = 1.0 + spread * expected_max_normal(ranks)
    return factors
