"""What-if from the command line: one function changes a cluster (``with_changes``), the
``simulate``/``sweep``/``whatif`` flags go through it, and the runs record what changed.

The user's own question is the walkthrough: "16 DGX-1 V100 nodes on 25 GbE RoCE: delayed or
bucketed for BERT-base, and what if we move to 100 Gb InfiniBand?", answered by five commands
and no YAML written by hand.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gradsync.cli.main import main
from hwmodels.cluster import load_cluster, with_changes
from hwmodels.fabrics import get_fabric
from vocab.errors import SpecError


def run_json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_with_changes_rebuilds_the_node_and_lists_each_change():
    base = load_cluster("dgx1-v100")
    changed = with_changes(base, nics=1, fabric="roce-25g", oversubscription=2.0, nodes=16)
    assert len(base.node.nics) == 4 and len(changed.node.nics) == 1
    assert changed.fabric == get_fabric("roce-25g") and changed.oversubscription == 2.0
    assert changed.nodes == 16 and changed.node.graph.number_of_nodes() == \
        base.node.graph.number_of_nodes() - 3          # three NIC vertices fewer
    assert changed.provenance["changes"] == ["1 NIC(s) per node", "fabric roce-25g",
                                             "oversubscription 2", "16 nodes"]
    assert with_changes(base) is base


def test_a_device_change_keeps_the_topology_and_a_fabric_file_is_read(tmp_path):
    fabric = tmp_path / "lab-net.yaml"
    fabric.write_text("kind: ethernet\nbandwidth: 2 GB/s\nlatency: 3 us\nsource: our lab\n")
    changed = with_changes(load_cluster("dgx1-v100"), device="p100-sxm2", fabric=fabric)
    assert changed.device.name == "p100-sxm2"
    assert changed.node.graph.graph["topology"] == "dgx1-v100"
    assert (changed.fabric.name, changed.fabric.bandwidth_Bps) == ("lab-net", 2e9)


def test_changes_a_topology_cannot_take_are_refused_naming_the_field():
    with pytest.raises(SpecError) as info:
        with_changes(load_cluster("dgx1-v100"), nics=0)
    assert info.value.field == "nics"
    with pytest.raises(SpecError) as info:
        with_changes(load_cluster("dgx1-v100"), oversubscription=0.5)
    assert "oversubscription" in info.value.field


def test_bad_flags_are_one_line_and_exit_2(capsys):
    for flags in (["--fabric", "roce-26g"], ["--nics", "0"], ["--device", "v200"]):
        assert main(["simulate", "--cluster", "dgx1-v100", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and flags[0].strip("-") in err


def test_hw_show_says_what_a_file_inherits(tmp_path, capsys):
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\nnode: {topology: dgx1-v100}\nnodes: 16\nfabric: roce-25g\n")
    data = run_json(capsys, ["hw", "show", str(mine), "--json"])
    assert data["inherited"]["nics"].startswith("4 per node")
    assert "nodes" not in data["inherited"] and "fabric" not in data["inherited"]


def test_the_users_question_in_five_commands(tmp_path, capsys):
    """16 DGX-1 V100 on 25 GbE RoCE, one NIC each: delayed or bucketed for BERT-base, and
    what if the fabric were 100 Gb InfiniBand (EDR)?"""
    common = ["--cluster", "dgx1-v100", "--nodes", "16", "--nics", "1", "--model", "bert-base",
              "--strategy", "bucketed,delayed", "--iterations", "2", "--json"]
    # 1. What does the preset assume? (4 NICs per node: the question has one.)
    shown = run_json(capsys, ["hw", "show", "dgx1-v100", "--nodes", "16", "--json"])
    assert shown["nics_per_node"] == 4 and shown["fabric"]["name"] == "ib-edr"
    # 2. The cluster as it is: RoCE on 25 GbE, runs saved.
    roce = run_json(capsys, ["simulate", *common, "--fabric", "roce-25g",
                             "--out", str(tmp_path / "roce")])
    # 3. The what-if: EDR InfiniBand.
    edr = run_json(capsys, ["simulate", *common, "--fabric", "ib-edr"])
    # 4. The same at 2..16 nodes, as a table.
    table = tmp_path / "scale.csv"
    capsys.readouterr()
    assert main(["sweep", "--clusters", "dgx1-v100", "--nodes", "2,16", "--models",
                 "bert-base", "--strategies", "sync,bucketed,delayed", "--iterations", "2",
                 "--nics", "1", "--fabric", "roce-25g", "--jobs", "1", "--no-progress",
                 "--out", str(table)]) == 0
    # 5. What the saved run records.
    records = list((tmp_path / "roce").glob("*/run.json"))
    assert len(records) == 2
    spec = json.loads(records[0].read_text())["specs"]["cluster"]
    assert (spec["fabric"], spec["nics_per_node"], spec["nodes"]) == ("roce-25g", 1, 16)
    assert spec["changes"] == ["1 NIC(s) per node", "fabric roce-25g"]

    for fast, slow in zip(edr["results"], roce["results"]):   # 4x the bandwidth: never slower
        assert fast["strategy"] == slow["strategy"]
        assert fast["iteration_time_s"] <= slow["iteration_time_s"]
    sweep = pd.read_csv(table)
    assert (sweep["error"].isna() | (sweep["error"] == "")).all() and set(sweep["nodes"]) == {2, 16}
    changed = load_cluster(sweep["cluster"].iloc[0])
    assert changed.fabric.name == "roce-25g" and len(changed.node.nics) == 1


def test_whatif_predicts_what_simulate_predicts_with_the_same_changes(capsys):
    flags = ["--fabric", "roce-100g", "--nics", "2", "--nodes", "8", "--model", "resnet50",
             "--strategy", "sync,delayed", "--iterations", "2"]
    whatif = run_json(capsys, ["whatif", "--cluster", "dgx1-p100", *flags, "--json"])
    simulated = run_json(capsys, ["simulate", "--cluster", "dgx1-p100", *flags, "--json"])
    assert whatif["changes"] == ["2 NIC(s) per node", "fabric roce-100g", "8 nodes"]
    for a, b in zip(whatif["results"], simulated["results"]):
        assert a["strategy"] == b["strategy"]
        assert a["iteration_time_s"] == pytest.approx(b["iteration_time_s"], rel=1e-9)


def test_sweep_takes_devices_per_node_and_the_what_if_flags(tmp_path):
    table = tmp_path / "cpu.csv"
    assert main(["sweep", "--clusters", "cpu-sandybridge-fdr", "--nodes", "2", "--models",
                 "alexnet", "--strategies", "sync", "--iterations", "2", "--devices-per-node",
                 "2", "--fabric", "eth-10g", "--jobs", "1", "--no-progress",
                 "--out", str(table)]) == 0
    row = pd.read_csv(table).iloc[0]
    assert row["ranks"] == 2 * 2
    assert load_cluster(row["cluster"]).fabric.name == "eth-10g"


# -- transport and progress: stated on the command line, one change mechanism -----------------

@pytest.fixture(scope="module")
def fitted_cpu(tmp_path_factory):
    """A calibrated CPU machine (synthetic traces of the local 2-core preset): its fitted
    progress rule is the executor's polled ``test``, with device transport (CPU memory)."""
    from calibration import synthetic
    from calibration.calibrate import calibrate, mpich_algorithm
    from simulator.roofline import roofline_profile
    from vocab.strategies import StrategySpec
    from vocab.workload import load_workload

    d = tmp_path_factory.mktemp("fittedcpu")
    cluster = synthetic.local_machine()
    synthetic.write_bench(d / "bench", cluster, mpich_algorithm, ranks=(2,), noise=0.002)
    profile = roofline_profile(load_workload("resnet18-ci"), cluster.device, 16)
    runs = [synthetic.write_run(d / f"n{p}", cluster.with_devices_per_node(p), "resnet18-ci",
                                StrategySpec("sync"), 16, profile) for p in (1, 2)]
    calibrate([d / "bench", *runs], d / "fitted.yaml")
    fitted = load_cluster(d / "fitted.yaml")
    assert (fitted.transport, fitted.progress, fitted.device.kind) == ("device", "test", "cpu")
    return d / "fitted.yaml"


