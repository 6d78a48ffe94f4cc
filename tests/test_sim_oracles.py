"""Oracle tests: with no noise, contention or overhead the simulator matches closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from test_sim_helpers import ToyComm, toy_cluster, toy_context

from simulator.api import RunSettings, run_strategy, strategy_spec
from simulator.noise import NoiseSpec

GRADS = [40_000, 0, 2_000_000, 8_000_000, 120_000, 30_000_000, 1_000]
FWD = [1e-3, 2e-4, 1.5e-3, 1e-3, 5e-4, 2e-3, 1e-4]
BWD = [2e-3, 4e-4, 3e-3, 2e-3, 1e-3, 4e-3, 2e-4]
UPDATE = 1.5e-3
SETTINGS = RunSettings(iterations=3)


def run(strategy, ctx=None, **knobs):
    ctx = ctx or toy_context(GRADS, FWD, BWD, UPDATE)
    return run_strategy(ctx, strategy_spec(strategy, **knobs), SETTINGS)


def allreduce_s(ctx, nbytes):
    fixed, per_byte = ctx.cost(nbytes)
    return fixed + per_byte * nbytes


def test_sync_is_compute_plus_one_allreduce_plus_update():
    ctx = toy_context(GRADS, FWD, BWD, UPDATE)
    expected = sum(FWD) + sum(BWD) + allreduce_s(ctx, sum(GRADS)) + UPDATE
    assert run("sync", ctx).iteration_time_s == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("scale_bw", [0.05, 1.0, 20.0])   # comm-bound, balanced, compute-bound
def test_delayed_steady_state_is_max_of_compute_and_allreduce(scale_bw):
    cluster = toy_cluster()
    ctx = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster, 1e-5, scale_bw))
    expected = max(sum(FWD) + sum(BWD) + UPDATE, allreduce_s(ctx, sum(GRADS)))
    assert run("delayed", ctx).iteration_time_s == pytest.approx(expected, rel=1e-9)


def list_schedule(ctx, messages):
    """c_i = max(ready_i, c_{i-1}) + T(n_i): serialized messages in post order."""
    ready, clock = {}, sum(FWD)
    for layer in reversed(range(len(BWD))):
        clock += BWD[layer]
        ready[layer] = clock
    done = 0.0
    for layers, nbytes in messages:
        done = max(ready[min(layers)], done) + allreduce_s(ctx, nbytes)
    return max(done, sum(FWD) + sum(BWD)) + UPDATE


@pytest.mark.parametrize("alpha_s", [0.0, 2e-4])
def test_layerwise_follows_the_list_schedule_recurrence(alpha_s):
    cluster = toy_cluster()
    ctx = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster, alpha_s, 0.5))
    per_layer = [((i,), g) for i, g in reversed(list(enumerate(GRADS))) if g > 0]
    assert run("layerwise", ctx).iteration_time_s == pytest.approx(
        list_schedule(ctx, per_layer), rel=1e-9)


def test_bucketed_follows_the_list_schedule_of_its_buckets():
    ctx = toy_context(GRADS, FWD, BWD, UPDATE)
    result = run("bucketed", ctx, bucket_bytes=10_000_000, first_bucket_bytes=1_000_000)
    buckets = [(m.layers, m.nbytes) for m in result.setup.plan.messages]
    assert len(buckets) > 1
    assert result.iteration_time_s == pytest.approx(list_schedule(ctx, buckets), rel=1e-9)


def test_concurrent_collectives_share_bandwidth():
    # Two equal messages posted together under processor sharing end together, at 2x one.
    ctx = toy_context([4_000_000, 4_000_000], [0.0, 0.0], [0.0, 0.0], 0.0)
    res = run_strategy(ctx, strategy_spec("layerwise"), RunSettings(1, ordering="concurrent"))
    comm = res.trace[(res.trace.op == "allreduce") & (res.trace.iteration == 1)]
    one = allreduce_s(ctx, 4_000_000)
    assert comm["end_s"].tolist() == pytest.approx([comm.start_s.min() + 2 * one] * 2)


def test_crossiter_waits_only_for_the_layers_the_next_forward_needs():
    ctx = toy_context(GRADS, FWD, BWD, UPDATE)
    cross = run("crossiter", ctx, bucket_bytes=1, first_bucket_bytes=1)
    lw = run("layerwise", ctx)
    assert cross.iteration_time_s <= lw.iteration_time_s + 1e-12
    assert cross.iteration_time_s >= sum(FWD) + sum(BWD) + UPDATE - 1e-12


def test_mgwfbp_merges_when_startup_costs_dominate_and_splits_when_free():
    cluster = toy_cluster()
    costly = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster, 1e-2))
    free = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster, 0.0))
    assert len(run("bucketed", costly, merge="mgwfbp").setup.plan.messages) == 1
    assert len(run("bucketed", free, merge="mgwfbp").setup.plan.messages) == 6
    for ctx in (costly, free):
        merged = run("bucketed", ctx, merge="mgwfbp").iteration_time_s
        assert merged <= run("layerwise", ctx).iteration_time_s + 1e-12


def test_interference_slows_compute_only_while_a_collective_is_active():
    cluster = toy_cluster(interference=0.5)
    ctx = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster))
    plain = toy_context(GRADS, FWD, BWD, UPDATE)
    assert run("sync", ctx).iteration_time_s == pytest.approx(run("sync", plain).iteration_time_s)
    assert run("layerwise", ctx).iteration_time_s > run("layerwise", plain).iteration_time_s


@pytest.mark.parametrize("f", [0.3, 0.76])
def test_interference_charges_the_time_bytes_move_beside_compute(f):
    """``delayed`` overlaps the whole allreduce with the next iteration's compute. Compute runs
    at 1 / (1 + f) while the bytes move, and the overlapped bytes (on a GPU) at 1 / (1 + f) of
    their rate, so ``M`` seconds of bytes take ``M (1 + f)`` and cost compute ``M f``: the
    iteration is ``C + f M`` (calibration's slowdown model, ``C + M' f / (1 + f)`` for the
    ``M' = M (1 + f)`` seconds they overlap). The latency (``fixed``) moves no bytes."""
    cluster = toy_cluster(interference=f)
    ctx = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster, 1e-4, 4.0))
    compute = sum(FWD) + sum(BWD) + UPDATE
    fixed, per_byte = ctx.cost(sum(GRADS))
    moving = per_byte * sum(GRADS)
    assert fixed > 0 and fixed + moving * (1 + f) < compute    # all of it overlapped
    assert run("delayed", ctx).iteration_time_s == pytest.approx(compute + f * moving,
                                                                 rel=2e-3)


