"""Cost of recording the executor's trace: per-step time with and without it.

Run: ``python -m benchmarks.exec_overhead [--out DIR] [--method steps|runs|both]
[--measure wall|cpu] [--repeats 6] [--steps 300] [--configs resnet18-ci:64:1 ...]
[--strategy sync]``. A config is ``MODEL:BATCH:RANKS``.

The machine is shared, so its load drifts within seconds; two methods pair what they compare
as closely in time as they can:

* ``steps`` (default): one ``mpiexec`` job per repeat builds the model twice the way the
  executor does (:func:`executor.train.build_model`, ``make_strategy``, ``Tracer.attach``),
  one copy traced and one not (built first in alternate repeats), and alternates their steps
  (traced first on even steps), each a real :func:`executor.train.run_step`. The periodic
  flushes (the trace part and the metrics part on the traced side, the metrics part alone
  on the other), scheduled as in a run (:class:`executor.tracing.PartSchedule`: 1 s and at
  least 10 steps apart, on each copy's own time), are timed too and spread over the steps
  they cover (a median flush over the mean ``steps_per_part``); the first flush, after the warm-up steps, a one-off
  warm-up of Arrow's writer, is reported apart (``first_flush_ms``) and left out like
  warm-up steps. A job's overhead is
  ``(median traced step + flush per step) / (median untraced step + flush per step) - 1``
  (steps after ``--warmup``; each step's and flush's time is its slowest rank's).
  ``--measure cpu`` times the same steps in CPU seconds of the whole process
  (``time.process_time``, torch on one thread), which other programs' load moves much less
  than wall time; there the part is written synchronously, so its CPU is charged to its
  flush.
* ``runs``: pairs of real ``gradsync run`` jobs, one with ``--no-trace``, in alternating order;
  a run's step time is the median of ``metrics.csv``'s ``step_s``. That time leaves out the
  flushes between steps, and with 2 ranks on 2 shared cores pairs scatter widely.

For each config: the median over repeats and the spread (min .. max). Prints one table;
writes ``DIR/exec_overhead.csv`` (one row per repeat) and ``DIR/exec_overhead_summary.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from executor.comm import MPI, Clock, threads_per_rank
from executor.config import FLUSH_EVERY_S, RunConfig, exec_strategy
from executor.launch import launch
from vocab.argtypes import OneLineParser, real, whole
from vocab.mpiexec import mpiexec_command, python_argv
from executor.tracing import PartSchedule, Tracer
from executor.train import RankState, build_model, make_strategy, run_step

DEFAULT_CONFIGS = ("resnet18-ci:64:1", "resnet18-ci:64:2", "alexnet-ci:64:1",
                   "alexnet-ci:64:2", "resnet18-ci:16:1", "resnet18-ci:16:2")


@dataclass(frozen=True)
class Config:
    """One measured configuration: ``MODEL:BATCH:RANKS``."""

    model: str
    batch: int
    ranks: int

    @classmethod
    def parse(cls, text: str) -> Config:
        """``"resnet18-ci:64:2"`` -> ``Config("resnet18-ci", 64, 2)``."""
        try:
            model, batch, ranks = text.split(":")
            return cls(model, int(batch), int(ranks))
        except ValueError:
            raise SystemExit(f"--configs: {text!r} is not MODEL:BATCH:RANKS") from None

    def __str__(self) -> str:
        return f"{self.model} b{self.batch} n{self.ranks}"

    def slug(self) -> str:
        """A folder name."""
        return f"{self.model}-b{self.batch}-n{self.ranks}"


# -- method "steps": one job, a traced and an untraced copy of the model, steps alternated ---
def worker(cfg: Config, strategy: str, steps: int, out: Path, traced_first: bool,
           measure: str = "wall", warmup: int = 5,
           flush_s: float = FLUSH_EVERY_S) -> None:
    """Under ``mpiexec``: alternate the steps of a traced and an untraced copy; rank 0 writes
    per-step seconds (slowest rank) to ``out/steps.csv`` and flush seconds to ``out/flush.csv``.

    ``traced_first``: which copy is built first. With both copies untraced the first-built one
    measured about 2 % slower, so repeats alternate the build order and the bias cancels in
    their median (it shows in the spread). ``measure``: ``wall`` (``perf_counter``) or ``cpu``
    (``process_time``, torch on one thread).

    Flushes: after step ``warmup - 1`` each copy flushes once (Arrow's writer warms up, tens
    of ms; reported apart), then as the training loop does (:meth:`RankState.periodic_flush`).
    Each copy's :class:`PartSchedule` runs on that copy's own wall time (its steps and
    flushes, not the other copy's), so its parts are spaced as in a run of it alone; rank 0's
    schedule decides for all ranks (outside the timing), so every rank flushes together.
    ``flush_s``: its time bound (``--trace-flush-s``; 0: every 10 steps, the rule before)."""
    comm = MPI.COMM_WORLD
    torch.set_num_threads(1 if measure == "cpu" else threads_per_rank(comm))
    timer = time.process_time if measure == "cpu" else time.perf_counter
    clock = Clock()
    own_s = {True: 0.0, False: 0.0}        # each copy's own wall time: its schedule's clock
    sides = {trace: _side(cfg, strategy, steps, out / ("trace" if trace else "notrace"),
                          trace, comm, clock, lambda trace=trace: own_s[trace], flush_s)
             for trace in ((True, False) if traced_first else (False, True))}
    clock.align(comm)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    flushed_s: dict[bool, list[float]] = {True: [], False: []}
    flush_at: dict[bool, list[int]] = {True: [], False: []}
    for step in range(steps):
        for trace in ((True, False) if step % 2 == 0 else (False, True)):
            run, source, strategy_rt, state = sides[trace]
            state.step = step       # as train_rank: a part's flush counts the steps from it
            w0, t0 = time.perf_counter(), timer()
            run_step(run, comm, step, source, strategy_rt, state.tracer, None,
                     torch.device("cpu"), state)
            t1 = timer()
            own_s[trace] += time.perf_counter() - w0
            seconds[trace].append(t1 - t0)
            if step + 1 == warmup or comm.bcast(state.schedule.due(step + 1), root=0):
                w1, t1 = time.perf_counter(), timer()
                # As train_rank's periodic flush; in CPU time synchronously: the write costs
                # the same CPU on either thread, and so it is charged to this copy's flush.
                state.flush(background=measure == "wall")
                flushed_s[trace].append(timer() - t1)
                own_s[trace] += time.perf_counter() - w1
                flush_at[trace].append(step + 1)
    slowest = {k: _slowest(comm, v) for k, v in seconds.items()}
    flushes = {k: _slowest(comm, v) for k, v in flushed_s.items()}
    if comm.rank == 0:
        pd.DataFrame({"traced_s": slowest[True], "untraced_s": slowest[False]}).to_csv(
            out / "steps.csv", index_label="step")
        pd.concat([pd.DataFrame({"traced": trace, "steps_done": flush_at[trace],
                                 "seconds": flushes[trace]}) for trace in (True, False)]
                  ).to_csv(out / "flush.csv", index=False)


def _slowest(comm: MPI.Comm, seconds: list[float]) -> np.ndarray | None:
    """Element-wise maximum over ranks (on rank 0; ``None`` elsewhere)."""
    gathered = comm.gather(seconds, root=0)
    return None if gathered is None else np.max(np.array(gathered), axis=0)


def _side(cfg: Config, strategy: str, steps: int, out: Path, trace: bool, comm: MPI.Comm,
          clock: Clock, schedule_clock: Callable[[], float], flush_s: float) -> tuple:
    """One copy of the model set up as :func:`executor.train.train_rank` does; its part
    schedule (``flush_s`` and ``RunConfig``'s ``flush_every``) reads ``schedule_clock``."""
    run = RunConfig(nprocs=comm.size, model=cfg.model, strategy=exec_strategy(strategy),
                    batch=cfg.batch, steps=steps, out=str(out), trace=trace, device="cpu",
                    trace_flush_s=flush_s)
    source = build_model(run, comm, torch.device("cpu"))
    tracer = Tracer("bench", comm.rank, clock, trace)
    state = RankState(run, comm.rank, tracer=tracer,
                      schedule=PartSchedule(run.flush_every, run.trace_flush_s, schedule_clock))
    strategy_rt = make_strategy(run, comm, source, clock, tracer)
    tracer.attach(source.layers(), grad_hooks=not strategy_rt.reports_gradients,
                  forward_hooks=not strategy_rt.reports_forward)
    return run, source, strategy_rt, state


def step_repeats(out: Path, cfg: Config, strategy: str, steps: int, warmup: int,
                 repeats: int, measure: str = "wall",
                 flush_s: float = FLUSH_EVERY_S) -> list[dict]:
    """``repeats`` jobs of :func:`worker`; one row per job."""
    rows = []
    for i in range(repeats):
        folder = out / f"steps-{cfg.slug()}-{i}"
        folder.mkdir(parents=True, exist_ok=True)
        command = mpiexec_command(cfg.ranks, python_argv(
            "benchmarks.exec_overhead", "--worker", f"{cfg.model}:{cfg.batch}:{cfg.ranks}",
            "--strategy", strategy, "--steps", str(steps), "--out", str(folder),
            "--measure", measure, "--warmup", str(warmup), "--trace-flush-s", repr(flush_s),
            *(["--traced-first"] if i % 2 == 0 else [])))
        done = subprocess.run(command, timeout=600, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{cfg}: worker failed ({done.returncode}): {done.stderr[-2000:]}")
        table = pd.read_csv(folder / "steps.csv").iloc[warmup:]
        flush = pd.read_csv(folder / "flush.csv")
        # Per step: a typical (median) periodic flush after the first (Arrow's one-off warm-up,
        # left out like warm-up steps) spread over the steps a part covers on average.
        per_step, per_part = {}, {}
        for trace in (True, False):
            side = flush[flush["traced"] == trace]
            span = side["steps_done"].iloc[-1] - side["steps_done"].iloc[0]
            if span == 0:
                raise RuntimeError(f"{cfg}: no periodic flush after the warm-up one in {steps} "
                                   f"steps; give more --steps")
            per_part[trace] = span / (len(side) - 1)
            per_step[trace] = side["seconds"].iloc[1:].median() / per_part[trace]
        traced = table["traced_s"].median() + per_step[True]
        untraced = table["untraced_s"].median() + per_step[False]
        rows.append(_row("steps" if measure == "wall" else "steps-cpu", cfg, i, traced, untraced,
                         flush_pct=100 * (per_step[True] - per_step[False]) / untraced,
                         first_flush_ms=1e3 * flush["seconds"].iloc[0],
                         steps_per_part=per_part[True]))
    return rows


# -- method "runs": separate gradsync run jobs, with and without --no-trace --------------------
def run_repeats(out: Path, cfg: Config, strategy: str, steps: int, warmup: int,
                repeats: int) -> list[dict]:
    """``repeats`` alternated traced/untraced pairs of real runs; one row per pair."""
    rows = []
    for i in range(repeats):
        order = (True, False) if i % 2 == 0 else (False, True)
        times = {trace: _run_step_s(out / f"runs-{cfg.slug()}-{i}-{int(trace)}", cfg, strategy,
                                    steps, warmup, trace) for trace in order}
        rows.append(_row("runs", cfg, i, times[True], times[False]))
    return rows


def _run_step_s(out: Path, cfg: Config, strategy: str, steps: int, warmup: int,
                trace: bool) -> float:
    run = RunConfig(nprocs=cfg.ranks, model=cfg.model, strategy=exec_strategy(strategy),
                    batch=cfg.batch, steps=steps, out=str(out), trace=trace)
    with contextlib.redirect_stdout(io.StringIO()):
        rc = launch(run, timeout_s=600)
    if rc != 0:
        raise RuntimeError(f"{cfg} (trace={trace}) failed with exit {rc}; see {out}")
    return float(pd.read_csv(out / "metrics.csv")["step_s"].iloc[warmup:].median())


def _row(method: str, cfg: Config, repeat: int, traced_s: float, untraced_s: float,
         flush_pct: float = float("nan"), first_flush_ms: float = float("nan"),
         steps_per_part: float = float("nan")) -> dict:
    row = {"method": method, "config": str(cfg), "repeat": repeat,
           "traced_ms": 1e3 * traced_s, "untraced_ms": 1e3 * untraced_s,
           "overhead_pct": 100 * (traced_s / untraced_s - 1), "flush_pct": flush_pct,
           "first_flush_ms": first_flush_ms, "steps_per_part": steps_per_part}
    print(f"  {method} {cfg} #{repeat}: {row['traced_ms']:.2f} vs {row['untraced_ms']:.2f} ms "
          f"({row['overhead_pct']:+.2f} %)", flush=True)
    return row


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method and config: medians over repeats and their spread."""
    out = []
    for (method, config), group in rows.groupby(["method", "config"], sort=False):
        pct = group["overhead_pct"]
        out.append({"method": method, "config": config, "repeats": len(group),
                    "untraced_ms": round(group["untraced_ms"].median(), 2),
                    "traced_ms": round(group["traced_ms"].median(), 2),
                    "overhead_pct": round(pct.median(), 2),
                    "min_pct": round(pct.min(), 2), "max_pct": round(pct.max(), 2),
                    "of_which_flush_pct": round(group["flush_pct"].median(), 2),
                    "first_flush_ms": round(group["first_flush_ms"].median(), 1),
                    "steps_per_part": round(group["steps_per_part"].median(), 1)})
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every config and print the summary table."""
    parser = OneLineParser(prog="python -m benchmarks.exec_overhead")
    parser.add_argument("--out", default=None, help="job folders and CSVs (default: tmp)")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="MODEL:BATCH:RANKS (default: %(default)s)")
    parser.add_argument("--method", choices=("steps", "runs", "both"), default="steps")
    parser.add_argument("--measure", choices=("wall", "cpu"), default="wall",
                        help="steps: wall time, or CPU time of the process on one thread")
    parser.add_argument("--strategy", default="sync")
    parser.add_argument("--repeats", type=whole(1, 1000, what="repeats"), default=6,
                        help="jobs (or pairs) per config")
    parser.add_argument("--steps", type=whole(2, 100_000, what="steps"), default=300,
                        help="steps per copy (enough for a few 1 s trace parts at ~10 ms)")
    parser.add_argument("--warmup", type=whole(0, 1000, what="steps"), default=5,
                        help="steps left out of each median")
    parser.add_argument("--trace-flush-s", type=real(0, 3600, what="seconds"),
                        default=FLUSH_EVERY_S,
                        help="time bound between trace parts, as the executor's flag (0: "
                             "every 10 steps, the rule before it; default %(default)s)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--traced-first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(Config.parse(args.worker), args.strategy, args.steps, Path(args.out),
               args.traced_first, args.measure, args.warmup, args.trace_flush_s)
        return 0
    out = Path(args.out or tempfile.mkdtemp(prefix="gradsync-exec-overhead-"))
    out.mkdir(parents=True, exist_ok=True)
    methods = ("steps", "runs") if args.method == "both" else (args.method,)
    rows = [row for cfg in map(Config.parse, args.configs) for method in methods
            for row in (step_repeats(out, cfg, args.strategy, args.steps, args.warmup,
                                     args.repeats, args.measure, args.trace_flush_s)
                        if method == "steps" else
                        run_repeats(out, cfg, args.strategy, args.steps, args.warmup,
                                    args.repeats))]
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "exec_overhead.csv", index=False)
    summary = summarise(frame)
    summary.to_csv(out / "exec_overhead_summary.csv", index=False)
    print(f"\nrecording overhead, {args.strategy}, {args.steps} steps (median after "
          f"{args.warmup}), {args.repeats} repeats per config; results in {out}")
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
