"""The simulator at scale: analytic (all five strategies at 1,024 GPUs) and detailed (ResNet-50
batch 64 ``bucketed`` on ``dgx1-v100``, 2 iterations, at 1,024 / 4,096 / 16,384 ranks, each
with its peak memory), and where both apply the two fidelities' agreement.

``python -m benchmarks.bench_scale`` prints the table; ``--agree`` also checks detailed vs
analytic for every strategy at 64..4,096 ranks (within 1 %), ``--noise`` the same under
compute noise against the seeds' spread.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from dataclasses import replace

import numpy as np

from hwmodels.hetero import Degraded, Variation

from simulator.api import compare, prepare, run_strategy, RunSettings, strategy_spec
from simulator.noise import NoiseSpec

STRATEGIES = ["sync", "layerwise", "bucketed", "delayed", "crossiter"]
DETAILED_GOALS = {1024: 4.0, 4096: 15.0, 16384: 120.0}


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


def detailed_point(ranks: int, strategy: str = "bucketed") -> tuple[float, float]:
    """(wall seconds, peak MiB under tracemalloc) of one detailed run, cold context
    included (preset, roofline profile, cost model)."""
    settings = RunSettings(2, fidelity="detailed", max_ranks=ranks)
    start = time.perf_counter()
    ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=ranks // 8)
    run_strategy(ctx, strategy_spec(strategy), settings)
    wall = time.perf_counter() - start
    tracemalloc.start()
    ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=ranks // 8)
    run_strategy(ctx, strategy_spec(strategy), settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return wall, peak / 2**20


def bench_detailed_scale() -> list[dict]:
    rows = []
    for ranks, goal in DETAILED_GOALS.items():
        wall, peak = detailed_point(ranks)
        rows.append({"name": f"detailed bucketed resnet50 b64, {ranks} ranks "
                             f"(peak {peak:.0f} MiB)", "seconds": wall, "goal_s": goal,
                     "peak_MiB": peak})
    return rows


def agreement(ranks_list=(64, 256, 1024, 4096), noise: float | None = None,
              seeds: int = 1) -> list[tuple]:
    """(ranks, strategy, analytic s, detailed s, relative difference, seeds' spread)."""
    out = []
    for ranks in ranks_list:
        ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=ranks // 8)
        for strategy in STRATEGIES:
            runs = {f: [run_strategy(ctx, strategy_spec(strategy), RunSettings(
                        10 if noise else 2, fidelity=f, seed=s,
                        noise=NoiseSpec(cv=noise or 0.0))).iteration_time_s
                        for s in range(seeds)] for f in ("analytic", "detailed")}
            a, d = np.mean(runs["analytic"]), np.mean(runs["detailed"])
            spread = float(np.std(runs["analytic"] + runs["detailed"])) / a
            out.append((ranks, strategy, a, d, d / a - 1, spread))
    return out


def bench_heterogeneous_16384() -> dict:
    """16,384 ranks with one slow node, a degraded NIC and leaf switches of radix 32 under
    2:1 oversubscription, spread placement: heterogeneity adds rank classes and a second
    (nominal) link map, no per-rank events."""
    ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=2048)
    variation = Variation(slow_nodes={7: 1.3}, degraded=(Degraded(3, 0.5, nic="nic1"),),
                          leaf_radix=32)
    cluster = replace(ctx.cluster, oversubscription=2.0, variation=variation)
    ctx = replace(ctx, cluster=cluster)
    start = time.perf_counter()
    run_strategy(ctx, strategy_spec("bucketed"), RunSettings(2, fidelity="detailed",
                                                              placement="spread"))
    return {"name": "detailed bucketed, 16384 ranks, slow node + bad NIC + leaves",
            "seconds": time.perf_counter() - start, "goal_s": None}


def bench_noisy_1024() -> dict:
    """Per-rank noise makes every rank its own rank class: the worst case for events."""
    ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=128)
    start = time.perf_counter()
    run_strategy(ctx, strategy_spec("bucketed"), RunSettings(2, fidelity="detailed",
                                                              noise=NoiseSpec(cv=0.05)))
    return {"name": "detailed bucketed, 1024 ranks, per-rank noise (1024 classes)",
            "seconds": time.perf_counter() - start, "goal_s": None}


BENCHMARKS = [bench_1024_five_strategies, bench_3072_point, bench_detailed_scale,
              bench_heterogeneous_16384, bench_noisy_1024]


if __name__ == "__main__":
    for bench in BENCHMARKS:
        result = bench()
        for row in result if isinstance(result, list) else [result]:
            print(f"{row['name']:<62} {row['seconds']:8.3f} s  goal {row['goal_s']}")
    if "--agree" in sys.argv:
        for ranks, strategy, a, d, rel, _ in agreement():
            print(f"agree {ranks:>5} {strategy:<10} analytic {a * 1e3:8.3f} ms  detailed "
                  f"{d * 1e3:8.3f} ms  {rel:+.3%}")
    if "--noise" in sys.argv:
        for ranks, strategy, a, d, rel, spread in agreement((64, 512), 0.05, 3):
            print(f"noise {ranks:>5} {strategy:<10} analytic {a * 1e3:8.3f} ms  detailed "
                  f"{d * 1e3:8.3f} ms  {rel:+.3%} (seeds' spread {spread:.3%})")
