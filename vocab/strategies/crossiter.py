"""``crossiter``: per-layer messages whose update waits only until the next forward needs it.

Messages are laid out as ``bucketed`` does (a bucket of 1 byte gives one per layer); the update
of layer ``l`` happens when its message completes, and the next iteration's forward of layer
``l`` waits for that update. Front layers are posted last in backward but needed first in
forward, so their messages get priority.
"""

from __future__ import annotations

from typing import Sequence

from vocab.strategies.bucketed import size_buckets
from vocab.strategies.plan import Plan, StrategySpec


def plan_crossiter(spec: StrategySpec, grad_bytes: Sequence[int]) -> Plan:
    """Buckets by the size rule, each layer's update gated by the next forward pass."""
    return Plan(spec, size_buckets(grad_bytes, spec.bucket_bytes, spec.first_bucket_bytes),
                wait_point="next_forward")
