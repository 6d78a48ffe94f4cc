"""The spread of speed between GPUs of one model: a synchronous group waits for its slowest."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from hwmodels.cluster import load_cluster
from hwmodels.devices import get_device, list_devices, resolve_device
from simulator.api import simulate, speed_spread
from simulator.noise import expected_max_normal, spread_factors
from vocab.errors import SpecError


@pytest.mark.parametrize("n, exact", [
    (2, 1 / math.sqrt(math.pi)),             # closed form
    (3, 1.5 / math.sqrt(math.pi)),           # closed form
    (10, 1.538753),                          # tables of normal order statistics (Harter 1961)
    (100, 2.507594),
])
def test_expected_max_matches_normal_order_statistics(n, exact):
    assert expected_max_normal(n) == pytest.approx(exact, rel=0.05 if n < 10 else 0.01)


def test_expected_max_matches_sampled_maxima():
    draws = np.random.default_rng(1).standard_normal((40_000, 128))
    assert expected_max_normal(128) == pytest.approx(draws.max(axis=1).mean(), rel=0.02)
    assert expected_max_normal(1) == 0.0


def test_spread_factors_one_slow_rank_at_the_expected_maximum():
    factors = spread_factors(0.02, 32)
    assert factors.shape == (1, 32)
    assert factors.max() == pytest.approx(1 + 0.02 * expected_max_normal(32))
    assert np.count_nonzero(factors != 1.0) == 1
    assert np.all(spread_factors(0.0, 32) == 1.0)
    assert np.all(spread_factors(0.02, 1) == 1.0)     # one GPU: the median GPU


def test_gpus_carry_a_sourced_spread_and_cpus_none():
    for name in list_devices():
        device = get_device(name)
        if device.kind == "gpu":
            assert 0 < device.speed_spread < 0.1
            assert "2208.11035" in device.source
        else:
            assert device.speed_spread == 0     # the CPU calibration loop fits its own noise


def test_spread_is_overridable_and_checked():
    assert resolve_device({"name": "v100-sxm2", "speed_spread": 0}).speed_spread == 0
    with pytest.raises(SpecError, match="speed_spread"):
        resolve_device({"name": "v100-sxm2", "speed_spread": 2})


def without_spread(cluster):
    return replace(cluster, node=replace(cluster.node,
                                         device=replace(cluster.device, speed_spread=0.0)))


@pytest.mark.parametrize("strategy", ["sync", "bucketed", "delayed"])
@pytest.mark.parametrize("fidelity", ["analytic", "detailed"])
def test_spread_never_makes_a_run_faster_and_costs_the_slowest_gpu(strategy, fidelity):
    cluster = load_cluster("dgx1-v100", nodes=2)
    runs = [simulate(c, "resnet50", 64, strategy, fidelity=fidelity, iterations=3)
            for c in (cluster, without_spread(cluster))]
    slowest = 1 + cluster.device.speed_spread * expected_max_normal(16)
    assert runs[0].iteration_time_s >= runs[1].iteration_time_s
    # at most every second of the iteration stretched by the slowest GPU's factor
    assert runs[0].iteration_time_s <= runs[1].iteration_time_s * slowest * (1 + 1e-9)
    assert runs[0].specs["cluster"]["speed_spread"] == cluster.device.speed_spread


def test_one_gpu_and_fitted_clusters_pay_no_spread():
    one = load_cluster("dgx1-v100").with_devices_per_node(1)
    runs = [simulate(c, "resnet50", 64, "sync", iterations=3) for c in (one, without_spread(one))]
    assert runs[0].iteration_time_s == pytest.approx(runs[1].iteration_time_s, rel=1e-12)
    fitted = replace(load_cluster("dgx1-v100"), calibration=object())
    assert speed_spread(fitted) == 0.0
