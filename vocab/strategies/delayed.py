"""``delayed``: iteration t's allreduce overlaps iteration t+1; the update applies g(w[t-d]).

The communication is one fused message, as in ``sync``; what changes is when it is waited for:
``staleness`` iterations later, just before that iteration's update. Each rank keeps ``d`` extra
gradient copies in flight.
"""

from __future__ import annotations

from typing import Sequence

from vocab.strategies.plan import Plan, StrategySpec
from vocab.strategies.sync import fused_message


def plan_delayed(spec: StrategySpec, grad_bytes: Sequence[int]) -> Plan:
    """One fused message, waited ``spec.staleness`` iterations after it is posted."""
    return Plan(spec, (fused_message(grad_bytes),), wait_point="delayed",
                staleness=spec.staleness)
