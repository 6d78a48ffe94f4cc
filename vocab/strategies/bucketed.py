"""``bucketed``: gradients packed in ready order into buckets, each allreduced when full.

The DDP-like rule fills buckets up to ``bucket_bytes`` (the first up to ``first_bucket_bytes``,
so communication starts early). A layer larger than a bucket gets a bucket of its own; a layer
is never split, as in DDP.
"""

from __future__ import annotations

from typing import Sequence

from vocab.strategies.plan import Message, Plan, StrategySpec


def plan_bucketed(spec: StrategySpec, grad_bytes: Sequence[int]) -> Plan:
    """Buckets by the size rule; see the module docstring."""
    return Plan(spec, size_buckets(grad_bytes, spec.bucket_bytes, spec.first_bucket_bytes),
                wait_point="update")


def size_buckets(grad_bytes: Sequence[int], bucket_bytes: int,
                 first_bucket_bytes: int) -> tuple[Message, ...]:
    """Greedy packing in backward order: close a bucket when the next layer would overflow it."""
    buckets: list[list[int]] = [[]]
    filled = 0
    for layer in reversed(range(len(grad_bytes))):
        size = grad_bytes[layer]
        if size <= 0:
            continue
        cap = first_bucket_bytes if len(buckets) == 1 else bucket_bytes
        if buckets[-1] and filled + size > cap:
            buckets.append([])
            filled = 0
        buckets[-1].append(layer)
        filled += size
    return tuple(Message(k, tuple(layers), sum(grad_bytes[i] for i in layers))
                 for k, layers in enumerate(b for b in buckets if b))
