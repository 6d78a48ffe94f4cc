"""MPI progress semantics: async (NCCL, progress thread), wait (only inside Wait), test (polls).

The oracles use host-staged MPI on a DGX-1 (P100) without noise. With ``ordering="serial"``
the collectives of one Waitall run one after another, so under ``wait`` an iteration is
compute + update + the sum of the closed-form cost of every message: no overlap at all. The
group computes at its slowest GPU: the device's speed spread times the expected largest of
N normal draws (``simulator.noise``), which the closed form applies to compute and update.
"""

from __future__ import annotations

import json
from dataclasses import replace
from statistics import NormalDist

import pytest
import simpy

from gradsync.cli.main import main
from hwmodels.cluster import cluster_to_dict, load_cluster, save_cluster
from hwmodels.commmodel import CommModel
from vocab.errors import SpecError
from simulator.api import (RunSettings, prepare, run_strategy, simulate, speed_spread,
                           strategy_spec)
from simulator.progress import ProgressGate

MODEL, BATCH = "alexnet-ci", 8          # communication-bound: overlap matters


def run(strategy, progress, ordering=None, model=MODEL, batch=BATCH, iterations=3):
    ctx = prepare("dgx1-p100", model, batch, transport="host", progress=progress)
    return ctx, run_strategy(ctx, strategy_spec(strategy),
                             RunSettings(iterations, ordering=ordering))


def closed_form(ctx, result):
    """compute + update at the slowest GPU's pace + every message's whole allreduce, one
    after another."""
    comm = sum(ctx.cost(m.nbytes)[0] + ctx.cost(m.nbytes)[1] * m.nbytes
               for m in result.setup.messages)
    ranks = ctx.cluster.total_devices
    slowest = 1.0 + speed_spread(ctx.cluster) * NormalDist().inv_cdf((ranks - 0.375) / (ranks + 0.25))
    return (result.setup.compute_s + result.setup.update_s) * slowest + comm


@pytest.mark.parametrize("strategy", ["sync", "layerwise", "bucketed"])
def test_wait_is_the_no_overlap_closed_form(strategy):
    ctx, result = run(strategy, "wait", ordering="serial")
    assert result.iteration_time_s == pytest.approx(closed_form(ctx, result), rel=1e-9)


def test_wait_costs_layerwise_its_extra_per_message_latencies():
    ctx, sync = run("sync", "wait", ordering="serial")
    _, layerwise = run("layerwise", "wait", ordering="serial")
    messages = layerwise.setup.messages
    fused = sync.setup.messages[0].nbytes
    extra = sum(ctx.cost(m.nbytes)[0] for m in messages) - ctx.cost(fused)[0]
    per_byte = {ctx.cost(m.nbytes)[1] for m in messages}
    if per_byte == {ctx.cost(fused)[1]}:          # one algorithm at every size: fixed only
        assert layerwise.iteration_time_s - sync.iteration_time_s == pytest.approx(extra)
    assert layerwise.iteration_time_s > sync.iteration_time_s


def test_delayed_gains_nothing_under_wait():
    # Its collective progresses only in the next iteration's Wait: it costs what sync costs.
    for ordering in ("serial", "concurrent"):
        _, sync = run("sync", "wait", ordering)
        _, delayed = run("delayed", "wait", ordering, iterations=5)
        assert delayed.iteration_time_s == pytest.approx(sync.iteration_time_s, rel=1e-9)
    _, sync = run("sync", "wait", "serial")
    _, delayed_async = run("delayed", "async", "serial")
    assert delayed_async.iteration_time_s < sync.iteration_time_s      # what async buys


def test_under_wait_nothing_moves_while_the_rank_computes():
    _, result = run("layerwise", "wait")              # default ordering: concurrent for host
    trace = result.trace
    waits = trace[trace.op == "wait"][["start_s", "end_s"]].to_numpy()
    for start, end in trace[trace.op == "allreduce"][["start_s", "end_s"]].to_numpy():
        assert any(ws - 1e-12 <= start and end <= we + 1e-12 for ws, we in waits)


@pytest.mark.parametrize("model,batch", [("alexnet", 256), ("googlenet", 32)])
@pytest.mark.parametrize("strategy", ["layerwise", "bucketed", "delayed"])
def test_test_lies_between_wait_and_async(model, batch, strategy):
    times = {mode: run(strategy, mode, model=model, batch=batch)[1].iteration_time_s
             for mode in ("async", "test", "wait")}
    assert times["async"] * (1 - 1e-9) <= times["test"] <= times["wait"] * (1 + 1e-9)


def test_polls_buy_overlap():
    times = {mode: run("layerwise", mode, model="alexnet", batch=256)[1].iteration_time_s
             for mode in ("async", "test", "wait")}
    assert times["async"] < times["test"] < times["wait"]