def test_with_changes_states_transport_and_progress_and_refuses_mpi_rules_on_nccl():
    base = load_cluster("dgx1-p100")
    host = with_changes(base, transport="host", progress="test")
    assert (host.transport, host.progress) == ("host", "test")
    assert host.provenance["changes"] == ["transport host", "progress test"]
    assert with_changes(base, transport=base.transport) is base      # no change, none listed
    for kwargs, field in (({"transport": "pcie"}, "transport"), ({"progress": "test"}, "progress"),
                          ({"progress": "poll"}, "progress")):
        with pytest.raises(SpecError) as info:
            with_changes(base, **kwargs)
        assert info.value.field == field
    # a CPU cluster's ranks progress MPI as asked, whatever the transport
    assert with_changes(load_cluster("cpu-10gbe"), progress="wait").progress == "wait"


def test_whatif_gpu_on_a_fitted_cpu_machine_needs_transport_or_progress(fitted_cpu, capsys):
    common = ["whatif", "--cluster", str(fitted_cpu), "--model", "resnet18-ci", "--device",
              "v100-sxm2", "--strategy", "sync,delayed", "--iterations", "2"]
    capsys.readouterr()
    assert main(common) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "device" in err and "'test'" in err
    assert "transport host" in err and "progress async" in err
    host = run_json(capsys, [*common, "--transport", "host", "--json"])
    nccl = run_json(capsys, [*common, "--progress", "async", "--json"])
    assert host["changes"] == ["device v100-sxm2", "transport host"]
    assert nccl["changes"] == ["device v100-sxm2", "progress async"]
    # whatif and simulate with the same flags: one mechanism, one prediction
    same = run_json(capsys, ["simulate", *common[1:], "--transport", "host", "--json"])
    for a, b in zip(host["results"], same["results"]):
        assert a["iteration_time_s"] == pytest.approx(b["iteration_time_s"], rel=1e-9)
    assert all(r["iteration_time_s"] > 0 for r in host["results"] + nccl["results"])


