"""One definition of a run's iteration time (``vocab.timing``), against hand-worked cases."""

from __future__ import annotations

import pandas as pd
import pytest

from vocab.strategies import StrategySpec
from vocab.timing import iteration_durations, iteration_time_s, warmup_iterations


def rows(*per_rank: list[tuple[float, float]], first: int = 0) -> pd.DataFrame:
    """(start_s, end_s) per iteration, one list per rank."""
    return pd.DataFrame([{"rank": r, "iteration": first + i, "start_s": s, "end_s": e}
                         for r, spans in enumerate(per_rank) for i, (s, e) in enumerate(spans)])


def test_warmup_is_two_plus_the_staleness_of_delayed():
    assert warmup_iterations(StrategySpec("sync")) == 2
    assert warmup_iterations(StrategySpec("bucketed", staleness=3)) == 2   # not delayed
    assert warmup_iterations(StrategySpec("delayed")) == 3
    assert warmup_iterations(StrategySpec("delayed", staleness=4)) == 6


def test_a_periodic_pattern_costs_its_mean():
    # durations a, b, a, b with a = 3, b = 1 (the last from its end): the median would say
    # 1 or 3; the run pays (a + b) / 2 = 2 per iteration.
    frame = rows([(0.0, 2.5), (3.0, 4.0), (4.0, 6.5), (7.0, 8.0)])
    assert iteration_durations(frame, 0)["duration_s"].tolist() == [3.0, 1.0, 3.0, 1.0]
    assert iteration_time_s(frame, warmup=0) == pytest.approx(2.0)
    # after one warm-up iteration: b, a, b
    assert iteration_time_s(frame, warmup=1) == pytest.approx((1 + 3 + 1) / 3)


def test_warmup_rows_are_left_out():
    frame = rows([(0.0, 9.0), (9.0, 14.0), (14.0, 15.0), (15.0, 16.0), (16.0, 17.0)])
    assert iteration_time_s(frame, warmup=2) == pytest.approx(1.0)
    assert list(iteration_durations(frame, 2)["iteration"]) == [2, 3, 4]


def test_warmup_counts_from_the_first_iteration_in_the_frame():
    # a resumed run's trace may start at iteration 10
    frame = rows([(0.0, 5.0), (5.0, 6.0), (6.0, 7.0)], first=10)
    assert iteration_time_s(frame, warmup=1) == pytest.approx(1.0)


def test_the_last_iteration_uses_its_end():
    frame = rows([(0.0, 1.0), (2.0, 3.0), (4.0, 4.5)])
    durations = iteration_durations(frame, 0)["duration_s"].tolist()
    assert durations == [2.0, 2.0, 0.5]
    assert iteration_time_s(frame, 0) == pytest.approx(4.5 / 3)


def test_the_mean_is_over_ranks_and_iterations():
    rank0 = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]          # 1, 1, 1
    rank1 = [(0.0, 2.0), (3.0, 4.0), (6.0, 9.0)]          # 3, 3, 3
    frame = rows(rank0, rank1)
    assert iteration_time_s(frame, 0) == pytest.approx(2.0)
    assert iteration_time_s(frame, 1) == pytest.approx(2.0)


def test_many_rows_per_iteration_span_the_iteration():
    # a trace: forward and backward rows per iteration; the iteration starts at its first row
    trace = pd.DataFrame({"rank": [0] * 6, "iteration": [0, 0, 1, 1, 2, 2],
                          "start_s": [0.0, 0.4, 1.0, 1.5, 3.0, 3.1],
                          "end_s": [0.4, 0.9, 1.5, 2.8, 3.1, 3.6]})
    assert iteration_durations(trace, 0)["duration_s"].tolist() == pytest.approx([1.0, 2.0, 0.6])


def test_nothing_steady_and_bad_input_are_errors():
    frame = rows([(0.0, 1.0), (1.0, 2.0)])
    with pytest.raises(ValueError, match="no iteration"):
        iteration_time_s(frame, warmup=2)
    with pytest.raises(ValueError, match="end_s"):
        iteration_time_s(frame.drop(columns="end_s"), warmup=0)
    with pytest.raises(ValueError, match="warmup"):
        iteration_time_s(frame, warmup=-1)
