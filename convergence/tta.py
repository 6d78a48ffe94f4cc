"""Time-to-accuracy: steps to a target times the simulated iteration time, per strategy.

``time = sync_steps * penalty(strategy) * iteration_time(strategy)`` on the user's cluster:

- ``sync_steps``: steps ``sync`` needs to reach the target at this global batch (the one number
  that must come from the user's own training: a published recipe's epochs x dataset size /
  global batch, or their logs);
- ``penalty``: 1 for every synchronous strategy; for ``delayed`` with staleness ``d`` a row of a
  :class:`~convergence.penalty.PenaltyTable` (a convergence study, the user's runs, or the noisy
  quadratic model), with its interval;
- ``iteration_time``: the simulator's, through the one prediction path
  (:func:`simulator.api.simulate`), so a calibrated machine, a preset or a what-if cluster
  all work; with compute noise, the spread over ``seeds`` seeds is its interval.

The two intervals multiply into the time's; strategies are ranked by predicted time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from convergence.penalty import SYNCHRONOUS, PenaltyTable, nqm_penalty, read_penalty_csv
from simulator.api import simulate
from vocab.errors import SpecError
from vocab.strategies import STRATEGIES

COLUMNS = ("strategy", "staleness", "iteration_time_s", "iteration_lo_s", "iteration_hi_s",
           "steps", "steps_lo", "steps_hi", "time_s", "time_lo_s", "time_hi_s",
           "vs_sync", "penalty_source")


@dataclass(frozen=True)
class TimeToAccuracy:
    """Predicted wall-clock to the target per (strategy, staleness), fastest first."""

    frame: pd.DataFrame
    global_batch: int
    sync_steps: int

    def best(self) -> str:
        """The label of the fastest finite row (``delayed(d=2)``, ``bucketed``, ...)."""
        finite = self.frame[self.frame["time_s"].map(math.isfinite)]
        if finite.empty:
            return "none: every strategy diverges"
        row = finite.iloc[0]
        return row["strategy"] + (f"(d={row['staleness']})" if row["strategy"] == "delayed"
                                  else "")

    def table(self) -> pd.DataFrame:
        """Readable columns: times in hours, steps, vs sync."""
        f = self.frame
        return pd.DataFrame({
            "strategy": f["strategy"], "d": f["staleness"],
            "iter (ms)": (1e3 * f["iteration_time_s"]).round(2),
            "steps": f["steps"].round(0), "time (h)": (f["time_s"] / 3600).round(3),
            "interval (h)": [f"{lo / 3600:.3f}-{hi / 3600:.3f}"
                             for lo, hi in zip(f["time_lo_s"], f["time_hi_s"])],
            "vs sync": f["vs_sync"].round(3)})


def as_penalty_table(penalty: PenaltyTable | str | Path, stalenesses: Sequence[int],
                     global_batch: int) -> PenaltyTable:
    """``"nqm"`` (the noisy quadratic model at this global batch), a CSV path, or a table."""
    if isinstance(penalty, PenaltyTable):
        return penalty
    if str(penalty) == "nqm":
        return nqm_penalty(list(stalenesses), global_batch)
    return read_penalty_csv(penalty)


def time_to_accuracy(cluster: Any = "dgx1-v100", model: Any = "resnet50",
                     strategies: Sequence[str] = ("sync", "bucketed", "delayed"),
                     sync_steps: int | None = None, penalty: PenaltyTable | str | Path = "nqm",
                     staleness: Sequence[int] = (1, 2, 4), batch: int | None = None,
                     nodes: int | None = None, seeds: int = 1,
                     **simulate_kwargs: Any) -> TimeToAccuracy:
    """Rank ``strategies`` by predicted wall-clock to the target (see the module docstring).

    ``delayed`` is evaluated at every ``staleness``; ``simulate_kwargs`` go to
    :func:`simulator.api.simulate` (``transport``, ``progress``, ``devices_per_node``, ...).
    """
    if sync_steps is None or isinstance(sync_steps, bool) or not isinstance(sync_steps, int) \
            or sync_steps < 1:
        raise SpecError("sync_steps", sync_steps,
                        "the steps sync needs to reach the target at this global batch (>= 1)")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise SpecError("seeds", seeds, "a whole number of seeds >= 1")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise SpecError("strategies", unknown[0], f"one of {list(STRATEGIES)}")
    points = [(s, 0) for s in strategies if s != "delayed"]
    points += [("delayed", int(d)) for d in staleness] if "delayed" in strategies else []
    rows, global_batch = [], None
    for name, d in points:
        times = [simulate(cluster, model, batch, name, nodes, seed=seed,
                          staleness=d if name == "delayed" else None, **simulate_kwargs)
                 for seed in range(seeds)]
        global_batch = times[0].ranks * times[0].batch
        rows.append((name, d, [r.iteration_time_s for r in times]))
    table = as_penalty_table(penalty, [d for _, d in points if d], global_batch)
    frame = pd.DataFrame([_row(name, d, its, table, sync_steps, global_batch)
                          for name, d, its in rows], columns=COLUMNS[:-2] + COLUMNS[-1:])
    sync_time = frame.loc[frame["strategy"].isin(SYNCHRONOUS) & (frame["staleness"] == 0),
                          "time_s"]
    reference = float(frame.loc[frame["strategy"] == "sync", "time_s"].iloc[0]) \
        if "sync" in set(frame["strategy"]) else float(sync_time.min())
    frame.insert(len(COLUMNS) - 2, "vs_sync", reference / frame["time_s"])
    frame = frame.sort_values("time_s", kind="stable").reset_index(drop=True)
    return TimeToAccuracy(frame, int(global_batch), sync_steps)


def _row(name: str, d: int, iteration_s: list[float], table: PenaltyTable, sync_steps: int,
         global_batch: int) -> tuple:
    it, lo, hi = sum(iteration_s) / len(iteration_s), min(iteration_s), max(iteration_s)
    pen = table.lookup(d, global_batch) if name == "delayed" else table.lookup(0, global_batch)
    steps = (sync_steps * pen.penalty, sync_steps * pen.lo, sync_steps * pen.hi)
    return (name, d, it, lo, hi, *steps, steps[0] * it, steps[1] * lo, steps[2] * hi,
            pen.source)
