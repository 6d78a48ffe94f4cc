"""Collective schedules in compact form: runs of identical steps, transfers as numpy arrays.

:mod:`hwmodels.collectives.schedules` lists every transfer of every step as an object, which is
right for checking traffic against the closed forms but is ``O(p^2)`` objects for a ring over
``p`` ranks (5 * 10^8 at 16,384 ranks). The detailed simulator at scale needs the same
schedule as *step groups*: a :class:`StepGroup` is ``repeat`` consecutive steps that move the
same bytes between the same ranks (every step of a ring's reduce-scatter sends one chunk from
each rank to the next), so one group stands for them all and its link loads are computed
once, with numpy.

Bytes are *fractions of the message* (a ring chunk is ``1 / p`` of it), so one set of groups
serves every message size: the loads of an ``n``-byte collective are ``n`` times the loads of
the fractions. Fractional chunks are the closed forms' volume; the integer chunks of
:mod:`~hwmodels.collectives.schedules` differ from them by at most one byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

import numpy as np

from hwmodels.collectives.cost import ALLREDUCE_ALGORITHMS
from hwmodels.collectives.schedules import Schedule, allreduce_schedule
from vocab.errors import SpecError


@dataclass(frozen=True, eq=False)
class StepGroup:
    """``repeat`` identical steps: rank ``src[i]`` sends ``share[i]`` of the message to
    ``dst[i]``; after each step the busiest rank reduces ``reduce_share`` of the message."""

    src: np.ndarray
    dst: np.ndarray
    share: np.ndarray
    reduce_share: float
    repeat: int = 1

    @property
    def steps(self) -> int:
        """Steps this group stands for."""
        return self.repeat


def _ring_groups(ranks: np.ndarray, fraction: float) -> list[StepGroup]:
    """A ring over ``ranks`` (rows: independent rings run side by side) of ``fraction`` of
    the message: ``m - 1`` reduce-scatter steps, then ``m - 1`` allgather steps."""
    m = ranks.shape[1]
    if m == 1:
        return []
    src = ranks.ravel()
    dst = np.roll(ranks, -1, axis=1).ravel()
    chunk = np.full(src.size, fraction / m)
    return [StepGroup(src, dst, chunk, fraction / m, m - 1),
            StepGroup(src, dst, chunk, 0.0, m - 1)]


@lru_cache(maxsize=64)
def allreduce_groups(algorithm: str, p: int,
                     ranks_per_node: int | None = None) -> tuple[StepGroup, ...]:
    """The allreduce by ``algorithm`` over ``p`` ranks (node-major) as step groups.

    Rings and the hierarchical schedule (ring inside nodes, ring across them) are built
    directly; the other algorithms have ``O(log p)`` steps and come from
    :func:`~hwmodels.collectives.schedules.allreduce_schedule` of a ``p``-scaled message.
    Cached: the groups do not depend on the message size, so callers may key on them.
    """
    return tuple(_groups(algorithm, p, ranks_per_node))


def _groups(algorithm: str, p: int, ranks_per_node: int | None) -> list[StepGroup]:
    if algorithm not in ALLREDUCE_ALGORITHMS:
        allreduce_schedule(algorithm, p, 0)            # raises the registry's error
    if p == 1:
        return []
    if algorithm == "ring":
        return _ring_groups(np.arange(p)[None, :], 1.0)
    if algorithm == "hierarchical":
        k = ranks_per_node or p
        if p % k:
            raise SpecError("ranks_per_node", k, f"a divisor of p={p}")
        nodes = p // k
        grid = np.arange(p).reshape(nodes, k)
        intra = _ring_groups(grid, 1.0)
        inter = _ring_groups(grid.T.copy(), 1.0 / k)
        if not intra:
            return inter
        return [intra[0], *inter, intra[1]]
    # A message of p * 2**20 bytes keeps the integer chunks of these schedules exact enough.
    scale = p << 20
    return groups_of(allreduce_schedule(algorithm, p, scale, ranks_per_node=ranks_per_node),
                     scale)


def groups_of(schedule: Schedule, nbytes: float | None = None) -> list[StepGroup]:
    """Any :class:`Schedule` as step groups (runs of steps between the same ranks merged),
    with bytes as fractions of ``nbytes`` (default: the schedule's own size)."""
    size = float(nbytes or schedule.nbytes or 1)
    arrays = []
    for step in schedule.steps:
        src = np.fromiter((t.src for t in step.transfers), dtype=np.int64)
        dst = np.fromiter((t.dst for t in step.transfers), dtype=np.int64)
        share = np.fromiter((t.nbytes for t in step.transfers), dtype=float) / size
        arrays.append((src, dst, share, step.max_reduce_bytes / size))
    groups = []
    for _, run in groupby(arrays, key=lambda a: (a[0].tobytes(), a[1].tobytes(),
                                                   a[2].tobytes(), a[3])):
        run = list(run)
        src, dst, share, reduce_share = run[0]
        groups.append(StepGroup(src, dst, share, reduce_share, len(run)))
    return groups


def total_steps(groups) -> int:
    """Sequential steps of the schedule (its alpha multiplier)."""
    return sum(g.repeat for g in groups)