def test_interference_spares_compute_beside_a_collectives_latency():
    """A collective that is all latency (its bytes take no time) slows no compute."""
    cluster = toy_cluster(interference=0.76)
    ctx = toy_context(GRADS, FWD, BWD, UPDATE, cluster, ToyComm(cluster, 5e-4, 1e6))
    compute = sum(FWD) + sum(BWD) + UPDATE
    fixed, per_byte = ctx.cost(sum(GRADS))
    assert 0.1 * compute < fixed < compute and per_byte * sum(GRADS) < 1e-6
    assert run("delayed", ctx).iteration_time_s == pytest.approx(compute, rel=1e-6)


def test_noise_makes_the_slowest_rank_pace_the_collective():
    ctx = toy_context(GRADS, FWD, BWD, UPDATE)
    quiet = run("sync", ctx).iteration_time_s
    noisy = run_strategy(ctx, strategy_spec("sync"),
                         RunSettings(5, noise=NoiseSpec(straggler_prob=1.0,
                                                        straggler_slowdown=2.0)))
    compute = sum(FWD) + sum(BWD) + UPDATE
    assert noisy.iteration_time_s == pytest.approx(quiet + compute, rel=1e-9)
    assert np.isclose(noisy.speedup_vs_single * noisy.iteration_time_s,
                      4 * compute)


def test_memory_per_rank_counts_strategy_buffers():
    ctx = toy_context(GRADS, FWD, BWD, UPDATE)
    total = sum(GRADS)
    base = 3 * total            # params + grads + momentum (fp32, grad bytes == param bytes)
    assert run("layerwise", ctx).memory_bytes_per_rank == base
    assert run("sync", ctx).memory_bytes_per_rank == base + total
    assert run("bucketed", ctx).memory_bytes_per_rank == base + total
    assert run("delayed", ctx, staleness=2).memory_bytes_per_rank == base + 2 * total
