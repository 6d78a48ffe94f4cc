"""Automatic choice of an allreduce algorithm by message size and rank layout.

Two styles, after the libraries that gradsync's executors use:

``library="mpich"`` (CPU ranks over MPI)
    * ``nbytes <= 2048`` -- MPICH's ``MPIR_CVAR_ALLREDUCE_SHORT_MSG_SIZE`` default -- or fewer
      bytes than ``pof2`` ranks (too short to split): recursive doubling (MPICH
      ``src/mpi/coll/allreduce``; Thakur, Rabenseifner, Gropp 2005, sec. 4.4);
    * power-of-two ``p``: Rabenseifner (MPICH's ``reduce_scatter_allgather``; its beta term
      equals the ring's with ``2 lg p`` instead of ``2 (p-1)`` latencies);
    * other ``p``: Rabenseifner below 10,000 bytes, ring above -- Open MPI's fixed decision
      (``coll_tuned_decision_fixed.c``: ``intermediate_message = 10000``, ring above), because
      the non-power-of-two fold costs Rabenseifner an extra ``2 n beta``.

``library="nccl"`` (GPUs)
    * one node: ring. NCCL 2.4 enabled trees only across nodes (NVIDIA/nccl#211);
    * several nodes with one rank each: tree below :data:`NCCL_TREE_MAX_BYTES`, ring above.
      NCCL 2.4 computed that crossover per system (``NCCL_TREE_THRESHOLD``) and NCCL >= 2.5
      picks from its own latency/bandwidth model; the default here is our round figure, and
      passing ``ab`` picks from the cost model instead, as NCCL does.

Several nodes with several ranks each: MPICH style uses ``"hierarchical"`` (MPICH's SMP-aware
allreduce, ``MPIR_CVAR_ENABLE_SMP_ALLREDUCE``, on by default: a fixed rule, not a cost model).
NCCL style picks by cost model, as NCCL does (``ncclTopoGetAlgoTime``): given ``cost`` (seconds
of each algorithm on the real links, which only the caller knows for the hierarchical one), the
cheaper of :data:`NCCL_MULTINODE_CANDIDATES` wins (ties: hierarchical); without ``cost``,
``"hierarchical"``. The flat ring wins large messages where the network ports are the
bottleneck (it moves ``2(p-1)/p n`` over a node's whole port, against the hierarchical
algorithm's ``n`` across nodes plus ``2(k-1)/k n`` inside), the hierarchical one small messages
(``2(k-1) + 2(nodes-1)`` latencies instead of ``2(p-1)``). The binomial ``"tree"`` is not a
candidate here: it is MPICH's tree over all ``p`` ranks, not NCCL's double binary tree across
nodes with chains inside them, and the flat link it is priced on is crude for it.
With ``ab`` the flat choice is the cheapest modelled candidate.
"""

from __future__ import annotations

from typing import Callable

from hwmodels.collectives.cost import ALLREDUCE_ALGORITHMS, check_nbytes, check_ranks, floor_pow2
from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import AlphaBeta

#: MPICH ``MPIR_CVAR_ALLREDUCE_SHORT_MSG_SIZE`` default: recursive doubling at or below.
MPICH_SHORT_MSG_BYTES = 2048
#: Open MPI's ``intermediate_message``: ring above it (non-power-of-two ``p`` here).
OMPI_INTERMEDIATE_MSG_BYTES = 10_000
#: Tree below, ring at or above, for NCCL across nodes without a cost model (our figure).
NCCL_TREE_MAX_BYTES = 256 * 1024

#: What NCCL style chooses between, by cost, on several nodes of several ranks each.
NCCL_MULTINODE_CANDIDATES = ("hierarchical", "ring")

LIBRARIES = {
    "mpich": ("recursive_doubling", "rabenseifner", "ring"),
    "nccl": ("tree", "ring"),
}


def choose_allreduce(nbytes: float, p: int, ranks_per_node: int = 1, nodes: int | None = None,
                     ab: AlphaBeta | None = None, *, library: str = "mpich",
                     cost: Callable[[str], float] | None = None) -> str:
    """The allreduce algorithm a tuned library would run for ``nbytes`` per rank on ``p`` ranks.

    ``nodes`` defaults to ``p // ranks_per_node``. With ``ab`` (the flat link parameters) the
    cheapest modelled candidate of ``library`` wins; without it, the thresholds above.
    ``cost(algorithm) -> seconds`` prices NCCL's multi-node candidates (see the module doc).
    """
    n, p = check_nbytes(nbytes), check_ranks(p)
    k = check_ranks(ranks_per_node, "ranks_per_node")
    nodes = check_ranks(nodes if nodes is not None else max(1, p // k), "nodes")
    if library not in LIBRARIES:
        raise UnknownNameError("library", library, list(LIBRARIES))
    if nodes * k != p and nodes > 1:
        raise SpecError("nodes", nodes, f"nodes * ranks_per_node == p ({p})")
    if p == 1:
        return "ring"                                   # nothing moves; any name costs 0
    if nodes > 1 and k > 1:
        if library == "nccl" and cost is not None:
            return min(NCCL_MULTINODE_CANDIDATES, key=cost)   # first (hierarchical) on ties
        return "hierarchical"
    candidates = LIBRARIES[library]
    if library == "nccl" and nodes == 1:
        candidates = ("ring",)
    if ab is not None:
        costs = [(ALLREDUCE_ALGORITHMS[a].terms(p).seconds(n, ab), i, a)  # type: ignore[misc]
                 for i, a in enumerate(candidates)]
        return min(costs)[2]
    if library == "nccl":
        return "tree" if nodes > 1 and n < NCCL_TREE_MAX_BYTES else "ring"
    return _mpich_threshold(n, p)


def _mpich_threshold(n: float, p: int) -> str:
    pof2 = floor_pow2(p)
    if n <= MPICH_SHORT_MSG_BYTES or n < pof2:
        return "recursive_doubling"
    if p == pof2 or n <= OMPI_INTERMEDIATE_MSG_BYTES:
        return "rabenseifner"
    return "ring"
