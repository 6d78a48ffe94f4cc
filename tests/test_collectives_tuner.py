"""The allreduce tuner's choices at a few sizes, in MPICH and NCCL style."""

from __future__ import annotations

import pytest

from hwmodels.collectives.tuner import choose_allreduce
from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import AlphaBeta


@pytest.mark.parametrize("nbytes, p, expected", [
    (8, 16, "recursive_doubling"),          # latency-bound
    (2048, 16, "recursive_doubling"),       # MPICH short-message limit, inclusive
    (2049, 16, "rabenseifner"),
    (100 << 20, 16, "rabenseifner"),        # power of two: halving-doubling at any size
    (5000, 12, "rabenseifner"),             # non-power of two, below Open MPI's 10,000 bytes
    (1 << 20, 12, "ring"),                  # ...above: the fold's extra 2 n beta loses
    (4000, 4096, "recursive_doubling"),     # fewer bytes than ranks cannot be split
])
def test_mpich_thresholds(nbytes: int, p: int, expected: str) -> None:
    assert choose_allreduce(nbytes, p) == expected


def test_nccl_style() -> None:
    for nbytes in (8, 1 << 20, 1 << 30):    # inside one node NCCL runs rings
        assert choose_allreduce(nbytes, 8, ranks_per_node=8, nodes=1, library="nccl") == "ring"
    assert choose_allreduce(4096, 16, library="nccl") == "tree"          # 16 nodes x 1 rank
    assert choose_allreduce(64 << 20, 16, library="nccl") == "ring"


def test_several_nodes_of_several_ranks_are_hierarchical() -> None:
    for library in ("mpich", "nccl"):
        assert choose_allreduce(1 << 20, 32, ranks_per_node=8, nodes=4,
                                library=library) == "hierarchical"


def test_nccl_prices_its_multinode_candidates_when_given_a_cost() -> None:
    costs = {"hierarchical": 2.0, "ring": 1.0, "tree": 0.5}
    assert choose_allreduce(1 << 20, 32, ranks_per_node=8, nodes=4, library="nccl",
                            cost=costs.__getitem__) == "ring"      # tree is no candidate
    assert choose_allreduce(1 << 20, 32, ranks_per_node=8, nodes=4, library="nccl",
                            cost=lambda name: 1.0) == "hierarchical"   # ties: hierarchical
    assert choose_allreduce(1 << 20, 32, ranks_per_node=8, nodes=4, library="mpich",
                            cost=costs.__getitem__) == "hierarchical"  # MPICH's fixed rule


def test_model_based_choice_with_link_parameters() -> None:
    ab = AlphaBeta(alpha_s=5e-6, beta_s_per_B=1e-10, gamma_s_per_B=1e-11)
    assert choose_allreduce(64, 12, ab=ab) == "recursive_doubling"
    assert choose_allreduce(1 << 26, 12, ab=ab) == "ring"
    assert choose_allreduce(1 << 26, 16, ab=ab) == "rabenseifner"   # ring's beta, fewer alphas
    assert choose_allreduce(1 << 12, 16, ab=ab, library="nccl") == "tree"


def test_edge_cases() -> None:
    assert choose_allreduce(1 << 20, 1) == "ring"
    with pytest.raises(UnknownNameError, match="nccl"):
        choose_allreduce(10, 4, library="ncl")
    with pytest.raises(SpecError, match="nodes"):
        choose_allreduce(10, 8, ranks_per_node=4, nodes=3)