def test_whatif_records_the_transport_in_run_json(fitted_cpu, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["whatif", "--cluster", str(fitted_cpu), "--model", "resnet18-ci", "--device",
                 "v100-sxm2", "--transport", "host", "--strategy", "sync", "--iterations", "2",
                 "--out", str(out)]) == 0
    assert "host transport, test progress" in capsys.readouterr().out
    (record,) = out.glob("*/run.json")
    spec = json.loads(record.read_text())["specs"]["cluster"]
    assert (spec["transport"], spec["progress"], spec["device"]) == ("host", "test",
                                                                     "v100-sxm2")
    assert spec["changes"] == ["device v100-sxm2", "transport host"]


def test_whatif_takes_gpus_per_node_as_simulate_does(capsys):
    flags = ["--cluster", "pcie8-p100", "--model", "resnet50", "--strategy", "sync",
             "--iterations", "2", "--json"]
    a = run_json(capsys, ["whatif", *flags, "--gpus-per-node", "4"])
    b = run_json(capsys, ["whatif", *flags, "--devices-per-node", "4"])
    c = run_json(capsys, ["simulate", *flags, "--gpus-per-node", "4"])
    assert a["results"] == b["results"]
    assert a["results"][0]["iteration_time_s"] == pytest.approx(
        c["results"][0]["iteration_time_s"], rel=1e-9)
    assert main(["whatif", *flags, "--gpus-per-node", "4", "--devices-per-node", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--gpus-per-node" in err


def test_the_cluster_flags_are_one_definition_in_every_command():
    import argparse

    from gradsync.cli.main import build_parser

    commands = {}
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands = action.choices

    def flag(command: str, option: str):
        found = [a for a in commands[command]._actions if option in a.option_strings]
        assert found, f"{command} lacks {option}"
        a = found[0]
        return (a.dest, a.choices, a.type, a.help)

    for option in ("--fabric", "--nics", "--oversubscription", "--device", "--transport",
                   "--devices-per-node", "--gpus-per-node", "--progress"):
        shown = {cmd: flag(cmd, option) for cmd in ("simulate", "whatif", "sweep")
                 if option != "--progress" or cmd != "sweep"}     # sweep's grid: no progress
        same = {cmd: v[:3] for cmd, v in shown.items()}
        assert len(set(map(repr, same.values()))) == 1, same


def test_whatif_takes_the_software_stack_as_simulate_does(capsys):
    """--stack, --precision and --throughput reach the prediction: what simulate predicts with
    the same flags, and a Horovod stack is never faster than the library alone (its cycle and
    copies only add time)."""
    flags = ["--cluster", "dgx1-v100", "--nodes", "4", "--fabric", "ib-edr", "--model",
             "resnet50", "--strategy", "bucketed", "--iterations", "2", "--json"]
    stacked = ["--stack", "horovod-0.19", "--precision", "amp", "--throughput", "900"]
    whatif = run_json(capsys, ["whatif", *flags, *stacked])
    simulated = run_json(capsys, ["simulate", *flags, *stacked])
    assert whatif["results"][0]["iteration_time_s"] == pytest.approx(
        simulated["results"][0]["iteration_time_s"], rel=1e-9)
    plain = run_json(capsys, ["whatif", *flags, "--precision", "amp", "--throughput", "900"])
    assert whatif["results"][0]["iteration_time_s"] >= plain["results"][0]["iteration_time_s"]
    for option in ("--stack", "--precision", "--throughput"):
        assert main(["whatif", *flags, option]) == 2        # a flag without its value
        assert capsys.readouterr().err.strip().count("\n") == 0
