"""How simulation time grows with ranks (analytic and detailed) and with layers."""

from __future__ import annotations

import time

from hwmodels.specs import Cluster
from simulator.api import RunSettings, prepare, run_strategy, strategy_spec
from vocab.profile import ComputeProfile
from vocab.workload import Layer, Workload


def timed(ctx, strategy: str, fidelity: str = "analytic") -> float:
    start = time.perf_counter()
    run_strategy(ctx, strategy_spec(strategy), RunSettings(2, fidelity=fidelity))
    return time.perf_counter() - start


def synthetic(layers: int) -> tuple[Workload, ComputeProfile]:
    """``layers`` equal layers of 1 M parameters, 1 ms forward and 2 ms backward each."""
    work = Workload(f"synthetic-{layers}", tuple(Layer(f"l{i}", 1_000_000)
                                               for i in range(layers)))
    prof = ComputeProfile("v100-sxm2", work.name, 32, (1e-3,) * layers, (2e-3,) * layers, 1e-3,
                          "synthetic")
    return work, prof


def bench_ranks() -> list[dict]:
    rows = []
    for nodes in (1, 16, 128, 512):
        ctx = prepare("dgx1-v100", "resnet50", nodes=nodes)
        rows.append({"name": f"analytic layerwise resnet50, {8 * nodes} ranks",
                     "seconds": timed(ctx, "layerwise"), "goal_s": None})
    for nodes in (1, 2, 4, 8):
        ctx = prepare("dgx1-v100", "resnet50", nodes=nodes)
        rows.append({"name": f"detailed bucketed resnet50, {8 * nodes} ranks",
                     "seconds": timed(ctx, "bucketed", "detailed"),
                     "goal_s": 10.0 if nodes == 8 else None})
    return rows


def bench_layers() -> list[dict]:
    rows = []
    cluster: Cluster = prepare("dgx1-v100", "resnet50", nodes=16).cluster
    for layers in (50, 200, 800):
        work, prof = synthetic(layers)
        ctx = prepare(cluster, work, 32, profile=prof)
        rows.append({"name": f"analytic layerwise, {layers} layers, 128 ranks",
                     "seconds": timed(ctx, "layerwise"), "goal_s": None})
    return rows


BENCHMARKS = [bench_ranks, bench_layers]
