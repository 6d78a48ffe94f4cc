"""Reading measured runs: an executor run directory (``trace.parquet`` + ``run.json``) as numbers.

A :class:`MeasuredRun` holds what calibration and validation need from one run: its setup
(model, strategy and its knobs, ranks, per-rank batch, from ``run.json``'s nested ``specs``),
the machine it ran on, the iteration time as :mod:`vocab.timing` defines it (the mean over
ranks and steps after warm-up, as the simulator's), and medians over those steps of per-layer
forward and backward times, the update, and each allreduce message's duration. Only run
directories are read; the executor is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from vocab.errors import GradsyncError, SpecError
from vocab.files import check_path
from vocab.runrecord import RUN_FILE, read_run_record, strategy_from_record
from vocab.strategies import StrategySpec
from vocab.timing import iteration_durations, warmup_iterations
from vocab.trace import read_trace


class RunError(GradsyncError):
    """A run directory is missing, failed, or cannot be used for calibration."""


@dataclass(frozen=True)
class MeasuredRun:
    """One executor run, reduced to its mean iteration time and medians over steps after
    warm-up (seconds, bytes)."""

    path: str
    run_id: str
    model: str
    strategy: StrategySpec
    ranks: int
    batch: int
    machine: str
    iteration_s: float
    forward_s: dict[str, float]
    backward_s: dict[str, float]
    update_s: float
    step_overhead_s: float                 # data + loss (host work outside the layers)
    allreduce: pd.DataFrame = field(repr=False)  # nbytes, seconds: one row per message per step
    steps_timed: int = 0                   # steps after warm-up that the figures cover
    step_cv: float = 0.0                   # robust CV of one rank's step times (see below)
    local: bool = False                    # ranks exchanged no gradients (``--local``)

    @property
    def is_profile(self) -> bool:
        """A compute profile: one rank, or ranks that exchanged no gradients (``--local``),
        which measure compute as the ranks of a real run at that count share the machine."""
        return self.ranks == 1 or self.local

    @property
    def compute_s(self) -> float:
        """Median forward + backward per step (the layers only)."""
        return float(sum(self.forward_s.values()) + sum(self.backward_s.values()))


def read_record(path: str | Path) -> dict[str, Any]:
    """``run.json`` of ``path``, or RunError saying what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: not a run directory")
    if not (path / RUN_FILE).exists():
        raise RunError(f"{path}: no {RUN_FILE} here (expected a run written by 'gradsync run')")
    try:
        return read_run_record(path)
    except SpecError as exc:    # a record of another schema: the error names the field
        raise RunError(str(exc)) from None
    except ValueError as exc:
        raise RunError(f"{path}/{RUN_FILE}: not valid JSON ({exc})") from None


def machine_of(record: dict[str, Any]) -> str:
    """The machine a run or benchmark ran on: its cluster's name if recorded (a preset for a
    simulated run, the host for an executor run), else the host."""
    cluster = (record.get("specs") or {}).get("cluster")
    name = cluster.get("name") if isinstance(cluster, dict) else cluster
    return str(name or record.get("host") or "unknown")


def read_run(path: str | Path, warmup: int | None = None) -> MeasuredRun:
    """Read one executor run directory (raises RunError / TraceError on bad input).

    ``warmup``: steps left out at the start; by default :func:`vocab.timing.warmup_iterations`
    of the run's strategy, as for a simulated run.
    """
    record = read_record(path)
    if record["source"] != "exec":
        raise RunError(f"{path}: a '{record['source']}' record, not an executor run")
    if record["error"] or record["status"] != "ok":
        what = "did not finish" if record["status"] == "running" else "failed"
        why = record["error"] or f"status {record['status']}"
        raise RunError(f"{path}: the run {what} ({why})")
    specs = record["specs"]
    strategy = strategy_from_record(specs, f"{path}/{RUN_FILE}")
    model, ranks, batch = specs["workload"]["name"], specs["cluster"]["ranks"], specs["batch"]
    warmup = warmup_iterations(strategy) if warmup is None else warmup
    trace = read_trace(path)
    # A resumed run's earlier steps ran in another process, on another clock.
    trace = trace[trace["iteration"] >= (record.get("resumed_from_step") or 0)]
    steady = _steady(trace, warmup, path)
    durations = iteration_durations(trace, warmup)["duration_s"].to_numpy(float)
    return MeasuredRun(
        str(path), record["run_id"], model, strategy, ranks, batch,
        machine_of(record), float(np.mean(durations)), *_layer_medians(steady),
        _op_median(steady, "update"), _op_median(steady, "data") + _op_median(steady, "loss"),
        _allreduce_rows(steady), int(steady["iteration"].nunique()), _step_cv(durations),
        bool(specs["run"].get("local", False)))


