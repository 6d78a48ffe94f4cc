"""The staleness penalty: steps-to-target of ``delayed`` relative to ``sync``, with its interval.

``sync``, ``layerwise``, ``bucketed`` and ``crossiter`` are the same SGD (the same update from
the same gradients, only sent at other times), so they need the same number of steps to reach a
target; ``delayed`` with staleness ``d`` applies gradients ``d`` steps old and may need more (or
diverge at sync's learning rate). A :class:`PenaltyTable` holds that ratio per staleness and
global batch, with a confidence interval, from one of:

- a convergence study's tidy table (:func:`penalty_from_steps`: one row per run with its
  steps-to-target; intervals by bootstrap over seeds);
- a CSV the user writes from their own runs (:func:`read_penalty_csv`; columns
  ``staleness, global_batch, penalty`` and optionally ``penalty_lo, penalty_hi, workload,
  source``);
- the noisy quadratic model (:func:`nqm_penalty`), an analytic proxy.

What carries over from a proxy task to a user's model is the *shape* (how the penalty grows
with ``d`` at a given learning rate relative to the stability limit, and with global batch);
the numbers are the proxy's. The user's own runs are the better source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from convergence.nqm import NoisyQuadratic, Optimiser, expected_loss, steps_to_target
from vocab.argtypes import BATCH, STALENESS
from vocab.errors import GradsyncError, SpecError
from vocab.files import read_csv

#: The strategies that run plain synchronous SGD: their penalty is 1 at any staleness setting.
SYNCHRONOUS = ("sync", "layerwise", "bucketed", "crossiter", "ddp")
REQUIRED = ("staleness", "global_batch", "penalty")
OPTIONAL = ("penalty_lo", "penalty_hi", "workload", "source")
#: The largest global batch a row may state: ``--batch``'s bound times a million devices
#: (no cluster has had a million accelerators); beyond it a figure is a typo.
MAX_DEVICES = 1e6
MAX_GLOBAL_BATCH = BATCH.maximum * MAX_DEVICES
BOOTSTRAP = 2000


class PenaltyError(GradsyncError):
    """A penalty table is malformed, or has no row for the setup asked about."""


@dataclass(frozen=True)
class Penalty:
    """Steps-to-target of staleness ``d`` over ``sync``'s (``inf``: diverges), with interval."""

    staleness: int
    global_batch: int
    penalty: float
    lo: float
    hi: float
    workload: str = ""
    source: str = ""


@dataclass(frozen=True)
class PenaltyTable:
    """Penalties by staleness and global batch; :meth:`lookup` finds the row for a setup."""

    rows: tuple[Penalty, ...]

    def lookup(self, staleness: int, global_batch: int) -> Penalty:
        """The penalty at ``staleness`` (0: exactly 1) measured nearest ``global_batch`` (in
        log scale). PenaltyError listing what the table has when the staleness is absent."""
        if staleness == 0:
            return Penalty(0, global_batch, 1.0, 1.0, 1.0, "", "synchronous SGD: no penalty")
        rows = [r for r in self.rows if r.staleness == staleness]
        if not rows:
            have = sorted({r.staleness for r in self.rows})
            raise PenaltyError(f"no staleness penalty for d={staleness}; the table has d in "
                               f"{have} (measure it, or pass --staleness from that list)")
        return min(rows, key=lambda r: abs(math.log(r.global_batch / global_batch)))

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame."""
        return pd.DataFrame([r.__dict__ for r in self.rows])


def read_penalty_csv(path: str | Path) -> PenaltyTable:
    """A user's penalty table from CSV (see the module docstring)."""
    try:
        records = read_csv(path, "a staleness penalty table", REQUIRED, OPTIONAL)
    except SpecError as exc:     # the file as a whole: this module's error, as before
        raise PenaltyError(str(exc)) from None
    return PenaltyTable(tuple(_row_from_record(rec, f"{path}:{i}")
                              for i, rec in enumerate(records, start=2)))


