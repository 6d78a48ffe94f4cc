"""Closed-form costs of collectives in alpha-beta-gamma form.

Notation (Thakur, Rabenseifner and Gropp, "Optimization of collective communication operations
in MPICH", IJHPCA 19(1), 2005): ``n`` bytes per rank, ``p`` ranks, ``a`` = latency per message,
``b`` = seconds per byte sent, ``g`` = seconds per byte reduced (:class:`AlphaBeta`).

=====================  ==========================================================
ring allreduce         ``2(p-1) a + 2(p-1)/p n b + (p-1)/p n g``
recursive doubling     ``lg p (a + n b + n g)``
Rabenseifner           ``2 lg p a + 2(p-1)/p n b + (p-1)/p n g``
binomial tree          ``2 lg p (a + n b) + lg p n g``  (binomial reduce, then broadcast)
ring reduce-scatter    ``(p-1) a + (p-1)/p n b + (p-1)/p n g``  (``n`` = the whole input)
ring allgather         ``(p-1) a + (p-1)/p n b``  (``n`` = the whole output)
binomial broadcast     ``ceil(lg p) (a + n b)``
=====================  ==========================================================

Any rank count works. The binomial tree and broadcast take ``ceil(lg p)`` rounds. Recursive
doubling and Rabenseifner fold a non-power-of-two ``p`` the way MPICH does
(``MPIR_Allreduce_intra_recursive_doubling`` / ``..._reduce_scatter_allgather``): with
``p' = 2**floor(lg p)`` and ``r = p - p'``, each of the first ``r`` even ranks sends its whole
vector to the odd rank after it, which reduces (``a + n b + n g``); the ``p'`` survivors run the
power-of-two algorithm; the odd ranks send the result back (``a + n b``). The extra cost is
exactly ``2 a + 2 n b + n g`` whenever ``r > 0``. ``p == 1`` costs 0 everywhere.

Every cost is affine in ``n`` for fixed ``p``; :class:`CostTerms` holds the multipliers of
``a``, ``n b`` and ``n g`` (the alpha multiplier is the number of sequential steps).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import AlphaBeta

T = TypeVar("T")


@dataclass(frozen=True)
class CostTerms:
    """Multipliers of ``alpha``, ``n * beta`` and ``n * gamma`` in a collective's cost."""

    alpha: float
    beta: float
    gamma: float

    def seconds(self, nbytes: float, ab: AlphaBeta) -> float:
        """The cost of ``nbytes`` under link parameters ``ab``."""
        return (self.alpha * ab.alpha_s
                + nbytes * (self.beta * ab.beta_s_per_B + self.gamma * ab.gamma_s_per_B))

    def __add__(self, other: CostTerms) -> CostTerms:
        return CostTerms(self.alpha + other.alpha, self.beta + other.beta,
                         self.gamma + other.gamma)


ZERO = CostTerms(0.0, 0.0, 0.0)


def check_ranks(p: object, field: str = "p") -> int:
    """``p`` as an int >= 1 (numpy integers too), or SpecError naming ``field``."""
    if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 1:
        raise SpecError(field, p, "a whole number of ranks >= 1")
    return int(p)


def check_nbytes(nbytes: object) -> float:
    """``nbytes`` as a finite float >= 0, or SpecError."""
    ok = isinstance(nbytes, numbers.Real) and not isinstance(nbytes, bool)
    if not (ok and math.isfinite(nbytes) and nbytes >= 0):
        raise SpecError("nbytes", nbytes, "a non-negative number of bytes")
    return float(nbytes)


def floor_pow2(p: int) -> int:
    """The largest power of two <= ``p`` (MPICH's ``pof2``)."""
    return 1 << (p.bit_length() - 1)


def ceil_lg(p: int) -> int:
    """``ceil(log2(p))``: rounds of a binomial tree over ``p`` ranks."""
    return (p - 1).bit_length()


def _fold_extra(p: int) -> CostTerms:
    """MPICH's non-power-of-two fold: even->odd send + reduce, then the result sent back."""
    return CostTerms(2, 2, 1) if p != floor_pow2(p) else ZERO


# ---- terms of each algorithm, for fixed p ------------------------------------------------------

def ring_allreduce_terms(p: int) -> CostTerms:
    """Ring reduce-scatter then ring allgather."""
    f = (p - 1) / p
    return CostTerms(2 * (p - 1), 2 * f, f)


def recursive_doubling_terms(p: int) -> CostTerms:
    """Recursive doubling on ``p'`` ranks plus the MPICH fold when ``p`` is not a power of 2."""
    lg = floor_pow2(p).bit_length() - 1
    return CostTerms(lg, lg, lg) + _fold_extra(p)


