"""Fits with scipy: affine and piecewise-affine times, alpha-beta-gamma, interference.

Times of collectives span five decades (microseconds to tens of milliseconds), so every fit
minimises *relative* residuals: a 4 B message matters as much as a 64 MiB one. All fits are
non-negative least squares (:func:`scipy.optimize.lsq_linear`), so a fitted latency or
bandwidth is never negative, and each raises :class:`FitError` when there are too few distinct
points to determine its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from vocab.errors import GradsyncError
from hwmodels.specs import AlphaBeta

#: A closed-form cost ``f(nbytes, p, ab) -> seconds`` (hwmodels.collectives.cost's contract).
CostFn = Callable[[float, int, AlphaBeta], float]
#: Which closed form applies to ``(op, nbytes, p)``.
AlgorithmFor = Callable[[str, int, int], CostFn]
MIN_SEGMENT_POINTS = 3


class FitError(GradsyncError):
    """The data cannot determine the parameters (too few points, nothing to fit)."""


@dataclass(frozen=True)
class AffineFit:
    """``seconds = fixed_s + per_byte_s * nbytes`` over ``[lo_bytes, hi_bytes]``."""

    fixed_s: float
    per_byte_s: float
    lo_bytes: int
    hi_bytes: int
    rms_rel: float          # root-mean-square relative residual
    points: int

    def seconds(self, nbytes: float) -> float:
        return self.fixed_s + self.per_byte_s * nbytes

    def to_dict(self) -> dict:
        return {"fixed_s": self.fixed_s, "per_byte_s": self.per_byte_s,
                "lo_bytes": self.lo_bytes, "hi_bytes": self.hi_bytes,
                "rms_rel": self.rms_rel, "points": self.points}


@dataclass(frozen=True)
class AlphaBetaFit:
    """Fitted link parameters plus a per-collective constant (MPI's own launch cost)."""

    ab: AlphaBeta
    overhead_s: float
    rms_rel: float
    max_rel: float
    points: int
    rank_counts: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"alpha_s": self.ab.alpha_s, "beta_s_per_B": self.ab.beta_s_per_B,
                "gamma_s_per_B": self.ab.gamma_s_per_B, "overhead_s": self.overhead_s,
                "rms_rel": self.rms_rel, "max_rel": self.max_rel, "points": self.points,
                "rank_counts": list(self.rank_counts)}


