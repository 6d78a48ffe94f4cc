"""Both executor strategies implement the one ExecStrategy protocol that train.py uses."""

from __future__ import annotations

import inspect

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mpi4py")

from torch import nn  # noqa: E402

from executor.comm import MPI  # noqa: E402
from executor.ddp import DDPStrategy  # noqa: E402
from executor.models import parametric_layers  # noqa: E402
from executor.runtime import StrategyRuntime  # noqa: E402
from executor.strategy import ExecStrategy  # noqa: E402
from vocab.strategies import StrategySpec, make_plan  # noqa: E402

METHODS = ("begin_step", "end_step", "flush", "pending_state", "load_pending_state", "close")


@pytest.mark.parametrize("cls", [StrategyRuntime, DDPStrategy])
def test_both_strategies_have_the_protocols_methods_and_signatures(cls):
    for name in METHODS:
        assert [p for p in inspect.signature(getattr(cls, name)).parameters] == \
            [p for p in inspect.signature(getattr(ExecStrategy, name)).parameters], name
    assert isinstance(cls.reports_gradients, bool)


def test_a_runtime_on_one_rank_is_an_exec_strategy_and_runs_its_net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    layers = parametric_layers(model)
    grad_bytes = [sum(p.numel() * p.element_size() for p in ps) for _, _, ps in layers]
    plan = make_plan(StrategySpec("delayed", staleness=1), grad_bytes)
    runtime = StrategyRuntime(MPI.COMM_SELF, model, layers, plan,
                              lambda ps: torch.optim.SGD(ps, lr=0.1), lambda: 0.0, None, 10.0)
    assert isinstance(runtime, ExecStrategy) and runtime.net is model
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 0])
    updated = []
    for step in range(2):
        runtime.begin_step(step)
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(runtime.net(x), y).backward()
        updated.append(runtime.end_step(step))
    assert updated == [False, True]      # delayed: no update in the first d steps
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert len(runtime.pending_state()) == 1
    runtime.close()


@pytest.mark.parametrize("name", ["sync", "bucketed", "crossiter"])
def test_a_runtime_reporting_to_the_tracer_gives_a_row_per_layer_and_step(name):
    """The runtime's own hooks report forward starts and gradients (the tracer registers no
    pre-hook or gradient hook of its own); crossiter's gates report too."""
    import itertools

    from executor.tracing import Tracer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2))
    layers = parametric_layers(model)
    grad_bytes = [sum(p.numel() * p.element_size() for p in ps) for _, _, ps in layers]
    ticks = itertools.count()
    tracer = Tracer("run", 0, lambda: float(next(ticks)), True)
    plan = make_plan(StrategySpec(name, bucket_bytes=200, first_bucket_bytes=200), grad_bytes)
    runtime = StrategyRuntime(MPI.COMM_SELF, model, layers, plan,
                              lambda ps: torch.optim.SGD(ps, lr=0.1), tracer.clock,
                              tracer.record, 10.0, tracer.grad_ready, tracer.forward_begins)
    assert runtime.reports_forward and runtime.reports_gradients
    tracer.attach(layers, grad_hooks=False, forward_hooks=False)
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 0])
    for step in range(3):
        tracer.begin_step(step)
        runtime.begin_step(step)
        model.zero_grad(set_to_none=True)
        out = runtime.net(x)
        tracer.forward_ends()
        loss = nn.functional.cross_entropy(out, y)
        tracer.backward_begins()
        loss.backward()
        runtime.end_step(step)
    runtime.flush(2)
    frame = tracer.frame()
    for op in ("forward", "backward"):
        rows = frame[frame["op"] == op]
        assert len(rows) == 3 * len(layers), op
        assert (rows["end_s"] > rows["start_s"]).all(), op     # both ends were stamped
        for step in range(3):
            # Tiles: no two rows of a phase overlap (crossiter's gate may leave gaps).
            tiles = rows[rows["iteration"] == step].sort_values("start_s")
            assert (tiles["start_s"].to_numpy()[1:] >= tiles["end_s"].to_numpy()[:-1]).all()
    updates = frame[frame["op"].isin(["update", "wait"])]
    forward = frame[frame["op"] == "forward"]
    for _, u in updates.iterrows():     # crossiter's wait and update lie in no forward row
        assert not ((forward["start_s"] < u["end_s"]) & (u["start_s"] < forward["end_s"])).any()
    runtime.close()
    tracer.close()
