"""A run directory's files: checks before a run, partial parts during it, results after it.

``DIR/run.json`` is written as soon as a run starts (``status: running``), so a directory that
holds a run, even a crashed one, is never mistaken for an empty one; it is rewritten at the end
with ``status`` ``ok`` or ``failed`` and the error.
"""

from __future__ import annotations

import csv
import glob
import os
import time
from pathlib import Path
import pandas as pd
import torch

from executor.checkpoint import CHECKPOINT_DIR, has_checkpoint
from executor.config import RunConfig
from executor.tracing import PARTIAL_DIR, merge_partials
from vocab.errors import SpecError
from vocab.runrecord import RUN_FILE, make_run_record, read_run_record, write_run_record
from vocab.trace import TRACE_FILE, write_trace

METRICS_FILE = "metrics.csv"
MODEL_FILE = "model.pt"
METRIC_COLUMNS = ("step", "rank", "loss", "accuracy", "test_accuracy", "updated", "step_s")
RUN_MARKERS = (RUN_FILE, TRACE_FILE, PARTIAL_DIR, CHECKPOINT_DIR, METRICS_FILE)


def new_run_id(cfg: RunConfig) -> str:
    """A readable, unique-enough run id."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"exec-{cfg.model}-{cfg.strategy}-n{cfg.nprocs}-{stamp}-{os.getpid() % 10000:04d}"


def check_out_dir(cfg: RunConfig) -> None:
    """Refuse to overwrite another run; ``--resume`` needs a checkpoint of the same setup."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise SpecError("out", cfg.out, "a directory (a file is in the way)")
    held = [m for m in RUN_MARKERS if (out / m).exists()]
    if not cfg.resume:
        if held:
            raise SpecError("out", cfg.out, "a new or empty directory (it holds another run: "
                            + ", ".join(held) + "; use another --out or --resume)")
        return
    if not has_checkpoint(out):
        raise SpecError("resume", cfg.out, "a run directory with a checkpoint")
    saved = read_run_record(out)["specs"]
    for key in ("nprocs", "model", "strategy", "batch", "data", "seed", "dtype", "staleness",
                "bucket_mb", "lr", "momentum", "weight_decay"):
        if saved.get(key) != getattr(cfg, key):
            raise SpecError(key, getattr(cfg, key),
                            f"{saved.get(key)!r} as in the run being resumed")


def prepare_run_dir(cfg: RunConfig, run_id: str, start_step: int) -> None:
    """Rank 0, before the first step: mark the directory as holding this run."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if start_step:
        drop_redone_rows(out, start_step)
    record = make_run_record("exec", run_id, cfg.to_dict(), cfg.seed, status="running",
                             resumed_from_step=start_step or None)
    write_run_record(record, out)


def drop_redone_rows(out: Path, start_step: int) -> None:
    """A resumed run redoes steps ``>= start_step``: drop them from the earlier parts."""
    for path in sorted((out / PARTIAL_DIR).glob("*.parquet")):
        frame = pd.read_parquet(path)
        tmp = path.with_suffix(".tmp")
        frame[frame["iteration"] < start_step].to_parquet(tmp, index=False)
        os.replace(tmp, path)
    for path in sorted((out / PARTIAL_DIR).glob("metrics-*.csv")):
        frame = pd.read_csv(path)
        frame[frame["step"] < start_step].to_csv(path, index=False)


def write_pid(out: Path, rank: int) -> None:
    """``partial/pid-rank-R``: lets the launcher name a rank that MPI reports only by pid."""
    folder = out / PARTIAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"pid-rank-{rank:04d}").write_text(f"{os.getpid()}\n")


def write_metrics_part(out: Path, rank: int, attempt: int, first: int, rows: list[tuple]) -> None:
    """Append-only metrics parts, one per flush."""
    folder = out / PARTIAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"metrics-rank-{rank:04d}-a{attempt:02d}-{first:07d}.csv"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(METRIC_COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, path)


def merge_metrics(out: Path) -> pd.DataFrame:
    """Per-step loss and accuracy averaged over ranks, and test accuracy where evaluated."""
    parts = sorted(glob.glob(str(out / PARTIAL_DIR / "metrics-*.csv")))
    if not parts:
        return pd.DataFrame(columns=["step", "loss", "accuracy", "test_accuracy"])
    rows = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    ranks = rows[rows["rank"] >= 0].groupby("step")
    train = ranks[["loss", "accuracy"]].mean().join(ranks["step_s"].max())
    test = rows[rows["rank"] < 0].groupby("step")["test_accuracy"].last()
    merged = train.join(test, how="outer").reset_index()
    return merged.sort_values("step").reset_index(drop=True)


def finish_run(cfg: RunConfig, run_id: str, model: torch.nn.Module, start_step: int,
               wall_s: float, device: torch.device, mpi_library: str) -> None:
    """Rank 0, after the last step: trace, metrics, final weights and the run record."""
    out = Path(cfg.out)
    frame = merge_partials(out)
    if frame is not None:
        write_trace(frame, out)
    metrics = merge_metrics(out)
    metrics.to_csv(out / METRICS_FILE, index=False)
    torch.save(model.state_dict(), out / MODEL_FILE)
    record = make_run_record(
        "exec", run_id, cfg.to_dict(), cfg.seed, wall_s=wall_s, status="ok",
        resumed_from_step=start_step or None, device=str(device),
        torch_version=torch.__version__, mpi_library=mpi_library,
        torch_threads=torch.get_num_threads(),
        iteration_time_s=median_iteration_time(frame),
        median_step_s=float(metrics["step_s"].iloc[1:].median()) if len(metrics) > 1 else None)
    write_run_record(record, out)


def write_failure(out: Path, cfg: RunConfig | None, error: str, run_id: str | None = None,
                  wall_s: float | None = None) -> None:
    """After a failure: merge what the ranks flushed into the trace; record the error."""
    frame = merge_partials(out)
    if frame is not None:
        write_trace(frame, out)
        if not run_id and len(frame):
            run_id = str(frame["run_id"].iloc[0])
    if list((out / PARTIAL_DIR).glob("metrics-*.csv")):
        merge_metrics(out).to_csv(out / METRICS_FILE, index=False)
    specs = cfg.to_dict() if cfg is not None else {}
    record = make_run_record("exec", run_id or "exec-failed", specs,
                             cfg.seed if cfg else None, wall_s=wall_s, error=error,
                             status="failed")
    write_run_record(record, out)


def median_iteration_time(frame: pd.DataFrame | None, warmup: int = 1) -> float | None:
    """Median over ranks and iterations (after ``warmup``) of the gap between iteration starts."""
    if frame is None or frame.empty:
        return None
    starts = frame.groupby(["rank", "iteration"])["start_s"].min().reset_index()
    gaps = starts.groupby("rank")["start_s"].diff()
    gaps = gaps[starts["iteration"] > starts["iteration"].min() + warmup - 1].dropna()
    return float(gaps.median()) if len(gaps) else None