def relative_nnls(design: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative ``x`` minimising ``|(design x - t) / t|``; returns ``x`` and residuals."""
    weights = 1.0 / seconds
    scaled = design * weights[:, None]
    # Columns differ by ~1e9 (seconds vs seconds per byte): normalise for a well-posed solve.
    norms = np.linalg.norm(scaled, axis=0)
    norms[norms == 0] = 1.0
    solution = lsq_linear(scaled / norms, np.ones_like(seconds), bounds=(0, np.inf),
                          method="bvls")
    x = solution.x / norms
    return x, (design @ x - seconds) / seconds


def medians(table: pd.DataFrame, op: str | None = None) -> pd.DataFrame:
    """Median seconds per ``(op, nranks, nbytes)``: repeats collapse to one robust point."""
    rows = table if op is None else table[table["op"] == op]
    return (rows.groupby(["op", "nranks", "nbytes"], as_index=False)["seconds"].median()
            .sort_values(["op", "nranks", "nbytes"]).reset_index(drop=True))


def fit_affine(nbytes: Sequence[float], seconds: Sequence[float]) -> AffineFit:
    """Least relative-squares ``fixed + per_byte * n`` with both terms >= 0."""
    n = np.asarray(nbytes, float)
    t = np.asarray(seconds, float)
    if len(np.unique(n)) < 2:
        raise FitError(f"an affine fit needs at least 2 distinct message sizes, got "
                       f"{len(np.unique(n))}")
    if np.any(t <= 0):
        raise FitError("times must be positive to fit")
    x, residuals = relative_nnls(np.column_stack([np.ones_like(n), n]), t)
    return AffineFit(float(x[0]), float(x[1]), int(n.min()), int(n.max()),
                     float(np.sqrt(np.mean(residuals**2))), len(n))


def fit_piecewise(nbytes: Sequence[float], seconds: Sequence[float],
                  max_breaks: int = 3) -> list[AffineFit]:
    """Affine segments split where the data shows a protocol change (eager -> rendezvous).

    Exact segmentation by dynamic programming over the sorted sizes (one median point per
    size, at least ``MIN_SEGMENT_POINTS`` per segment), for 1 to ``max_breaks + 1`` segments;
    the count is chosen by the Bayesian information criterion, so a breakpoint is reported
    only where the data shows one clearly.
    """
    frame = pd.DataFrame({"n": nbytes, "t": seconds}).groupby("n", as_index=False)["t"].median()
    n, t = frame["n"].to_numpy(float), frame["t"].to_numpy(float)
    if len(n) < 2:
        fit_affine(n, t)  # raises the FitError that says why
    best = [fit_affine(n, t)]
    best_bic = _bic(best, len(n))
    for segments in range(2, max_breaks + 2):
        split = _segment(n, t, segments)
        if split is not None and _bic(split, len(n)) < best_bic:
            best, best_bic = split, _bic(split, len(n))
    return best


def _bic(segments: list[AffineFit], points: int) -> float:
    ssr = sum(s.rms_rel**2 * s.points for s in segments)
    return points * np.log(max(ssr / points, 1e-12)) + 2 * len(segments) * np.log(points)


def _segment(n: np.ndarray, t: np.ndarray, count: int) -> list[AffineFit] | None:
    """The best split of the points into ``count`` contiguous affine segments (or None)."""
    size, low = len(n), MIN_SEGMENT_POINTS
    fits = {(i, j): fit_affine(n[i:j], t[i:j])
            for i in range(size) for j in range(i + low, size + 1)}
    # cost[k][j]: least SSR of the first j points in k segments; choice[k][j]: last start.
    cost = np.full((count + 1, size + 1), np.inf)
    choice = np.zeros((count + 1, size + 1), int)
    cost[0][0] = 0.0
    for k in range(1, count + 1):
        for j in range(k * low, size + 1):
            for i in range((k - 1) * low, j - low + 1):
                total = cost[k - 1][i] + fits[i, j].rms_rel**2 * fits[i, j].points
                if total < cost[k][j]:
                    cost[k][j], choice[k][j] = total, i
    if not np.isfinite(cost[count][size]):
        return None
    segments, j = [], size
    for k in range(count, 0, -1):
        i = choice[k][j]
        segments.append(fits[i, j])
        j = i
    return segments[::-1]


def cost_terms(cost: CostFn, nbytes: float, p: int) -> tuple[float, float, float]:
    """Multipliers of alpha, beta and gamma in ``cost(nbytes, p, .)``, read off the closed form."""
    return (cost(nbytes, p, AlphaBeta(1.0, 0.0, 0.0)),
            cost(nbytes, p, AlphaBeta(0.0, 1.0, 0.0)),
            cost(nbytes, p, AlphaBeta(0.0, 0.0, 1.0)))


def fit_alpha_beta(points: pd.DataFrame, algorithm_for: AlgorithmFor,
                   fit_overhead: bool = True, fit_gamma: bool = True) -> AlphaBetaFit:
    """Fit alpha, beta, gamma (and a constant per-call overhead) to median times.

    ``points`` has columns ``op, nranks, nbytes, seconds`` (see :func:`medians`). Each point
    contributes one row of the closed form's multipliers. The overhead is separable from alpha
    only with two or more rank counts (alpha's multiplier grows with ``p``, the overhead's does
    not), and gamma from beta only with an op that reduces and one that does not (allreduce or
    reduce-scatter beside allgather); otherwise they are held at 0 and alpha/beta absorb them.
    """
    rows = [cost_terms(algorithm_for(op, int(n), int(p)), float(n), int(p))
            for op, p, n in zip(points["op"], points["nranks"], points["nbytes"])]
    design = np.column_stack([np.array(rows), np.ones(len(rows))])
    ranks = tuple(sorted(set(int(p) for p in points["nranks"])))
    reduces = set(points["op"]) - {"allgather"}
    keep = [True, True, fit_gamma and bool(reduces) and "allgather" in set(points["op"]),
            fit_overhead and len(ranks) >= 2]
    if len(points) < sum(keep) + 1:
        raise FitError(f"an alpha-beta fit of {sum(keep)} parameters needs at least "
                       f"{sum(keep) + 1} points, got {len(points)}")
    x = np.zeros(4)
    x[keep], residuals = relative_nnls(design[:, keep], points["seconds"].to_numpy(float))
    return AlphaBetaFit(AlphaBeta(float(x[0]), float(x[1]), float(x[2])), float(x[3]),
                        float(np.sqrt(np.mean(residuals**2))), float(np.max(np.abs(residuals))),
                        len(points), ranks)


def interference_from_overlap(compute_s: float, comm_s: float, overlapped_s: float,
                              cap: float = 1.0) -> float:
    """The fraction ``f`` by which compute slows while a collective is progressed.

    Model (the simulator's): a collective of ``comm_s`` runs beside ``compute_s`` of work that
    proceeds at rate ``1/(1+f)`` while the collective is in flight, so when compute outlasts it
    ``overlapped = compute + comm * f/(1+f)``. No overlap at all (``overlapped >= compute +
    comm``) means ``f`` is unbounded; it is capped at ``cap`` (1: while both progress on the
    same core, compute runs at half speed), since the simulator applies ``f`` to whole compute
    segments that start during a collective and a large ``f`` would overcharge them.
    """
    if min(compute_s, comm_s, overlapped_s) <= 0:
        raise FitError("overlap times must be positive")
    lost = (overlapped_s - compute_s) / comm_s
    if lost <= 0:
        return 0.0
    if lost >= cap / (1.0 + cap):
        return cap
    return lost / (1.0 - lost)
