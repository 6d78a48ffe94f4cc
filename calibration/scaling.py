"""Rank counts on one machine: oversubscribed cores, and how a fitted cluster adapts to them.

On a machine with ``c`` cores, ``p > c`` ranks share cores: compute slows (the benchmark's
``compute`` op measures by how much), and so do collectives, whose copies and reductions are
CPU work too. A fitted cluster describes the machine at the rank count it was fitted at; its
``provenance.scaling`` records, per benchmarked rank count, the compute scale and the scales of
the collective cost's fixed and per-byte parts against the closed form. :func:`cluster_for`
turns the fitted cluster and a rank count into the cluster the simulator runs, plus the factor
to apply to compute profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd

from calibration.fitting import relative_nnls, medians
from calibration.runs import MeasuredRun
from hwmodels.cluster import cluster_from_dict, cluster_to_spec
from hwmodels.commmodel import CommModel
from hwmodels.specs import AlphaBeta, Cluster
from simulator.api import simulate
from vocab.profile import ComputeProfile


def with_ranks(cluster: Cluster, ranks: int) -> Cluster:
    """The same one-node CPU cluster with ``ranks`` ranks (its node rebuilt by the topology)."""
    if cluster.devices_per_node == ranks:
        return cluster
    spec = cluster_to_spec(cluster)
    options = dict(spec["node"].get("options") or {})
    options["ranks"] = int(ranks)
    spec["node"] = {**spec["node"], "options": options}
    return cluster_from_dict(spec)


def comm_scales(table: pd.DataFrame, cluster: Cluster, cores: int,
                max_bytes: int) -> dict[int, dict[str, float]]:
    """Per benchmarked rank count: measured (non-blocking) allreduce vs the fitted closed form.

    ``measured ~ fixed * model_fixed + per_byte * model_per_byte * n`` (relative least
    squares); both scales are about 1 where the closed form holds, and grow when ranks share
    cores.
    """
    out: dict[int, dict[str, float]] = {}
    # The executor's collectives are non-blocking, waited by polling: the benchmark's
    # ``iallreduce`` measures that path (older tables without it: the blocking one).
    op = "iallreduce" if "iallreduce" in set(table["op"]) else "allreduce"
    for p in sorted(int(p) for p in table["nranks"].unique()):
        points = medians(table[(table["nranks"] == p) & (table["op"] == op)
                               & table["nbytes"].between(1024, max_bytes)])
        if len(points) < 3:
            continue
        model = CommModel(with_ranks(cluster, p))
        n = points["nbytes"].to_numpy(float)
        costs = [model.allreduce(x) for x in n]
        design = np.column_stack([[c.fixed_s for c in costs], [c.per_byte_s * x
                                                               for c, x in zip(costs, n)]])
        x, residuals = relative_nnls(design, points["seconds"].to_numpy(float))
        out[p] = {"fixed": float(x[0]) or 1.0, "per_byte": float(x[1]) or 1.0,
                  "rms_rel": float(np.sqrt(np.mean(residuals**2))),
                  "oversubscribed": bool(p > cores)}
    return out


@dataclass(frozen=True)
class ComputeFit:
    """Compute scales per rank count and the executor's own per-collective cost.

    ``by_ranks[p]``: one-rank profile time x scale = compute time in a p-rank run (it carries
    core sharing). A profile measured with p ranks sharing the machine (``--local`` runs) is
    used as it is (see :func:`fit_compute`)."""

    by_ranks: dict[int, float]
    exec_overhead_s: float                     # per collective, beyond the MPI benchmark
    mpi_overhead_s: float
    bench_compute_s: dict[int, float] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"by_ranks": {int(k): v for k, v in self.by_ranks.items()},
                "exec_overhead_s": self.exec_overhead_s, "mpi_overhead_s": self.mpi_overhead_s,
                "bench_compute_s": {int(k): v for k, v in self.bench_compute_s.items()},
                "runs": self.runs}


def bench_compute(table: pd.DataFrame) -> dict[int, float]:
    """Median seconds of the benchmark's compute kernel per rank count."""
    rows = table[table["op"] == "compute"]
    return {int(p): float(s) for p, s in rows.groupby("nranks")["seconds"].median().items()}


#: Simulated iterations: enough that the median over them is steady with compute noise on.
SIM_ITERATIONS = 40
#: MPI progresses every posted non-blocking collective at once; they share the link.
ORDERING = "concurrent"


def simulate_run(run: MeasuredRun, cluster: Cluster, profile: ComputeProfile,
                 seed: int = 0, noise_cv: float = 0.0) -> float:
    """The simulator's median iteration time for ``run``'s setup on ``cluster`` with
    ``profile`` (already scaled to the run's rank count) and per-rank compute noise of
    coefficient of variation ``noise_cv`` (the slowest rank paces each collective)."""
    result = simulate(cluster=cluster, model=run.model, batch=run.batch,
                      strategy=run.strategy, profile=profile, iterations=SIM_ITERATIONS,
                      seed=seed, ordering=ORDERING, noise=noise_cv or None)
    return float(result.iteration_time_s)


def solve_compute_scale(run: MeasuredRun, cluster: Cluster, profile: ComputeProfile,
                        noise_cv: float = 0.0, rounds: int = 8, tol: float = 1e-3) -> float:
    """The factor on ``profile`` with which the simulator reproduces ``run``'s measured
    iteration time on ``cluster`` (fixed-point on ``measured / predicted``; the predicted
    time grows with the factor, about in proportion)."""
    scale = 1.0
    for _ in range(rounds):
        predicted = simulate_run(run, cluster, profile.scaled(scale), noise_cv=noise_cv)
        ratio = run.iteration_s / predicted
        scale *= ratio
        if abs(ratio - 1.0) < tol:
            break
    return scale


