"""Strategy planning shared by the simulator and the executor (pure Python, no clocks)."""

from __future__ import annotations

from typing import Callable, Sequence

from vocab.errors import SpecError
from vocab.registry import Registry
from vocab.strategies.bucketed import plan_bucketed
from vocab.strategies.crossiter import plan_crossiter
from vocab.strategies.cycle import cycle_messages, plan_cycle_fused
from vocab.strategies.delayed import plan_delayed
from vocab.strategies.layerwise import plan_layerwise
from vocab.strategies.mgwfbp import CostFn, mgwfbp_messages, plan_mgwfbp
from vocab.strategies.plan import (BASELINES, MERGE_RULES, STRATEGIES, WAIT_POINTS, Message,
                                   Plan, StrategySpec)
from vocab.strategies.sync import plan_sync

Planner = Callable[[StrategySpec, Sequence[int]], Plan]

#: The plan builder of each strategy; ``STRATEGIES`` is its names, in this order.
PLANNERS: Registry[Planner] = Registry("strategy", {
    "sync": plan_sync,
    "layerwise": plan_layerwise,
    "bucketed": plan_bucketed,
    "delayed": plan_delayed,
    "crossiter": plan_crossiter,
})
if PLANNERS.names() != STRATEGIES:  # plan.py cannot import the planners (they import it)
    raise ImportError(f"vocab.strategies: planners {PLANNERS.names()} != STRATEGIES {STRATEGIES}")


def make_plan(spec: StrategySpec | str, grad_bytes: Sequence[int], *,
              backward_s: Sequence[float] | None = None, cost: CostFn | None = None) -> Plan:
    """Lay out ``spec`` for a model whose layers (forward order) have these gradient bytes.

    The MG-WFBP merge rule (``merge="mgwfbp"``) decides from time, not size: it needs each
    layer's ``backward_s`` and the collective ``cost`` (nbytes -> (fixed_s, per_byte_s)).
    """
    if isinstance(spec, str):
        spec = StrategySpec(spec)
    if spec.is_baseline:
        raise SpecError("strategy", spec.name, "one of " + ", ".join(STRATEGIES) + " (a "
                        "baseline such as ddp is run by its framework and has no plan)")
    if spec.merge == "mgwfbp" and spec.name in ("bucketed", "crossiter"):
        if backward_s is None or cost is None:
            raise SpecError("merge", "mgwfbp", "backward_s and cost for the MG-WFBP rule "
                            "(or merge='size')")
        return plan_mgwfbp(spec, list(grad_bytes), list(backward_s), cost)
    return PLANNERS.lookup(spec.name)(spec, list(grad_bytes))


__all__ = ["BASELINES", "MERGE_RULES", "PLANNERS", "STRATEGIES", "WAIT_POINTS", "CostFn", "Message",
           "Plan", "Planner", "StrategySpec", "cycle_messages", "make_plan", "mgwfbp_messages",
           "plan_cycle_fused", "plan_mgwfbp"]
