"""Horovod's Tensor Fusion: every background cycle fuses the gradients that became ready since.

Horovod's background thread wakes once per cycle (``HOROVOD_CYCLE_TIME``), takes the tensors
that every rank has ready, fuses them in order into buffers of at most the fusion threshold
(``HOROVOD_FUSION_THRESHOLD``) and allreduces each buffer; the rest wait for the next cycle
(Horovod docs, ``docs/tensor-fusion.rst``: "Repeat until there are no more tensors to reduce in
this cycle"). So a message is what becomes ready within one cycle, not a bucket filled to a
size: with a 5 ms cycle over a 200 ms backward pass there are tens of messages, each paying the
collective's fixed cost, and the last is only the final cycle's gradients.

The cycle's phase against the backward pass is arbitrary in a real run (the thread's ticks are
not tied to the iteration); here the windows are counted from the start of the backward pass,
layer ``L-1`` first, as :mod:`vocab.strategies.mgwfbp` counts its ready times.
"""

from __future__ import annotations

import math
from typing import Sequence

from vocab.strategies.plan import Message, Plan, StrategySpec


def cycle_messages(grad_bytes: Sequence[int], backward_s: Sequence[float], cycle_s: float,
                   fusion_bytes: int) -> tuple[Message, ...]:
    """Messages in post order: layers ready in the same cycle, at most ``fusion_bytes`` each
    (a layer larger than that travels alone; none is split)."""
    if len(grad_bytes) != len(backward_s):
        raise ValueError("grad_bytes and backward_s must have one entry per layer")
    if not cycle_s > 0 or fusion_bytes < 1:
        raise ValueError("cycle_s must be > 0 and fusion_bytes >= 1")
    groups: list[list[int]] = []
    clock, window, filled = 0.0, None, 0
    for layer in reversed(range(len(grad_bytes))):
        clock += backward_s[layer]
        size = grad_bytes[layer]
        if size <= 0:
            continue
        # The tick at or after this layer's ready time is the cycle that sends it.
        tick = math.ceil(clock / cycle_s - 1e-9)
        if not groups or tick != window or filled + size > fusion_bytes:
            groups.append([])
            window, filled = tick, 0
        groups[-1].append(layer)
        filled += size
    return tuple(Message(k, tuple(g), sum(grad_bytes[i] for i in g))
                 for k, g in enumerate(groups))


def plan_cycle_fused(spec: StrategySpec, grad_bytes: Sequence[int],
                     backward_s: Sequence[float], cycle_s: float) -> Plan:
    """A ``bucketed`` plan whose buckets are Horovod's per-cycle fusions (the spec's
    ``bucket_bytes`` is the fusion threshold)."""
    return Plan(spec, cycle_messages(grad_bytes, backward_s, cycle_s, spec.bucket_bytes),
                wait_point="update")
