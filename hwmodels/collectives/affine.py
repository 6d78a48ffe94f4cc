"""Collective costs as affine functions of the message size, for the analytic simulator.

For a fixed rank count every closed form in :mod:`hwmodels.collectives.cost` is
``fixed_s + per_byte_s * nbytes``. The simulator treats ``fixed_s`` as latency (it does not
share) and ``per_byte_s * nbytes`` as the part that shares bandwidth under contention, so
computing the two coefficients once per algorithm and ``p`` makes each collective two flops.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.collectives.cost import (
    ALLREDUCE_ALGORITHMS, CostTerms, check_ranks, hierarchical_terms,
)
from vocab.errors import SpecError
from hwmodels.specs import AlphaBeta, require_positive


@dataclass(frozen=True)
class Affine:
    """``fixed_s + per_byte_s * nbytes`` seconds."""

    fixed_s: float
    per_byte_s: float

    def __post_init__(self) -> None:
        require_positive("fixed_s", self.fixed_s, allow_zero=True)
        require_positive("per_byte_s", self.per_byte_s, allow_zero=True)

    def at(self, nbytes: float) -> float:
        """Seconds for ``nbytes``."""
        return self.fixed_s + self.per_byte_s * nbytes

    def __add__(self, other: Affine) -> Affine:
        return Affine(self.fixed_s + other.fixed_s, self.per_byte_s + other.per_byte_s)

    def plus_fixed(self, seconds: float) -> Affine:
        """The same cost with ``seconds`` more latency (e.g. a launch overhead)."""
        return Affine(self.fixed_s + seconds, self.per_byte_s)

    @property
    def bandwidth_Bps(self) -> float:
        """Asymptotic algorithm bandwidth ``1 / per_byte_s`` (inf when bytes are free)."""
        return float("inf") if self.per_byte_s == 0 else 1.0 / self.per_byte_s


ZERO_COST = Affine(0.0, 0.0)


def affine_terms(terms: CostTerms, ab: AlphaBeta) -> Affine:
    """The affine cost of ``terms`` under link parameters ``ab``."""
    return Affine(terms.alpha * ab.alpha_s,
                  terms.beta * ab.beta_s_per_B + terms.gamma * ab.gamma_s_per_B)


def affine_allreduce(algorithm: str, p: int, ab: AlphaBeta, *,
                     ranks_per_node: int | None = None,
                     inter: AlphaBeta | None = None) -> Affine:
    """Affine cost of an allreduce by ``algorithm`` (a registry name) over ``p`` ranks.

    ``p == 1`` costs nothing. ``"hierarchical"`` needs ``ranks_per_node`` (a divisor of ``p``);
    there ``ab`` is the intra-node link and ``inter`` (default ``ab``) a node's network port.
    """
    entry = ALLREDUCE_ALGORITHMS[algorithm]
    p = check_ranks(p)
    if p == 1:
        return ZERO_COST
    if entry.terms is not None:
        return affine_terms(entry.terms(p), ab)
    if ranks_per_node is None:
        raise SpecError("ranks_per_node", None, "a number of ranks per node for hierarchical")
    k = check_ranks(ranks_per_node, "ranks_per_node")
    if p % k:
        raise SpecError("ranks_per_node", k, f"a divisor of p={p}")
    return affine_hierarchical(k, p // k, ab, inter or ab)


def affine_hierarchical(ranks_per_node: int, nodes: int, intra: AlphaBeta, inter: AlphaBeta,
                        inter_algorithm: str = "ring") -> Affine:
    """Affine cost of :func:`~hwmodels.collectives.cost.hierarchical_allreduce`."""
    intra_t, inter_t = hierarchical_terms(ranks_per_node, nodes, inter_algorithm)
    return affine_terms(intra_t, intra) + affine_terms(inter_t, inter)
