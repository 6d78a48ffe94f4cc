"""A convergence study: every (model, strategy, staleness, ranks, seed) trained for real.

:func:`run_study` trains each setup with the executor (``gradsync run``, the real strategies
under MPI, one subprocess per run, so this module imports neither torch nor mpi4py), evaluating
on the held-out split every ``eval_every`` steps, and writes into ``OUT``:

- ``runs/NAME/``: each executor run (``run.json``, ``metrics.csv``);
- ``curves.csv``: the tidy table, one row per evaluation of each run (model, strategy,
  staleness, ranks, global batch, lr, seed, step, samples seen, train loss, test loss, test
  accuracy);
- ``steps.csv``: steps- and samples-to-target per run (``-1``: never reached);
- ``penalty.csv``: the staleness penalty per model and global batch
  (:func:`convergence.penalty.penalty_from_steps`), readable by ``gradsync tta --penalty``;
- ``study.json``: the study's settings, every default explicit.

It is resumable: a run whose ``run.json`` says ``ok`` is kept and not repeated; a run an
interruption left half-written is moved aside (``NAME.interrupted``, nothing is deleted) and
run again.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from convergence.penalty import SYNCHRONOUS, penalty_from_steps
from executor.config import scheduled_lr
from vocab.errors import GradsyncError, SpecError
from vocab.jobs import run_checked
from vocab.outpath import atomic_write, check_output, check_writable, write_text_atomic
from vocab.strategies import STRATEGIES

STUDY_FILE = "study.json"
RUN_TIMEOUT_S = 900
#: The data each workload trains on when the plan says ``data="auto"`` (nothing downloads).
DEFAULT_DATA = {"mlp-digits": "digits", "cnn-digits": "digits", "tiny-mlp": "digits",
                "tiny-cnn": "digits", "transformer-modadd": "modadd:23", "nqm": "synthetic"}


class StudyError(GradsyncError):
    """A run of the study failed, or the study's inputs cannot be trained."""


