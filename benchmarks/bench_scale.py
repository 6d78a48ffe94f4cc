"""Analytic fidelity at scale: ResNet-50 on dgx1-v100 x 128 nodes, all five strategies."""

from __future__ import annotations

import time

from simulator.api import compare, prepare, run_strategy, RunSettings, strategy_spec

STRATEGIES = ["sync", "layerwise", "bucketed", "delayed", "crossiter"]


def bench_1024_five_strategies() -> dict:
    """Cold: loading the preset, workload, profile and cost model included."""
    start = time.perf_counter()
    comparison = compare(STRATEGIES, cluster="dgx1-v100", model="resnet50", nodes=128,
                         iterations=2)
    wall = time.perf_counter() - start
    ranks = comparison["sync"].ranks
    return {"name": f"resnet50 x {ranks} GPUs, 5 strategies, 2 iterations", "seconds": wall,
            "goal_s": 1.0}


def bench_3072_point() -> dict:
    """One strategy at 3072 GPUs (384 DGX-1 V100 nodes), inputs resolved once."""
    ctx = prepare("dgx1-v100", "resnet50", nodes=384)
    start = time.perf_counter()
    run_strategy(ctx, strategy_spec("bucketed"), RunSettings(2))
    wall = time.perf_counter() - start
    return {"name": f"resnet50 x {ctx.cluster.total_devices} GPUs, bucketed, one point",
            "seconds": wall, "goal_s": 0.3}


BENCHMARKS = [bench_1024_five_strategies, bench_3072_point]
