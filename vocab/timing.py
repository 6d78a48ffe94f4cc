"""A run's iteration time: one definition for simulated and measured runs alike.

**Warm-up.** The first iterations of a run are not its steady state: the first pays allocation
and cache warm-up, the second still settles, and ``delayed`` makes no update in its first
``staleness`` iterations (so those start early). :func:`warmup_iterations` says how many are
left out; every iteration from the first + that many on is *steady*.

**Duration of an iteration.** On one rank, the gap from its start to the start of the rank's
next iteration: everything the rank spends on it, including what falls between the last traced
interval and the next step (a flush, a data copy). For a rank's last iteration, which has no
next start, its ``end_s - start_s``.

**Statistic: the mean** over ranks and steady iterations. The mean is the run's throughput,
wall clock per iteration, which is what the user pays for ``k`` iterations (``k`` times it).
A pipelined strategy can settle into a periodic pattern: ``delayed``, communication-bound,
alternates a long wait with none (``a, b, a, b``); the median then picks one of the two, and
only the mean, ``(a + b) / 2``, prices the run right. Noise from launch to launch (another
process on the machine, a slow start) is handled by repeating runs, not by the statistic.
Robust statistics still have their place beside it, e.g. calibration's step-to-step CV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vocab.strategies.plan import StrategySpec

#: Iterations every run leaves out at its start (allocation and cache warm-up, then settling).
BASE_WARMUP = 2
#: Columns :func:`iteration_time_s` reads (rows may be a trace: many per iteration).
TIMING_COLUMNS = ("rank", "iteration", "start_s", "end_s")


def warmup_iterations(spec: StrategySpec) -> int:
    """Iterations left out at the start of a run of ``spec``: 2, plus ``staleness`` for
    ``delayed`` (it makes no update in its first ``d`` iterations)."""
    return BASE_WARMUP + (spec.staleness if spec.name == "delayed" else 0)


def iteration_durations(frame: pd.DataFrame, warmup: int) -> pd.DataFrame:
    """One row per (rank, steady iteration) with its ``duration_s`` (see the module docstring).

    ``frame`` has the columns ``rank, iteration, start_s, end_s``, one row per (rank,
    iteration) or many (a trace: the iteration spans its earliest start to its latest end).
    Steady iterations are those ``>= first + warmup``, ``first`` the run's first iteration.
    """
    missing = [c for c in TIMING_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"timing rows lack columns {missing}; expected {list(TIMING_COLUMNS)}")
    if not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup: got {warmup!r}, expected a whole number >= 0")
    spans = (frame.groupby(["rank", "iteration"], sort=True)
             .agg(start_s=("start_s", "min"), end_s=("end_s", "max")).reset_index())
    if spans.empty:
        return spans.assign(duration_s=pd.Series(dtype=float))
    next_start = spans.groupby("rank")["start_s"].shift(-1)
    spans["duration_s"] = (next_start - spans["start_s"]).fillna(spans["end_s"] - spans["start_s"])
    first = spans["iteration"].min()
    return spans[spans["iteration"] >= first + warmup].reset_index(drop=True)


def iteration_time_s(frame: pd.DataFrame, warmup: int) -> float:
    """The run's iteration time: the mean over ranks and steady iterations of each iteration's
    duration (see the module docstring). ValueError when no iteration is steady."""
    durations = iteration_durations(frame, warmup)["duration_s"]
    if durations.empty:
        raise ValueError(f"no iteration after a warm-up of {warmup}: nothing to time")
    return float(durations.mean())