def rabenseifner_terms(p: int) -> CostTerms:
    """Recursive halving reduce-scatter + recursive doubling allgather, plus the MPICH fold."""
    q = floor_pow2(p)
    lg = q.bit_length() - 1
    f = (q - 1) / q
    return CostTerms(2 * lg, 2 * f, f) + _fold_extra(p)


def tree_allreduce_terms(p: int) -> CostTerms:
    """Binomial reduce to rank 0 then binomial broadcast: ``ceil(lg p)`` rounds each."""
    lg = ceil_lg(p)
    return CostTerms(2 * lg, 2 * lg, lg)


def ring_reduce_scatter_terms(p: int) -> CostTerms:
    """Ring reduce-scatter of an ``n``-byte input (each rank ends with ``n/p`` reduced)."""
    f = (p - 1) / p
    return CostTerms(p - 1, f, f)


def ring_allgather_terms(p: int) -> CostTerms:
    """Ring allgather to an ``n``-byte output (each rank contributes ``n/p``)."""
    return CostTerms(p - 1, (p - 1) / p, 0.0)


def binomial_broadcast_terms(p: int) -> CostTerms:
    """Binomial-tree broadcast from one root."""
    lg = ceil_lg(p)
    return CostTerms(lg, lg, 0.0)


def hierarchical_terms(ranks_per_node: int, nodes: int,
                       inter_algorithm: str = "ring") -> tuple[CostTerms, CostTerms]:
    """(intra, inter) terms of the hierarchical allreduce, both per ``n`` bytes per rank.

    Intra: ring reduce-scatter then ring allgather among the ``k = ranks_per_node`` ranks of a
    node. Inter: ``k`` concurrent allreduces of ``n/k`` bytes across ``nodes``, one per local
    rank. The ``inter`` link parameters describe a node's whole network port, which the ``k``
    concurrent flows share, so the inter beta term counts ``k * n/k = n`` bytes per node, while
    the reduction (done by each rank on its own ``n/k``) counts ``n/k``.
    """
    k, nodes = check_ranks(ranks_per_node, "ranks_per_node"), check_ranks(nodes, "nodes")
    rs, ag = ring_reduce_scatter_terms(k), ring_allgather_terms(k)
    flat = _flat_entry(inter_algorithm).terms(nodes)
    return rs + ag, CostTerms(flat.alpha, flat.beta, flat.gamma / k)


# ---- the closed forms as f(nbytes, p, ab) ---------------------------------------------------

def _cost(terms: Callable[[int], CostTerms], nbytes: float, p: int, ab: AlphaBeta) -> float:
    n, p = check_nbytes(nbytes), check_ranks(p)
    return 0.0 if p == 1 else terms(p).seconds(n, ab)


