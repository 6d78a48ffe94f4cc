"""Cost of recording the executor's trace: per-step time with and without ``--no-trace``.

Run: ``python -m benchmarks.exec_overhead [--out DIR] [--repeats 7] [--steps 40]
[--configs resnet18-ci:64:1 resnet18-ci:16:2 ...] [--strategy sync]``. A config is
``MODEL:BATCH:RANKS``.

How it measures (the machine is shared, so single runs are noisy):

* **Hooks (per step).** For each config, ``--repeats`` pairs of real ``gradsync run`` jobs, one
  traced and one not, alternated (traced first in even pairs, untraced first in odd ones) so
  that drift in the machine's load hits both sides alike. A run's step time is the median over
  its steps after ``--warmup`` (the slowest rank of each step, as ``metrics.csv`` has it); a
  pair's overhead is ``traced / untraced - 1``. Reported: the median over pairs and the
  spread (min .. max over pairs).
* **Flush (amortised).** Writing the partial trace every ``flush_every`` steps happens between
  steps, outside the step time above. It is timed in this process: the model with the tracer
  attached runs ``flush_every`` steps (plus the non-hook rows a strategy adds), then
  :meth:`Tracer.flush` is timed; the median over ``--repeats`` flushes, divided by
  ``flush_every``, is the per-step share. ``total`` adds it to the hooks' median.

Prints one table; writes ``DIR/exec_overhead.csv`` (one row per pair) and
``DIR/exec_overhead_summary.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from executor.config import RunConfig
from executor.launch import launch
from executor.modelsrc import build_source
from executor.tracing import Tracer

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


def step_seconds(out: Path, cfg: Config, strategy: str, steps: int, warmup: int,
                 trace: bool) -> float:
    """Median per-step seconds (slowest rank per step, after ``warmup``) of one real run."""
    run = RunConfig(nprocs=cfg.ranks, model=cfg.model, strategy=strategy, batch=cfg.batch,
                    steps=steps, out=str(out), trace=trace)
    with contextlib.redirect_stdout(io.StringIO()):
        rc = launch(run, timeout_s=600)
    if rc != 0:
        raise RuntimeError(f"{cfg} (trace={trace}) failed with exit {rc}; see {out}")
    metrics = pd.read_csv(out / "metrics.csv")
    return float(metrics["step_s"].iloc[warmup:].median())


def hook_pairs(out: Path, cfg: Config, strategy: str, steps: int, warmup: int,
               repeats: int) -> list[dict]:
    """``repeats`` alternated traced/untraced pairs of runs of ``cfg``."""
    rows = []
    for i in range(repeats):
        order = (True, False) if i % 2 == 0 else (False, True)
        times = {trace: step_seconds(out / f"{cfg.model}-b{cfg.batch}-n{cfg.ranks}-{i}-"
                                     f"{'trace' if trace else 'notrace'}", cfg, strategy,
                                     steps, warmup, trace)
                 for trace in order}
        rows.append({"config": str(cfg), "pair": i, "traced_ms": 1e3 * times[True],
                     "untraced_ms": 1e3 * times[False],
                     "overhead_pct": 100 * (times[True] / times[False] - 1)})
        print(f"  {cfg} pair {i}: {rows[-1]['traced_ms']:.2f} vs "
              f"{rows[-1]['untraced_ms']:.2f} ms ({rows[-1]['overhead_pct']:+.1f} %)",
              flush=True)
    return rows


def flush_ms_per_step(cfg: Config, repeats: int, flush_every: int) -> float:
    """Milliseconds per step spent in :meth:`Tracer.flush`, amortised (see module doc)."""
    torch.set_num_threads(1)    # as each rank runs
    source = build_source(cfg.model)
    x, y = source.synthetic(0, cfg.batch)
    tracer = Tracer("bench", 0, time.perf_counter, True)
    tracer.attach(source.layers())
    costs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            for step in range(flush_every):
                tracer.begin_step(step)
                source.model.zero_grad(set_to_none=True)
                source.loss_fn(source.model(x), y).backward()
                now = time.perf_counter()
                for op, stream in (("data", "host"), ("loss", "compute"),
                                   ("allreduce", "comm"), ("wait", "host"),
                                   ("update", "compute")):
                    tracer.record(step, stream, op, op, now, now, 0 if op == "allreduce" else -1)
            t0 = time.perf_counter()
            tracer.flush(Path(folder))
            costs.append(time.perf_counter() - t0)
    tracer.close()
    return 1e3 * statistics.median(costs) / flush_every


def summarise(pairs: pd.DataFrame, flush_ms: dict[str, float]) -> pd.DataFrame:
    """One row per config: medians, spread over pairs, flush share and total."""
    rows = []
    for config, group in pairs.groupby("config", sort=False):
        untraced = group["untraced_ms"].median()
        hooks = group["overhead_pct"].median()
        flush_pct = 100 * flush_ms[config] / untraced
        rows.append({"config": config, "pairs": len(group),
                     "untraced_ms": round(untraced, 2),
                     "traced_ms": round(group["traced_ms"].median(), 2),
                     "hooks_pct_median": round(hooks, 2),
                     "hooks_pct_min": round(group["overhead_pct"].min(), 2),
                     "hooks_pct_max": round(group["overhead_pct"].max(), 2),
                     "flush_pct": round(flush_pct, 2),
                     "total_pct": round(hooks + flush_pct, 2)})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every config and print the summary table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exec_overhead")
    parser.add_argument("--out", default=None, help="run directories and CSVs (default: tmp)")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="MODEL:BATCH:RANKS (default: %(default)s)")
    parser.add_argument("--strategy", default="sync")
    parser.add_argument("--repeats", type=int, default=7, help="pairs of runs per config")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of each median")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="gradsync-exec-overhead-"))
    out.mkdir(parents=True, exist_ok=True)
    configs = [Config.parse(c) for c in args.configs]
    flush_every = RunConfig.__dataclass_fields__["flush_every"].default
    pairs, flush_ms = [], {}
    for cfg in configs:
        pairs.extend(hook_pairs(out, cfg, args.strategy, args.steps, args.warmup,
                                args.repeats))
        flush_ms[str(cfg)] = flush_ms_per_step(cfg, args.repeats, flush_every)
    frame = pd.DataFrame(pairs)
    frame.to_csv(out / "exec_overhead.csv", index=False)
    summary = summarise(frame, flush_ms)
    summary.to_csv(out / "exec_overhead_summary.csv", index=False)
    print(f"\nrecording overhead, {args.strategy}, {args.steps} steps (median after "
          f"{args.warmup}), {args.repeats} alternated pairs per config; results in {out}")
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
