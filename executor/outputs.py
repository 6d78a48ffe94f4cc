"""A run directory's files: checks before a run, partial parts during it, results after it.

``DIR/run.json`` is written as soon as a run starts (``status: running``), so a directory that
holds a run, even a crashed one, is never mistaken for an empty one; it is rewritten at the end
with ``status`` ``ok`` or ``failed`` and the error. Its ``specs`` have the simulator's sections
(:func:`run_specs`; the schema is :mod:`vocab.runrecord`'s).
"""

from __future__ import annotations

import csv
import glob
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from executor.checkpoint import CHECKPOINT_DIR, has_checkpoint, load_checkpoint
from executor.config import RunConfig
from executor.tracing import PARTIAL_DIR, merge_partials
from vocab.outpath import atomic_write, check_writable
from vocab.errors import SpecError
from vocab.runrecord import (RUN_FILE, make_run_id, make_run_record, read_run_record,
                             write_run_record)
from vocab.timing import iteration_time_s, warmup_iterations
from vocab.trace import TRACE_FILE, write_trace

METRICS_FILE = "metrics.csv"
MODEL_FILE = "model.pt"
METRIC_COLUMNS = ("step", "rank", "loss", "accuracy", "test_accuracy", "test_loss", "updated",
                  "step_s")
RUN_MARKERS = (RUN_FILE, TRACE_FILE, PARTIAL_DIR, CHECKPOINT_DIR, METRICS_FILE, MODEL_FILE)


def new_run_id(cfg: RunConfig) -> str:
    """A readable, unique-enough run id (a file name anywhere: :func:`make_run_id`)."""
    return make_run_id("exec", cfg.model, cfg.strategy.name, f"n{cfg.nprocs}",
                       time.strftime("%Y%m%d"), time.strftime("%H%M%S"),
                       f"{os.getpid() % 10000:04d}")


#: The ``run`` section: every setting of the config that is not the machine, model, batch
#: or strategy.
_RUN_KEYS_SKIPPED = ("nprocs", "model", "batch", "strategy")


def run_specs(cfg: RunConfig, grad_bytes: Sequence[int] | None = None,
              device: torch.device | str | None = None,
              threads_per_rank: int | None = None) -> dict[str, Any]:
    """``run.json``'s ``specs``, in the simulator's sections: ``cluster`` (the host, its ranks,
    the device they ran on), ``workload``, ``batch``, ``strategy`` (bytes) and ``run``.

    ``grad_bytes`` (per layer), ``device`` and ``threads_per_rank`` are known once the ranks
    have built the model; before that (the launcher) they are recorded as null.
    """
    host = platform.node()
    run = {k: v for k, v in cfg.to_dict().items() if k not in _RUN_KEYS_SKIPPED}
    return {
        "cluster": {"name": host, "host": host, "ranks": cfg.nprocs,
                    "device": str(device) if device is not None else None,
                    "threads_per_rank": threads_per_rank},
        "workload": {"name": cfg.model,
                     "layers": len(grad_bytes) if grad_bytes is not None else None,
                     "total_grad_bytes": int(sum(grad_bytes)) if grad_bytes is not None
                     else None},
        "batch": cfg.batch,
        "strategy": asdict(cfg.strategy),
        "run": {**run, "warmup": warmup_iterations(cfg.strategy)},
    }