@dataclass(frozen=True)
class StudyPlan:
    """What to train. ``lr`` is per ``base_batch`` global samples; with ``linear_scaling`` each
    run's lr is ``lr * global_batch / base_batch`` (Goyal et al. 2017's rule), and with
    ``warmup_steps`` it ramps up linearly over those first steps (the executor applies both:
    :func:`executor.config.scheduled_lr`). ``data="auto"`` trains each model on its own data
    (:data:`DEFAULT_DATA`). ``delayed`` at staleness 0 is ``sync`` (its runs stand for it)."""

    models: tuple[str, ...] = ("mlp-digits",)
    strategies: tuple[str, ...] = ("sync", "layerwise", "bucketed", "delayed")
    staleness: tuple[int, ...] = (1, 2, 4)
    ranks: tuple[int, ...] = (2,)
    seeds: int = 2
    batch: int = 16                      # per rank
    steps: int = 200
    eval_every: int = 10
    lr: float = 0.02
    momentum: float = 0.9
    base_batch: int = 32
    linear_scaling: bool = False
    target: float = 0.9                  # test accuracy
    data: str = "auto"
    warmup_steps: int = 0
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad:
            raise SpecError("strategies", bad[0], f"one of {list(STRATEGIES)}")
        for name in ("seeds", "batch", "steps", "eval_every", "base_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(name, value, "a whole number >= 1")
        if any(d < 0 for d in self.staleness):
            raise SpecError("staleness", min(self.staleness), "staleness >= 0")
        if any(p < 1 for p in self.ranks):
            raise SpecError("ranks", min(self.ranks), "ranks >= 1")
        if not 0.0 < self.target <= 1.0:
            raise SpecError("target", self.target, "a test accuracy in (0, 1]")
        if not self.lr > 0:
            raise SpecError("lr", self.lr, "a learning rate > 0")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or self.warmup_steps < 0:
            raise SpecError("warmup_steps", self.warmup_steps, "a whole number >= 0")
        unknown = [m for m in self.models if self.data == "auto" and m not in DEFAULT_DATA]
        if unknown:
            raise SpecError("data", "auto", f"--data for model {unknown[0]} (auto knows "
                            f"{', '.join(DEFAULT_DATA)})")

    def lr_for(self, ranks: int) -> float:
        """The peak learning rate of a run on ``ranks`` ranks (after warm-up)."""
        return scheduled_lr(self.lr, self.warmup_steps, ranks * self.batch,
                            self.base_batch if self.linear_scaling else 0, self.warmup_steps)

    def data_for(self, model: str) -> str:
        """The data ``model`` trains on."""
        return DEFAULT_DATA[model] if self.data == "auto" else self.data

    @property
    def schedule(self) -> str:
        """The learning-rate schedule in words (a column of the tidy table)."""
        parts = [f"linear scaling per {self.base_batch}" if self.linear_scaling else "constant"]
        parts += [f"warm-up {self.warmup_steps}"] if self.warmup_steps else []
        return ", ".join(parts)


@dataclass(frozen=True)
class RunKey:
    """One run of the study."""

    model: str
    strategy: str
    staleness: int
    ranks: int
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name."""
        d = f"-d{self.staleness}" if self.strategy == "delayed" else ""
        return f"{self.model}-{self.strategy}{d}-n{self.ranks}-s{self.seed}"


def plan_runs(plan: StudyPlan) -> list[RunKey]:
    """Every run of ``plan``, delayed once per staleness, in a stable order."""
    keys = []
    for model in plan.models:
        for ranks in plan.ranks:
            for seed in range(plan.seeds):
                for strategy in plan.strategies:
                    ds = [d for d in plan.staleness if d > 0] if strategy == "delayed" \
                        else (0,)
                    keys += [RunKey(model, strategy, d, ranks, seed) for d in ds]
    return keys


def run_command(plan: StudyPlan, key: RunKey, out: Path) -> list[str]:
    """The ``gradsync run`` command line of one run."""
    cmd = [sys.executable, "-m", "gradsync", "run", "-n", str(key.ranks), "--model", key.model,
           "--strategy", key.strategy, "--batch", str(plan.batch), "--steps", str(plan.steps),
           "--data", plan.data_for(key.model), "--seed", str(key.seed), "--lr", repr(plan.lr),
           "--momentum", repr(plan.momentum), "--eval-every", str(plan.eval_every),
           "--warmup-steps", str(plan.warmup_steps), "--no-trace", "--out", str(out),
           *plan.extra_args]
    if plan.linear_scaling:
        cmd += ["--base-batch", str(plan.base_batch)]
    if key.strategy == "delayed":
        cmd += ["--staleness", str(key.staleness)]
    return cmd


def finished(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a run that ended well (kept on resume)."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("status") == "ok"


def run_study(plan: StudyPlan, out: str | Path, progress: bool = True,
              runner: Callable[[list[str]], int] | None = None) -> pd.DataFrame:
    """Train every run not already finished in ``out``, then write the tables; returns the
    curves. ``runner(command) -> exit status`` defaults to a subprocess with a timeout."""
    out = Path(out)
    _check_study_dir(out, plan)
    runner = runner or _subprocess_runner
    keys = plan_runs(plan)
    todo = [k for k in keys if not finished(out / "runs" / k.name)]
    for key in _progress(todo, progress, len(keys)):
        run_dir = out / "runs" / key.name
        if run_dir.exists():
            _move_aside(run_dir)
        status = runner(run_command(plan, key, run_dir))
        if isinstance(status, str):      # the run refused its settings: the executor's line
            raise StudyError(f"run {key.name}: {status}")
        if status != 0:
            raise StudyError(f"run {key.name} failed with exit status {status}; see "
                             f"{run_dir}/run.json (rerun the same command to resume)")
    curves = collect_curves(plan, out, keys)
    write_tables(plan, out, curves)
    return curves


def _check_study_dir(out: Path, plan: StudyPlan) -> None:
    """A study directory holds this study or nothing: another study's folder is refused."""
    record = out / STUDY_FILE
    settings = _settings(plan)
    if not record.is_file():        # new, empty, or refused (a file, under a file, another's)
        check_output(out, kind="dir")
    else:
        check_writable(out)
        try:
            old = json.loads(record.read_text())
        except ValueError:
            raise StudyError(f"{record}: not JSON; expected a study record") from None
        if not isinstance(old, dict) or old.get("plan") != settings["plan"]:
            raise StudyError(f"{out} holds a study with other settings ({record}); pick "
                             "another --out, or rerun with the same settings to resume")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record, json.dumps(settings, indent=2))


