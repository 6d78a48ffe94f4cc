"""TCP over IPoIB (``ipoib-edr``): an InfiniBand wire run as an IP interface, NCCL on sockets.

What is asserted comes from the public measurements cited in ``hwmodels/data/fabrics.yaml``
(open-mpi/ompi#9087: iperf over IPoIB on ConnectX-4, about 20 Gb/s per process and over
80 Gb/s with 10 processes; esnet/iperf#286: one iperf3 thread over 100 GbE, 35.2 Gb/s), the
orderings those sources give (below native verbs, below 100 GbE TCP) and the mechanisms the
model already has (socket transport: host-staged NIC hops, TCP latency per network step),
never from the model's own output.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gradsync.cli.main import main
from hwmodels.cluster import load_cluster, with_changes
from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import IB_LATENCY_S, boundary_Bps, socket_step_s
from hwmodels.commmodel import CommModel
from hwmodels.fabrics import fabric_to_spec, get_fabric

ACHIEVED = 0.9   # the NCCL eras' fraction of their graph bandwidth (hwmodels/collectives/eras.py)
IPOIB_PER_PROCESS_Bps = 20e9 / 8       # open-mpi/ompi#9087: iperf over IPoIB, one process
IPOIB_MANY_PROCESSES_Bps = 80e9 / 8    # the same, 10 processes at once ("over 80 Gbps")
TCP_100GBE_ONE_THREAD_Bps = 35.2e9 / 8  # esnet/iperf#286: single-threaded iperf3, 100 GbE
HKBU = Path(__file__).resolve().parents[1] / "benchmarks" / "published" / "clusters"


def test_the_preset_loads_as_an_infiniband_wire_with_nccl_on_sockets() -> None:
    fabric = get_fabric("ipoib-edr")
    assert fabric.kind == "infiniband" and fabric.nccl_sockets
    assert fabric.line_rate_Bps == get_fabric("ib-edr").line_rate_Bps == pytest.approx(12.5e9)
    assert fabric_to_spec(fabric) == "ipoib-edr"


def test_every_figure_names_its_source() -> None:
    source = get_fabric("ipoib-edr").source
    for figure in ("bandwidth:", "latency:", "collective_bandwidth:", "nccl_transport:"):
        assert figure in source
    assert "ompi#9087" in source and "esnet/iperf#286" in source
    # The latency has no IPoIB measurement behind it, and says so.
    assert "assumption" in source.split("latency:")[1].split(";")[0]


def test_tcp_goodput_is_what_many_streams_measure_below_verbs_and_100gbe() -> None:
    ipoib = get_fabric("ipoib-edr")
    assert ipoib.bandwidth_Bps == pytest.approx(IPOIB_MANY_PROCESSES_Bps, rel=0.05)
    assert ipoib.bandwidth_Bps < get_fabric("ib-edr").bandwidth_Bps      # native verbs
    assert ipoib.bandwidth_Bps < get_fabric("eth-100g").bandwidth_Bps    # 100 GbE TCP
    assert ipoib.latency_s > 5 * get_fabric("ib-edr").latency_s           # kernel TCP stack


def test_nccl_gets_one_cores_tcp_rate_over_ipoib() -> None:
    # NCCL's socket transport drives a NIC from one proxy thread: its bus bandwidth is about
    # what one process gets over the link (20 Gb/s over IPoIB), and it stands to 100 GbE's
    # as one process's rate on each (20 vs 35.2 Gb/s).
    ipoib, eth = get_fabric("ipoib-edr"), get_fabric("eth-100g")
    assert ACHIEVED * ipoib.nccl_Bps == pytest.approx(IPOIB_PER_PROCESS_Bps, rel=0.03)
    assert ipoib.nccl_Bps / eth.nccl_Bps == pytest.approx(
        IPOIB_PER_PROCESS_Bps / TCP_100GBE_ONE_THREAD_Bps, rel=0.1)
    assert ipoib.nccl_Bps < ipoib.bandwidth_Bps
    assert ipoib.nccl_Bps < eth.nccl_Bps < get_fabric("ib-edr").nccl_Bps


def test_each_network_step_pays_the_tcp_latency_over_ipoib_and_none_over_verbs() -> None:
    cluster = load_cluster("dgx1-v100").with_nodes(4)
    ipoib = cluster.with_fabric(get_fabric("ipoib-edr"))
    assert socket_step_s(ipoib) == pytest.approx(get_fabric("ipoib-edr").latency_s
                                                 - IB_LATENCY_S)
    assert socket_step_s(cluster.with_fabric(get_fabric("ib-edr"))) == 0.0
    assert socket_step_s(ipoib.with_nodes(1)) == 0.0
    # The same wire, the same latency figure as 100 GbE TCP: the same step cost.
    assert socket_step_s(ipoib) == socket_step_s(cluster.with_fabric(get_fabric("eth-100g")))


def test_the_nic_hop_goes_through_host_memory_even_with_gpudirect() -> None:
    # NCCL's socket transport takes host pointers only, so over IPoIB a GPU that could let
    # the HCA read its memory (GPUDirect RDMA over verbs) still stages the NIC hop.
    era = ERAS["nccl2.4"]
    base = load_cluster(str(HKBU / "hkbu-2080ti-ib100.yaml")).with_nodes(2)
    gdr = replace(base, node=replace(base.node, device=replace(base.device,
                                                               gpudirect_rdma=True)))
    verbs, sockets = gdr, gdr.with_fabric(get_fabric("ipoib-edr"))
    assert boundary_Bps(sockets, era) < boundary_Bps(verbs, era)
    assert boundary_Bps(sockets, era) == pytest.approx(
        boundary_Bps(gdr.with_fabric(get_fabric("eth-100g")), era))


def test_a_large_allreduce_is_slower_over_ipoib_than_over_verbs_or_100gbe() -> None:
    n = 1 << 28
    cluster = with_changes(load_cluster("dgx1-v100"), nics=1, nodes=4)
    times = {name: CommModel(cluster.with_fabric(get_fabric(name))).allreduce(n).at(n)
             for name in ("ib-edr", "eth-100g", "ipoib-edr")}
    assert times["ipoib-edr"] > times["eth-100g"] > times["ib-edr"]
    # MPI over TCP reads the goodput, not NCCL's socket figure.
    inter = CommModel(cluster.with_fabric(get_fabric("ipoib-edr")),
                      library="mpi").link_params()["inter"]
    assert inter.beta_s_per_B == pytest.approx(1 / get_fabric("ipoib-edr").bandwidth_Bps)


def test_hkbus_100gbe_runs_are_modelled_as_tcp_over_ipoib() -> None:
    cluster = load_cluster(str(HKBU / "hkbu-2080ti-100gbe.yaml"))
    assert cluster.fabric == get_fabric("ipoib-edr")


def test_simulate_on_ipoib_from_the_command_line_records_the_fabric(capsys, tmp_path) -> None:
    argv = ["simulate", "--cluster", "dgx1-v100", "--nodes", "2", "--fabric", "ipoib-edr",
            "--model", "resnet50-ci", "--strategy", "bucketed", "--iterations", "1",
            "--json", "--out", str(tmp_path)]
    capsys.readouterr()
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["results"]
    records = list(tmp_path.glob("*/run.json"))
    assert len(records) == 1
    spec = json.loads(records[0].read_text())["specs"]["cluster"]
    assert spec["fabric"] == "ipoib-edr" and "fabric ipoib-edr" in spec["changes"]
