"""How simulation time grows with ranks, layers and buckets (analytic and detailed).

``python -m benchmarks.bench_growth [--plot growth.png]`` prints the table and, with
``--plot``, draws wall seconds against each variable (``simulator.plots.plot_scaling``).
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from hwmodels.specs import Cluster
from simulator.api import RunSettings, prepare, run_strategy, strategy_spec
from vocab.profile import ComputeProfile
from vocab.workload import Layer, Workload

MiB = 1 << 20


def timed(ctx, strategy: str, fidelity: str = "analytic", bucket_bytes: int | None = None,
          ranks: int | None = None) -> float:
    start = time.perf_counter()
    spec = strategy_spec(strategy, bucket_bytes=bucket_bytes)
    run_strategy(ctx, spec, RunSettings(2, fidelity=fidelity, max_ranks=ranks))
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
                     "seconds": timed(ctx, "layerwise"), "goal_s": None,
                     "variable": "ranks", "value": 8 * nodes, "fidelity": "analytic"})
    for nodes in (8, 32, 128, 512, 2048):
        ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=nodes)
        rows.append({"name": f"detailed bucketed resnet50, {8 * nodes} ranks",
                     "seconds": timed(ctx, "bucketed", "detailed", ranks=8 * nodes),
                     "goal_s": 10.0 if nodes == 8 else None,
                     "variable": "ranks", "value": 8 * nodes, "fidelity": "detailed"})
    return rows


def bench_layers() -> list[dict]:
    rows = []
    cluster: Cluster = prepare("dgx1-v100", "resnet50", nodes=128).cluster
    for layers in (50, 200, 800):
        work, prof = synthetic(layers)
        ctx = prepare(cluster, work, 32, profile=prof)
        for fidelity in ("analytic", "detailed"):
            rows.append({"name": f"{fidelity} layerwise, {layers} layers, 1024 ranks",
                         "seconds": timed(ctx, "layerwise", fidelity), "goal_s": None,
                         "variable": "layers", "value": layers, "fidelity": fidelity})
    return rows


def bench_buckets() -> list[dict]:
    rows = []
    ctx = prepare("dgx1-v100", "resnet50", batch=64, nodes=128)
    for mib in (1, 4, 25, 100):
        for fidelity in ("analytic", "detailed"):
            rows.append({"name": f"{fidelity} bucketed {mib} MiB buckets, 1024 ranks",
                         "seconds": timed(ctx, "bucketed", fidelity, mib * MiB),
                         "goal_s": None, "variable": "bucket MiB", "value": mib,
                         "fidelity": fidelity})
    return rows


BENCHMARKS = [bench_ranks, bench_layers, bench_buckets]


def plot(rows: list[dict], path: str) -> None:
    """Wall seconds against ranks, layers and bucket size, one panel each."""
    from simulator.plots import plot_scaling
    table = pd.DataFrame(rows)
    for variable, group in table.groupby("variable"):
        fig = plot_scaling(group, x="value", y="seconds", hue="fidelity", ideal=False,
                           title=f"simulation wall seconds vs {variable}")
        fig.axes[0].set_xlabel(variable)
        fig.axes[0].set_yscale("log")
        fig.savefig(path.replace(".png", f"-{variable.split()[0]}.png"), dpi=100)


if __name__ == "__main__":
    rows = [row for bench in BENCHMARKS for row in bench()]
    for row in rows:
        print(f"{row['name']:<55} {row['seconds']:8.3f} s")
    if "--plot" in sys.argv:
        plot(rows, sys.argv[sys.argv.index("--plot") + 1])
