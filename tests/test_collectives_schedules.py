"""Schedules (collectives as data) against the closed forms: traffic, steps and time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.collectives.cost import (
    ALLREDUCE_ALGORITHMS, FLAT_ALGORITHMS, allreduce_cost, binomial_broadcast,
    hierarchical_allreduce, ring_allgather, ring_reduce_scatter,
)
from hwmodels.collectives.schedules import (
    Schedule, allgather_schedule, allreduce_schedule, broadcast_schedule, bytes_received_per_rank,
    bytes_sent_per_rank, chunk_sizes, reduce_scatter_schedule, schedule_time,
)
from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import AlphaBeta

AB = AlphaBeta(1e-6, 1e-9, 1e-10)


def assert_well_formed(s: Schedule) -> None:
    """Ranks in range, nobody sends to itself, everything sent is received."""
    for step in s.steps:
        assert len(step.reduce_bytes) == s.p
        for t in step.transfers:
            assert 0 <= t.src < s.p and 0 <= t.dst < s.p and t.src != t.dst and t.nbytes >= 0
    assert sum(bytes_sent_per_rank(s)) == sum(bytes_received_per_rank(s))


def test_ring_allreduce_sends_2_p_minus_1_over_p_n_per_rank() -> None:
    s = allreduce_schedule("ring", 8, 8_000_000)
    assert bytes_sent_per_rank(s) == [2 * 7 * 1_000_000] * 8     # 2(p-1)/p * n
    assert len(s.steps) == 14                                      # 2(p-1) alphas
    assert [st.max_reduce_bytes for st in s.steps] == [1_000_000] * 7 + [0] * 7


def test_recursive_doubling_sends_lg_p_n_per_rank() -> None:
    s = allreduce_schedule("recursive_doubling", 16, 1000)
    assert bytes_sent_per_rank(s) == [4 * 1000] * 16
    assert len(s.steps) == 4


def test_rabenseifner_power_of_two_sends_like_the_ring() -> None:
    s = allreduce_schedule("rabenseifner", 8, 8000)
    assert bytes_sent_per_rank(s) == [2 * 7 * 1000] * 8
    assert [max(t.nbytes for t in st.transfers) for st in s.steps] == [4000, 2000, 1000,
                                                                          1000, 2000, 4000]


def test_tree_reduce_then_broadcast() -> None:
    s = allreduce_schedule("tree", 8, 100)
    # reduce: 4, 2, 1 senders; broadcast: 1, 2, 4 senders; each sends the whole vector
    assert [len(st.transfers) for st in s.steps] == [4, 2, 1, 1, 2, 4]
    assert sum(bytes_sent_per_rank(s)) == 2 * 7 * 100   # p-1 messages each way


def test_non_power_of_two_fold_is_mpich_s() -> None:
    s = allreduce_schedule("recursive_doubling", 6, 600)   # p' = 4, r = 2
    first, last = s.steps[0], s.steps[-1]
    assert [(t.src, t.dst, t.nbytes) for t in first.transfers] == [(0, 1, 600), (2, 3, 600)]
    assert first.reduce_bytes == (0, 600, 0, 600, 0, 0)
    assert [(t.src, t.dst) for t in last.transfers] == [(1, 0), (3, 2)]
    assert not any(t.src in (0, 2) or t.dst in (0, 2) for st in s.steps[1:-1]
                   for t in st.transfers)                   # folded ranks sit out the middle
    assert len(s.steps) == 2 + 2                            # lg p' + 2 alphas


def test_uneven_chunks_differ_by_one_byte_and_total_exactly() -> None:
    assert chunk_sizes(10, 4) == [3, 3, 2, 2]
    s = allreduce_schedule("ring", 4, 10)
    sent = bytes_sent_per_rank(s)
    assert sum(sent) == 2 * 3 * 10 and max(sent) - min(sent) <= 2 * 3


def test_one_rank_has_no_steps() -> None:
    for name in ALLREDUCE_ALGORITHMS:
        assert allreduce_schedule(name, 1, 123, ranks_per_node=1).steps == ()


def test_hierarchical_is_node_major() -> None:
    s = allreduce_schedule("hierarchical", 8, 800, ranks_per_node=4)   # 2 nodes of 4
    assert_well_formed(s)
    rs, inter, ag = s.steps[:3], s.steps[3:5], s.steps[5:]
    assert len(s.steps) == 3 + 2 + 3
    for step in rs + ag:
        assert all(t.src // 4 == t.dst // 4 for t in step.transfers)
    for step in inter:   # local rank l of node 0 talks to local rank l of node 1
        assert sorted((t.src, t.dst) for t in step.transfers) == sorted(
            [(i, i + 4) for i in range(4)] + [(i + 4, i) for i in range(4)])
        assert all(t.nbytes == 100 for t in step.transfers)      # ring over 2 on n/k = 200


def test_schedule_time_is_the_hierarchical_closed_form() -> None:
    inter = AlphaBeta(5e-6, 1e-9, 1e-10)
    intra = AlphaBeta(1e-6, 1e-10, 1e-11)
    n = 4 * 3 * 1000
    s = allreduce_schedule("hierarchical", 12, n, ranks_per_node=4)
    assert schedule_time(s, intra, ranks_per_node=4, inter=inter) == pytest.approx(
        hierarchical_allreduce(n, 4, 3, intra, inter), rel=1e-12)


def test_other_collectives() -> None:
    rs, ag, bc = reduce_scatter_schedule(4, 4000), allgather_schedule(4, 4000), \
        broadcast_schedule(5, 10, root=2)
    assert bytes_sent_per_rank(rs) == [3000] * 4 and bytes_sent_per_rank(ag) == [3000] * 4
    assert schedule_time(rs, AB) == pytest.approx(ring_reduce_scatter(4000, 4, AB))
    assert schedule_time(ag, AB) == pytest.approx(ring_allgather(4000, 4, AB))
    assert schedule_time(bc, AB) == pytest.approx(binomial_broadcast(10, 5, AB))
    assert sorted(bytes_received_per_rank(bc)) == [0, 10, 10, 10, 10]
    assert bytes_received_per_rank(bc)[2] == 0                  # the root receives nothing


def test_bad_inputs() -> None:
    with pytest.raises(UnknownNameError):
        allreduce_schedule("rabenseifer", 4, 10)
    with pytest.raises(SpecError, match="ranks_per_node"):
        allreduce_schedule("hierarchical", 6, 10, ranks_per_node=4)
    with pytest.raises(SpecError, match="nbytes"):
        allreduce_schedule("ring", 4, 1.5)


@settings(deadline=None, max_examples=50)
@given(name=st.sampled_from(FLAT_ALGORITHMS), p=st.integers(1, 24), n=st.integers(0, 10**5))
def test_traffic_conservation_and_steps(name: str, p: int, n: int) -> None:
    s = allreduce_schedule(name, p, n)
    assert_well_formed(s)
    if p > 1:
        assert len(s.steps) == ALLREDUCE_ALGORITHMS[name].terms(p).alpha


@settings(deadline=None, max_examples=50)
@given(name=st.sampled_from(FLAT_ALGORITHMS), p=st.integers(1, 24), chunk=st.integers(0, 5000))
def test_schedule_time_equals_closed_form(name: str, p: int, chunk: int) -> None:
    # Equal chunks: n divisible by p, and for Rabenseifner by p' <= 16 as well
    n = p * chunk * (32 if name == "rabenseifner" else 1)
    assert schedule_time(allreduce_schedule(name, p, n), AB) == pytest.approx(
        allreduce_cost(name, n, p, AB), rel=1e-9, abs=1e-15)


@settings(deadline=None, max_examples=50)
@given(p=st.integers(2, 24), n=st.integers(0, 10**6))
def test_ring_per_rank_traffic_for_any_n(p: int, n: int) -> None:
    sent = bytes_sent_per_rank(allreduce_schedule("ring", p, n))
    assert sum(sent) == 2 * (p - 1) * n
    assert all(2 * (p - 1) * (n // p) <= b <= 2 * (p - 1) * -(-n // p) for b in sent)


@settings(deadline=None, max_examples=50)
@given(k=st.integers(1, 6), nodes=st.integers(1, 6), n=st.integers(0, 10**5))
def test_hierarchical_conserves_bytes(k: int, nodes: int, n: int) -> None:
    s = allreduce_schedule("hierarchical", k * nodes, n, ranks_per_node=k)
    assert_well_formed(s)
    expected = nodes * 2 * (k - 1) * n + 2 * (nodes - 1) * n   # rings in nodes, across
    assert sum(bytes_sent_per_rank(s)) == expected
