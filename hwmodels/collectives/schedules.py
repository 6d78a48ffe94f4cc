"""Collectives as data: who sends how many bytes to whom, step by step.

The detailed simulator executes these schedules on the link graph; tests check their traffic
against the closed forms in :mod:`hwmodels.collectives.cost`. A :class:`Step` is a set of
transfers that run concurrently; after it, each rank reduces ``reduce_bytes[rank]`` bytes (what
it received in a reducing phase). The next step starts when a step's transfers and reductions
are done, so the number of steps is the alpha multiplier of the closed form.

Messages of ``n`` bytes that do not divide by ``p`` are cut into ``p`` chunks whose sizes differ
by at most one byte (the first ``n % p`` chunks are one byte larger), so totals are exact.
Ranks are numbered ``0..p-1``; the hierarchical schedule numbers them node-major
(``rank = node * ranks_per_node + local``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from itertools import accumulate, zip_longest
from typing import Callable

from hwmodels.collectives.cost import (
    ALLREDUCE_ALGORITHMS, FLAT_ALGORITHMS, ceil_lg, check_ranks, floor_pow2,
)
from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import AlphaBeta


@dataclass(frozen=True)
class Transfer:
    """``nbytes`` sent from rank ``src`` to rank ``dst``."""

    src: int
    dst: int
    nbytes: int


@dataclass(frozen=True)
class Step:
    """Concurrent transfers, then ``reduce_bytes[rank]`` bytes reduced by each rank."""

    transfers: tuple[Transfer, ...]
    reduce_bytes: tuple[int, ...]

    @property
    def max_reduce_bytes(self) -> int:
        """The largest reduction in the step (what the slowest rank reduces)."""
        return max(self.reduce_bytes, default=0)


@dataclass(frozen=True)
class Schedule:
    """The steps of one collective of ``nbytes`` per rank over ``p`` ranks.

    A regime cost model (NCCL's) prices the steps itself: ``alpha_s`` is every step's latency
    (instead of the link classes'), and ``transfer_s`` the seconds all the steps' bytes take
    on otherwise idle links at the bandwidth the model achieves (reductions included); the
    detailed engine then moves each transfer at that achieved fraction of its links' rate.
    """

    algorithm: str
    p: int
    nbytes: int
    steps: tuple[Step, ...]
    alpha_s: float | None = None
    transfer_s: float | None = None


# A raw step lists (src, dst, nbytes, reduced) on some numbering of ranks.
_Raw = list[tuple[int, int, int, bool]]


def chunk_sizes(nbytes: int, parts: int) -> list[int]:
    """``nbytes`` cut into ``parts`` chunks differing by at most one byte, larger ones first."""
    base, extra = divmod(nbytes, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _check_nbytes(nbytes: object) -> int:
    if isinstance(nbytes, numbers.Real) and float(nbytes).is_integer():
        nbytes = int(nbytes)                     # 4.0e6 and numpy integers are fine
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise SpecError("nbytes", nbytes, "a whole number of bytes >= 0")
    return nbytes


# ---- building blocks on local ranks 0..m-1 -----------------------------------------------------

def _ring_reduce_scatter(m: int, sizes: list[int]) -> list[_Raw]:
    """Step s: rank r sends chunk (r-1-s) mod m to r+1, which reduces it; r ends with chunk r."""
    return [[(r, (r + 1) % m, sizes[(r - 1 - s) % m], True) for r in range(m)]
            for s in range(m - 1)]


def _ring_allgather(m: int, sizes: list[int]) -> list[_Raw]:
    """Step s: rank r forwards chunk (r-s) mod m to r+1; rank r starts with chunk r."""
    return [[(r, (r + 1) % m, sizes[(r - s) % m], False) for r in range(m)]
            for s in range(m - 1)]


def _binomial_reduce(m: int, n: int) -> list[_Raw]:
    """MPICH binomial reduce to rank 0: at mask, ranks r = mask (mod 2 mask) send to r - mask."""
    steps, mask = [], 1
    while mask < m:
        steps.append([(r, r - mask, n, True) for r in range(mask, m, 2 * mask)])
        mask *= 2
    return steps


def _binomial_broadcast(m: int, n: int) -> list[_Raw]:
    """Binomial broadcast from rank 0: at mask (descending), r = 0 (mod 2 mask) sends to r+mask."""
    masks = [1 << j for j in reversed(range(ceil_lg(m)))]
    return [[(r, r + mask, n, False) for r in range(0, m, 2 * mask) if r + mask < m]
            for mask in masks]


def _exchange_doubling(q: int, n: int) -> list[_Raw]:
    """Recursive doubling on q = 2**k ranks: partners r ^ mask swap and reduce the whole vector."""
    return [[(r, r ^ (1 << j), n, True) for r in range(q)] for j in range(q.bit_length() - 1)]


def _halving_doubling(q: int, n: int) -> list[_Raw]:
    """Rabenseifner on q = 2**k ranks: recursive-halving reduce-scatter, doubling allgather."""
    offsets = [0, *accumulate(chunk_sizes(n, q))]   # bytes before chunk i

    def span(lo: int, hi: int) -> int:
        return offsets[hi] - offsets[lo]

    steps: list[_Raw] = []
    mask = q // 2
    while mask >= 1:
        # Rank r's segment is the aligned block of 2*mask chunks holding r; it keeps the half
        # holding r and sends its partner the other half, which the partner reduces.
        steps.append([(r, r ^ mask, span(*_block(r ^ mask, mask)), True) for r in range(q)])
        mask //= 2
    mask = 1
    while mask < q:
        steps.append([(r, r ^ mask, span(*_block(r, mask)), False) for r in range(q)])
        mask *= 2
    return steps


def _block(r: int, size: int) -> tuple[int, int]:
    """The aligned block of ``size`` chunks that holds chunk ``r``."""
    lo = r - r % size
    return lo, lo + size


def _folded(m: int, n: int, core: Callable[[int, int], list[_Raw]]) -> list[_Raw]:
    """MPICH's non-power-of-two fold around a power-of-two ``core`` (see cost.py)."""
    q = floor_pow2(m)
    r = m - q
    if r == 0:
        return core(m, n)

    def old(new: int) -> int:   # survivor numbering -> rank
        return 2 * new + 1 if new < r else new + r

    pre = [(2 * i, 2 * i + 1, n, True) for i in range(r)]
    post = [(2 * i + 1, 2 * i, n, False) for i in range(r)]
    middle = [[(old(s), old(d), b, red) for s, d, b, red in step] for step in core(q, n)]
    return [pre, *middle, post]


def _flat_raw(algorithm: str, m: int, n: int) -> list[_Raw]:
    """Raw steps of a flat allreduce of ``n`` bytes on local ranks ``0..m-1``."""
    if m == 1:
        return []
    if algorithm == "ring":
        sizes = chunk_sizes(n, m)
        return _ring_reduce_scatter(m, sizes) + _ring_allgather(m, sizes)
    if algorithm == "tree":
        return _binomial_reduce(m, n) + _binomial_broadcast(m, n)
    if algorithm == "recursive_doubling":
        return _folded(m, n, _exchange_doubling)
    if algorithm == "rabenseifner":
        return _folded(m, n, _halving_doubling)
    raise UnknownNameError("algorithm", algorithm, FLAT_ALGORITHMS)


def _merge(groups: list[tuple[list[_Raw], list[int]]]) -> list[_Raw]:
    """Run several raw schedules side by side, mapping local rank i to ``rank_map[i]``."""
    mapped = [[[(ranks[s], ranks[d], b, red) for s, d, b, red in step] for step in raw]
              for raw, ranks in groups]
    return [[t for step in parallel if step for t in step] for parallel in zip_longest(*mapped)]


def _finish(algorithm: str, p: int, nbytes: int, raw: list[_Raw]) -> Schedule:
    steps = []
    for step in raw:
        reduce = [0] * p
        for _, dst, b, reduced in step:
            if reduced:
                reduce[dst] += b
        transfers = tuple(Transfer(s, d, b) for s, d, b, _ in step)
        steps.append(Step(transfers, tuple(reduce)))
    return Schedule(algorithm, p, nbytes, tuple(steps))


# ---- public schedules ------------------------------------------------------------------------

def allreduce_schedule(algorithm: str, p: int, nbytes: int, ranks_per_node: int | None = None,
                       inter_algorithm: str = "ring") -> Schedule:
    """The steps of an allreduce of ``nbytes`` per rank by ``algorithm`` over ``p`` ranks.

    ``"hierarchical"`` needs ``ranks_per_node`` (a divisor of ``p``; ranks node-major): ring
    reduce-scatter inside each node, then for each local rank ``l`` an ``inter_algorithm``
    allreduce of chunk ``l`` among the ranks ``l`` of every node, then ring allgather.
    """
    entry = ALLREDUCE_ALGORITHMS[algorithm]
    p, n = check_ranks(p), _check_nbytes(nbytes)
    if not entry.hierarchical:
        return _finish(algorithm, p, n, _flat_raw(algorithm, p, n))
    if ranks_per_node is None:
        raise SpecError("ranks_per_node", None, "a number of ranks per node for hierarchical")
    k = check_ranks(ranks_per_node, "ranks_per_node")
    if p % k:
        raise SpecError("ranks_per_node", k, f"a divisor of p={p}")
    return _finish(algorithm, p, n, _hierarchical_raw(k, p // k, n, inter_algorithm))


def _hierarchical_raw(k: int, nodes: int, n: int, inter_algorithm: str) -> list[_Raw]:
    sizes = chunk_sizes(n, k)
    node_ranks = [[node * k + local for local in range(k)] for node in range(nodes)]
    rs = _merge([(_ring_reduce_scatter(k, sizes), ranks) for ranks in node_ranks])
    inter = _merge([(_flat_raw(inter_algorithm, nodes, sizes[local]),
                     [node * k + local for node in range(nodes)]) for local in range(k)])
    ag = _merge([(_ring_allgather(k, sizes), ranks) for ranks in node_ranks])
    return rs + inter + ag


def reduce_scatter_schedule(p: int, nbytes: int) -> Schedule:
    """Ring reduce-scatter of an ``nbytes`` input; rank r ends with reduced chunk r."""
    p, n = check_ranks(p), _check_nbytes(nbytes)
    raw = _ring_reduce_scatter(p, chunk_sizes(n, p)) if p > 1 else []
    return _finish("ring_reduce_scatter", p, n, raw)


def allgather_schedule(p: int, nbytes: int) -> Schedule:
    """Ring allgather to an ``nbytes`` output; rank r contributes chunk r."""
    p, n = check_ranks(p), _check_nbytes(nbytes)
    raw = _ring_allgather(p, chunk_sizes(n, p)) if p > 1 else []
    return _finish("ring_allgather", p, n, raw)


def broadcast_schedule(p: int, nbytes: int, root: int = 0) -> Schedule:
    """Binomial broadcast of ``nbytes`` from ``root``."""
    p, n = check_ranks(p), _check_nbytes(nbytes)
    if isinstance(root, bool) or not (isinstance(root, numbers.Integral) and 0 <= root < p):
        raise SpecError("root", root, f"a rank in 0..{p - 1}")
    raw = [[((s + root) % p, (d + root) % p, b, red) for s, d, b, red in step]
           for step in _binomial_broadcast(p, n)]
    return _finish("binomial_broadcast", p, n, raw)


# ---- traffic and time ----------------------------------------------------------------------

def _bytes_per_rank(schedule: Schedule, end: str) -> list[int]:
    # ``end`` is the Transfer attribute ("src" or "dst") whose rank the bytes count for.
    total = [0] * schedule.p
    for step in schedule.steps:
        for t in step.transfers:
            total[getattr(t, end)] += t.nbytes
    return total


def bytes_sent_per_rank(schedule: Schedule) -> list[int]:
    """Total bytes each rank sends over the whole schedule."""
    return _bytes_per_rank(schedule, "src")


def bytes_received_per_rank(schedule: Schedule) -> list[int]:
    """Total bytes each rank receives over the whole schedule."""
    return _bytes_per_rank(schedule, "dst")


def schedule_time(schedule: Schedule, ab: AlphaBeta, *, ranks_per_node: int | None = None,
                  inter: AlphaBeta | None = None) -> float:
    """Seconds to run ``schedule`` if every step costs its slowest rank (no contention model).

    Each step costs ``alpha`` + the largest per-rank send or receive volume times ``beta`` +
    the largest reduction times ``gamma``. With ``ranks_per_node`` and ``inter``, transfers
    between nodes use ``inter``, whose beta is a node's whole port: the bytes that all ranks
    of one node send (or receive) across nodes in a step share it. This is the oracle that
    ties schedules to the closed forms.
    """
    k = ranks_per_node or schedule.p
    inter = inter or ab
    total = 0.0
    for step in schedule.steps:
        local = [0] * (2 * schedule.p)              # per-rank out, then in, inside a node
        port = [0] * (2 * (schedule.p // k + 1))    # per-node out, then in, across nodes
        crosses = False
        for t in step.transfers:
            if t.src // k == t.dst // k:
                local[t.src] += t.nbytes
                local[schedule.p + t.dst] += t.nbytes
            else:
                crosses = True
                port[2 * (t.src // k)] += t.nbytes
                port[2 * (t.dst // k) + 1] += t.nbytes
        link = inter if crosses else ab
        total += (link.alpha_s + max(max(local) * ab.beta_s_per_B, max(port) * inter.beta_s_per_B)
                  + step.max_reduce_bytes * link.gamma_s_per_B)
    return total
