"""Strategy planning shared by the simulator and the executor (pure Python, no clocks)."""

from __future__ import annotations

from typing import Callable, Sequence

from simulator.strategies.bucketed import plan_bucketed
from simulator.strategies.crossiter import plan_crossiter
from simulator.strategies.delayed import plan_delayed
from simulator.strategies.layerwise import plan_layerwise
from simulator.strategies.mgwfbp import mgwfbp_messages, plan_mgwfbp
from simulator.strategies.plan import (MERGE_RULES, STRATEGIES, WAIT_POINTS, Message, Plan,
                                       StrategySpec)
from simulator.strategies.sync import plan_sync

_PLANNERS: dict[str, Callable[[StrategySpec, Sequence[int]], Plan]] = {
    "sync": plan_sync,
    "layerwise": plan_layerwise,
    "bucketed": plan_bucketed,
    "delayed": plan_delayed,
    "crossiter": plan_crossiter,
}


def make_plan(spec: StrategySpec | str, grad_bytes: Sequence[int]) -> Plan:
    """Lay out ``spec`` for a model whose layers (forward order) have these gradient bytes."""
    if isinstance(spec, str):
        spec = StrategySpec(spec)
    return _PLANNERS[spec.name](spec, list(grad_bytes))


__all__ = ["MERGE_RULES", "mgwfbp_messages", "plan_mgwfbp", "STRATEGIES", "WAIT_POINTS", "Message", "Plan", "StrategySpec",
           "make_plan"]