def ring_allreduce(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a ring allreduce of ``nbytes`` per rank on ``p`` ranks."""
    return _cost(ring_allreduce_terms, nbytes, p, ab)


def recursive_doubling_allreduce(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a recursive-doubling allreduce (MPICH fold for non-powers of two)."""
    return _cost(recursive_doubling_terms, nbytes, p, ab)


def rabenseifner_allreduce(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a Rabenseifner (halving-doubling) allreduce (MPICH fold)."""
    return _cost(rabenseifner_terms, nbytes, p, ab)


def tree_allreduce(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a binomial reduce + binomial broadcast allreduce."""
    return _cost(tree_allreduce_terms, nbytes, p, ab)


def ring_reduce_scatter(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a ring reduce-scatter of an ``nbytes`` input per rank."""
    return _cost(ring_reduce_scatter_terms, nbytes, p, ab)


def ring_allgather(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a ring allgather to an ``nbytes`` output per rank."""
    return _cost(ring_allgather_terms, nbytes, p, ab)


def binomial_broadcast(nbytes: float, p: int, ab: AlphaBeta) -> float:
    """Seconds of a binomial-tree broadcast of ``nbytes``."""
    return _cost(binomial_broadcast_terms, nbytes, p, ab)


def hierarchical_allreduce(nbytes: float, ranks_per_node: int, nodes: int, intra: AlphaBeta,
                           inter: AlphaBeta, inter_algorithm: str = "ring") -> float:
    """Intra-node ring reduce-scatter, inter-node allreduce of ``n/k``, intra-node allgather.

    ``inter`` is a node's network port as a whole (see :func:`hierarchical_terms`); with
    ``ranks_per_node == 1`` this is ``inter_algorithm`` across nodes, with ``nodes == 1`` a ring
    allreduce inside the node.
    """
    n = check_nbytes(nbytes)
    intra_t, inter_t = hierarchical_terms(ranks_per_node, nodes, inter_algorithm)
    return intra_t.seconds(n, intra) + inter_t.seconds(n, inter)


# ---- registry ----------------------------------------------------------------------------------

class Registry(Mapping[str, T]):
    """A read-only name -> entry mapping, loud on duplicate names and on typos.

    ``registry["rign"]`` raises :class:`UnknownNameError` listing the valid names (a KeyError
    would leave the user guessing).
    """

    def __init__(self, field: str, entries: Iterable[tuple[str, T]]):
        self.field = field
        self._entries: dict[str, T] = {}
        for name, entry in entries:
            if name in self._entries:
                raise SpecError(field, name, "a name registered only once")
            self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.field, name, list(self._entries)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default: T | None = None) -> T | None:  # type: ignore[override]
        """The entry for ``name``, or ``default``: the one quiet lookup, for callers that ask."""
        return self._entries.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class AllreduceAlgorithm:
    """One allreduce algorithm: its name, terms for fixed ``p`` (None when hierarchical)."""

    name: str
    terms: Callable[[int], CostTerms] | None
    summary: str

    @property
    def hierarchical(self) -> bool:
        """True when the cost needs separate intra- and inter-node link parameters."""
        return self.terms is None


ALLREDUCE_ALGORITHMS: Registry[AllreduceAlgorithm] = Registry("algorithm", [
    ("ring", AllreduceAlgorithm("ring", ring_allreduce_terms,
                                "ring reduce-scatter + ring allgather (NCCL, Baidu)")),
    ("tree", AllreduceAlgorithm("tree", tree_allreduce_terms,
                                "binomial reduce to rank 0 + binomial broadcast")),
    ("recursive_doubling", AllreduceAlgorithm("recursive_doubling", recursive_doubling_terms,
                                              "pairwise exchange of the whole vector")),
    ("rabenseifner", AllreduceAlgorithm("rabenseifner", rabenseifner_terms,
                                        "recursive halving reduce-scatter + doubling allgather")),
    ("hierarchical", AllreduceAlgorithm("hierarchical", None,
                                        "intra-node reduce-scatter, inter-node allreduce, "
                                        "intra-node allgather")),
])

#: The algorithms that run over ``p`` ranks with one set of link parameters.
FLAT_ALGORITHMS = tuple(name for name, a in ALLREDUCE_ALGORITHMS.items() if not a.hierarchical)


def _flat_entry(name: str) -> AllreduceAlgorithm:
    entry = ALLREDUCE_ALGORITHMS[name]
    if entry.hierarchical:
        raise UnknownNameError("inter_algorithm", name, FLAT_ALGORITHMS)
    return entry


def allreduce_cost(algorithm: str, nbytes: float, p: int, ab: AlphaBeta, *,
                   ranks_per_node: int | None = None, inter: AlphaBeta | None = None) -> float:
    """Seconds of ``algorithm`` (a registry name); hierarchical needs ``ranks_per_node``.

    For ``"hierarchical"``, ``ab`` is the intra-node link and ``inter`` (default ``ab``) the
    node's network port; ``p`` must be a multiple of ``ranks_per_node``.
    """
    entry = ALLREDUCE_ALGORITHMS[algorithm]
    p = check_ranks(p)
    if entry.terms is not None:
        return 0.0 if p == 1 else entry.terms(p).seconds(check_nbytes(nbytes), ab)
    k = check_ranks(ranks_per_node if ranks_per_node is not None else p, "ranks_per_node")
    if p % k:
        raise SpecError("ranks_per_node", k, f"a divisor of p={p}")
    return hierarchical_allreduce(nbytes, k, p // k, ab, inter or ab)


# ---- the nccl-tests view -------------------------------------------------------------------

def algbw(nbytes: float, seconds: float) -> float:
    """Algorithm bandwidth as nccl-tests reports it: bytes per rank over time."""
    return check_nbytes(nbytes) / seconds


def busbw_allreduce(algbw_Bps: float, p: int) -> float:
    """Bus bandwidth of an allreduce, ``algbw * 2(p-1)/p`` (nccl-tests' PERFORMANCE.md).

    For a ring allreduce without latency this equals the per-rank link bandwidth, which makes
    results comparable across rank counts.
    """
    p = check_ranks(p)
    return algbw_Bps * 2 * (p - 1) / p
