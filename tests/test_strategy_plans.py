"""Strategy planning: the messages each strategy sends, checked against its definition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocab.errors import SpecError, UnknownNameError
from vocab.strategies import STRATEGIES, StrategySpec, make_plan

sizes = st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=40)


@given(grad_bytes=sizes, strategy=st.sampled_from(STRATEGIES))
def test_every_gradient_is_sent_exactly_once(grad_bytes: list[int], strategy: str) -> None:
    plan = make_plan(StrategySpec(strategy, bucket_bytes=4_000_000), grad_bytes)
    sent = [layer for message in plan.messages for layer in message.layers]
    assert sorted(sent) == [i for i, b in enumerate(grad_bytes) if b > 0]
    assert plan.total_bytes == sum(grad_bytes)


@given(grad_bytes=sizes)
def test_messages_are_posted_in_backward_order(grad_bytes: list[int]) -> None:
    for strategy in ("layerwise", "bucketed"):
        plan = make_plan(StrategySpec(strategy, bucket_bytes=3_000_000), grad_bytes)
        triggers = [m.trigger_layer for m in plan.messages]
        assert triggers == sorted(triggers, reverse=True)


def test_ddp_like_buckets_fill_to_the_cap_and_the_first_is_small() -> None:
    mib = 1 << 20
    grad_bytes = [mib] * 60   # 60 layers of 1 MiB, ready from layer 59 down
    plan = make_plan(StrategySpec("bucketed", bucket_bytes=25 * mib, first_bucket_bytes=mib),
                     grad_bytes)
    assert [m.nbytes // mib for m in plan.messages] == [1, 25, 25, 9]


def test_sync_and_delayed_send_one_fused_message() -> None:
    assert len(make_plan("sync", [4, 8, 0, 12]).messages) == 1
    delayed = make_plan(StrategySpec("delayed", staleness=3), [4, 8, 0, 12])
    assert (len(delayed.messages), delayed.staleness, delayed.wait_point) == (1, 3, "delayed")


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "delayed"])
def test_only_delayed_plans_have_staleness(strategy: str) -> None:
    # callers read plan.staleness (the simulator's pacing, memory) instead of the spec's knob
    assert make_plan(StrategySpec(strategy, staleness=3), [4, 8, 0, 12]).staleness == 0


def test_mgwfbp_needs_the_times_it_decides_by() -> None:
    with pytest.raises(SpecError, match="merge"):
        make_plan(StrategySpec("bucketed", merge="mgwfbp"), [100, 200])
    # A huge startup cost relative to the gap between gradients merges everything.
    plan = make_plan(StrategySpec("bucketed", merge="mgwfbp"), [100, 200, 300],
                     backward_s=[1e-3, 1e-3, 1e-3], cost=lambda n: (1.0, 1e-9))
    assert [m.layers for m in plan.messages] == [(2, 1, 0)]
    # A negligible startup cost sends each gradient as soon as it is ready.
    plan = make_plan(StrategySpec("bucketed", merge="mgwfbp"), [100, 200, 300],
                     backward_s=[1e-3, 1e-3, 1e-3], cost=lambda n: (1e-9, 1e-9))
    assert [m.layers for m in plan.messages] == [(2,), (1,), (0,)]


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "allreduce"}, "strategy"), ({"name": "bucketed", "bucket_bytes": 0}, "bucket_bytes"),
    ({"name": "delayed", "staleness": 0}, "staleness"), ({"name": "sync", "merge": "x"}, "merge"),
])
def test_bad_strategy_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(SpecError, match=field):
        StrategySpec(**kwargs)


def test_an_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError,
                       match="bucketed, crossiter, ddp, delayed, layerwise, sync"):
        StrategySpec("asynch")


def test_a_baseline_is_a_spec_but_has_no_plan() -> None:
    ddp = StrategySpec("ddp", bucket_bytes=4 << 20)
    assert ddp.is_baseline and not StrategySpec("sync").is_baseline
    with pytest.raises(SpecError, match="strategy: got 'ddp'"):
        make_plan(ddp, [4, 4])


def test_a_comparison_keeps_variants_of_one_strategy_apart() -> None:
    from simulator.api import compare

    cmp = compare([StrategySpec("bucketed"), StrategySpec("bucketed", merge="mgwfbp")],
                  cluster="dgx1-p100", model="googlenet-ci", iterations=2)
    assert list(cmp.table().index) == ["bucketed", "bucketed+mgwfbp"]
