"""The software stack as an input: presets and files, each framework cost by hand, overlap
interference, precision and throughput, and the run record."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from gradsync.cli.main import main
from hwmodels.cluster import load_cluster
from hwmodels.stacks import (
    COPY_PASSES, DATA_FILE, Stack, list_stacks, load_stack, save_stack, stack_presets,
)
from simulator.api import prepare, simulate
from vocab.errors import SpecError, UnknownNameError
from vocab.runrecord import check_run_record
from vocab.strategies import STRATEGIES
from vocab.workload import load_workload

PRESETS = ("nccl1", "nccl2", "nccl2.8", "mpi", "caffe-mpi-2016", "ddp", "horovod-0.11",
           "horovod-0.19", "horovod-0.22", "tf-replicated-2017", "tf-replicated-2020",
           "tf2-collective")
MODEL, BATCH = "alexnet", 64


def test_every_library_era_is_also_a_library_only_stack():
    # `--stack nccl2.4` names the era alone, as `--stack nccl2.8` does: no framework costs
    from hwmodels.collectives.eras import LIBRARIES
    for era in LIBRARIES:
        stack = load_stack(era)
        assert (stack.library, stack.launch_s, stack.copies) == (era, 0.0, "never"), era


def test_the_presets_of_the_brief_exist_with_a_source_on_every_figure():
    assert set(PRESETS) <= set(list_stacks())
    raw = yaml.safe_load(DATA_FILE.read_text())
    for name, entry in raw.items():
        assert entry.get("source"), name
        unsourced = [k for k, v in entry.items()
                     if k != "source" and not (isinstance(v, dict) and v.get("source"))]
        assert not unsourced, f"{name}: figures without a source: {unsourced}"


def test_preset_figures_are_those_of_the_sources():
    assert load_stack("horovod-0.19").cycle_s == pytest.approx(5e-3)
    assert load_stack("horovod-0.22").cycle_s == pytest.approx(1e-3)
    assert load_stack("horovod-0.19").bucket_bytes == 64 * 2**20
    assert load_stack("horovod-0.22").bucket_bytes == 128 * 2**20
    assert load_stack("ddp").bucket_bytes == 25 * 2**20 and load_stack("ddp").copies == "always"
    assert load_stack("tf-replicated-2017").per_variable
    assert load_stack("caffe-mpi-2016").transport == "host"
    for name in ("nccl1", "nccl2", "nccl2.8", "mpi"):   # the library alone
        stack = load_stack(name)
        assert (stack.launch_s, stack.cycle_s, stack.copies, stack.per_variable) == \
            (0.0, 0.0, "never", False)


def test_a_mistyped_preset_names_the_nearest():
    with pytest.raises(UnknownNameError) as info:
        load_stack("horovod-0.91")
    assert "horovod-0.19" in str(info.value)


@pytest.mark.parametrize("release,preset", [("horovod-0.9.3", "horovod-0.11"),
                                            ("horovod-0.15.2", "horovod-0.11"),
                                            ("horovod-0.16", "horovod-0.19"),
                                            ("horovod-0.20.3", "horovod-0.19"),
                                            ("horovod-0.21", "horovod-0.22"),
                                            ("horovod-0.28.1", "horovod-0.22")])
def test_a_release_between_presets_has_the_defaults_of_its_span(release, preset):
    # the documented boundaries: Tensor Fusion from 0.9.3; 5 ms / 64 MB to 0.20, 1 ms / 128 MB
    # from 0.21; the library by era (NCCL 2.0-2.3, 2.4, 2.8)
    got, want = load_stack(release), load_stack(preset)
    assert got.name == release and preset in got.source
    assert replace(got, name=want.name, source=want.source) == want
    assert (got.cycle_s, got.bucket_bytes) == ((1e-3, 128 * 2**20) if preset == "horovod-0.22"
                                               else (5e-3, 64 * 2**20))


def test_a_release_before_tensor_fusion_is_refused_naming_the_first_modelled():
    with pytest.raises(SpecError, match="from 0.9.3"):
        load_stack("horovod-0.9.2")


@pytest.mark.parametrize("name", PRESETS)
def test_a_stack_file_round_trips(tmp_path, name):
    preset = stack_presets()[name]
    path = save_stack(preset, tmp_path / f"{name}.yaml")
    assert load_stack(path) == preset


def test_a_bad_field_in_a_stack_file_is_one_line_naming_it(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nlibrary: nccl2.8\ncycel: 2 ms\n")
    with pytest.raises(SpecError) as info:
        load_stack(path)
    assert info.value.field == "cycel" and "cycle" in str(info.value) and str(path) in \
        str(info.value)
    assert main(["simulate", "--stack", str(path), "--model", "alexnet-ci"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cycel" in err[0]
    path.write_text("name: mine\nlibrary: nccl3\n")
    with pytest.raises(SpecError, match="library"):
        load_stack(path)


def test_a_users_stack_file_runs_from_the_cli(tmp_path, capsys):
    path = save_stack(replace(load_stack("horovod-0.22"), name="my-horovod"),
                      tmp_path / "my.yaml")
    assert main(["simulate", "--stack", str(path), "--model", "alexnet-ci", "--strategy",
                 "sync", "--json"]) == 0
    assert '"stack": "my-horovod"' in capsys.readouterr().out


# ---- each framework cost against a hand-worked case --------------------------------------

def test_a_collective_waits_for_the_next_horovod_cycle():
    stack = Stack("h", "nccl2", cycle_s=5e-3)
    assert stack.start_s(7.2e-3) == pytest.approx(10e-3)
    assert stack.start_s(10e-3) == pytest.approx(10e-3)   # on a tick: no wait
    assert stack.start_s(0.0) == 0.0


def sync_time(stack: Stack | None, **kwargs) -> float:
    return simulate("dgx1-p100", MODEL, BATCH, "sync", stack=stack, **kwargs).iteration_time_s


def test_in_the_engine_every_collective_starts_on_a_cycle_tick():
    cycle = 7e-3   # not a divisor of anything in the run
    result = simulate("dgx1-p100", MODEL, BATCH, "layerwise",
                      stack=Stack("h", "nccl2", cycle_s=cycle))
    comm = result.trace[result.trace["stream"] == "comm"].sort_values("start_s")
    ticks = comm["start_s"] / cycle
    on_tick = (ticks - ticks.round()).abs() < 1e-6
    # ...or, when several became ready in one cycle, right after the one before it (one
    # stream, in order).
    after_previous = (comm["start_s"] - comm["end_s"].shift()).abs() < 1e-12
    assert len(comm) and (on_tick | after_previous).all() and on_tick.sum() > len(comm) / 4
    plain = simulate("dgx1-p100", MODEL, BATCH, "layerwise", stack=Stack("h", "nccl2"))
    assert result.iteration_time_s >= plain.iteration_time_s


def test_launch_cost_is_paid_once_per_sync_call():
    base = Stack("s", "nccl2")
    assert sync_time(replace(base, launch_s=1e-3)) - sync_time(base) == pytest.approx(1e-3,
                                                                                      rel=1e-6)


def test_bucket_copies_cost_four_passes_over_device_memory():
    base = Stack("s", "nccl2")
    ctx = prepare("dgx1-p100", MODEL, BATCH)
    nbytes = ctx.workload.total_grad_bytes
    expected = COPY_PASSES * nbytes / ctx.cluster.device.mem_bandwidth_Bps
    assert COPY_PASSES == 4   # read + write in, read + write out
    assert sync_time(replace(base, copies="always")) - sync_time(base) == \
        pytest.approx(expected, rel=1e-6)
    # Horovod copies only what it fuses: one message of many tensors is fused.
    assert sync_time(replace(base, copies="fused")) == pytest.approx(
        sync_time(replace(base, copies="always")), rel=1e-9)


def test_one_call_per_variable_pays_the_fixed_cost_of_every_call():
    base = Stack("s", "nccl2")
    ctx = prepare("dgx1-p100", MODEL, BATCH, stack=base)   # its library prices the calls
    tensors = ctx.workload.param_tensors
    nbytes = ctx.workload.total_grad_bytes
    per_call_fixed = ctx.cost(nbytes // tensors)[0]
    expected = 2e-5 * tensors + (tensors - 1) * per_call_fixed
    slower = sync_time(replace(base, per_variable=True, launch_s=2e-5)) - sync_time(base)
    assert slower == pytest.approx(expected, rel=1e-6)


def test_the_stack_bucket_is_the_default_bucket_of_bucketed():
    result = simulate("dgx1-p100", "resnet50", 32, "bucketed", stack="horovod-0.22")
    assert result.specs["strategy"]["bucket_bytes"] == 128 * 2**20
    mine = simulate("dgx1-p100", "resnet50", 32, "bucketed", stack="horovod-0.22",
                    bucket_bytes=2**20)
    assert mine.specs["strategy"]["bucket_bytes"] == 2**20


def test_an_nccl_stack_on_a_cpu_cluster_is_refused():
    with pytest.raises(SpecError, match="stack"):
        simulate("cpu-broadwell-edr", MODEL, BATCH, "sync", stack="ddp")
    assert simulate("cpu-broadwell-edr", MODEL, BATCH, "sync", stack="mpi").iteration_time_s > 0


def test_mpi_stacks_stage_through_the_host():
    result = simulate("dgx1-p100", MODEL, BATCH, "sync", stack="caffe-mpi-2016")
    assert result.specs["cluster"]["transport"] == "host"


# ---- overlap interference -------------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), f=st.floats(0.01, 1.0),
       nodes=st.sampled_from([1, 2, 4]), model=st.sampled_from(["alexnet", "resnet50"]))
def test_overlap_interference_never_makes_a_strategy_faster(strategy, f, nodes, model):
    cluster = load_cluster("dgx1-v100", nodes=nodes)
    times = [simulate(replace(cluster, comm_interference=x), model, 32, strategy)
             for x in (0.0, f)]
    assert times[1].iteration_time_s >= times[0].iteration_time_s * (1 - 1e-9)
    assert times[1].interference_s >= 0 and times[0].interference_s == 0


def test_interference_shows_as_its_own_line_and_only_where_work_overlaps():
    cluster = replace(load_cluster("dgx1-p100", nodes=2), comm_interference=0.3)
    sync = simulate(cluster, MODEL, BATCH, "sync")
    layerwise = simulate(cluster, MODEL, BATCH, "layerwise")
    assert sync.interference_s == 0       # sync sends after backward: nothing overlaps
    assert layerwise.interference_s > 0
    assert layerwise.interference_s <= 0.3 * layerwise.compute_s + 1e-12
    row = layerwise.to_dict()
    parts = row["compute_s"] + row["update_s"] + row["interference_s"] + row["exposed_comm_s"]
    assert parts == pytest.approx(layerwise.iteration_time_s, rel=1e-9)


def test_the_gpu_default_comes_from_the_device_and_a_stack_can_set_its_own():
    result = simulate("dgx1-v100", MODEL, BATCH, "layerwise")
    assert result.specs["cluster"]["comm_interference"] == pytest.approx(0.3)
    assert result.specs["cluster"]["comm_interference_from"] == "device v100-sxm2"
    mine = simulate("dgx1-v100", MODEL, BATCH, "layerwise",
                    stack=Stack("s", "nccl2", overlap_interference=0.1))
    assert mine.specs["cluster"]["comm_interference"] == pytest.approx(0.1)


def test_detailed_agrees_with_analytic_under_interference_and_stack_costs():
    kwargs = dict(cluster="dgx1-p100", model=MODEL, batch=BATCH, nodes=2,
                  stack=Stack("s", "nccl2", launch_s=2e-5, copies="always", cycle_s=1e-3))
    for strategy in ("layerwise", "bucketed"):
        a = simulate(strategy=strategy, **kwargs).iteration_time_s
        d = simulate(strategy=strategy, fidelity="detailed", **kwargs).iteration_time_s
        assert d == pytest.approx(a, rel=0.01), strategy


# ---- precision and throughput -----------------------------------------------------------

def test_half_precision_halves_the_message_bytes_and_never_slows():
    for strategy in STRATEGIES:
        runs = {p: simulate("dgx1-v100", "resnet50", 32, strategy, precision=p, nodes=2)
                for p in ("fp32", "amp", "fp16")}
        total = {p: r.specs["workload"]["total_grad_bytes"] for p, r in runs.items()}
        assert total["fp16"] * 2 == total["fp32"] == total["amp"]
        sizes = {p: [m.nbytes for m in r.setup.plan.messages] for p, r in runs.items()}
        if strategy in ("sync", "layerwise"):
            assert [2 * b for b in sizes["fp16"]] == sizes["fp32"]
        assert runs["fp16"].iteration_time_s <= runs["amp"].iteration_time_s * (1 + 1e-9)
        assert runs["amp"].iteration_time_s <= runs["fp32"].iteration_time_s * (1 + 1e-9)


def test_bf16_on_a_gpu_without_it_is_refused():
    with pytest.raises(SpecError, match="bf16"):
        simulate("dgx1-v100", MODEL, BATCH, "sync", precision="bf16")
    assert simulate("dgx-a100", MODEL, BATCH, "sync", precision="bf16").iteration_time_s > 0


def test_throughput_scaling_hits_the_given_samples_per_second_on_one_device():
    result = simulate("dgx1-v100", "resnet50", 64, "sync", throughput=350.0)
    assert result.batch / result.single_device_s == pytest.approx(350.0, rel=1e-9)


def test_gpus_per_node_is_devices_per_node(capsys):
    assert main(["simulate", "--cluster", "local-cpu", "--model", "alexnet-ci",
                 "--gpus-per-node", "2", "--strategy", "sync", "--json"]) == 0
    assert main(["simulate", "--cluster", "local-cpu", "--model", "alexnet-ci",
                 "--gpus-per-node", "2", "--devices-per-node", "1"]) == 2


# ---- run record -----------------------------------------------------------------------------

def test_run_json_records_the_stack_and_the_checker_reads_it():
    record = simulate("dgx1-p100", MODEL, BATCH, "sync", stack="horovod-0.19").run_record
    check_run_record(record)
    stack = record["specs"]["stack"]
    assert stack["name"] == "horovod-0.19" and stack["cycle_s"] == pytest.approx(5e-3)
    assert simulate("dgx1-p100", MODEL, BATCH, "sync").run_record["specs"]["stack"] is None
    broken = {**record, "specs": {**record["specs"], "stack": {**stack, "cycle_s": "5 ms"}}}
    with pytest.raises(SpecError, match="specs.stack.cycle_s"):
        check_run_record(broken)


def test_cpu_clusters_keep_their_results_without_a_stack():
    # stack=None on a CPU cluster: the cluster's own interference, compute-side only, and the
    # same iteration time as the explicit library-free stack with the same interference.
    cluster = load_cluster("cpu-broadwell-edr", nodes=2)
    plain = simulate(cluster, MODEL, BATCH, "layerwise")
    assert plain.specs["cluster"]["comm_interference"] == cluster.comm_interference
    assert not plain.setup.stretch_comm and math.isfinite(plain.iteration_time_s)
    assert load_workload(MODEL).total_grad_bytes == plain.specs["workload"]["total_grad_bytes"]
    # sync overlaps nothing: compute, then the one allreduce at its closed-form cost, then
    # the update, with nothing of a framework added.
    ctx = prepare(cluster, MODEL, BATCH)
    fixed, per_byte = ctx.cost(ctx.workload.total_grad_bytes)
    expected = (sum(ctx.profile.forward_s) + sum(ctx.profile.backward_s) + ctx.profile.update_s
                + fixed + per_byte * ctx.workload.total_grad_bytes)
    sync = simulate(cluster, MODEL, BATCH, "sync")
    assert sync.iteration_time_s == pytest.approx(expected, rel=1e-9)
    assert sync.interference_s == 0


def test_a_channel_slowed_mid_transfer_finishes_when_the_remaining_work_says():
    import simpy
    from simulator.channel import Channel
    env = simpy.Environment()
    channel = Channel(env, "x", 1.0)
    done = channel.transfer(1.0)
    env.run(until=0.5)
    channel.set_rate(0.5)        # half the work left, at half the rate: one more second
    env.run(until=done)
    assert env.now == pytest.approx(1.5)


def test_tensor_core_rates_speed_up_compute_bound_layers_by_the_rate_ratio():
    from hwmodels.devices import get_device
    from simulator.roofline import roofline_profile
    device = get_device("v100-sxm2")
    workload = load_workload("resnet50")
    fp32 = roofline_profile(workload, device, 64)
    amp = roofline_profile(workload, device, 64, precision="amp")
    ratio = device.rate_flops("amp") / device.rate_flops("fp32")
    # 125 TFLOP/s x 0.2 against 15.7 x 0.5 (the datasheets and the stated efficiencies)
    assert ratio == pytest.approx(125 * 0.2 / (15.7 * 0.5))
    assert all(a <= f for a, f in zip(amp.forward_s, fp32.forward_s))
    heaviest = max(range(len(workload.layers)), key=lambda i: workload.layers[i].fwd_flops)
    assert fp32.forward_s[heaviest] / amp.forward_s[heaviest] == pytest.approx(ratio)


def test_a_sweep_varies_the_stack_as_an_axis():
    from simulator.sweep import expand_grid, run_sweep
    points = expand_grid({"cluster": "dgx1-p100", "model": MODEL, "batch": BATCH,
                          "strategy": ["sync", "layerwise"],
                          "stack": ["nccl2", "horovod-0.19"], "iterations": 2})
    table = run_sweep(points, jobs=1, progress=False)
    assert (table["error"] == "").all() and set(table["stack"]) == {"nccl2", "horovod-0.19"}
    sync = table[table["strategy"] == "sync"]
    assert (sync["speedup_vs_sync"] == 1.0).all()      # each stack against its own sync
    single = {s: simulate("dgx1-p100", MODEL, BATCH, "layerwise", stack=s, iterations=2)
              for s in ("nccl2", "horovod-0.19")}
    for stack, result in single.items():
        row = table[(table["stack"] == stack) & (table["strategy"] == "layerwise")]
        assert row["iteration_time_s"].iloc[0] == pytest.approx(result.iteration_time_s)


@pytest.mark.parametrize("fidelity", ["analytic", "detailed"])
def test_after_backward_collectives_start_when_the_backward_pass_ends(fidelity):
    # TensorFlow 1.x: the NCCL stream waits for the compute queued before it, so layerwise
    # all-reduces start once the backward pass has run and then run back to back, in order.
    base = Stack("tf", "nccl2")
    held = simulate("dgx1-p100", MODEL, BATCH, "layerwise", fidelity=fidelity,
                    stack=replace(base, after_backward=True))
    free = simulate("dgx1-p100", MODEL, BATCH, "layerwise", fidelity=fidelity, stack=base)
    trace = held.trace[held.trace["rank"] == 0]
    for it, steps in trace.groupby("iteration"):
        backward_end = steps[steps["op"] == "backward"]["end_s"].max()
        comm = steps[steps["stream"] == "comm"]
        assert len(comm) and (comm["start_s"] >= backward_end - 1e-12).all(), it
    assert held.iteration_time_s >= free.iteration_time_s
    # nothing overlaps: the step is compute, then every message's collective back to back,
    # then the update, so all the communication time is exposed
    last = trace[trace["iteration"] == trace["iteration"].max()]
    comm = last[last["stream"] == "comm"]
    assert held.exposed_comm_s == pytest.approx((comm["end_s"] - comm["start_s"]).sum(),
                                                rel=1e-6)
    assert held.exposed_comm_s > free.exposed_comm_s


def test_tensorflow_1_15_replicated_overlaps_what_2017_held_back():
    # Both run one NCCL call per variable; TF 1.15's collectives wait only for their own
    # input (PR #31481), 2017's for the whole compute stream, so 2020's start inside the
    # backward pass and never expose more.
    old, new = load_stack("tf-replicated-2017"), load_stack("tf-replicated-2020")
    assert old.per_variable and new.per_variable and not new.after_backward
    runs = {s.name: simulate("pcie4-rtx3090", "vgg16", 32, "layerwise", stack=s, iterations=2)
            for s in (old, new)}
    trace = runs[new.name].trace
    last = trace[(trace["rank"] == 0) & (trace["iteration"] == trace["iteration"].max())]
    backward_end = last[last["op"] == "backward"]["end_s"].max()
    assert (last[last["stream"] == "comm"]["start_s"] < backward_end).any()
    assert runs[new.name].exposed_comm_s < runs[old.name].exposed_comm_s


def test_after_backward_is_a_stack_figure_that_round_trips(tmp_path):
    stack = replace(load_stack("tf-replicated-2017"), name="mine")
    assert load_stack("tf-replicated-2017").after_backward
    assert not load_stack("ddp").after_backward
    assert load_stack(save_stack(stack, tmp_path / "s.yaml")) == stack
    path = tmp_path / "bad.yaml"
    path.write_text("name: b\nlibrary: nccl2\nafter_backward: sometimes\n")
    with pytest.raises(SpecError, match="after_backward"):
        load_stack(path)


def test_compression_is_a_stack_figure_that_round_trips_and_names_a_bad_value(tmp_path):
    stack = replace(load_stack("horovod-0.22"), name="mine", compression="fp16")
    assert load_stack(save_stack(stack, tmp_path / "s.yaml")) == stack
    assert load_stack("horovod-0.22").compression == "none"
    path = tmp_path / "bad.yaml"
    path.write_text("name: b\nlibrary: nccl2\ncompression: int8\n")
    with pytest.raises(SpecError, match="compression") as info:
        load_stack(path)
    assert "fp16" in str(info.value) and "int8" in str(info.value)


def test_fp16_compression_halves_the_wire_bytes_and_pays_its_casts():
    # One sync allreduce: its bytes halve on the wire, gradient memory keeps fp32, and the
    # stack's extra cost is the two casts: read 4 + write 2 bytes an element, then the reverse.
    base = Stack("s", "nccl2")
    plain = simulate("dgx1-p100", MODEL, BATCH, "sync", stack=base)
    packed = simulate("dgx1-p100", MODEL, BATCH, "sync", stack=replace(base, compression="fp16"))
    full = plain.specs["workload"]["total_grad_bytes"]
    assert packed.specs["workload"]["total_grad_bytes"] == full
    assert [m.nbytes for m in packed.setup.plan.messages] == [full // 2]
    ctx = prepare("dgx1-p100", MODEL, BATCH, stack=replace(base, compression="fp16"))
    casts = (full / 4) * 2 * (4 + 2) / ctx.cluster.device.mem_bandwidth_Bps
    message = packed.setup.plan.messages[0]
    assert ctx.call_s(message) == pytest.approx(casts, rel=1e-9)
    fixed, per_byte = ctx.cost(full // 2)
    plain_ctx = prepare("dgx1-p100", MODEL, BATCH, stack=base)
    fixed_full, per_byte_full = plain_ctx.cost(full)
    saved = (fixed_full + per_byte_full * full) - (fixed + per_byte * (full // 2) + casts)
    assert plain.iteration_time_s - packed.iteration_time_s == pytest.approx(saved, rel=1e-6)


def test_ddp_buckets_count_gradient_bytes_and_horovod_fuses_compressed_ones():
    # DDP forms its buckets first and a comm hook casts each; Horovod compresses each tensor
    # before Tensor Fusion, so the same threshold holds twice the gradients.
    ddp = load_stack("ddp")
    hvd = load_stack("horovod-0.19")
    for stack, strategy in ((ddp, "bucketed"), (hvd, "sync")):
        runs = [simulate("dgx1-v100", "bert-large", 8, strategy, stack=s)
                for s in (stack, replace(stack, compression="fp16"))]
        plain, packed = ([m.nbytes for m in r.setup.plan.messages] for r in runs)
        assert sum(packed) * 2 == sum(plain)
        if stack is ddp:
            assert [2 * b for b in packed] == plain
        else:
            assert max(packed) <= hvd.bucket_bytes
            assert math.ceil(sum(packed) / hvd.bucket_bytes) <= len(packed) < len(plain)


def test_compression_leaves_half_precision_gradients_alone():
    fp16 = Stack("s", "nccl2")
    runs = [simulate("dgx1-v100", "resnet50", 32, "bucketed", precision="fp16", stack=s)
            for s in (fp16, replace(fp16, compression="bf16"))]
    assert runs[0].iteration_time_s == runs[1].iteration_time_s
    assert [m.nbytes for m in runs[0].setup.plan.messages] == \
        [m.nbytes for m in runs[1].setup.plan.messages]
