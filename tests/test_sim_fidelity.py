"""The analytic and detailed fidelities agree within 5 % where both apply."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from test_sim_helpers import ToyComm, toy_cluster, toy_context

from hwmodels.cluster import load_cluster
from hwmodels.commmodel import CommModel
from simulator.api import RunSettings, run_strategy, simulate, strategy_spec
from simulator.detailed import DetailedNetwork
from simulator.noise import (NoiseSpec, expected_max_normal, pacing_factors, rank_factors,
                             spread_factors)
from vocab.errors import SpecError
from vocab.strategies import Message

STRATEGIES = ["sync", "layerwise", "bucketed", "delayed", "crossiter"]
GRADS = [400_000, 0, 2_000_000, 8_000_000, 120_000, 30_000_000]
FWD = [1e-3, 2e-4, 1.5e-3, 1e-3, 5e-4, 2e-3]
BWD = [2e-3, 4e-4, 3e-3, 2e-3, 1e-3, 4e-3]


def both(ctx, strategy):
    spec = strategy_spec(strategy)
    return [run_strategy(ctx, spec, RunSettings(2, fidelity=f)).iteration_time_s
            for f in ("analytic", "detailed")]


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_toy_ring_agrees(nodes, strategy):
    cluster = toy_cluster(nodes)
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster, 2e-6))
    analytic, detailed = both(ctx, strategy)
    assert detailed == pytest.approx(analytic, rel=0.05)


@pytest.mark.parametrize("nodes,model,batch", [(1, "alexnet", 256), (2, "googlenet-ci", 32)])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_dgx1_p100_presets_agree(nodes, model, batch, strategy):
    runs = [simulate("dgx1-p100", model, batch, strategy, nodes=nodes, iterations=1,
                     fidelity=f) for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.05)
    # Exposed communication agrees to within 5 % of the iteration (tiny messages are all alpha).
    assert runs[1].exposed_comm_s == pytest.approx(runs[0].exposed_comm_s,
                                                   abs=0.05 * runs[0].iteration_time_s)


@pytest.mark.parametrize("nodes", [2, 4])
def test_small_messages_agree_across_nodes(nodes):
    # alexnet-ci layerwise at batch 8: eight messages of 7 KB to 1 MB, communication-bound.
    # Detailed once moved a step's bytes during its alpha and came out 11-14 % faster.
    runs = [simulate("dgx1-p100", "alexnet-ci", 8, "layerwise", nodes=nodes, iterations=1,
                     fidelity=f) for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.05)
    assert runs[1].exposed_comm_s == pytest.approx(runs[0].exposed_comm_s, rel=0.05)


def one_detailed_allreduce(cluster, comm, nbytes, ordering="serial"):
    env, rows = simpy.Environment(), []
    network = DetailedNetwork(env, cluster, comm, ordering, rows)
    for rank in range(cluster.total_devices):
        network.post(rank, Message(0, (0,), nbytes), 0, 0)
    env.run()
    return env.now


@pytest.mark.parametrize("ordering", ["serial", "concurrent"])
@pytest.mark.parametrize("nodes,algorithm", [(1, "auto"), (2, "auto"), (4, "auto"),
                                             (2, "ring"), (4, "hierarchical")])
def test_one_collective_is_the_closed_form(nodes, algorithm, ordering):
    # The schedule's steps (alpha, then bytes, then the reduction) on the links add up to the
    # closed form, at every size: latency-bound, mixed and bandwidth-bound. Serial runs a
    # collective alone from link loads; concurrent as transfers on the channels: both agree.
    cluster = load_cluster("dgx1-p100", nodes=nodes)
    comm = CommModel(cluster, algorithm)
    for nbytes in (8, 10_000, 1 << 20, 100 << 20):
        assert one_detailed_allreduce(cluster, comm, nbytes, ordering) == pytest.approx(
            comm.allreduce(nbytes).at(nbytes), rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["device", "host"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_dgx1_p100_four_nodes_agree(transport, strategy):
    runs = [simulate("dgx1-p100", "alexnet", 256, strategy, nodes=4, iterations=1,
                     fidelity=f, transport=transport) for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.05)


def test_detailed_moves_every_byte_of_the_schedule():
    # A ring allreduce of n bytes over p ranks sends 2 (p - 1) / p * n from every rank.
    cluster = toy_cluster(2)
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster))
    env, rows = simpy.Environment(), []
    network = DetailedNetwork(env, cluster, ctx.comm_model, "serial", rows)
    p = cluster.total_devices
    for nbytes in [g for g in GRADS if g]:
        network.post(0, Message(0, (0,), nbytes), nbytes, 0, weight=p)
    env.run()
    sent = sum(2 * (p - 1) * g for g in GRADS)
    assert network.bytes_sent == pytest.approx(sent, rel=1e-12)


def test_symmetric_ranks_are_one_class_in_the_trace():
    cluster = toy_cluster(2)
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster))
    result = run_strategy(ctx, strategy_spec("sync"), RunSettings(1, fidelity="detailed"))
    comm = result.trace[result.trace.op == "allreduce"]
    assert set(comm["rank"]) == {0}                       # no noise: one rank class
    assert (comm.groupby("iteration")["nbytes"].sum() == sum(GRADS)).all()
    noisy = run_strategy(ctx, strategy_spec("sync"), RunSettings(1, fidelity="detailed",
                                                                 noise=NoiseSpec(cv=0.1)))
    assert set(noisy.trace["rank"]) == set(range(8))      # noise: every rank its own class


# -- noise: the analytic fidelity's one rank is paced as the group of ranks advances ---------

def test_pacing_of_alternating_stragglers_by_hand():
    """Two ranks, each slow (3) every other step, fast (1) otherwise. Waiting for the slowest
    every step costs 3 a step; waiting one step later (delayed) lets the slow rank catch up
    while the other is slow: 2 a step, the mean, worked out by hand in the max-plus recurrence
    (starts (0,0) (1,3) (4,4) (5,7) (8,8)); the pace is rank 0's, 1 3 1 3."""
    factors = np.array([[1.0, 3.0], [3.0, 1.0], [1.0, 3.0], [3.0, 1.0]])
    assert pacing_factors(factors, 0)[:, 0].tolist() == [3.0, 3.0, 3.0, 3.0]
    assert pacing_factors(factors, 1)[:, 0].tolist() == [1.0, 3.0, 1.0, 3.0]


