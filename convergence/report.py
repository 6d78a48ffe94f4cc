"""Results of a convergence study: curves with a band over seeds, steps- and samples-to-target
with confidence intervals, and the staleness penalty against ``d`` and ranks.

Everything here reads the study's tidy table (``curves.csv``, see :mod:`convergence.study`):
one row per evaluation of each run. A *setup* is (model, strategy, staleness, ranks, global
batch); its seeds are independent runs. Intervals are 95 % bootstrap intervals over seeds
(:data:`BOOTSTRAP` resamples, a fixed generator, so a report is reproducible).

A run whose accuracy never reaches the target, or whose loss went non-finite (diverged), did
not reach the target: its steps are ``inf``, never an error. A setup with any such seed has no
finite mean (averaging the lucky seeds would flatter it); :func:`target_table` reports how
many seeds got there.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from convergence.penalty import SYNCHRONOUS, PenaltyTable, penalty_from_steps
from vocab.errors import SpecError
from vocab.files import read_text

BOOTSTRAP = 2000
SETUP = ["model", "strategy", "staleness", "ranks", "global_batch"]
#: Where the study this repository ran is stored (read by notebook 07 without retraining).
DATA_DIR = Path(__file__).resolve().parent / "data"
STUDY_CSV = DATA_DIR / "cnn_digits_study.csv"


def read_curves(path: str | Path = STUDY_CSV) -> pd.DataFrame:
    """A study's tidy table: a ``curves.csv`` path, a study directory, or the stored study."""
    path = Path(path)
    if path.is_dir():
        path = path / "curves.csv"
    try:
        curves = pd.read_csv(io.StringIO(read_text(path, "a study's curves.csv")))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SpecError("curves", str(path), f"a study's curves.csv ({exc})") from None
    missing = [c for c in SETUP + ["seed", "step", "test_accuracy"] if c not in curves.columns]
    if missing:
        raise SpecError("curves", str(path), f"the columns of a study's table (missing "
                        f"{missing})")
    return curves


def label(strategy: str, staleness: int) -> str:
    """``delayed d=2`` for delayed, the name for the others (a curve's legend)."""
    return f"delayed d={int(staleness)}" if strategy == "delayed" else strategy