def _settings(plan: StudyPlan) -> dict:
    return {"kind": "gradsync convergence study", "plan": json.loads(json.dumps(asdict(plan)))}


def _move_aside(run_dir: Path) -> None:
    target, n = run_dir.with_name(run_dir.name + ".interrupted"), 1
    while target.exists():
        n += 1
        target = run_dir.with_name(f"{run_dir.name}.interrupted{n}")
    shutil.move(str(run_dir), str(target))


def _subprocess_runner(command: list[str]) -> int | str:
    """Exit status of the run; for exit 2 (settings refused) the executor's one-line reason.

    The run's own launcher forwards a signal to its MPI job; :func:`run_checked` stops the
    study with it.
    """
    done = run_checked(command, "a convergence run", timeout_s=RUN_TIMEOUT_S)
    if done.timed_out:
        return 124
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if done.returncode == 2 and lines:
        return lines[-1].removeprefix("gradsync: ").removeprefix("error: ")
    return done.returncode


def _progress(items: list[RunKey], enabled: bool, total: int):
    if not enabled:
        return items
    from tqdm import tqdm  # noqa: PLC0415 - a display nicety, loaded only when shown
    return tqdm(items, desc="convergence runs", unit="run", initial=total - len(items),
                total=total)


def collect_curves(plan: StudyPlan, out: Path, keys: Sequence[RunKey]) -> pd.DataFrame:
    """The tidy table: one row per evaluation of each run."""
    frames = []
    for key in keys:
        metrics = pd.read_csv(out / "runs" / key.name / "metrics.csv")
        train = metrics["loss"].rolling(plan.eval_every, min_periods=1).mean()
        rows = metrics.assign(train_loss=train).dropna(subset=["test_accuracy"])
        global_batch = key.ranks * plan.batch
        frames.append(pd.DataFrame({
            "model": key.model, "strategy": key.strategy, "staleness": key.staleness,
            "ranks": key.ranks, "global_batch": global_batch, "lr": plan.lr_for(key.ranks),
            "lr_schedule": plan.schedule, "seed": key.seed, "step": rows["step"] + 1,
            "samples_seen": (rows["step"] + 1) * global_batch,
            "train_loss": rows["train_loss"], "test_loss": rows.get("test_loss"),
            "test_accuracy": rows["test_accuracy"]}))
    return pd.concat(frames, ignore_index=True)


def steps_to_target(curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run: the first evaluated step with test accuracy >= ``target`` (-1: never)."""
    keys = ["model", "strategy", "staleness", "ranks", "global_batch", "seed"]
    rows = []
    for values, run in curves.groupby(keys, sort=False):
        hit = run[run["test_accuracy"] >= target]
        step = int(hit["step"].iloc[0]) if len(hit) else -1
        rows.append({**dict(zip(keys, values)), "steps_to_target": step,
                     "samples_to_target": step * values[4] if step > 0 else -1})
    return pd.DataFrame(rows)


def write_tables(plan: StudyPlan, out: Path, curves: pd.DataFrame) -> None:
    """``curves.csv``, ``steps.csv`` and ``penalty.csv`` (see the module docstring)."""
    _write_csv(curves, out / "curves.csv")
    steps = steps_to_target(curves, plan.target)
    _write_csv(steps, out / "steps.csv")
    # Every synchronous strategy is the same SGD: their runs are all staleness-0 samples.
    frames = []
    for model, group in steps.groupby("model"):
        rows = group[group["strategy"].isin(SYNCHRONOUS) | (group["strategy"] == "delayed")]
        table = penalty_from_steps(rows).frame()
        if not table.empty:
            frames.append(table.assign(workload=model, source=f"gradsync convergence study "
                                       f"{out}, target test accuracy {plan.target}"))
    columns = ["staleness", "global_batch", "penalty", "lo", "hi", "workload", "source"]
    penalty = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    _write_csv(penalty.rename(columns={"lo": "penalty_lo", "hi": "penalty_hi"}),
               out / "penalty.csv")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_write(path) as tmp:     # an interrupted study never leaves half a table
        frame.to_csv(tmp, index=False)
