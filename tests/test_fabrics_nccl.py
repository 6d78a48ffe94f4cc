"""What NCCL gets over a fabric: TCP through NCCL's socket transport, not the TCP goodput.

Figures asserted by hand come from the issue threads cited in ``hwmodels/data/fabrics.yaml``
(nccl-tests bus bandwidth over TCP), never from the model's own output.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from hwmodels.cluster import load_cluster
from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import boundary_Bps, network_Bps, node_graph
from hwmodels.devices import get_device
from hwmodels.commmodel import CommModel
from hwmodels.fabrics import fabric_to_spec, get_fabric, list_fabrics, resolve_fabric
from simulator.api import simulate
from vocab.errors import SpecError

ACHIEVED = 0.9   # the NCCL eras' fraction of their graph bandwidth (hwmodels/collectives/eras.py)


def test_socket_transport_figures_are_below_tcp_goodput_and_sourced() -> None:
    for name in list_fabrics():
        fabric = get_fabric(name)
        if fabric.collective_bandwidth_Bps:
            # TCP (over Ethernet, or over IPoIB), or a measured net plugin (AWS EFA): always a
            # figure below what MPI moves, with the thread it was measured in.
            assert fabric.collective_bandwidth_Bps < fabric.bandwidth_Bps
            assert "collective_bandwidth:" in fabric.source
            assert "#" in fabric.source.split("collective_bandwidth:")[1]
        assert fabric.nccl_Bps <= fabric.bandwidth_Bps


@pytest.mark.parametrize("name, nics, measured_busbw_Bps", [
    ("efa-p3dn", 1, 7e9),      # NVIDIA/nccl#235: 6-8 GB/s on 8-32 p3dn nodes, one EFA
    ("efa-p4d", 4, 29.6e9),    # NVIDIA/nccl#527: 4 p4dn nodes, 4 EFA NICs
])
def test_nccl_over_efa_reproduces_the_measured_bus_bandwidth(name: str, nics: int,
                                                             measured_busbw_Bps: float) -> None:
    fabric = get_fabric(name)
    assert not fabric.nccl_sockets           # the aws-ofi-nccl plugin, not NCCL's sockets
    assert ACHIEVED * nics * fabric.nccl_Bps == pytest.approx(measured_busbw_Bps, rel=0.05)


@pytest.mark.parametrize("name, measured_busbw_Bps", [
    ("eth-25g", 1.7e9),      # NVIDIA/nccl-tests#83
    ("eth-100g", 4.7e9),     # NVIDIA/nccl#398, one GPU per node (ring)
])
def test_nccl_over_tcp_reproduces_the_measured_bus_bandwidth(name: str,
                                                             measured_busbw_Bps: float) -> None:
    assert ACHIEVED * get_fabric(name).nccl_Bps == pytest.approx(measured_busbw_Bps, rel=0.03)


def test_infiniband_keeps_its_bandwidth_for_nccl() -> None:
    for name in ("ib-fdr", "ib-edr", "ib-hdr", "ib-ndr"):
        fabric = get_fabric(name)
        assert fabric.nccl_Bps == fabric.bandwidth_Bps


def test_the_nccl_network_term_reads_the_socket_figure_and_mpi_does_not() -> None:
    base = load_cluster("dgx1-v100").with_nodes(2)
    tcp = base.with_fabric(get_fabric("eth-100g"))
    nics = min(len(tcp.node.nics), tcp.devices_per_node)
    assert network_Bps(tcp) == pytest.approx(nics * get_fabric("eth-100g").nccl_Bps)
    # MPI (host-staged GPUs, CPU ranks) moves at the TCP goodput, as before.
    inter = CommModel(tcp, library="mpi").link_params()["inter"]
    assert inter.beta_s_per_B == pytest.approx(1 / (nics * get_fabric("eth-100g").bandwidth_Bps))


def test_a_large_allreduce_over_100g_tcp_is_slower_than_the_goodput_would_give() -> None:
    base = load_cluster("dgx1-v100").with_nodes(4)
    at_goodput = base.with_fabric(resolve_fabric({"name": "eth-100g",
                                                  "collective_bandwidth": "11.75 GB/s"}))
    sockets = base.with_fabric(get_fabric("eth-100g"))
    n = 1 << 28
    slow, fast = CommModel(sockets).allreduce(n).at(n), CommModel(at_goodput).allreduce(n).at(n)
    assert slow > 1.5 * fast


def test_the_socket_figure_round_trips_through_a_file_form() -> None:
    custom = resolve_fabric({"name": "eth-100g", "collective_bandwidth": "3 GB/s"})
    spec = fabric_to_spec(custom)
    assert spec["collective_bandwidth"] == "3 GB/s"
    assert resolve_fabric(spec).collective_bandwidth_Bps == pytest.approx(3e9)
    assert fabric_to_spec(get_fabric("eth-100g")) == "eth-100g"


def test_a_network_step_over_tcp_pays_the_tcp_latency() -> None:
    # NVIDIA/nccl-tests#82: broadcast_perf, 2 nodes x 1 V100, NCCL sockets over TCP: 8 B in
    # 38.2 us (in place) and 45.8 us (out of place). Over InfiniBand NCCL's terms give a
    # fraction of that; over TCP the socket stack's latency is paid on the network step.
    def broadcast_8B(fabric: str) -> float:
        cluster = load_cluster("dgx1-v100").with_nodes(2).with_devices_per_node(1)
        model = CommModel(cluster.with_fabric(get_fabric(fabric)), library="nccl2.8")
        return model.nccl.choose(8, "broadcast").cost.at(8)
    assert broadcast_8B("ib-edr") < 0.5 * 38.2e-6
    for fabric in ("eth-10g", "eth-25g"):
        assert 0.6 * 38.2e-6 < broadcast_8B(fabric) < 1.2 * 45.8e-6


def test_the_tuner_does_not_see_the_socket_latency_but_what_runs_does() -> None:
    cluster = load_cluster("dgx1-v100").with_nodes(4).with_fabric(get_fabric("eth-10g"))
    nccl = CommModel(cluster, library="nccl2.8").nccl
    assert nccl.tuner.socket_step_s == 0.0
    assert nccl.socket_step_s == pytest.approx(get_fabric("eth-10g").latency_s - 1e-6)
    ib = CommModel(cluster.with_fabric(get_fabric("ib-edr")), library="nccl2.8").nccl
    assert ib.socket_step_s == 0.0


@pytest.mark.parametrize("strategy", ["sync", "layerwise"])
def test_both_fidelities_agree_over_tcp(strategy: str) -> None:
    cluster = load_cluster("dgx1-p100").with_nodes(2).with_fabric(get_fabric("eth-10g"))
    runs = [simulate(cluster, "alexnet-ci", 8, strategy, iterations=1, fidelity=f)
            for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.05)


def test_roce_runs_nccl_verbs_and_pays_next_to_no_step_latency() -> None:
    cluster = load_cluster("dgx1-v100").with_nodes(2)
    for name in ("roce-25g", "roce-100g"):
        nccl = CommModel(cluster.with_fabric(get_fabric(name)), library="nccl2.8").nccl
        assert nccl.socket_step_s <= 1e-6
        assert get_fabric(name).nccl_Bps == get_fabric(name).bandwidth_Bps


# ---- the NIC hop of a PCIe ring, through host memory where the NIC cannot reach the GPU ------

HKBU_IB = Path(__file__).resolve().parents[1] / "benchmarks" / "published" / "clusters" / \
    "hkbu-2080ti-ib100.yaml"


def hkbu(nodes: int = 2, fabric: str | None = None, gdr: bool | None = None):
    """HKBU's box: 4 RTX 2080 Ti, 2 per PCIe switch, one NIC under switch 0."""
    cluster = load_cluster(str(HKBU_IB)).with_nodes(nodes)
    if fabric is not None:
        cluster = cluster.with_fabric(get_fabric(fabric))
    if gdr is not None:
        node = replace(cluster.node, device=replace(cluster.device, gpudirect_rdma=gdr))
        cluster = replace(cluster, node=node)
    return cluster


