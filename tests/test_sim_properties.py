"""Invariants of the simulator, checked with hypothesis on small random workloads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sim_helpers import ToyComm, toy_cluster, toy_context

from simulator.api import RunSettings, run_strategy, strategy_spec
from simulator.noise import NoiseSpec
from vocab.strategies import make_plan, mgwfbp_messages

MONOTONE = ["sync", "layerwise", "bucketed", "delayed"]   # crossiter's priorities may reorder


@st.composite
def workloads(draw):
    layers = draw(st.integers(1, 8))
    grads = draw(st.lists(st.integers(0, 20_000_000), min_size=layers, max_size=layers))
    times = st.floats(1e-5, 5e-3)
    fwd = draw(st.lists(times, min_size=layers, max_size=layers))
    bwd = draw(st.lists(times, min_size=layers, max_size=layers))
    return grads, fwd, bwd, draw(st.floats(0.0, 2e-3))


def run(ctx, strategy, iterations=3, **kw):
    spec = strategy_spec(strategy, bucket_bytes=4_000_000)
    return run_strategy(ctx, spec, RunSettings(iterations, **kw))


@settings(max_examples=15)
@given(workloads(), st.sampled_from(MONOTONE + ["crossiter"]), st.floats(0.0, 5e-5))
def test_iteration_time_is_at_least_compute(w, strategy, alpha):
    grads, fwd, bwd, update = w
    cluster = toy_cluster(2, overhead_s=alpha)
    ctx = toy_context(grads, fwd, bwd, update, cluster, ToyComm(cluster, alpha))
    assert run(ctx, strategy).iteration_time_s >= (sum(fwd) + sum(bwd) + update) * (1 - 1e-9)


@settings(max_examples=15)
@given(workloads(), st.sampled_from(MONOTONE), st.floats(1.0, 8.0),
       st.sampled_from(["serial", "concurrent"]))
def test_more_bandwidth_is_never_slower(w, strategy, gain, ordering):
    grads, fwd, bwd, update = w
    cluster = toy_cluster(2)
    slow = toy_context(grads, fwd, bwd, update, cluster, ToyComm(cluster, 1e-5))
    fast = toy_context(grads, fwd, bwd, update, cluster, ToyComm(cluster, 1e-5, gain))
    assert run(fast, strategy, ordering=ordering).iteration_time_s <= \
        run(slow, strategy, ordering=ordering).iteration_time_s * (1 + 1e-9)


@settings(max_examples=15)
@given(workloads(), st.sampled_from(["serial", "concurrent"]))
def test_overlap_never_loses_to_sync_without_overhead(w, ordering):
    grads, fwd, bwd, update = w
    ctx = toy_context(grads, fwd, bwd, update)        # alpha = 0, no launch overhead
    sync = run(ctx, "sync", ordering=ordering).iteration_time_s
    for strategy in ("layerwise", "bucketed", "delayed"):
        assert run(ctx, strategy, ordering=ordering).iteration_time_s <= sync * (1 + 1e-9)


@settings(max_examples=15)
@given(workloads(), st.floats(0.0, 1e-3))
def test_delayed_is_never_slower_than_sync(w, alpha):
    grads, fwd, bwd, update = w
    cluster = toy_cluster(2, overhead_s=alpha)
    ctx = toy_context(grads, fwd, bwd, update, cluster, ToyComm(cluster, alpha))
    assert run(ctx, "delayed").iteration_time_s <= run(ctx, "sync").iteration_time_s * (1 + 1e-9)


@settings(max_examples=10)
@given(workloads(), st.integers(0, 2**32 - 1), st.sampled_from(MONOTONE))
def test_same_seed_gives_the_identical_trace(w, seed, strategy):
    grads, fwd, bwd, update = w
    ctx = toy_context(grads, fwd, bwd, update, toy_cluster(2))
    noise = NoiseSpec(cv=0.2, straggler_prob=0.1)
    first, second = (run(ctx, strategy, seed=seed, noise=noise) for _ in range(2))
    assert first.trace.equals(second.trace)
    other = run(ctx, strategy, seed=seed + 1, noise=noise)
    assert not other.trace[["start_s", "end_s"]].equals(first.trace[["start_s", "end_s"]])


@settings(max_examples=25)
@given(workloads(), st.sampled_from(["sync", "layerwise", "bucketed", "delayed", "crossiter",
                                     "mgwfbp"]), st.floats(0.0, 1e-2))
def test_bytes_are_conserved(w, strategy, alpha):
    grads, fwd, bwd, update = w
    if strategy == "mgwfbp":
        messages = mgwfbp_messages(grads, bwd, lambda n: (alpha, 1e-10))
    else:
        messages = make_plan(strategy_spec(strategy, bucket_bytes=1_000_000), grads).messages
    carried = sorted(layer for m in messages for layer in m.layers)
    assert carried == [i for i, g in enumerate(grads) if g > 0]   # each gradient exactly once
    assert sum(m.nbytes for m in messages) == sum(grads)


@pytest.mark.parametrize("strategy", MONOTONE + ["crossiter"])
def test_trace_carries_every_gradient_byte_each_iteration(strategy):
    grads = [1000, 0, 5_000_000, 30_000_000]
    ctx = toy_context(grads, [1e-3] * 4, [2e-3] * 4, 1e-3, toy_cluster(2))
    result = run(ctx, strategy)
    trace = result.trace
    per_iteration = trace[trace.op == "allreduce"].groupby("iteration")["nbytes"].sum()
    # every simulated iteration, warm-up included, sends every gradient once
    assert (per_iteration == sum(grads)).all()
    assert len(per_iteration) == result.setup.iterations


def test_crossiter_pays_the_update_when_no_layer_has_gradient_bytes():
    """Found by the property above: a model without gradient bytes has no message, and
    crossiter, which applies its update per message as each arrives, never updated."""
    fwd, bwd, update = [0.00390625], [0.00390625], 0.001953125
    ctx = toy_context([0], fwd, bwd, update)
    assert run(ctx, "crossiter").iteration_time_s == pytest.approx(sum(fwd) + sum(bwd) + update)
