"""The noisy quadratic model against its closed form, its stability bound and its own samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convergence.nqm import (
    NoisyQuadratic, Optimiser, closed_form_loss, expected_loss, sample_losses,
    stable_lr_bound, steps_to_target,
)
from vocab.errors import SpecError

NQM = NoisyQuadratic.standard(dims=50)


def test_recurrence_equals_the_closed_form_of_plain_sgd() -> None:
    opt = Optimiser(lr=0.5, batch=8)
    np.testing.assert_allclose(expected_loss(NQM, opt, 300),
                               closed_form_loss(NQM, 0.5, 8, 300), rtol=1e-10)


def test_plain_sgd_settles_at_the_noise_floor() -> None:
    opt = Optimiser(lr=1.0, batch=4)
    assert expected_loss(NQM, opt, 20_000)[-1] == pytest.approx(NQM.noise_floor(1.0, 4), rel=1e-3)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_delay_is_stable_just_below_the_classical_bound_and_not_above(d: int) -> None:
    # one coordinate, no noise: x_{t+1} = x_t - a x_{t-d}
    one = NoisyQuadratic((1.0,), (0.0,))
    bound = stable_lr_bound(1.0, d)
    below = expected_loss(one, Optimiser(lr=0.97 * bound, batch=1, staleness=d), 4000)
    above = expected_loss(one, Optimiser(lr=1.03 * bound, batch=1, staleness=d), 4000)
    assert below[-1] < 1e-3 * below[0]
    assert not above[-1] < above[0]


def test_delayed_makes_no_update_in_its_first_d_steps() -> None:
    losses = expected_loss(NQM, Optimiser(lr=0.5, batch=8, staleness=3), 10)
    assert np.all(losses[:4] == losses[0]) and losses[4] < losses[0]


@pytest.mark.parametrize("d,momentum", [(0, 0.0), (2, 0.0), (2, 0.9), (6, 0.5)])
def test_samples_match_the_recurrence_within_their_spread(d: int, momentum: float) -> None:
    opt = Optimiser(lr=0.05 if momentum else 0.3, batch=16, momentum=momentum, staleness=d)
    exact = expected_loss(NQM, opt, 200)
    runs = sample_losses(NQM, opt, 200, seeds=400, seed=1)
    mean, sem = runs.mean(axis=0), runs.std(axis=0, ddof=1) / math.sqrt(len(runs))
    assert np.all(np.abs(mean - exact) <= 4 * sem + 1e-12)


@pytest.mark.parametrize("d", [0, 2, 4, 8])
def test_sampled_steps_to_target_agree_with_the_recurrence(d: int) -> None:
    nqm = NoisyQuadratic.standard(dims=400)
    opt = Optimiser(lr=0.05, batch=256, momentum=0.5, staleness=d)
    target = 0.1 * nqm.initial_loss           # well above the noise floor (0.05 here)
    exact = steps_to_target(expected_loss(nqm, opt, 2000), target)
    sampled = steps_to_target(sample_losses(nqm, opt, 2000, seeds=40, seed=d), target)
    assert exact is not None and np.all(sampled > 0)
    half_width = 3 * sampled.std(ddof=1) / math.sqrt(len(sampled)) + 1   # +1: whole steps
    assert abs(sampled.mean() - exact) <= half_width


def test_staleness_costs_steps_and_large_delays_diverge_at_a_fixed_learning_rate() -> None:
    nqm = NoisyQuadratic.standard(dims=400)
    opt = [Optimiser(lr=0.05, batch=256, momentum=0.5, staleness=d) for d in (0, 2, 4, 8, 16)]
    target = 0.1 * nqm.initial_loss
    steps = [steps_to_target(expected_loss(nqm, o, 3000), target) for o in opt]
    assert steps[:4] == sorted(steps[:4]) and steps[3] > steps[0]
    assert steps[4] is None             # beyond the delay's stability bound at this lr


def test_bad_inputs_name_the_field() -> None:
    for kwargs, field in [({"lr": 0.0, "batch": 1}, "lr"), ({"lr": 0.1, "batch": 0}, "batch"),
                          ({"lr": 0.1, "batch": 1, "staleness": -1}, "staleness"),
                          ({"lr": 0.1, "batch": 1, "momentum": 1.0}, "momentum")]:
        with pytest.raises(SpecError, match=field):
            Optimiser(**kwargs)
