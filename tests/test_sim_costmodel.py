"""The simulator's interfaces: CommModel is a CostModel, profiles are LayerTimes, and a Context
built from something that is neither fails at once, naming what it lacks."""

from __future__ import annotations

import pytest

from hwmodels.cluster import load_cluster
from hwmodels.commmodel import CommModel
from simulator.api import Context, prepare, simulate
from simulator.costmodel import CostModel, LayerTimes, missing_members
from simulator.roofline import roofline_profile
from vocab.errors import SpecError


def test_the_concrete_classes_satisfy_the_protocols() -> None:
    ctx = prepare("dgx1-p100", "alexnet", 32)
    assert isinstance(ctx.comm_model, CommModel) and isinstance(ctx.comm_model, CostModel)
    assert isinstance(ctx.profile, LayerTimes)
    assert missing_members(ctx.comm_model, CostModel) == []


class Delegating:
    """A custom cost model: CommModel's costs, doubled, with every member the protocol asks."""

    algorithm = "doubled"

    def __init__(self, inner: CommModel) -> None:
        self.inner = inner

    def allreduce(self, nbytes: float):
        cost = self.inner.allreduce(nbytes)
        return type(cost)(2 * cost.fixed_s, 2 * cost.per_byte_s)

    def steps(self, nbytes: float) -> int:
        return self.inner.steps(nbytes)

    def link_params(self):
        return self.inner.link_params()

    def collective_links(self):
        return self.inner.collective_links()

    def schedule(self, nbytes: float):
        return self.inner.schedule(nbytes)


def test_a_custom_cost_model_is_used_and_reported() -> None:
    cluster = load_cluster("dgx1-p100", nodes=2)
    plain = simulate(cluster, "alexnet", 32, "sync")
    doubled = simulate(cluster, "alexnet", 32, "sync", comm_model=Delegating(CommModel(cluster)))
    assert doubled.iteration_time_s > plain.iteration_time_s
    assert doubled.specs["comm"]["algorithm"] == "doubled"


def test_a_context_refuses_what_is_not_a_cost_model_or_profile() -> None:
    ctx = prepare("dgx1-p100", "alexnet", 32)

    class NoSteps:
        algorithm = "x"

        def allreduce(self, nbytes):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(SpecError, match="comm_model.*CostModel.*collective_links.*steps"):
        Context(ctx.cluster, ctx.workload, 32, ctx.profile, NoSteps())
    with pytest.raises(SpecError, match="profile.*LayerTimes.*backward_s"):
        Context(ctx.cluster, ctx.workload, 32, object(), ctx.comm_model)


def test_a_roofline_profile_is_layer_times() -> None:
    cluster = load_cluster("dgx1-p100")
    ctx = prepare(cluster, "alexnet", 16)
    assert isinstance(roofline_profile(ctx.workload, cluster.device, 16), LayerTimes)
