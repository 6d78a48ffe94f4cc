"""Horovod's Tensor Fusion: a message is what became ready in one background cycle.

The rule (Horovod docs, ``docs/tensor-fusion.rst``): each cycle, the ready tensors are fused in
order into buffers of at most the fusion threshold, until none is left in that cycle. Expected
groups below are worked by hand from the ready times, not read from the code's output.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.stacks import Stack, load_stack, save_stack
from simulator.api import simulate
from vocab.errors import SpecError
from vocab.strategies import cycle_messages
from vocab.strategies.bucketed import size_buckets
from vocab.workload import load_workload

MS = 1e-3


def layers_of(messages) -> list[list[int]]:
    return [list(m.layers) for m in messages]


def test_layers_ready_in_one_cycle_travel_together() -> None:
    # Forward order 0..4; backward runs 4..0, one ms each: ready at 1, 2, 3, 4, 5 ms.
    # A 2 ms cycle sends at ticks 2, 4, 6 ms: {4, 3}, {2 (no gradient), 1}, {0}.
    grads, backward = [10, 20, 0, 30, 40], [MS] * 5
    assert layers_of(cycle_messages(grads, backward, 2 * MS, 1000)) == [[4, 3], [1], [0]]


def test_the_fusion_threshold_splits_a_cycle() -> None:
    grads, backward = [10, 20, 0, 30, 40], [MS] * 5
    # 40 + 30 > 50: layer 3 opens a second buffer in the same cycle.
    assert layers_of(cycle_messages(grads, backward, 2 * MS, 50)) == [[4], [3], [1], [0]]
    # A layer above the threshold still goes, alone (a tensor is never split).
    assert layers_of(cycle_messages([100, 1], [MS, MS], 10 * MS, 50)) == [[1], [0]]


def test_a_cycle_longer_than_the_backward_pass_is_one_message() -> None:
    grads = [5, 6, 7]
    messages = cycle_messages(grads, [MS] * 3, 1.0, 1 << 30)
    assert layers_of(messages) == [[2, 1, 0]] and messages[0].nbytes == sum(grads)


@settings(max_examples=60, deadline=None)
@given(grads=st.lists(st.integers(0, 10**6), min_size=1, max_size=40),
       data=st.data(), cycle_ms=st.floats(0.1, 20), multiple=st.integers(1, 5))
def test_every_gradient_once_in_ready_order_and_coarser_cycles_fuse_more(
        grads: list[int], data: st.DataObject, cycle_ms: float, multiple: int) -> None:
    backward = data.draw(st.lists(st.floats(1e-5, 5e-3), min_size=len(grads),
                                  max_size=len(grads)))
    fine = cycle_messages(grads, backward, cycle_ms * MS, 1 << 40)
    order = [layer for m in fine for layer in m.layers]
    assert order == [i for i in reversed(range(len(grads))) if grads[i] > 0]
    assert sum(m.nbytes for m in fine) == sum(grads)
    # A cycle k times as long has windows that are unions of the short ones.
    coarse = cycle_messages(grads, backward, multiple * cycle_ms * MS, 1 << 40)
    assert len(coarse) <= len(fine)


def test_bad_cycle_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        cycle_messages([1, 2], [MS], MS, 10)
    with pytest.raises(ValueError):
        cycle_messages([1], [MS], 0.0, 10)


def test_horovod_presets_fuse_by_cycle_and_others_by_size() -> None:
    for name in ("horovod-0.19", "horovod-0.22"):
        stack = load_stack(name)
        assert stack.fuses_by_cycle and "tensor-fusion" in stack.sources["fusion"]
    for name in ("ddp", "tf2-collective", "nccl2.8"):
        assert not load_stack(name).fuses_by_cycle


def test_fusion_is_checked_and_round_trips(tmp_path) -> None:
    with pytest.raises(SpecError) as info:
        Stack("x", "nccl2.8", fusion="cycle")            # no cycle to fuse by
    assert info.value.field == "stack.fusion"
    with pytest.raises(SpecError) as info:
        Stack("x", "nccl2.8", cycle_s=1e-3, fusion="time")
    assert info.value.field == "stack.fusion"
    mine = replace(load_stack("horovod-0.22"), name="mine")
    assert load_stack(save_stack(mine, tmp_path / "mine.yaml")) == mine


def allreduces(result) -> int:
    trace = result.trace
    last = trace[(trace.op == "allreduce") & (trace.iteration == trace.iteration.max())
                 & (trace["rank"] == 0)]
    return len(last)


def test_a_horovod_run_sends_one_message_per_cycle_fusion() -> None:
    result = simulate("dgx1-v100", "resnet50", 64, "bucketed", stack="horovod-0.19", nodes=2)
    grads = [layer.grad_bytes for layer in load_workload("resnet50").layers]
    spec = result.specs["strategy"]
    buckets = size_buckets(grads, spec["bucket_bytes"], spec["first_bucket_bytes"])
    # ~170 ms of backward in 5 ms cycles: tens of messages, not the 64 MB buckets' three.
    assert allreduces(result) > 5 * len(buckets)
    ddp = simulate("dgx1-v100", "resnet50", 64, "bucketed", stack="ddp", nodes=2)
    ddp_spec = ddp.specs["strategy"]
    assert allreduces(ddp) == len(size_buckets(grads, ddp_spec["bucket_bytes"],
                                               ddp_spec["first_bucket_bytes"]))


@pytest.mark.parametrize("stack", ["horovod-0.19", "horovod-0.22"])
def test_cycle_fused_runs_agree_between_fidelities(stack: str) -> None:
    runs = [simulate("dgx1-p100", "googlenet-ci", 32, "bucketed", nodes=2, iterations=1,
                     stack=stack, fidelity=f) for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.05)