def bootstrap_mean(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean and 95 % bootstrap interval of the mean (``inf`` when any value is)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    if not np.all(np.isfinite(values)):
        return math.inf, math.inf, math.inf
    if len(values) == 1:
        return float(values[0]), float(values[0]), float(values[0])
    means = rng.choice(values, (BOOTSTRAP, len(values))).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def seed_band(curves: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per setup and step: the mean of ``metric`` over seeds and its band (min and max over
    seeds: with three seeds, the honest spread). Non-finite values (a diverged run) count as
    ``nan`` in the mean and widen nothing."""
    if metric not in curves.columns:
        raise SpecError("metric", metric, f"a column of the table ({list(curves.columns)})")
    values = curves.assign(value=curves[metric].where(np.isfinite(curves[metric])))
    band = (values.groupby(SETUP + ["step"])["value"]
            .agg(mean="mean", lo="min", hi="max", seeds="count").reset_index())
    band["label"] = [label(s, d) for s, d in zip(band["strategy"], band["staleness"])]
    return band


def run_targets(curves: pd.DataFrame, target: float,
                metric: str = "test_accuracy") -> pd.DataFrame:
    """Per run: the first evaluated step at which ``metric`` reaches ``target`` (accuracy: at
    or above; a loss: at or below), and the samples seen by then; ``inf`` when it never does
    or the run diverged (non-finite loss before it got there)."""
    higher = "accuracy" in metric
    rows = []
    for values, run in curves.groupby(SETUP + ["seed"], sort=False):
        run = run.sort_values("step")
        value = run[metric].to_numpy(float)
        hit = value >= target if higher else value <= target
        broken = ~np.isfinite(run["test_loss"].to_numpy(float)) if "test_loss" in run else \
            np.zeros(len(run), bool)
        first_hit = int(np.argmax(hit)) if hit.any() else None
        first_broken = int(np.argmax(broken)) if broken.any() else None
        reached = first_hit is not None and (first_broken is None or first_hit < first_broken)
        step = float(run["step"].iloc[first_hit]) if reached else math.inf
        rows.append({**dict(zip(SETUP + ["seed"], values)), "steps_to_target": step,
                     "samples_to_target": step * values[4], "diverged": first_broken is not None})
    return pd.DataFrame(rows)


def target_table(curves: pd.DataFrame, target: float, metric: str = "test_accuracy",
                 seed: int = 0) -> pd.DataFrame:
    """Per setup: steps- and samples-to-target, mean over seeds with a 95 % bootstrap interval,
    and how many seeds reached it (``inf`` steps: some seed did not)."""
    rng = np.random.default_rng(seed)
    runs = run_targets(curves, target, metric)
    rows = []
    for values, group in runs.groupby(SETUP, sort=True):
        steps = bootstrap_mean(group["steps_to_target"].to_numpy(), rng)
        batch = values[4]
        rows.append({**dict(zip(SETUP, values)), "label": label(values[1], values[2]),
                     "steps": steps[0], "steps_lo": steps[1], "steps_hi": steps[2],
                     "samples": steps[0] * batch, "samples_lo": steps[1] * batch,
                     "samples_hi": steps[2] * batch,
                     "reached": int(np.isfinite(group["steps_to_target"]).sum()),
                     "seeds": len(group)})
    return pd.DataFrame(rows)


def penalty_by_ranks(curves: pd.DataFrame, target: float,
                     metric: str = "test_accuracy") -> pd.DataFrame:
    """The staleness penalty (steps-to-target of ``delayed`` at ``d`` over the synchronous
    strategies') per model and ranks, with its 95 % bootstrap interval over seeds; ``inf``:
    some seed at that ``d`` never reached the target."""
    runs = run_targets(curves, target, metric)
    runs = runs[runs["strategy"].isin(SYNCHRONOUS) | (runs["strategy"] == "delayed")]
    frames = []
    for (model, ranks), group in runs.groupby(["model", "ranks"]):
        steps = group.assign(steps_to_target=group["steps_to_target"].replace(math.inf, -1))
        table = penalty_from_steps(steps).frame()
        if not table.empty:
            frames.append(table.assign(model=model, ranks=ranks))
    columns = ["model", "ranks", "global_batch", "staleness", "penalty", "lo", "hi"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].sort_values(
        ["model", "ranks", "staleness"]).reset_index(drop=True)


def penalty_table(curves: pd.DataFrame, target: float, metric: str = "test_accuracy",
                  model: str | None = None) -> PenaltyTable:
    """The measured penalty as a :class:`~convergence.penalty.PenaltyTable` (per staleness and
    global batch), ready for :func:`convergence.tta.time_to_accuracy` (``penalty=``)."""
    runs = run_targets(curves, target, metric)
    if model is not None:
        runs = runs[runs["model"] == model]
    runs = runs[runs["strategy"].isin(SYNCHRONOUS) | (runs["strategy"] == "delayed")]
    steps = runs.assign(steps_to_target=runs["steps_to_target"].replace(math.inf, -1))
    table = penalty_from_steps(steps)
    source = (f"convergence study of {', '.join(sorted(set(runs['model'])))}, target "
              f"{metric.replace('_', ' ')} {target}")
    return PenaltyTable(tuple(r.__class__(**{**r.__dict__, "workload": ",".join(
        sorted(set(runs["model"]))), "source": source}) for r in table.rows))


def plot_curves(curves: pd.DataFrame, metric: str = "test_accuracy", ranks: int | None = None,
                x: str = "step", ax=None):
    """``metric`` against ``x`` (``step`` or ``samples_seen``) per strategy and staleness: the
    mean over seeds with its band; one panel (``ranks`` picks the rank count, default the
    smallest). Colours from the shared palette. Returns the Figure."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - plotting is optional for the tables
    from simulator.palette import strategy_colour  # noqa: PLC0415

    ranks = int(curves["ranks"].min()) if ranks is None else ranks
    sub = curves[curves["ranks"] == ranks]
    if sub.empty:
        raise SpecError("ranks", ranks, f"one of {sorted(set(curves['ranks']))}")
    if x == "samples_seen":
        sub = sub.assign(step=sub["samples_seen"])
    band = seed_band(sub, metric)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.8))
    order = sorted(set(zip(band["strategy"], band["staleness"])),
                   key=lambda sd: (sd[0] != "sync", sd[0], sd[1]))
    styles = ("-", "--", ":", "-.")
    for strategy, d in order:
        one = band[(band["strategy"] == strategy) & (band["staleness"] == d)]
        colour = strategy_colour(strategy)      # one colour per strategy; staleness by line style
        rank = sorted(dd for s, dd in order if s == strategy).index(d)
        ax.plot(one["step"], one["mean"], color=colour, label=label(strategy, d), lw=1.6,
                ls=styles[rank % len(styles)])
        ax.fill_between(one["step"], one["lo"], one["hi"], color=colour, alpha=0.18, lw=0)
    ax.set_xlabel("samples seen" if x == "samples_seen" else "step")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{', '.join(sorted(set(sub['model'])))}, {ranks} ranks "
                 f"(band: min-max over seeds)", fontsize=10)
    ax.legend(fontsize="x-small")
    return fig


def plot_penalty(penalty: pd.DataFrame, ax=None):
    """The staleness penalty against ``d``, one line per rank count, with its interval;
    a ``d`` that never reached the target is marked at the top. Returns the Figure."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from simulator.palette import SERIES_COLOURS  # noqa: PLC0415

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.6))
    finite = penalty[np.isfinite(penalty["penalty"])]
    top = float(finite["hi"].max()) * 1.15 if len(finite) else 2.0
    for i, (ranks, group) in enumerate(penalty.groupby("ranks")):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        ok = group[np.isfinite(group["penalty"])]
        ax.errorbar(ok["staleness"], ok["penalty"],
                    yerr=[ok["penalty"] - ok["lo"], ok["hi"] - ok["penalty"]],
                    color=colour, marker="o", capsize=3,
                    label=f"{ranks} ranks (global batch {int(group['global_batch'].iloc[0])})")
        never = group[~np.isfinite(group["penalty"])]
        ax.scatter(never["staleness"], [top] * len(never), marker="x", color=colour, s=50)
    ax.axhline(1.0, color="#8c8c8c", lw=0.8, ls="--")
    ax.set_xticks(sorted(set(int(d) for d in penalty["staleness"])))
    ax.set_xlabel("staleness d")
    ax.set_ylabel("steps to target / sync's")
    ax.set_title("Staleness penalty (x: did not reach the target)", fontsize=10)
    ax.legend(fontsize="x-small")
    return fig