def read_runs(paths: Iterable[str | Path], warmup: int | None = None) -> list[MeasuredRun]:
    """Read several run directories; a path given twice is read once."""
    seen: dict[str, MeasuredRun] = {}
    for path in paths:
        key = str(check_path(path, "a run directory", "dir").resolve())
        if key not in seen:
            seen[key] = read_run(path, warmup)
    return list(seen.values())


def check_one_machine(machines: Sequence[tuple[str, str]]) -> str:
    """The one machine of ``(path, machine)`` pairs; runs of mixed clusters are an error."""
    names = sorted({m for _, m in machines})
    if len(names) > 1:
        example = {m: p for p, m in machines}
        listed = "; ".join(f"{m} ({example[m]})" for m in names)
        raise RunError(f"runs of mixed clusters in one fit: {listed}; fit each machine "
                       "separately")
    if not names:
        raise RunError("nothing to fit: no run or benchmark directories given")
    return names[0]


def _steady(trace: pd.DataFrame, warmup: int, path: str | Path) -> pd.DataFrame:
    """Rows of the iterations after warm-up; RunError if none are left."""
    iterations = sorted(trace["iteration"].unique())
    if len(iterations) < warmup + 2:
        raise RunError(f"{path}: {len(iterations)} steps in the trace; at least {warmup + 2} "
                       f"are needed (warm-up {warmup}, then two to time)")
    return trace[trace["iteration"] >= iterations[0] + warmup]


def _step_cv(durations: np.ndarray) -> float:
    """How much one rank's step time varies from step to step: ``1.4826 * MAD / median`` (a
    coefficient of variation that the odd slow step, a trace flush, does not inflate: robust
    on purpose, unlike the iteration time, which is what the run costs)."""
    if len(durations) < 3:
        return 0.0
    median = float(np.median(durations))
    return float(1.4826 * np.median(np.abs(durations - median)) / median) if median > 0 else 0.0


def _layer_medians(steady: pd.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    """Per-layer median forward and backward seconds (per step, over ranks and steps)."""
    out = []
    for op in ("forward", "backward"):
        rows = steady[steady["op"] == op]
        per_step = (rows.assign(d=rows["end_s"] - rows["start_s"])
                    .groupby(["name", "rank", "iteration"], sort=False)["d"].sum())
        medians = per_step.groupby(level="name", sort=False).median()
        out.append({str(k): float(v) for k, v in medians.items()})
    return out[0], out[1]


def _op_median(steady: pd.DataFrame, op: str) -> float:
    """Median per step of the summed duration of ``op`` rows (0 when there are none)."""
    rows = steady[steady["op"] == op]
    if rows.empty:
        return 0.0
    per_step = (rows["end_s"] - rows["start_s"]).groupby([rows["rank"], rows["iteration"]]).sum()
    return float(np.median(per_step))


def _allreduce_rows(steady: pd.DataFrame) -> pd.DataFrame:
    rows = steady[steady["op"] == "allreduce"]
    return pd.DataFrame({"nbytes": rows["nbytes"].to_numpy(),
                         "seconds": (rows["end_s"] - rows["start_s"]).to_numpy()})
