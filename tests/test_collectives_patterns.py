"""Step groups (compact schedules) describe the same collective as the full schedules."""

from __future__ import annotations

import numpy as np
import pytest

from hwmodels.collectives.patterns import allreduce_groups, groups_of, total_steps
from hwmodels.collectives.schedules import allreduce_schedule


def expand(groups):
    """(src, dst, share) triples of every step, repeats unrolled."""
    return [sorted(zip(g.src.tolist(), g.dst.tolist())) for g in groups for _ in range(g.repeat)]


@pytest.mark.parametrize("algorithm,p,k", [("ring", 8, None), ("ring", 12, None),
                                           ("hierarchical", 16, 4), ("hierarchical", 24, 8),
                                           ("tree", 10, None), ("rabenseifner", 8, None)])
def test_groups_are_the_schedule(algorithm, p, k):
    n = p * 1000 * (k or 1)                      # divisible: integer chunks equal fractions
    schedule = allreduce_schedule(algorithm, p, n, ranks_per_node=k)
    groups = allreduce_groups(algorithm, p, k)
    assert total_steps(groups) == len(schedule.steps)
    assert expand(groups) == [sorted((t.src, t.dst) for t in s.transfers) for s in schedule.steps]
    sent = sum(g.repeat * g.share.sum() for g in groups) * n
    assert sent == pytest.approx(sum(t.nbytes for s in schedule.steps for t in s.transfers))
    reduced = sum(g.repeat * g.reduce_share for g in groups) * n
    assert reduced == pytest.approx(sum(s.max_reduce_bytes for s in schedule.steps))


def test_ring_traffic_is_the_closed_form():
    # every rank sends 2 (p - 1) / p of the message
    p = 16384
    groups = allreduce_groups("ring", p)
    per_rank = np.zeros(p)
    for g in groups:
        np.add.at(per_rank, g.src, g.share * g.repeat)
    assert np.allclose(per_rank, 2 * (p - 1) / p)
    assert len(groups) == 2


def test_groups_of_merges_runs_of_equal_steps():
    schedule = allreduce_schedule("ring", 6, 6000)
    assert [g.repeat for g in groups_of(schedule)] == [5, 5]