def check_out_dir(cfg: RunConfig) -> None:
    """Refuse to overwrite another run; ``--resume`` needs a checkpoint of the same setup."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise SpecError("out", cfg.out, "a directory (a file is in the way)")
    check_writable(out, "out")      # under a file, or read-only: refused before the launch
    held = [m for m in RUN_MARKERS if (out / m).exists()]
    if not cfg.resume:
        if held:
            raise SpecError("out", cfg.out, "a new or empty directory (it holds another run: "
                            + ", ".join(held) + "; use another --out or --resume)")
        return
    if not has_checkpoint(out):
        raise SpecError("resume", cfg.out, "a run directory with a checkpoint")
    record = read_run_record(out)
    if record["source"] != "exec":
        raise SpecError("resume", cfg.out, f"an executor run (this one is {record['source']!r})")
    saved, mine = record["specs"], run_specs(cfg)
    pairs = [("nprocs", saved["cluster"].get("ranks"), cfg.nprocs),
             ("model", saved["workload"].get("name"), cfg.model),
             ("batch", saved["batch"], cfg.batch)]
    pairs += [("strategy" if k == "name" else k, v, mine["strategy"][k])
              for k, v in saved["strategy"].items()]
    pairs += [(k, saved["run"].get(k), mine["run"][k])
              for k in ("data", "seed", "dtype", "lr", "momentum", "weight_decay")]
    for key, theirs, ours in pairs:
        if theirs != ours:
            raise SpecError(key, ours, f"{theirs!r} as in the run being resumed")
    done = int(load_checkpoint(out, 0)["step"])
    if cfg.steps <= done:       # nothing left to run: resuming would only rewrite the results
        raise SpecError("steps", cfg.steps, f"more than the {done} steps the checkpoint in "
                        f"{cfg.out} has done already (--resume continues up to --steps)")


def prepare_run_dir(cfg: RunConfig, specs: dict[str, Any], run_id: str,
                    start_step: int) -> None:
    """Rank 0, before the first step: mark the directory as holding this run."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if start_step:
        drop_redone_rows(out, start_step)
    record = make_run_record("exec", run_id, specs, cfg.seed, status="running",
                             versions={"torch": torch.__version__},
                             resumed_from_step=start_step or None)
    write_run_record(record, out)


def drop_redone_rows(out: Path, start_step: int) -> None:
    """A resumed run redoes steps ``>= start_step``: drop them from the earlier parts."""
    for path in sorted((out / PARTIAL_DIR).glob("*.parquet")):
        frame = pd.read_parquet(path)
        with atomic_write(path) as tmp:
            frame[frame["iteration"] < start_step].to_parquet(tmp, index=False)
    for path in sorted((out / PARTIAL_DIR).glob("metrics-*.csv")):
        frame = pd.read_csv(path)
        with atomic_write(path) as tmp:
            frame[frame["step"] < start_step].to_csv(tmp, index=False)


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
    """Per-step loss and accuracy averaged over ranks, and test accuracy and loss where
    evaluated."""
    parts = sorted(glob.glob(str(out / PARTIAL_DIR / "metrics-*.csv")))
    if not parts:
        return pd.DataFrame(columns=["step", "loss", "accuracy", "test_accuracy", "test_loss"])
    rows = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    ranks = rows[rows["rank"] >= 0].groupby("step")
    train = ranks[["loss", "accuracy"]].mean().join(ranks["step_s"].max())
    test = rows[rows["rank"] < 0].groupby("step")[["test_accuracy", "test_loss"]].last()
    merged = train.join(test, how="outer").reset_index()
    return merged.sort_values("step").reset_index(drop=True)


def finish_run(cfg: RunConfig, specs: dict[str, Any], run_id: str, model: torch.nn.Module,
               start_step: int, wall_s: float, mpi_library: str) -> None:
    """Rank 0, after the last step: trace, metrics, final weights and the run record."""
    out = Path(cfg.out)
    frame = merge_partials(out)
    if frame is not None:
        write_trace(frame, out)
    metrics = merge_metrics(out)
    with atomic_write(out / METRICS_FILE) as tmp:
        metrics.to_csv(tmp, index=False)
    with atomic_write(out / MODEL_FILE) as tmp:
        torch.save(model.state_dict(), tmp)
    record = make_run_record(
        "exec", run_id, specs, cfg.seed, wall_s=wall_s, status="ok",
        versions={"torch": torch.__version__, "mpi": mpi_library},
        resumed_from_step=start_step or None,
        results={"iteration_time_s": mean_iteration_time(this_attempt(frame, start_step),
                                                         specs["run"]["warmup"]),
                 "median_step_s": float(metrics["step_s"].iloc[1:].median())
                 if len(metrics) > 1 else None})
    write_run_record(record, out)