def fit_compute(fit_runs: list[MeasuredRun], profiles: Mapping[tuple[str, int, int],
                                                               ComputeProfile],
                cluster: Cluster, table: pd.DataFrame, mpi_overhead_s: float,
                noise: Mapping[str, float] | None = None) -> ComputeFit:
    """What the fit runs say about compute.

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
        here, _ = cluster_for(cluster, run.ranks)
        model = CommModel(here)
        predicted = np.array([model.allreduce(n).at(n) for n in run.allreduce["nbytes"]])
        note = {"run": run.path, "ranks": run.ranks, "collective_extra_s": float(
            np.median(run.allreduce["seconds"].to_numpy() - predicted))}
        own = profiles.get((run.model, run.batch, run.ranks))
        if own is not None and run.ranks > 1:
            cv = (noise or {}).get(noise_key(run.model, run.batch, run.ranks), 0.0)
            simulated = simulate_run(run, here, own, noise_cv=cv)
            note["matched_error_pct"] = 100.0 * (simulated / run.iteration_s - 1.0)
        alone = profiles.get((run.model, run.batch, 1))
        if alone is not None:
            cv = (noise or {}).get(noise_key(run.model, run.batch), 0.0)
            scale = solve_compute_scale(run, here, alone, cv)
            scales.setdefault(run.ranks, []).append(scale)
            note["compute_scale"] = scale
        notes.append(note)
    return ComputeFit({p: float(np.median(v)) for p, v in scales.items()}, 0.0,
                      mpi_overhead_s, bench_compute(table), notes)


def noise_key(model: str, batch: int, occupancy: int = 1) -> str:
    """The key of a profile's compute noise in ``provenance.compute_noise``."""
    return f"{model}-b{batch}" + ("" if occupancy == 1 else f"-n{occupancy}")


def _lookup(mapping: Mapping, ranks: int):
    """``mapping[ranks]`` whether YAML gave int or str keys."""
    return mapping.get(ranks, mapping.get(str(ranks)))


def compute_scale(scaling: Mapping, ranks: int) -> float:
    """Profile -> p-rank-run factor: fitted at p, else carried from a fitted p by the
    benchmark's core-sharing ratio, else by ``p / cores`` beyond the cores."""
    compute = scaling.get("compute", {})
    fitted = {int(k): float(v) for k, v in (compute.get("by_ranks") or {}).items()}
    if ranks in fitted:
        return fitted[ranks]
    ref = min(fitted, key=lambda p: abs(p - ranks)) if fitted else None
    base = fitted[ref] if ref else 1.0
    bench = {int(k): float(v) for k, v in (compute.get("bench_compute_s") or {}).items()}
    if ref in bench and ranks in bench:
        return base * bench[ranks] / bench[ref]
    cores = int(scaling.get("cores", 1 << 30))
    return base * max(1.0, ranks / cores) / max(1.0, (ref or ranks) / cores)


def profile_for(fitted: Cluster, profiles: Mapping[tuple[str, int, int], ComputeProfile],
                model: str, batch: int, ranks: int) -> tuple[ComputeProfile, float] | None:
    """The profile the simulator uses for ``model`` at ``batch`` on ``ranks`` ranks of the
    fitted machine, scaled, and its per-rank compute noise: the profile measured with
    ``ranks`` ranks sharing the machine when there is one, as it is, else the one-rank profile
    carried by :func:`compute_scale`; None if neither."""
    noise = fitted.provenance.get("compute_noise") or {}
    own = profiles.get((model, batch, ranks))
    if own is not None and ranks > 1:
        return own, float(noise.get(noise_key(model, batch, ranks), 0.0))
    alone = profiles.get((model, batch, 1))
    if alone is None:
        return None
    _, factor = cluster_for(fitted, ranks)
    return alone.scaled(factor), float(noise.get(noise_key(model, batch), 0.0))


def cluster_for(fitted: Cluster, ranks: int) -> tuple[Cluster, float]:
    """The cluster the simulator runs for ``ranks`` ranks on the fitted machine, and the
    factor for profiles: closed-form costs scaled as benchmarked at that rank count."""
    scaling = fitted.provenance.get("scaling") or {}
    factor = compute_scale(scaling, ranks)
    ratio = factor / compute_scale(scaling, fitted.total_devices) if scaling else 1.0
    cluster = with_ranks(fitted, ranks)
    scales = _lookup(scaling.get("comm") or {}, ranks) or {}
    a, b = float(scales.get("fixed", 1.0)), float(scales.get("per_byte", 1.0))
    intra = cluster.fitted.get("intra")
    if intra is None:
        return cluster, factor
    compute = scaling.get("compute", {})
    mpi = float(compute.get("mpi_overhead_s", cluster.collective_overhead_s))
    executor = float(compute.get("exec_overhead_s", 0.0))
    fitted_links = {**cluster.fitted, "intra": AlphaBeta(intra.alpha_s * a,
                                                         intra.beta_s_per_B * b,
                                                         intra.gamma_s_per_B * b)}
    # The executor's per-collective work is Python on the CPU: it slows as compute does.
    return replace(cluster, fitted=fitted_links,
                   collective_overhead_s=mpi * a + executor * ratio), factor