# Rank 0 the slow GPU (1.2 every step), rank 1 at 1 but slow (2) in its third step. By hand,
# lag 1 (starts S, finishes F = S + f, S' = max(F, max F one step earlier); no wait before
# step 1): S = (0, 0) (1.2, 1) (2.4, 2) (3.6, 4) (4.8, 5) (6, 6) (7.2, 7). Rank 0 never waits
# (the other is behind it only while catching up, then ahead): 1.2 a step, the group's rate
# for good. The latest start, 0 1.2 2.4 4 5 6 7.2, gains 1 1 1.2 over steps 3-5 (delayed's
# warm-up is 3): 1.067 a step, faster than the slow GPU can compute, which no group can keep.
SLOW_GPU_AND_ONE_STRAGGLE = np.array([[1.2, 1.0], [1.2, 1.0], [1.2, 2.0],
                                      [1.2, 1.0], [1.2, 1.0], [1.2, 1.0]])


def test_delayed_pace_of_a_slow_gpu_and_one_straggle_by_hand():
    paced = pacing_factors(SLOW_GPU_AND_ONE_STRAGGLE, 1)[:, 0]
    assert paced == pytest.approx([1.2] * 6, rel=1e-12)
    assert np.all(paced >= SLOW_GPU_AND_ONE_STRAGGLE[:, 0] - 1e-12)   # never beats its GPU