def write_failure(out: Path, cfg: RunConfig, error: str, run_id: str | None = None,
                  wall_s: float | None = None, status: str = "failed",
                  **extra: Any) -> None:
    """After a failure (or an interrupt, ``status='interrupted'``): merge what the ranks
    flushed into the trace; record the error.

    The specs (and run id) of the record rank 0 wrote at the start are kept where there is
    one: they describe the model the ranks built, which the launcher never sees.
    """
    frame = merge_partials(out)
    if frame is not None:
        write_trace(frame, out)
        if not run_id and len(frame):
            run_id = str(frame["run_id"].iloc[0])
    if list((out / PARTIAL_DIR).glob("metrics-*.csv")):
        with atomic_write(out / METRICS_FILE) as tmp:
            merge_metrics(out).to_csv(tmp, index=False)
    started = _started_record(out)
    specs = started["specs"] if started else run_specs(cfg)
    run_id = run_id or (started["run_id"] if started else "exec-failed")
    record = make_run_record("exec", run_id, specs, cfg.seed, wall_s=wall_s, error=error,
                             status=status, versions={"torch": torch.__version__},
                             resumed_from_step=started.get("resumed_from_step")
                             if started else None, **extra)
    write_run_record(record, out)


def write_interrupt_note(out: Path, rank: int, step: int, signal_name: str) -> None:
    """``partial/interrupted-rank-R``: the step this rank was on when the signal came."""
    folder = out / PARTIAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"interrupted-rank-{rank:04d}").write_text(f"{step} {signal_name}\n")


def step_reached(out: Path) -> int | None:
    """The furthest step any rank noted when interrupted (else the last one it flushed)."""
    steps = []
    for path in (out / PARTIAL_DIR).glob("interrupted-rank-*"):
        try:
            steps.append(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    if not steps and list((out / PARTIAL_DIR).glob("metrics-*.csv")):
        flushed = merge_metrics(out)["step"]
        steps = [int(flushed.max())] if len(flushed) else []
    return max(steps) if steps else None


def write_interrupted(out: Path, cfg: RunConfig, signal_name: str,
                      wall_s: float | None = None) -> int | None:
    """The launcher, once the interrupted job is gone: ``run.json`` says ``interrupted``,
    with the signal and the step reached (returned)."""
    step = step_reached(out)
    where = f"at step {step}" if step is not None and step >= 0 else "before the first step"
    write_failure(out, cfg, f"interrupted by {signal_name} {where}", wall_s=wall_s,
                  status="interrupted", interrupted={"signal": signal_name, "step": step})
    return step


def _started_record(out: Path) -> dict[str, Any] | None:
    """The executor record already in ``out`` (written when the run started), if any."""
    try:
        record = read_run_record(out)
    except (OSError, ValueError):
        return None
    return record if record["source"] == "exec" else None


def this_attempt(frame: pd.DataFrame | None, start_step: int) -> pd.DataFrame | None:
    """The rows of the iterations this process ran: a resumed run's earlier steps ran in
    another process, on another clock (the gap across the restart is no iteration's)."""
    if frame is None or not start_step:
        return frame
    return frame[frame["iteration"] >= start_step]


def mean_iteration_time(frame: pd.DataFrame | None, warmup: int) -> float | None:
    """The run's iteration time as :mod:`vocab.timing` defines it (the mean over ranks and
    steady iterations of start-to-next-start), or None when no iteration is steady."""
    if frame is None or frame.empty:
        return None
    try:
        return iteration_time_s(frame, warmup)
    except ValueError:
        return None
