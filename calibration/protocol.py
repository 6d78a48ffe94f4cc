"""The held-out protocol, end to end on this machine: measure, fit on little, predict the rest.

``python -m calibration.protocol --out DIR`` (or ``gradsync calibrate --protocol --out DIR``):

1. ``bench-net`` on 2 and 4 ranks (collectives, overlap test, core sharing);
2. one-rank executor runs of every model (compute profiles, no communication);
3. the fit runs: ``sync`` of one model (``FIT_MODEL``) on 2 ranks;
4. ``calibrate`` on 1-3 only;
5. the held-out runs: every model x every strategy x 2 and 4 ranks except the fit runs (other
   models, other strategies including ``delayed`` and ``bucketed``, another rank count),
   each predicted by ``validate``; report, JSON and plot in ``DIR``.

Executor runs are launched as subprocesses (``mpiexec -n N python -m executor ...``), each
with a timeout; calibration never imports the executor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from calibration.benchnet import find_mpiexec, run_bench_net
from calibration.calibrate import calibrate
from calibration.runs import RunError
from calibration.validate import Report, plot, validate

DEFAULT_OUT = "calibration-protocol"
MODELS = ("resnet18-ci", "alexnet-ci", "bert-ci")
FIT_MODEL = "resnet18-ci"
STRATEGIES = ("sync", "layerwise", "bucketed", "delayed")
RANKS = (2, 4)
BATCH = {"bert-ci": 8}
DEFAULT_BATCH = 16
STEPS = 14
RUN_TIMEOUT_S = 240.0


def executor_command(nranks: int, model: str, strategy: str, batch: int, steps: int,
                     out: Path) -> list[str]:
    """The executor's command line (every rank runs ``python -m executor``)."""
    return [find_mpiexec(), "-n", str(nranks), sys.executable, "-m", "executor",
            "--model", model, "--strategy", strategy, "--batch", str(batch),
            "--steps", str(steps), "--data", "synthetic", "--out", str(out)]


def run_executor(nranks: int, model: str, strategy: str, batch: int, out: Path,
                 steps: int = STEPS, timeout_s: float = RUN_TIMEOUT_S) -> Path:
    """One executor run into ``out`` (reused when it already finished there)."""
    if (out / "trace.parquet").exists():
        return out
    command = executor_command(nranks, model, strategy, batch, steps, out)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        raise RunError(f"executor run {out.name} took longer than {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RunError(f"executor run {out.name} failed (exit {done.returncode}): {tail[0]}")
    return out


def run_protocol(out: Path, models: Sequence[str] = MODELS, fit_model: str = FIT_MODEL,
                 strategies: Sequence[str] = STRATEGIES, ranks: Sequence[int] = RANKS,
                 steps: int = STEPS, log=print) -> Report:
    """Run the whole protocol into ``out``; returns the validation report of held-out runs."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    benches = []
    for p in ranks:
        log(f"[{time.perf_counter() - started:6.0f} s] bench-net -n {p}")
        if not (out / f"bench-n{p}" / "bench.csv").exists():
            run_bench_net(p, out / f"bench-n{p}")
        benches.append(out / f"bench-n{p}")
    runs_dir = out / "runs"
    profile_runs, fit_runs, held_out = [], [], []
    for model in models:
        batch = BATCH.get(model, DEFAULT_BATCH)
        log(f"[{time.perf_counter() - started:6.0f} s] profile run {model} on 1 rank")
        profile_runs.append(run_executor(1, model, "sync", batch, runs_dir / f"{model}-n1",
                                         steps))
        for p in ranks:
            for strategy in strategies:
                path = runs_dir / f"{model}-{strategy}-n{p}"
                log(f"[{time.perf_counter() - started:6.0f} s] {path.name}")
                run_executor(p, model, strategy, batch, path, steps)
                is_fit = model == fit_model and strategy == "sync" and p == min(ranks)
                (fit_runs if is_fit else held_out).append(path)
    fitted = out / "fitted.yaml"
    log(f"[{time.perf_counter() - started:6.0f} s] calibrate on {len(benches)} benchmarks, "
        f"{len(profile_runs)} profile runs, {len(fit_runs)} fit run(s)")
    calibrate([*benches, *profile_runs, *fit_runs], fitted, overwrite=True)
    report = validate(fitted, held_out)
    plot(report, out / "predicted_vs_measured.png")
    wall_s = time.perf_counter() - started
    summary = {**report.to_json(), "wall_s": wall_s,
               "command": f"python -m calibration.protocol --out {out}",
               "fit_set": [str(p) for p in [*benches, *profile_runs, *fit_runs]],
               "held_out": [str(p) for p in held_out]}
    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.txt").write_text(report.table() + f"\nwall time {wall_s:.0f} s\n")
    log(f"[{wall_s:6.0f} s] done")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m calibration.protocol``."""
    parser = argparse.ArgumentParser(prog="python -m calibration.protocol", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--fit-model", default=FIT_MODEL)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    report = run_protocol(Path(args.out), args.models.split(","), args.fit_model,
                          steps=args.steps)
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