def test_geforce_has_no_gpudirect_rdma_and_tesla_has() -> None:
    assert not get_device("rtx-2080-ti").gpudirect_rdma
    assert "GPUDirect RDMA User Manual" in get_device("rtx-2080-ti").source
    assert get_device("v100-sxm2").gpudirect_rdma and get_device("p100-sxm2").gpudirect_rdma


def test_staged_nic_hops_load_the_nics_switch_three_times() -> None:
    # Ring 0 -> 1 -> 2 -> 3 -> NIC -> (next node) -> NIC -> 0, every hop through host memory
    # (no peer access, no GPUDirect RDMA). Switch 0's uplink, up: 0->1, 1->2, NIC->host;
    # down: host->1, host->NIC, host->0. Three loads on a 12 GB/s link: 4 GB/s. Inside one
    # node the ring loads it twice (6 GB/s), and its GPU hops are SHM hops, each bound by the
    # duplex figure (3.9 GB/s busbw, NVIDIA/nccl#384, over the era's achieved fraction).
    era = ERAS["nccl2.4"]
    shm = 3.9e9 / era.achieved
    assert 4e9 < shm < 6e9
    assert node_graph(hkbu().node, era).intra_Bps == pytest.approx(min(6e9, shm))
    assert boundary_Bps(hkbu(), era) == pytest.approx(min(4e9, shm))
    # With GPUDirect RDMA the NIC reads GPU 3 and writes GPU 0 itself: no third load.
    assert boundary_Bps(hkbu(gdr=True), era) == pytest.approx(min(6e9, shm))
    # NCCL's socket transport takes host memory only, whatever the GPU.
    assert boundary_Bps(hkbu(fabric="eth-10g", gdr=True), era) == pytest.approx(4e9)
    assert boundary_Bps(hkbu(nodes=1), era) == math.inf


