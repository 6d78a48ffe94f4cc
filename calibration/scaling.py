"""Rank counts on one machine: what sharing cores costs collectives and compute, fitted.

On a machine with ``c`` cores, ``p > c`` ranks share cores: compute slows (the benchmark's
``compute`` op measures by how much), and so do collectives, whose copies and reductions are
CPU work too. :func:`comm_scales` fits, per benchmarked rank count, the scales of the collective
cost's fixed and per-byte parts against the closed form; :func:`fit_compute` fits the compute
scale that carries a one-rank profile to a p-rank run. Both end up in the machine's
:class:`~hwmodels.calibration.Calibration`, which applies them wherever a prediction is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from calibration.fitting import medians, relative_nnls
from calibration.runs import MeasuredRun
from hwmodels.calibration import CommScale, ProfileKey
from hwmodels.commmodel import CommModel
from hwmodels.specs import Cluster
from simulator.api import simulate
from vocab.profile import ComputeProfile


def comm_scales(table: pd.DataFrame, cluster: Cluster, cores: int,
                max_bytes: int) -> dict[int, CommScale]:
    """Per benchmarked rank count: measured (non-blocking) allreduce vs the fitted closed form.

    ``measured ~ fixed * model_fixed + per_byte * model_per_byte * n`` (relative least
    squares); both scales are about 1 where the closed form holds, and grow when ranks share
    cores.
    """
    out: dict[int, CommScale] = {}
    # The executor's collectives are non-blocking, waited by polling: the benchmark's
    # ``iallreduce`` measures that path (older tables without it: the blocking one).
    op = "iallreduce" if "iallreduce" in set(table["op"]) else "allreduce"
    for p in sorted(int(p) for p in table["nranks"].unique()):
        points = medians(table[(table["nranks"] == p) & (table["op"] == op)
                               & table["nbytes"].between(1024, max_bytes)])
        if len(points) < 3:
            continue
        model = CommModel(cluster.with_devices_per_node(p))
        n = points["nbytes"].to_numpy(float)
        costs = [model.allreduce(x) for x in n]
        design = np.column_stack([[c.fixed_s for c in costs], [c.per_byte_s * x
                                                               for c, x in zip(costs, n)]])
        x, residuals = relative_nnls(design, points["seconds"].to_numpy(float))
        out[p] = CommScale(float(x[0]) or 1.0, float(x[1]) or 1.0,
                           float(np.sqrt(np.mean(residuals**2))), bool(p > cores))
    return out


@dataclass(frozen=True)
class ComputeFit:
    """Compute scales per rank count (one-rank profile time x scale = compute time in a
    p-rank run; it carries core sharing and the executor's per-step costs), the benchmark's
    compute kernel per rank count, and per fit run what it says (for the provenance)."""

    by_ranks: dict[int, float]
    bench_compute_s: dict[int, float] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)


def bench_compute(table: pd.DataFrame) -> dict[int, float]:
    """Median seconds of the benchmark's compute kernel per rank count."""
    rows = table[table["op"] == "compute"]
    return {int(p): float(s) for p, s in rows.groupby("nranks")["seconds"].median().items()}


def simulate_run(run: MeasuredRun, machine: Cluster, profile: ComputeProfile | None = None,
                 noise_cv: float | None = None, seed: int = 0) -> float:
    """The simulator's iteration time for ``run``'s setup on the calibrated ``machine`` at the
    run's rank count: exactly what ``gradsync simulate`` predicts for it, unless ``profile``
    (and its ``noise_cv``) replace the calibrated compute."""
    result = simulate(cluster=machine, model=run.model, batch=run.batch, strategy=run.strategy,
                      devices_per_node=run.ranks, profile=profile, noise=noise_cv or None,
                      seed=seed)
    return float(result.iteration_time_s)


def solve_compute_scale(run: MeasuredRun, machine: Cluster, profile: ComputeProfile,
                        noise_cv: float = 0.0, rounds: int = 8, tol: float = 1e-3) -> float:
    """The factor on ``profile`` with which the simulator reproduces ``run``'s measured
    iteration time on ``machine`` (fixed-point on ``measured / predicted``; the predicted
    time grows with the factor, about in proportion)."""
    scale = 1.0
    for _ in range(rounds):
        predicted = simulate_run(run, machine, profile.scaled(scale), noise_cv)
        ratio = run.iteration_s / predicted
        scale *= ratio
        if abs(ratio - 1.0) < tol:
            break
    return scale


def fit_compute(fit_runs: list[MeasuredRun], profiles: Mapping[ProfileKey, ComputeProfile],
                machine: Cluster, table: pd.DataFrame,
                noise: Mapping[ProfileKey, float]) -> ComputeFit:
    """What the fit runs say about compute, on the calibrated ``machine`` (links and collective
    scales fitted; no compute scales yet).

    With a profile measured at a fit run's own rank count (a ``--local`` run: that rank
    count's compute, the executor's hooks, data and update included), compute is the profile
    as it is: the fit run is then an in-sample check, and its error is recorded
    (``matched_error_pct``). Fitting a scale there was tried and transferred worse:
    what a ``sync`` run costs beyond its ``--local`` twin is 1-16 % from launch to launch and
    from model to model, and one model's median moved every other model's prediction by up to
    6 %. Against the one-rank profile, a compute scale per rank count (it carries what sharing
    the cores costs compute and the executor's per-step costs; medians over runs), for rank
    counts without a profile of their own. Also recorded per run: what the measured
    allreduces took beyond the fitted closed form (rank skew and polling)."""
    scales: dict[int, list[float]] = {}
    notes = []
    for run in fit_runs:
        if run.allreduce.empty:
            continue
        model = CommModel(machine.with_devices_per_node(run.ranks))
        predicted = np.array([model.allreduce(n).at(n) for n in run.allreduce["nbytes"]])
        note = {"run": run.path, "ranks": run.ranks, "collective_extra_s": float(
            np.median(run.allreduce["seconds"].to_numpy() - predicted))}
        own = ProfileKey(run.model, run.batch, run.ranks)
        if own in profiles and run.ranks > 1:
            simulated = simulate_run(run, machine, profiles[own], noise.get(own, 0.0))
            note["matched_error_pct"] = 100.0 * (simulated / run.iteration_s - 1.0)
        alone = ProfileKey(run.model, run.batch, 1)
        if alone in profiles:
            scale = solve_compute_scale(run, machine, profiles[alone], noise.get(alone, 0.0))
            scales.setdefault(run.ranks, []).append(scale)
            note["compute_scale"] = scale
        notes.append(note)
    return ComputeFit({p: float(np.median(v)) for p, v in scales.items()}, bench_compute(table),
                      notes)
