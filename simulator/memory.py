"""Memory per rank by strategy: parameters, gradients, optimizer state, strategy buffers.

Counts what data-parallel SGD with momentum holds on each rank: parameters, their gradients,
one momentum copy, plus what the strategy adds: ``sync`` one flat fused buffer, ``bucketed`` and
``crossiter`` one buffer per bucket, ``layerwise`` none (each layer reduced in place),
``delayed`` ``d`` extra gradient copies in flight; plus activations when the workload lists
``activation_bytes`` per sample.
"""

from __future__ import annotations

from vocab.strategies import Plan
from vocab.workload import Workload


def strategy_buffer_bytes(plan: Plan) -> int:
    """Extra communication buffers the strategy keeps on each rank."""
    name = plan.spec.name
    if name == "layerwise":
        return 0
    if name == "delayed":
        return plan.staleness * plan.total_bytes
    return plan.total_bytes  # sync: one flat buffer; bucketed/crossiter: one per bucket


def memory_breakdown(workload: Workload, plan: Plan, batch: int) -> dict[str, int]:
    """Bytes per rank by component (params, grads, optimizer, buffers, activations)."""
    params = sum(layer.params * layer.dtype_bytes for layer in workload.layers)
    return {
        "params": params,
        "grads": workload.total_grad_bytes,
        "optimizer": params,           # SGD momentum: one copy of the parameters
        "buffers": strategy_buffer_bytes(plan),
        "activations": int(sum(layer.activation_bytes for layer in workload.layers) * batch),
    }


def memory_bytes_per_rank(workload: Workload, plan: Plan, batch: int) -> int:
    """Total bytes per rank (see :func:`memory_breakdown`)."""
    return sum(memory_breakdown(workload, plan, batch).values())