def test_both_fidelities_give_the_hand_worked_delayed_pace(monkeypatch):
    """The same fixed factors through both fidelities: the analytic one's representative rank
    and the detailed one's rank 0 (2 ranks; the ~2 ms collective hides in at least 16 ms of slack)
    both take 1.2 nominal steps per steady iteration, as worked out by hand above."""
    monkeypatch.setattr("simulator.api.rank_factors",
                        lambda noise, rng, iterations, ranks: SLOW_GPU_AND_ONE_STRAGGLE)
    cluster = toy_cluster(1, k=2)
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster, 2e-6))
    nominal = sum(FWD) + sum(BWD) + 1e-3
    for fidelity in ("analytic", "detailed"):
        run = run_strategy(ctx, strategy_spec("delayed"), RunSettings(
            3, fidelity=fidelity, noise=NoiseSpec(cv=0.05)))
        assert run.setup.iterations == len(SLOW_GPU_AND_ONE_STRAGGLE)
        assert run.iteration_time_s == pytest.approx(1.2 * nominal, rel=1e-9), fidelity


@pytest.mark.parametrize("lag", [1, 2])
def test_delayed_group_settles_at_the_slow_gpus_pace(lag):
    # Closed form: a group whose slowest GPU is slower on average than the others' noise can
    # drift advances, over a long run, at that GPU's own mean factor, 1 + spread E[max of N].
    ranks, spread = 64, 0.015
    factors = rank_factors(NoiseSpec(cv=0.05), np.random.default_rng(3), 2000, ranks)
    paced = pacing_factors(factors * spread_factors(spread, ranks), lag)[500:, 0].mean()
    assert paced == pytest.approx(1 + spread * expected_max_normal(ranks), rel=0.003)


def test_pacing_lies_between_the_mean_and_the_slowest():
    rng = np.random.default_rng(5)
    factors = rng.lognormal(0.0, 0.2, size=(400, 8))
    per_step_max = factors.max(axis=1).mean()
    for lag in (1, 2, 4):
        paced = pacing_factors(factors, lag).mean()
        assert factors.mean() < paced < per_step_max
    assert pacing_factors(factors, 2).mean() < pacing_factors(factors, 1).mean()
    assert pacing_factors(factors[:, :1], 3)[:, 0].tolist() == factors[:, 0].tolist()


@pytest.mark.parametrize("staleness", [1, 2])
@pytest.mark.parametrize("noise", [0.15, {"cv": 0.05, "straggler_prob": 0.02,
                                          "straggler_slowdown": 3.0}])
def test_delayed_under_noise_agrees_with_the_per_rank_detailed_fidelity(staleness, noise):
    """The detailed fidelity simulates every rank (a collective starts when the last rank
    posts it): the reference for how much noise ``delayed`` absorbs."""
    spec = strategy_spec("delayed", staleness=staleness)
    times = [simulate(cluster="dgx1-v100", model="resnet50", batch=32, strategy=spec,
                      iterations=200, seed=1, noise=noise, fidelity=f).iteration_time_s
             for f in ("analytic", "detailed")]
    assert times[0] == pytest.approx(times[1], rel=0.02)
    sync = simulate(cluster="dgx1-v100", model="resnet50", batch=32, strategy="sync",
                    iterations=200, seed=1, noise=noise).iteration_time_s
    assert times[0] < 0.95 * sync      # stragglers cost sync every step; delayed absorbs them


def test_detailed_bound_on_ranks_names_the_override(capsys):
    with pytest.raises(SpecError, match="max-ranks"):
        simulate("dgx1-v100", "resnet50-ci", 8, nodes=64, fidelity="detailed", max_ranks=256)
    run = simulate("dgx1-v100", "resnet50-ci", 8, nodes=64, iterations=1, fidelity="detailed",
                   max_ranks=512)
    assert run.ranks == 512


@pytest.mark.parametrize("nodes", [1, 2, 8])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_dgx1_v100_fidelities_agree_within_one_percent(nodes, strategy):
    # Symmetric cluster, device transport: the per-rank fidelity (link loads of every node)
    # and the representative-rank one agree; benchmarks/bench_scale.py --agree checks
    # 64..4096 ranks. (Host-staged concurrent collectives of tiny models differ by up to 9 %:
    # the analytic fidelity shares one network channel, the detailed one each bottleneck.)
    runs = [simulate("dgx1-v100", "resnet50-ci", 8, strategy, nodes=nodes, iterations=2,
                     fidelity=f) for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.01)
