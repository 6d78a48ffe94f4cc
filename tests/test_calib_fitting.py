"""Fits recover known parameters from synthetic measurements made by the cost models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.fitting import (FitError, fit_affine, fit_alpha_beta, fit_piecewise,
                                 interference_from_overlap, medians)
from hwmodels.collectives import cost
from hwmodels.specs import AlphaBeta

TRUE = AlphaBeta(alpha_s=2.5e-6, beta_s_per_B=1.2e-10, gamma_s_per_B=4e-11)
OVERHEAD_S = 6e-6
SIZES = [4**i for i in range(1, 14)]


def mpich_rule(op: str, nbytes: int, p: int):
    """The closed form MPICH uses: recursive doubling for short allreduce, else Rabenseifner."""
    if op == "allreduce":
        return cost.recursive_doubling_allreduce if nbytes <= 2048 else cost.rabenseifner_allreduce
    return {"reduce_scatter": cost.ring_reduce_scatter, "allgather": cost.ring_allgather}[op]


def synthetic_bench(ranks=(2, 4, 8), noise=0.0, seed=0) -> pd.DataFrame:
    """A bench table made by the closed forms plus a constant launch overhead."""
    rng = np.random.default_rng(seed)
    rows = []
    for op in ("allreduce", "reduce_scatter", "allgather"):
        for p in ranks:
            for n in SIZES:
                exact = mpich_rule(op, n, p)(n, p, TRUE) + OVERHEAD_S
                for repeat in range(5):
                    rows.append((op, p, n, repeat, exact * (1 + noise * rng.standard_normal())))
    return pd.DataFrame(rows, columns=["op", "nranks", "nbytes", "repeat", "seconds"])


def test_alpha_beta_gamma_and_overhead_are_recovered_within_2_percent():
    fit = fit_alpha_beta(medians(synthetic_bench(noise=0.01)), mpich_rule)
    assert fit.ab.alpha_s == pytest.approx(TRUE.alpha_s, rel=0.02)
    assert fit.ab.beta_s_per_B == pytest.approx(TRUE.beta_s_per_B, rel=0.02)
    assert fit.ab.gamma_s_per_B == pytest.approx(TRUE.gamma_s_per_B, rel=0.02)
    assert fit.overhead_s == pytest.approx(OVERHEAD_S, rel=0.02)
    assert fit.rank_counts == (2, 4, 8)


def test_with_one_rank_count_alpha_absorbs_the_overhead():
    fit = fit_alpha_beta(medians(synthetic_bench(ranks=(2,))), mpich_rule)
    assert fit.overhead_s == 0.0
    # The per-call constant cannot be told from alpha at one rank count; alpha takes it on,
    # and the large-message bandwidth is still right.
    assert fit.ab.alpha_s > TRUE.alpha_s
    assert fit.ab.beta_s_per_B == pytest.approx(TRUE.beta_s_per_B, rel=0.02)
    assert fit.max_rel < 0.5


def test_affine_fit_recovers_fixed_and_per_byte():
    n = np.array(SIZES, float)
    fit = fit_affine(n, 3e-6 + 2e-10 * n)
    assert fit.fixed_s == pytest.approx(3e-6, rel=1e-6)
    assert fit.per_byte_s == pytest.approx(2e-10, rel=1e-6)


def test_piecewise_fit_finds_an_eager_rendezvous_breakpoint():
    n = np.array([2.0**k for k in range(2, 27)])
    eager = 2e-6 + 1e-10 * n
    rendezvous = 8e-6 + 0.8e-10 * n       # a handshake costs more, then copies are faster
    segments = fit_piecewise(n, np.where(n <= 8192, eager, rendezvous))
    assert [(s.lo_bytes, s.hi_bytes) for s in segments] == [(4, 8192), (16384, 2**26)]
    assert segments[1].fixed_s == pytest.approx(8e-6, rel=0.02)


def test_piecewise_fit_keeps_one_segment_when_the_data_is_affine():
    n = np.array([2.0**k for k in range(2, 27)])
    assert len(fit_piecewise(n, 2e-6 + 1e-10 * n)) == 1


def test_too_few_points_is_a_clear_error():
    with pytest.raises(FitError, match="at least 2 distinct message sizes"):
        fit_affine([1024, 1024], [1e-5, 1.1e-5])
    two = medians(synthetic_bench(ranks=(2,))).head(2)
    with pytest.raises(FitError, match="needs at least"):
        fit_alpha_beta(two, mpich_rule)


def test_interference_inverts_the_slowdown_model():
    f = 0.6
    compute, comm = 10e-3, 4e-3
    overlapped = compute + comm * f / (1 + f)
    assert interference_from_overlap(compute, comm, overlapped) == pytest.approx(f)
    assert interference_from_overlap(compute, comm, compute) == 0.0
    assert interference_from_overlap(compute, comm, compute + comm) == 1.0
