"""Synthetic measurements made by the models themselves: the oracle for calibration's tests.

:func:`write_bench` writes a bench-net directory whose times come from the closed forms of a
known cluster (plus optional noise); :func:`write_run` writes an executor-style run directory
(``run.json`` of source ``exec`` with the executor's specs, + a schema-v1 trace) whose trace is
the simulator's. A fit of such inputs must give back the parameters they were made with.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from calibration.benchnet import TABLE_FILE
from calibration.fitting import AlgorithmFor
from hwmodels.cluster import load_cluster
from hwmodels.specs import AlphaBeta, Cluster
from simulator.api import simulate
from vocab.profile import ComputeProfile
from vocab.runrecord import make_run_record, write_run_record
from vocab.strategies import StrategySpec
from vocab.timing import warmup_iterations
from vocab.trace import write_trace

HOST = "synthetic-host"


#: The intra-node link of :func:`local_machine` unless another is given.
TRUE_LINK = AlphaBeta(3e-6, 1e-10, 3e-11)


def local_machine(link: AlphaBeta = TRUE_LINK, collective_overhead_s: float = 8e-6) -> Cluster:
    """The "true" machine of a synthetic calibration: the ``local-cpu`` preset with a known
    intra-node link and per-call overhead, device transport, no interference."""
    return replace(load_cluster("local-cpu"), transport="device", fitted={"intra": link},
                   collective_overhead_s=collective_overhead_s, comm_interference=0.0)


def write_bench(out_dir: str | Path, cluster: Cluster, algorithm_for: AlgorithmFor,
                ranks: Sequence[int] = (2, 4), sizes: Sequence[int] | None = None,
                cores: int = 64, noise: float = 0.0, seed: int = 0,
                compute_s: float = 1e-4) -> Path:
    """A bench-net directory: collective times from ``cluster.fitted['intra']`` closed forms."""
    rng = np.random.default_rng(seed)
    sizes = sizes or [4**k for k in range(1, 14)]
    ab, overhead = cluster.fitted["intra"], cluster.collective_overhead_s
    rows = []
    for p in ranks:
        for repeat in range(3):
            rows.append(("compute", p, 0, repeat, compute_s * max(1.0, p / cores)))
        for op in ("allreduce", "iallreduce", "reduce_scatter", "allgather"):
            for n in sizes:
                fn = algorithm_for("allreduce" if op == "iallreduce" else op, n, p)
                exact = fn(n, p, ab) + overhead
                rows += [(op, p, n, r, exact * (1 + noise * rng.standard_normal()))
                         for r in range(3)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["op", "nranks", "nbytes", "repeat", "seconds"]).to_csv(
        out / TABLE_FILE, index=False)
    record = make_run_record("bench-net", out.name, {"nranks": max(ranks), "cores": cores},
                             seed=seed, host=HOST)
    write_run_record(record, out)
    return out


def write_run(out_dir: str | Path, cluster: Cluster, model: str, strategy: StrategySpec,
              batch: int, profile: ComputeProfile, iterations: int = 6,
              local: bool = False) -> Path:
    """An executor-style run directory whose trace is the simulator's own; ``local``: a
    ``--local`` run (its collectives cost nothing: no exchange)."""
    if local:
        cluster = replace(cluster, fitted={**cluster.fitted, "intra": AlphaBeta(0.0, 0.0, 0.0)},
                          collective_overhead_s=0.0)
    result = simulate(cluster=cluster, model=model, batch=batch, strategy=strategy,
                      profile=profile, iterations=iterations, warmup=0, ordering="concurrent")
    frame = result.trace.copy()
    frame["source"] = "exec"
    out = Path(out_dir)
    write_trace(frame, out)
    workload = result.specs["workload"]
    specs = {"cluster": {"name": HOST, "host": HOST, "ranks": cluster.total_devices,
                         "device": "cpu", "threads_per_rank": None},
             "workload": workload, "batch": batch, "strategy": asdict(strategy),
             "run": {"steps": iterations, "seed": 0, "data": "synthetic", "local": local,
                     "warmup": warmup_iterations(strategy)}}
    write_run_record(make_run_record("exec", result.run_id, specs, seed=0, host=HOST,
                                     status="ok"), out)
    return out
