"""``layerwise``: one non-blocking allreduce per layer as soon as its gradient is ready."""

from __future__ import annotations

from typing import Sequence

from vocab.strategies.plan import Message, Plan, StrategySpec


def plan_layerwise(spec: StrategySpec, grad_bytes: Sequence[int]) -> Plan:
    """One message per layer with a gradient, posted in backward order (last layer first)."""
    messages = per_layer_messages(grad_bytes)
    return Plan(spec, messages, wait_point="update")


def per_layer_messages(grad_bytes: Sequence[int]) -> tuple[Message, ...]:
    ready = [i for i in reversed(range(len(grad_bytes))) if grad_bytes[i] > 0]
    return tuple(Message(k, (layer,), grad_bytes[layer]) for k, layer in enumerate(ready))