def test_nvlink_nodes_are_not_bound_by_the_nic_hop() -> None:
    assert boundary_Bps(load_cluster("dgx1-v100").with_nodes(2), ERAS["nccl2.8"]) == math.inf


def test_the_bound_reaches_the_collective_and_stays_below_the_network() -> None:
    # On 2 nodes the ring's bus bandwidth is the slower of the node's ring and the network:
    # staged NIC hops bind at 4 GB/s, without them the SHM hops' duplex figure; the
    # per-byte terms of the whole allreduce stand in that ratio.
    n = 1 << 28
    era = ERAS["nccl2.4"]
    shm = 3.9e9 / era.achieved
    staged = CommModel(hkbu(), library="nccl2.4").allreduce(n)
    direct = CommModel(hkbu(gdr=True), library="nccl2.4").allreduce(n)
    assert network_Bps(hkbu()) > shm
    assert staged.at(n) > direct.at(n)
    assert staged.per_byte_s / direct.per_byte_s == pytest.approx(min(6e9, shm) / 4e9)


def test_fabric_transport_is_checked_and_roce_runs_verbs() -> None:
    assert get_fabric("eth-10g").nccl_sockets and not get_fabric("ib-edr").nccl_sockets
    assert not get_fabric("roce-100g").nccl_sockets
    with pytest.raises(SpecError) as info:
        resolve_fabric({"name": "eth-10g", "nccl_transport": "carrier-pigeon"})
    assert info.value.field == "fabric.nccl_transport"
    mine = resolve_fabric({"name": "eth-25g", "nccl_transport": "verbs"})
    assert resolve_fabric(fabric_to_spec(mine)) == mine and not mine.nccl_sockets


def test_both_fidelities_agree_on_a_staged_pcie_ring() -> None:
    runs = [simulate(hkbu(), "resnet50-ci", 16, "sync", iterations=1, stack="horovod-0.19",
                     fidelity=f) for f in ("analytic", "detailed")]
    assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=0.05)


@pytest.mark.parametrize("nodes, measured_busbw_Bps", [
    (4, 29.6e9),     # NVIDIA/nccl#527, the point efa-p4d's collective_bandwidth is taken from
    (3, 31.8e9),     # the same thread's 3-node run, not used for the figure
])
def test_the_p4d_preset_predicts_nccl_tests_over_efa_end_to_end(nodes: int,
                                                                measured_busbw_Bps: float) -> None:
    # The whole NCCL model (NVSwitch inside, 4 EFA NICs across, tuner, latency terms) on
    # all_reduce_perf's 1 GiB point, 8 GPUs per node.
    model = CommModel(load_cluster("aws-p4d", nodes=nodes))
    n = float(1 << 30)
    busbw = n / model.allreduce(n).at(n) * 2 * (model.p - 1) / model.p
    assert busbw == pytest.approx(measured_busbw_Bps, rel=0.1)
