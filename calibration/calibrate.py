"""The whole fit: microbenchmarks + measured runs -> a cluster file with provenance, and profiles.

Inputs are directories: ``bench-net`` outputs, executor runs on one rank (compute profiles: the
executor's own per-layer times with no communication) and executor runs on several ranks (the
fit runs, normally one model's ``sync`` runs). What is fitted, and from what:

- ``fitted.intra`` alpha/beta/gamma: the closed form of the allreduce algorithm MPICH's
  thresholds pick (and ring reduce-scatter/allgather), jointly over the benchmarked rank counts
  that do not oversubscribe the cores, in the message range the runs use;
- ``collective_overhead_s``: MPI's per-call constant (separable from alpha given two rank
  counts);
- ``comm_interference``: from the OSU-style overlap test (compute between ``Test`` calls);
- compute noise: the step-to-step variation of each profile run (the simulator's per-rank
  noise; the slowest rank paces every collective);
- compute: per-layer profiles (one-rank runs, and ``--local`` runs that measure compute with
  as many ranks on the machine as a real run, used as they are); for the one-rank profiles a
  compute scale per rank count (fit runs at the rank counts they have; other counts via the
  benchmark's core-sharing ratio); scales of collective costs for oversubscribed rank counts.

All of it is one :class:`~hwmodels.calibration.Calibration`, written as the ``calibration:``
section of the fitted cluster file by :func:`hwmodels.cluster.save_cluster` (device transport:
the "device" of a CPU rank is its process, and the fitted ``intra`` link is what its
collectives use). ``provenance`` records the inputs and residuals; nothing reads it back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from calibration import collfit, scaling
from calibration.collbench import is_collective_log, read_collective_logs
from calibration.benchnet import MIN_BENCH_SIZES, bench_cores, is_bench_dir, read_bench
from calibration.fitting import CostFn, FitError, fit_alpha_beta, interference_from_overlap, medians
from calibration.profiles import profile_from_runs
from calibration.runs import MeasuredRun, check_one_machine, machine_of, read_record, read_runs
from hwmodels.cluster import load_cluster, save_cluster
from hwmodels.collectives import cost
from hwmodels.collectives.tuner import choose_allreduce
from hwmodels.calibration import Calibration, Compute, ProfileKey
from hwmodels.specs import AlphaBeta, Cluster
from vocab.files import check_path
from vocab.profile import ComputeProfile

BASE_CLUSTER = "local-cpu"
#: The executor polls its collectives with MPI_Testsome from every gradient hook and forward
#: pre-hook, and waits by polling: MPI progress mode "test" (simulator.progress).
PROGRESS = "test"
#: Messages below this are latency-bound on every machine; the fit range starts here.
MIN_FIT_BYTES = 1024
DEFAULT_MAX_FIT_BYTES = 16 << 20


def mpich_algorithm(op: str, nbytes: int, p: int) -> CostFn:
    """The closed form MPICH uses for ``op`` on ``p`` ranks of one node."""
    if op == "allreduce":
        name = choose_allreduce(nbytes, p, p, 1, library="mpich")
        return {"ring": cost.ring_allreduce, "recursive_doubling":
                cost.recursive_doubling_allreduce, "rabenseifner": cost.rabenseifner_allreduce,
                "tree": cost.tree_allreduce}.get(name, cost.rabenseifner_allreduce)
    return cost.ring_reduce_scatter if op == "reduce_scatter" else cost.ring_allgather


def split_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[MeasuredRun]]:
    """Bench directories and executor runs (read), checked to come from one machine."""
    benches = [Path(p) for p in paths if is_bench_dir(p)]
    runs = read_runs([p for p in paths if not is_bench_dir(p)])
    check_one_machine([(str(b), machine_of(read_record(b))) for b in benches]
                      + [(r.path, r.machine) for r in runs])
    return benches, runs


def fit_links(table: pd.DataFrame, cores: int, max_bytes: int) -> tuple[AlphaBeta, float, dict]:
    """alpha/beta/gamma and MPI's per-call overhead from the rank counts that fit the cores."""
    usable = sorted(p for p in table["nranks"].unique() if p <= cores) or \
        [int(table["nranks"].min())]
    points = medians(table[table["op"].isin(["allreduce", "reduce_scatter", "allgather"])
                           & table["nranks"].isin(usable)
                           & table["nbytes"].between(MIN_FIT_BYTES, max_bytes)])
    fit = fit_alpha_beta(points, mpich_algorithm)
    return fit.ab, fit.overhead_s, fit.to_dict()


def fit_interference(table: pd.DataFrame, p: int, max_bytes: int) -> float:
    """Median over message sizes of the overlap test's slowdown ``f`` at ``p`` ranks."""
    rows = medians(table[(table["nranks"] == p) & (table["nbytes"] <= max_bytes)])
    wide = rows.pivot_table(index="nbytes", columns="op", values="seconds")
    needed = {"overlap_compute", "iallreduce", "iallreduce_overlap"}
    if not needed <= set(wide.columns):
        return 0.0
    wide = wide.dropna(subset=list(needed))
    values = [interference_from_overlap(r.overlap_compute, r.iallreduce, r.iallreduce_overlap)
              for r in wide.itertuples()]
    return float(np.median(values)) if values else 0.0


