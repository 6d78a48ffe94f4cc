"""Closed-form collective costs against hand-computed numbers, and their invariants.

Link parameters throughout: alpha = 1 us, beta = 1 ns/B (1 GB/s), gamma = 0.1 ns/B, and
n = 1e6 bytes, so every term below can be checked by mental arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.collectives.affine import Affine, affine_allreduce, affine_hierarchical
from hwmodels.collectives.cost import (
    ALLREDUCE_ALGORITHMS, FLAT_ALGORITHMS, allreduce_cost, binomial_broadcast, busbw_allreduce,
    hierarchical_allreduce, rabenseifner_allreduce, recursive_doubling_allreduce,
    ring_allgather, ring_allreduce, ring_reduce_scatter, tree_allreduce,
)
from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import AlphaBeta

AB = AlphaBeta(alpha_s=1e-6, beta_s_per_B=1e-9, gamma_s_per_B=1e-10)
N = 1e6


def approx(x: float):
    return pytest.approx(x, rel=1e-12)


def test_ring_allreduce_p4() -> None:
    # 2*3 a + 2*3/4 n b + 3/4 n g = 6 us + 1.5 ms + 75 us
    assert ring_allreduce(N, 4, AB) == approx(6e-6 + 1.5e-3 + 7.5e-5)


def test_recursive_doubling_power_of_two() -> None:
    # lg 8 = 3 rounds of (a + n b + n g) = 3 * (1 us + 1 ms + 0.1 ms)
    assert recursive_doubling_allreduce(N, 8, AB) == approx(3 * 1.101e-3)


def test_recursive_doubling_non_power_of_two_adds_the_mpich_fold() -> None:
    # p = 6: p' = 4 (2 rounds) plus the fold: pre-step a + n b + n g, post-step a + n b
    assert recursive_doubling_allreduce(N, 6, AB) == approx(4e-6 + 4e-3 + 3e-4)


def test_rabenseifner_power_of_two() -> None:
    # 2 lg 8 a + 2*7/8 n b + 7/8 n g = 6 us + 1.75 ms + 87.5 us
    assert rabenseifner_allreduce(N, 8, AB) == approx(6e-6 + 1.75e-3 + 8.75e-5)


def test_rabenseifner_non_power_of_two_adds_the_mpich_fold() -> None:
    # p = 6: on p' = 4: 4 a + 1.5 n b + 0.75 n g; fold: 2 a + 2 n b + n g
    assert rabenseifner_allreduce(N, 6, AB) == approx(6e-6 + 3.5e-3 + 1.75e-4)


def test_tree_allreduce_uses_ceil_lg_rounds() -> None:
    # 2 lg 8 (a + n b) + lg 8 n g = 6.006 ms + 0.3 ms; p = 5 needs as many rounds as p = 8
    assert tree_allreduce(N, 8, AB) == approx(6.006e-3 + 3e-4)
    assert tree_allreduce(N, 5, AB) == approx(6.006e-3 + 3e-4)
    assert tree_allreduce(N, 4, AB) == approx(4.004e-3 + 2e-4)


def test_reduce_scatter_allgather_broadcast() -> None:
    assert ring_reduce_scatter(N, 4, AB) == approx(3e-6 + 7.5e-4 + 7.5e-5)
    assert ring_allgather(N, 4, AB) == approx(3e-6 + 7.5e-4)
    assert binomial_broadcast(N, 8, AB) == approx(3 * 1.001e-3)
    assert binomial_broadcast(N, 5, AB) == approx(3 * 1.001e-3)


def test_ring_allreduce_is_reduce_scatter_plus_allgather() -> None:
    for p in (2, 3, 7, 16):
        assert ring_allreduce(N, p, AB) == approx(ring_reduce_scatter(N, p, AB)
                                                  + ring_allgather(N, p, AB))


def test_hierarchical_two_nodes_of_four() -> None:
    intra = AlphaBeta(1e-6, 1e-10, 1e-11)
    inter = AlphaBeta(5e-6, 1e-9, 1e-11)
    # intra RS + AG over 4: 6 a + 1.5 n b + 0.75 n g = 6 us + 150 us + 7.5 us
    # inter ring over 2 nodes of the node's port: 2 a + n b + (1/2)(n/4) g = 10 us + 1 ms + 1.25 us
    expected = 6e-6 + 1.5e-4 + 7.5e-6 + 10e-6 + 1e-3 + 1.25e-6
    assert hierarchical_allreduce(N, 4, 2, intra, inter) == approx(expected)


def test_hierarchical_degenerates_to_flat() -> None:
    inter = AlphaBeta(5e-6, 2e-9, 1e-10)
    assert hierarchical_allreduce(N, 1, 8, AB, inter) == approx(ring_allreduce(N, 8, inter))
    assert hierarchical_allreduce(N, 8, 1, AB, inter) == approx(ring_allreduce(N, 8, AB))
    rd = hierarchical_allreduce(N, 1, 8, AB, inter, inter_algorithm="recursive_doubling")
    assert rd == approx(recursive_doubling_allreduce(N, 8, inter))


@pytest.mark.parametrize("name", sorted(ALLREDUCE_ALGORITHMS))
def test_one_rank_costs_nothing(name: str) -> None:
    assert allreduce_cost(name, N, 1, AB, ranks_per_node=1) == 0.0
    assert affine_allreduce(name, 1, AB, ranks_per_node=1) == Affine(0.0, 0.0)


def test_registry_is_loud_on_typos() -> None:
    assert set(ALLREDUCE_ALGORITHMS) == {"ring", "tree", "recursive_doubling", "rabenseifner",
                                         "hierarchical"}
    with pytest.raises(UnknownNameError) as err:
        ALLREDUCE_ALGORITHMS["rign"]
    assert "rabenseifner" in str(err.value) and "rign" in str(err.value)
    assert "rign" not in ALLREDUCE_ALGORITHMS
    with pytest.raises(UnknownNameError):
        hierarchical_allreduce(N, 2, 2, AB, AB, inter_algorithm="hierarchical")


def test_numpy_numbers_are_accepted() -> None:
    assert ring_allreduce(np.float64(N), np.int64(4), AB) == approx(ring_allreduce(N, 4, AB))
    assert ring_allreduce(np.int64(1000), 4, AB) == approx(ring_allreduce(1000, 4, AB))


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(SpecError, match="^p:"):
        ring_allreduce(N, 0, AB)
    with pytest.raises(SpecError, match="^nbytes:"):
        ring_allreduce(-1, 4, AB)
    with pytest.raises(SpecError, match="ranks_per_node"):
        allreduce_cost("hierarchical", N, 6, AB, ranks_per_node=4)


def test_busbw_of_a_latency_free_ring_is_the_link_bandwidth() -> None:
    # nccl-tests: busbw = algbw * 2(p-1)/p; a ring's busbw is its per-rank link bandwidth
    ab = AlphaBeta(0.0, 1 / 25e9)
    for p in (2, 8, 64):
        seconds = ring_allreduce(N, p, ab)
        assert busbw_allreduce(N / seconds, p) == pytest.approx(25e9)


@pytest.mark.parametrize("name", FLAT_ALGORITHMS)
@pytest.mark.parametrize("p", [2, 3, 5, 8, 12, 16, 33])
def test_affine_matches_closed_form(name: str, p: int) -> None:
    cost = affine_allreduce(name, p, AB)
    for n in (0, 1, 4096, 3e7):
        assert cost.at(n) == approx(allreduce_cost(name, n, p, AB))


def test_affine_hierarchical_matches_closed_form() -> None:
    inter = AlphaBeta(5e-6, 1e-9, 1e-11)
    cost = affine_allreduce("hierarchical", 16, AB, ranks_per_node=8, inter=inter)
    assert cost == affine_hierarchical(8, 2, AB, inter)
    assert cost.at(N) == approx(hierarchical_allreduce(N, 8, 2, AB, inter))
    with pytest.raises(SpecError):
        affine_allreduce("hierarchical", 16, AB)


link = st.builds(AlphaBeta, st.floats(0, 1e-4), st.floats(1e-12, 1e-8), st.floats(0, 1e-9))


@settings(deadline=None, max_examples=50)
@given(name=st.sampled_from(FLAT_ALGORITHMS), p=st.integers(1, 300), ab=link,
       n=st.floats(0, 1e9), more=st.floats(0, 1e9), faster=st.floats(1.0, 100.0))
def test_more_bytes_never_faster_more_bandwidth_never_slower(name, p, ab, n, more, faster):
    base = allreduce_cost(name, n, p, ab)
    assert allreduce_cost(name, n + more, p, ab) >= base
    quicker = AlphaBeta(ab.alpha_s, ab.beta_s_per_B / faster, ab.gamma_s_per_B)
    assert allreduce_cost(name, n, p, quicker) <= base


@settings(deadline=None, max_examples=50)
@given(p=st.integers(2, 300), n=st.floats(1, 1e9), ab=link)
def test_rabenseifner_never_sends_more_than_recursive_doubling(p, n, ab):
    # Bandwidth terms: 2(p'-1)/p' (+2) versus lg p' (+2); equal only for p' = 2
    bw = AlphaBeta(0.0, ab.beta_s_per_B, 0.0)
    assert rabenseifner_allreduce(n, p, bw) <= recursive_doubling_allreduce(n, p, bw) * (1 + 1e-12)