def _row_from_record(rec: dict, where: str) -> Penalty:
    def number(name: str, default: float | None = None) -> float:
        value = rec.get(name, default)
        if value in ("", None) and default is not None:     # an empty optional cell
            return default
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise SpecError(f"{where} {name}", value, "a number") from None
        if math.isnan(value) and default is not None:
            return default
        return value

    d, batch, pen = number("staleness"), number("global_batch"), number("penalty")
    if not (math.isfinite(d) and d == int(d) and 0 <= d <= STALENESS.maximum):
        raise SpecError(f"{where} staleness", d, f"a whole number from 0 to "
                        f"{STALENESS.maximum:.0f} (as --staleness)")
    if not (math.isfinite(batch) and batch == int(batch) and 1 <= batch <= MAX_GLOBAL_BATCH):
        raise SpecError(f"{where} global_batch", batch, f"a whole number from 1 to "
                        f"{MAX_GLOBAL_BATCH:.0e} ({BATCH.maximum:.0f} samples a device, "
                        f"{MAX_DEVICES:.0e} devices)")
    if not pen > 0:
        raise SpecError(f"{where} penalty", pen, "a ratio > 0 (inf: diverges)")
    lo, hi = number("penalty_lo", pen), number("penalty_hi", pen)
    if not lo <= pen <= hi:
        raise SpecError(f"{where} penalty_lo/penalty_hi", (lo, hi), f"an interval around {pen}")
    return Penalty(int(d), int(batch), pen, lo, hi, str(rec.get("workload", "") or ""),
                   str(rec.get("source", "") or where))


def penalty_from_steps(steps: pd.DataFrame, seed: int = 0) -> PenaltyTable:
    """Penalties from a study's steps-to-target rows (``staleness, global_batch, seed,
    steps_to_target``; a run that never reached the target has ``steps_to_target`` NaN or
    < 0). The ratio is of mean steps; the interval a 95 % bootstrap over seeds."""
    rng = np.random.default_rng(seed)
    rows = []
    for batch, group in steps.groupby("global_batch"):
        base = _reached(group[group["staleness"] == 0]["steps_to_target"])
        if base is None:
            continue
        for d, runs in group[group["staleness"] > 0].groupby("staleness"):
            reached = _reached(runs["steps_to_target"])
            if reached is None:
                rows.append(Penalty(int(d), int(batch), math.inf, math.inf, math.inf,
                                    source="did not reach the target"))
                continue
            ratios = [rng.choice(reached, len(reached)).mean()
                      / rng.choice(base, len(base)).mean() for _ in range(BOOTSTRAP)]
            lo, hi = np.percentile(ratios, [2.5, 97.5])
            rows.append(Penalty(int(d), int(batch), float(reached.mean() / base.mean()),
                                float(lo), float(hi), source="convergence study"))
    return PenaltyTable(tuple(rows))


def _reached(values: pd.Series) -> np.ndarray | None:
    """Steps of the runs that reached the target; None if any run did not (its penalty is
    then unbounded for this setup: a mean over the lucky seeds would flatter it)."""
    arr = values.to_numpy(float)
    if len(arr) == 0 or np.any(~np.isfinite(arr) | (arr < 0)):
        return None
    return arr


def nqm_penalty(stalenesses: list[int], global_batch: int, lr: float = 0.05,
                momentum: float = 0.9, target_fraction: float = 0.1, dims: int = 400,
                max_steps: int = 20_000) -> PenaltyTable:
    """Penalties of the noisy quadratic model (:class:`NoisyQuadratic.standard`) at one
    learning rate for every staleness (the user keeps sync's hyper-parameters), target a
    fraction of the starting loss. Exact (the recurrence): the interval is the point."""
    nqm = NoisyQuadratic.standard(dims)
    target = target_fraction * nqm.initial_loss
    floor = nqm.noise_floor(lr / (1 - momentum), global_batch)   # heavy ball: lr / (1 - beta)
    base = steps_to_target(expected_loss(nqm, Optimiser(lr, global_batch, momentum), max_steps),
                           target)
    if base is None:
        raise PenaltyError(f"the noisy quadratic model at lr={lr}, global batch {global_batch} "
                           f"does not reach {target_fraction:g} of its starting loss in "
                           f"{max_steps} steps (its noise floor is about {floor:.3g} of "
                           f"{nqm.initial_loss:.3g}); pick a larger target fraction")
    rows = []
    source = (f"noisy quadratic model (h_i = c_i = 1/i, {dims} dims), lr {lr}, momentum "
              f"{momentum}, target {target_fraction:g} of the starting loss; sync: {base} steps")
    for d in sorted(set(stalenesses)):
        opt = Optimiser(lr, global_batch, momentum, d)
        steps = steps_to_target(expected_loss(nqm, opt, max_steps), target)
        ratio = math.inf if steps is None else steps / base
        rows.append(Penalty(d, global_batch, ratio, ratio, ratio, "nqm", source))
    return PenaltyTable(tuple(rows))
