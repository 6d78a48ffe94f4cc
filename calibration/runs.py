"""Reading measured runs: an executor run directory (``trace.parquet`` + ``run.json``) as numbers.

A :class:`MeasuredRun` holds what calibration and validation need from one run: its setup
(model, strategy and its knobs, ranks, per-rank batch), the machine it ran on, and medians over
steps after warm-up: the iteration time, per-layer forward and backward times, the update, and
each allreduce message's duration. Only run directories are read; the executor is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from vocab.errors import GradsyncError
from vocab.runrecord import RUN_FILE, read_run_record
from vocab.strategies import StrategySpec
from vocab.trace import read_trace

MiB = 1 << 20
#: Steps dropped from the start of a run: the first pays allocation and cache warm-up, and
#: ``delayed`` makes no update in its first ``staleness`` steps.
DEFAULT_WARMUP = 2


class RunError(GradsyncError):
    """A run directory is missing, failed, or cannot be used for calibration."""


@dataclass(frozen=True)
class MeasuredRun:
    """One executor run, reduced to medians over steps after warm-up (seconds, bytes)."""

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
    steps_timed: int = 0                   # steps after warm-up that the medians cover
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
    except ValueError as exc:
        raise RunError(f"{path}/{RUN_FILE}: not valid JSON ({exc})") from None


def machine_of(record: dict[str, Any]) -> str:
    """The machine a run or benchmark ran on: a cluster name if recorded, else the host."""
    specs = record.get("specs") or {}
    return str(specs.get("cluster") or record.get("cluster") or record.get("host") or "unknown")


def read_run(path: str | Path, warmup: int = DEFAULT_WARMUP) -> MeasuredRun:
    """Read one executor run directory (raises RunError / TraceError on bad input)."""
    record = read_record(path)
    if record.get("kind") != "exec":
        raise RunError(f"{path}: a '{record.get('kind')}' record, not an executor run")
    if record.get("error") or record.get("status") == "failed":
        raise RunError(f"{path}: the run failed ({record.get('error') or 'status failed'})")
    trace = read_trace(path)
    specs = record.get("specs") or {}
    try:
        strategy = StrategySpec(
            specs["strategy"], bucket_bytes=max(1, int(specs.get("bucket_mb", 25) * MiB)),
            first_bucket_bytes=max(1, int(specs.get("first_bucket_mb", 1) * MiB)),
            staleness=int(specs.get("staleness", 1)))
        model, ranks, batch = str(specs["model"]), int(specs["nprocs"]), int(specs["batch"])
    except KeyError as exc:
        raise RunError(f"{path}/{RUN_FILE}: specs lack {exc}") from None
    steady = _steady(trace, warmup, path)
    gaps = _step_gaps(trace, steady)
    return MeasuredRun(
        str(path), str(record.get("run_id", Path(path).name)), model, strategy, ranks, batch,
        machine_of(record), float(np.median(gaps)), *_layer_medians(steady),
        _op_median(steady, "update"), _op_median(steady, "data") + _op_median(steady, "loss"),
        _allreduce_rows(steady), int(steady["iteration"].nunique()), _step_cv(gaps),
        bool(specs.get("local", False)))


def read_runs(paths: Iterable[str | Path], warmup: int = DEFAULT_WARMUP) -> list[MeasuredRun]:
    """Read several run directories; a path given twice is read once."""
    seen: dict[str, MeasuredRun] = {}
    for path in paths:
        key = str(Path(path).resolve())
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


def _step_gaps(trace: pd.DataFrame, steady: pd.DataFrame) -> np.ndarray:
    """Every rank's gaps between consecutive iteration starts, for the steady iterations (their
    median over ranks and steps is the run's iteration time)."""
    starts = trace.groupby(["rank", "iteration"])["start_s"].min().reset_index()
    starts["gap"] = starts.groupby("rank")["start_s"].diff()
    kept = starts[starts["iteration"].isin(steady["iteration"].unique())]["gap"].dropna()
    return kept.to_numpy(float)


def _step_cv(gaps: np.ndarray) -> float:
    """How much one rank's step time varies from step to step: ``1.4826 * MAD / median`` (a
    coefficient of variation that the odd slow step, a trace flush, does not inflate)."""
    if len(gaps) < 3:
        return 0.0
    median = float(np.median(gaps))
    return float(1.4826 * np.median(np.abs(gaps - median)) / median) if median > 0 else 0.0


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
