"""MG-WFBP's merge rule (Shi, Chu, Li, IEEE INFOCOM 2019): merge gradients when it saves time.

Walking the backward pass (layer ``L-1`` first), the gradient message being built would start
communicating at ``start = max(its last layer ready, previous message done)``. If the next layer
with a gradient becomes ready less than ``alpha`` (the collective's fixed startup cost) after
that start, merging it costs a wait shorter than the startup latency it saves, so the two are
sent together; otherwise the message is closed and its communication time charged. The rule
needs the backward times and the cost model, which is why it is not part of :func:`make_plan`.
"""

from __future__ import annotations

from typing import Callable, Sequence

from vocab.strategies.plan import Message, Plan, StrategySpec

CostFn = Callable[[int], tuple[float, float]]   # nbytes -> (fixed_s, per_byte_s)


def mgwfbp_messages(grad_bytes: Sequence[int], backward_s: Sequence[float],
                    cost: CostFn) -> tuple[Message, ...]:
    """Messages in post order by the merge rule (layers in ready order, none split)."""
    if len(grad_bytes) != len(backward_s):
        raise ValueError("grad_bytes and backward_s must have one entry per layer")
    ready, clock = {}, 0.0
    for layer in reversed(range(len(grad_bytes))):
        clock += backward_s[layer]
        ready[layer] = clock
    order = [layer for layer in reversed(range(len(grad_bytes))) if grad_bytes[layer] > 0]
    groups: list[list[int]] = []
    current: list[int] = []
    comm_free = 0.0
    for position, layer in enumerate(order):
        current.append(layer)
        nbytes = sum(grad_bytes[i] for i in current)
        fixed_s, per_byte_s = cost(nbytes)
        start = max(ready[layer], comm_free)
        following = order[position + 1] if position + 1 < len(order) else None
        if following is not None and ready[following] - start < fixed_s:
            continue   # merge: waiting for the next gradient is cheaper than a new startup
        comm_free = start + fixed_s + per_byte_s * nbytes
        groups.append(current)
        current = []
    return tuple(Message(k, tuple(g), sum(grad_bytes[i] for i in g))
                 for k, g in enumerate(groups))


def plan_mgwfbp(spec: StrategySpec, grad_bytes: Sequence[int], backward_s: Sequence[float],
                cost: CostFn) -> Plan:
    """A ``bucketed`` (or ``crossiter``) plan whose buckets follow the MG-WFBP merge rule."""
    wait_point = "next_forward" if spec.name == "crossiter" else "update"
    return Plan(spec, mgwfbp_messages(grad_bytes, backward_s, cost), wait_point=wait_point)
