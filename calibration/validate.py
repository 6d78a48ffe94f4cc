"""Validation: simulate each measured run with the fitted parameters; measured vs predicted.

Each run is simulated as it was executed: its model, strategy (with its bucket sizes and
staleness), rank count and per-rank batch from ``run.json``, on the calibrated machine, through
the very call ``gradsync simulate --cluster FITTED.yaml`` makes (:func:`simulator.api.simulate`
with ``devices_per_node`` = the run's ranks): the machine's figures at that rank count, its
calibrated compute profile and that profile's per-rank compute noise. Measured and predicted
times are the same statistic of a run (:mod:`vocab.timing`).

Run directories of one setup (same model, strategy and knobs, ranks and batch) are *repeats*:
they are predicted once and measured by the median of their medians. On a shared machine one
launch's time moves by several percent from launch to launch for reasons that last the whole
launch (more steps do not average it away), so a setup measured over launches at different
times is a fairer yardstick; every launch's own error is kept in the report as well.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from calibration.runs import MeasuredRun, RunError, read_runs
from calibration.scaling import simulate_run
from hwmodels.cluster import load_cluster
from hwmodels.specs import Cluster
from vocab.outpath import atomic_write, check_output
from vocab.errors import GradsyncError



@dataclass(frozen=True)
class Prediction:
    """One run: measured and predicted median iteration time, and the signed error."""

    run: str
    model: str
    strategy: str
    ranks: int
    batch: int
    measured_s: float
    predicted_s: float
    repeats: tuple[str, ...] = ()          # every run directory of this setup
    measured_each_s: tuple[float, ...] = ()

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.predicted_s - self.measured_s) / self.measured_s

    @property
    def launch_errors_pct(self) -> tuple[float, ...]:
        """The error against each measurement (run directory) of the setup on its own."""
        return tuple(100.0 * (self.predicted_s - m) / m for m in self.measured_each_s)


@dataclass(frozen=True)
class Report:
    """Predictions of several runs and the absolute percentage errors' median and maximum."""

    cluster: str
    predictions: tuple[Prediction, ...]

    @property
    def abs_errors(self) -> np.ndarray:
        return np.abs([p.error_pct for p in self.predictions])

    @property
    def median_abs_error_pct(self) -> float:
        return float(np.median(self.abs_errors))

    @property
    def max_abs_error_pct(self) -> float:
        return float(np.max(self.abs_errors))

    @property
    def launches(self) -> int:
        return sum(max(1, len(p.repeats)) for p in self.predictions)

    @property
    def max_abs_launch_error_pct(self) -> float:
        """The worst error against any single launch (repeats not pooled)."""
        return float(max(abs(e) for p in self.predictions
                         for e in (p.launch_errors_pct or (p.error_pct,))))

    def to_json(self) -> dict:
        """The ``gradsync validate --json`` form."""
        return {"cluster": self.cluster,
                "runs": [{**asdict(p), "error_pct": p.error_pct,
                          "launch_errors_pct": list(p.launch_errors_pct)}
                         for p in self.predictions],
                "median_abs_error_pct": self.median_abs_error_pct,
                "max_abs_error_pct": self.max_abs_error_pct,
                "launches": self.launches,
                "max_abs_launch_error_pct": self.max_abs_launch_error_pct}

    def table(self) -> str:
        """A plain-text table, one run a line, then the summary."""
        lines = [f"{'run':<34} {'model':<14} {'strategy':<10} {'n':>2} {'measured':>10} "
                 f"{'predicted':>10} {'error':>8}"]
        for p in self.predictions:
            lines.append(f"{Path(p.run).name[:34]:<34} {p.model[:14]:<14} {p.strategy:<10} "
                         f"{p.ranks:>2} {p.measured_s * 1e3:>8.2f}ms {p.predicted_s * 1e3:>8.2f}ms"
                         f" {p.error_pct:>+7.1f}%")
        lines.append(f"{len(self.predictions)} runs: median |error| "
                     f"{self.median_abs_error_pct:.1f} %, max {self.max_abs_error_pct:.1f} %")
        if self.launches > len(self.predictions):
            # "measurements", not "launches": with one_job a setup's repeats are runs of one
            # MPI job (the JSON keeps its "launches" key for readers written against it).
            lines.append(f"({self.launches} measurements of {len(self.predictions)} setups; "
                         f"against single measurements the max |error| "
                         f"is {self.max_abs_launch_error_pct:.1f} %)")
        return "\n".join(lines)


def predict(run: MeasuredRun, machine: Cluster, seed: int = 0) -> float:
    """The calibrated simulator's iteration time for ``run``'s setup."""
    return simulate_run(run, machine, seed=seed)


def validate(cluster_file: str | Path, run_dirs: Sequence[str | Path]) -> Report:
    """Measured vs predicted for every run in ``run_dirs`` (profile runs are skipped)."""
    machine = load_cluster(cluster_file)
    calibration = machine.calibration
    if calibration is None:
        raise GradsyncError(f"{cluster_file}: not a file written by 'gradsync calibrate' "
                            "(it has no calibration section)")
    runs = [r for r in read_runs(run_dirs) if not r.is_profile]
    if not runs:
        raise RunError("no multi-rank runs to validate (profile runs, one rank or --local, "
                       "are calibration inputs)")
    missing = sorted({(r.model, r.batch, r.ranks) for r in runs
                      if calibration.compute(r.model, r.batch, r.ranks) is None})
    if missing:
        raise RunError(f"{cluster_file}: no calibrated compute for " + "; ".join(
            f"{m} batch {b}" for m, b, _ in missing) + ". Measure it with " + "; ".join(
            f"'gradsync run -n {n} --local --model {m} --batch {b} --steps 24 --out DIR'"
            for m, b, n in missing) + " and calibrate again with DIR among the inputs")
    predictions = []
    for repeats in group_repeats(runs):
        first = repeats[0]
        each = tuple(r.iteration_s for r in repeats)
        predictions.append(Prediction(
            first.path, first.model, first.strategy.name, first.ranks, first.batch,
            float(np.median(each)), predict(first, machine),
            tuple(r.path for r in repeats), each))
    return Report(machine.name, tuple(predictions))


def group_repeats(runs: Sequence[MeasuredRun]) -> list[list[MeasuredRun]]:
    """Runs grouped by setup (model, strategy and its knobs, ranks, batch), in first-seen
    order."""
    groups: dict[tuple, list[MeasuredRun]] = {}
    for run in runs:
        groups.setdefault((run.model, run.strategy, run.ranks, run.batch), []).append(run)
    return list(groups.values())


def plot(report: Report, path: str | Path, overwrite: bool = False) -> Path:
    """Predicted vs measured iteration time, one point per run, with the y = x line; an
    existing file is replaced only with ``overwrite``."""
    check_output(path, overwrite=overwrite, field="plot")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    markers = {"sync": "o", "layerwise": "s", "bucketed": "^", "delayed": "D", "crossiter": "v"}
    for p in report.predictions:
        ax.scatter(p.measured_s * 1e3, p.predicted_s * 1e3, marker=markers.get(p.strategy, "x"),
                   color="C0" if p.ranks == 2 else "C1", label=f"{p.strategy}, {p.ranks} ranks")
    values = [v * 1e3 for p in report.predictions for v in (p.measured_s, p.predicted_s)]
    lo, hi = min(values) * 0.8, max(values) * 1.2
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel="measured iteration time (ms)", ylabel="predicted iteration time (ms)",
           title=f"{report.cluster}: median |err| {report.median_abs_error_pct:.1f} %, "
                 f"max {report.max_abs_error_pct:.1f} %")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(path)