def base_profiles(runs: list[MeasuredRun],
                  given: Sequence[ComputeProfile] = ()) -> dict[ProfileKey, ComputeProfile]:
    """Profiles by (model, batch, occupancy): files given (measured on one rank), else profile
    runs (one rank, or ``--local`` runs at a rank count)."""
    found = {ProfileKey(p.model, p.batch, 1): p for p in given}
    for key, repeats in _profile_runs(runs).items():
        if key not in found:
            found[key] = profile_from_runs(repeats)
    return found


def _profile_runs(runs: list[MeasuredRun]) -> dict[ProfileKey, list[MeasuredRun]]:
    """Profile runs grouped by (model, batch, occupancy): repeats of one setup together."""
    groups: dict[ProfileKey, list[MeasuredRun]] = {}
    for run in runs:
        if run.is_profile:
            groups.setdefault(ProfileKey(run.model, run.batch, run.ranks), []).append(run)
    return groups


def compute_noise(runs: list[MeasuredRun]) -> dict[ProfileKey, float]:
    """Per profile (model, batch, occupancy): how much a step's compute varies from step to
    step, the robust CV of its profile run's step times. Ranks of a synchronous run wait for the
    slowest of them every step, so this variation costs more the more ranks there are; the
    simulator's per-rank compute noise reproduces that."""
    return {key: float(np.median([r.step_cv for r in repeats]))
            for key, repeats in _profile_runs(runs).items()}


def calibrate(paths: Sequence[str | Path], out: str | Path, *,
              profiles: Sequence[ComputeProfile] = (), base: str | Path = BASE_CLUSTER,
              overwrite: bool = False, osu_ranks: int | None = None,
              osu_nodes: int | None = None) -> Cluster:
    """Fit everything from ``paths`` and write the fitted cluster file ``out``; returns the
    calibrated cluster (as loaded back from ``out``).

    nccl-tests and OSU logs (files, or folders of them) among ``paths`` fit the collective
    model (:mod:`calibration.collfit`) on ``base``'s hardware; alone they make the whole fit
    (a GPU cluster), beside bench-net and run directories they join it. ``osu_ranks`` and
    ``osu_nodes`` give OSU files their layout (or a sidecar ``FILE.meta.json``)."""
    paths = [check_path(p, "a bench-net or run directory, or a collective log", "any")
             for p in paths]
    logs, paths = _collective_logs(paths)
    collectives = (collfit.fit_collectives(read_collective_logs(
        logs, osu_ranks=osu_ranks, osu_nodes=osu_nodes), load_cluster(base))
        if logs else None)
    if collectives is not None and not paths:
        return _save_collectives_only(collectives, base, out, overwrite)
    cluster = _calibrate_runs(paths, out, profiles=profiles, base=base)
    if collectives is not None:
        cluster = collfit.attach(cluster, collectives)
        cluster = replace(cluster, provenance={**cluster.provenance,
                                               "collectives": dict(collectives.provenance)})
    out = Path(out)
    save_cluster(cluster, out, overwrite=overwrite)
    return load_cluster(out)