def test_sync_does_not_care():
    times = {mode: run("sync", mode)[1].iteration_time_s for mode in ("async", "test", "wait")}
    assert times["test"] == pytest.approx(times["async"]) == pytest.approx(times["wait"])


def test_async_is_the_default_and_changes_nothing():
    plain = simulate("dgx1-p100", MODEL, BATCH, "layerwise", transport="host", iterations=2)
    explicit = simulate("dgx1-p100", MODEL, BATCH, "layerwise", transport="host",
                        iterations=2, progress="async")
    assert plain.output.rows == explicit.output.rows
    assert plain.specs["cluster"]["progress"] == "async" == plain.to_dict()["progress"]


def test_the_run_record_says_which_progress():
    result = simulate("dgx1-p100", MODEL, BATCH, "layerwise", transport="host", iterations=1,
                      progress="test")
    assert result.run_record["specs"]["cluster"]["progress"] == "test"
    assert result.to_dict()["progress"] == "test"


def test_cpu_ranks_over_mpi_take_any_mode():
    times = [simulate("cpu-sandybridge-fdr", "alexnet-ci", 8, "layerwise", nodes=4,
                      iterations=2, progress=mode).iteration_time_s
             for mode in ("async", "test", "wait")]
    assert times[0] <= times[1] <= times[2]


def test_nccl_and_detailed_refuse_mpi_progress():
    with pytest.raises(SpecError, match="progress") as info:
        simulate("dgx1-p100", MODEL, BATCH, "layerwise", progress="wait")   # device: NCCL
    assert info.value.field == "progress"
    with pytest.raises(SpecError, match="detailed"):
        simulate("dgx1-p100", MODEL, BATCH, "layerwise", transport="host", progress="test",
                 fidelity="detailed")
    with pytest.raises(SpecError, match="progress"):
        simulate("dgx1-p100", MODEL, BATCH, "sync", transport="host", progress="never")


def test_cluster_field_loads_validates_and_round_trips(tmp_path):
    cluster = load_cluster("dgx1-p100")
    assert cluster.progress == "async" and cluster_to_dict(cluster)["progress"] == "async"
    with pytest.raises(SpecError) as info:
        replace(cluster, progress="sometimes")
    assert info.value.field == "progress"
    waiting = cluster.with_transport("host").with_progress("wait")
    again = load_cluster(save_cluster(waiting, tmp_path / "c.yaml"))
    assert again.progress == "wait" and cluster_to_dict(again) == cluster_to_dict(waiting)
    # A file's progress is the default of every run on it; simulate(progress=...) overrides.
    plain = simulate(again, MODEL, BATCH, "sync", iterations=1)
    assert plain.specs["cluster"]["progress"] == "wait"
    assert simulate(again, MODEL, BATCH, "sync", iterations=1,
                    progress="test").specs["cluster"]["progress"] == "test"


def test_cli_progress_flag(capsys):
    args = ["simulate", "--model", MODEL, "--batch", str(BATCH), "--transport", "host",
            "--strategy", "sync,layerwise", "--iterations", "1", "--json"]
    times = {}
    for mode in ("async", "wait"):
        assert main([*args, "--progress", mode]) == 0
        results = json.loads(capsys.readouterr().out)["results"]
        times[mode] = results[1]["iteration_time_s"]
        assert results[1]["progress"] == mode
    assert times["async"] < times["wait"]
    assert main([*args[:-1], "--progress", "wait"]) == 0
    assert "wait progress" in capsys.readouterr().out


def test_a_poll_starts_one_step_of_each_pending_collective():
    env = simpy.Environment()
    gate = ProgressGate(env, "test")
    first, second = gate.step("a"), gate.step("b")
    assert first is not None and second is not None and not first.triggered
    env.run(until=1.0)
    gate.poll()
    assert first.triggered and second.triggered
    env.run(until=2.0)
    assert gate.step("a") is not None                    # the next step waits for a poll
    gate.enter_wait(["a"])
    assert gate.step("a") is None and gate.step("b") is not None   # only what is waited on
    gate.leave_wait()
    assert ProgressGate(env, "async").step("a") is None


@pytest.mark.parametrize("transport,nodes", [("device", 1), ("device", 4), ("host", 1),
                                             ("host", 2)])
def test_steps_are_the_schedule_rounds(transport, nodes):
    model = CommModel(load_cluster("dgx1-p100", nodes=nodes).with_transport(transport))
    staged = 2 if transport == "host" else 0
    for nbytes in (8, 100_000, 100 << 20):
        assert model.steps(nbytes) == len(model.schedule(nbytes).steps) + staged
