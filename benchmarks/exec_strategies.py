"""Per-iteration time of every strategy and of DDP, measured for real under MPI on this machine.

Run: ``python -m benchmarks.exec_strategies [--out DIR] [--models resnet18-ci alexnet-ci]
[--ranks 2 4] [--steps 30] [--batch 16]``. Prints a table (median step time after the first
step, slowest rank per step; synthetic data) and the tracing overhead (sync with and without
``--no-trace``); writes ``DIR/exec_strategies.csv``. On 2 shared cores overlap is not expected
to pay: compute and shared-memory communication compete for the same cores.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Sequence

import pandas as pd

from executor.config import RunConfig, exec_strategy
from executor.launch import launch
from vocab.argtypes import OneLineParser, whole

STRATEGIES = ("sync", "layerwise", "bucketed", "delayed", "crossiter", "ddp")


def measure(out: Path, model: str, nprocs: int, strategy: str, steps: int, batch: int,
            trace: bool = True) -> float | None:
    """Median per-step seconds of one run (None when it failed)."""
    name = f"{model}-n{nprocs}-{strategy}{'' if trace else '-notrace'}"
    cfg = RunConfig(nprocs=nprocs, model=model, strategy=exec_strategy(strategy, bucket_mb=1.0),
                    batch=batch, steps=steps, out=str(out / name), trace=trace,
                    flush_every=steps)
    if launch(cfg, timeout_s=600) != 0:
        return None
    return json.loads((out / name / "run.json").read_text())["results"]["median_step_s"]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table; 0 unless a run failed."""
    parser = OneLineParser(prog="python -m benchmarks.exec_strategies")
    parser.add_argument("--out", default=None)
    parser.add_argument("--models", nargs="+", default=["resnet18-ci", "alexnet-ci"])
    parser.add_argument("--ranks", nargs="+", type=whole(1, 64, what="ranks"),
                        default=[2, 4])
    parser.add_argument("--steps", type=whole(2, 100_000, what="steps"), default=30)
    parser.add_argument("--batch", type=whole(1, 2**16, what="samples per rank"), default=16)
    parser.add_argument("--overhead-repeats", type=whole(1, 1000, what="repeats"),
                        default=3)
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="gradsync-exec-bench-"))
    rows = []
    for model in args.models:
        for n in args.ranks:
            for strategy in STRATEGIES:
                step_s = measure(out, model, n, strategy, args.steps, args.batch)
                rows.append({"model": model, "ranks": n, "strategy": strategy,
                             "median_step_ms": None if step_s is None else 1e3 * step_s})
    table = pd.DataFrame(rows)
    table.to_csv(out / "exec_strategies.csv", index=False)
    print(table.pivot_table(index=["model", "ranks"], columns="strategy",
                            values="median_step_ms").round(1).to_string())
    print(overhead(out / "overhead", args.models[0], args.ranks[0], args.steps, args.batch,
                   args.overhead_repeats))
    return 0 if table["median_step_ms"].notna().all() else 1


def overhead(out: Path, model: str, nprocs: int, steps: int, batch: int, repeats: int) -> str:
    """Tracing overhead: sync with and without the trace, alternated, medians compared."""
    with_trace, without = [], []
    for i in range(repeats):
        with_trace.append(measure(out / f"r{i}", model, nprocs, "sync", steps, batch, True))
        without.append(measure(out / f"r{i}", model, nprocs, "sync", steps, batch, False))
    on, off = pd.Series(with_trace).median(), pd.Series(without).median()
    return (f"tracing overhead ({model}, {nprocs} ranks, sync): {1e3 * on:.2f} ms traced vs "
            f"{1e3 * off:.2f} ms untraced per step: {100 * (on / off - 1):+.1f} %")


if __name__ == "__main__":
    raise SystemExit(main())