def _collective_logs(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(collective-benchmark logs, other inputs): a file that is a log, or a folder holding
    logs and no bench-net or run directory."""
    logs, rest = [], []
    for entry in map(Path, paths):
        if entry.is_file() or (entry.is_dir() and not is_bench_dir(entry)
                               and not (entry / "run.json").exists()
                               and any(is_collective_log(f) for f in entry.rglob("*"))):
            logs.append(entry)
        else:
            rest.append(entry)
    return logs, rest


def _save_collectives_only(fit: collfit.CollectiveFit, base: str | Path, out: str | Path,
                           overwrite: bool) -> Cluster:
    cluster = load_cluster(base)
    cluster = replace(collfit.attach(cluster, fit), name=f"{cluster.name}-fitted",
                      provenance={"collectives": dict(fit.provenance)},
                      source=f"fitted by gradsync calibrate from {len(fit.provenance['files'])} "
                             f"collective log(s) on {cluster.name}")
    out = Path(out)
    save_cluster(cluster, out, overwrite=overwrite)
    return load_cluster(out)


def _calibrate_runs(paths: Sequence[str | Path], out: str | Path, *,
                    profiles: Sequence[ComputeProfile], base: str | Path) -> Cluster:
    """The bench-net and run fit (the CPU loop): the calibrated cluster, not yet saved."""
    benches, runs = split_inputs(paths)
    if not benches:
        raise FitError("no bench-net directory among the inputs: the link fit needs one "
                       "(run 'gradsync bench-net -n 2 --out DIR')")
    table = pd.concat([read_bench(b) for b in benches], ignore_index=True)
    cores = min(c for c in [bench_cores(b) for b in benches] + [1 << 30] if c)
    fit_runs = [r for r in runs if not r.is_profile]
    max_bytes = _fit_range(table, fit_runs)
    try:
        ab, mpi_overhead, link_quality = fit_links(table, cores, max_bytes)
    except FitError as exc:     # say which measurements were too few, and what would do
        sizes = table["nbytes"].nunique()
        raise FitError(f"{', '.join(map(str, benches))}: {exc} ({sizes} message size(s) "
                       f"measured; run 'gradsync bench-net' with at least "
                       f"{MIN_BENCH_SIZES} sizes, e.g. --sizes 4B..4MiB)") from None
    ref_p = min([r.ranks for r in fit_runs] or [min(cores, int(table["nranks"].min()))])
    interference = fit_interference(table, ref_p, max_bytes)
    base_cluster = load_cluster(base).with_devices_per_node(ref_p)
    cluster = replace(base_cluster, name=f"{base_cluster.name}-fitted", transport="device",
                      fitted={"intra": ab}, progress=PROGRESS,
                      collective_overhead_s=mpi_overhead, comm_interference=interference)
    found = base_profiles(runs, profiles)
    noise = compute_noise(runs)
    comm_scales = scaling.comm_scales(table, cluster, cores, max_bytes)
    links_only = Calibration(cores=cores, fit_ranks=ref_p, mpi_overhead_s=mpi_overhead,
                             links={"intra": ab}, comm_scales=comm_scales,
                             bench_compute_s=scaling.bench_compute(table))
    # The compute fit simulates the fit runs on the machine as validation will run it: with
    # the collective costs benchmarked at each rank count.
    compute = scaling.fit_compute(fit_runs, found, links_only.adapt(cluster), table, noise)
    calibration = replace(links_only, compute_scales=compute.by_ranks, profiles=found,
                          noise_cv=noise)
    fitted_sources = {
        "collective_overhead": "fitted: bench-net per-call constant (provenance.link_fit)",
        "comm_interference": "fitted: bench-net overlap test (provenance.interference_fit)",
        "progress": "the executor polls its collectives from its hooks (MPI progress 'test')",
        "transport": "device: each rank's collectives use the fitted intra link"}
    return replace(calibration.adapt(cluster),
                   provenance=_provenance(benches, runs, calibration, link_quality,
                                          interference, compute, max_bytes),
                   sources={**cluster.sources, **fitted_sources},
                   source=f"fitted by gradsync calibrate from {len(benches)} benchmark(s) "
                          f"and {len(runs)} run(s)")


def extrapolated_compute(calibration: Calibration, ranks: Sequence[int]) -> list[Compute]:
    """For each calibrated (model, batch) and rank count in ``ranks``, the compute a
    prediction there uses when it is carried from another occupancy (what ``calibrate``
    warns about; :meth:`Compute.advice` names the command that measures it instead)."""
    carried = []
    for model in calibration.models():
        for batch in calibration.batches(model):
            for p in sorted(set(ranks)):
                compute = calibration.compute(model, batch, p)
                if compute is not None and compute.extrapolated:
                    carried.append(compute)
    return carried


def _fit_range(table: pd.DataFrame, fit_runs: list[MeasuredRun]) -> int:
    """Largest message size to fit: 4x the largest message the fit runs send."""
    sent = [int(r.allreduce["nbytes"].max()) for r in fit_runs if len(r.allreduce)]
    wanted = 4 * max(sent) if sent else DEFAULT_MAX_FIT_BYTES
    sizes = sorted(table["nbytes"].unique())
    return int(min(max(wanted, sizes[min(len(sizes) - 1, 3)]), max(sizes)))


def _provenance(benches: list[Path], runs: list[MeasuredRun], calibration: Calibration,
                link_quality: dict, interference: float, compute: "scaling.ComputeFit",
                max_bytes: int) -> dict:
    """Which inputs, which residuals, what rests on extrapolation: the file's record of itself
    (the fitted figures themselves are in the ``calibration`` section)."""
    ranks = sorted({r.ranks for r in runs if not r.is_profile} | set(calibration.comm_scales))
    return {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": "gradsync calibrate",
        "benchmarks": [str(b) for b in benches],
        "runs": [{"path": r.path, "model": r.model, "strategy": r.strategy.name,
                  "ranks": r.ranks, "batch": r.batch, "iteration_s": r.iteration_s}
                 for r in runs],
        "link_fit": {**link_quality, "link_class": "intra", "algorithm": "mpich thresholds",
                     "bytes": [MIN_FIT_BYTES, max_bytes]},
        "interference_fit": {"comm_interference": interference,
                             "from": "bench-net overlap test (compute between Test calls)"},
        "compute_fit": compute.runs,
        "extrapolated_compute": [c.advice() for c in extrapolated_compute(calibration, ranks)],
    }
