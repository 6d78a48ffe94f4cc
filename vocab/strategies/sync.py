"""``sync``: one fused allreduce of every gradient after the whole backward pass."""

from __future__ import annotations

from typing import Sequence

from vocab.strategies.plan import Message, Plan, StrategySpec


def plan_sync(spec: StrategySpec, grad_bytes: Sequence[int]) -> Plan:
    """One message holding every layer with a gradient, ready when layer 0's backward ends."""
    return Plan(spec, (fused_message(grad_bytes),), wait_point="update")


def fused_message(grad_bytes: Sequence[int]) -> Message:
    """All layers with gradients, in backward (ready) order, as message 0."""
    layers = tuple(i for i in reversed(range(len(grad_bytes))) if grad_bytes[i] > 0)
    return Message(0, layers, sum(grad_bytes[i] for i in layers))
