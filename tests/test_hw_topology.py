"""Node graphs: the DGX-1 cube-meshes link for link, host paths, NICs, and graph checks."""

from __future__ import annotations

import networkx as nx
import pytest

from vocab.errors import SpecError, UnknownNameError
from hwmodels.specs import NodeSpec
from hwmodels.topology import (
    TOPOLOGIES,
    build_node,
    check_node,
    cpu_node,
    custom_node,
    dgx1_p100,
    dgx1_v100,
    nvswitch_node,
    pcie8,
    with_devices,
)
from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import node_graph

V100_DOUBLE = {(0, 3), (0, 4), (1, 2), (1, 5), (2, 3), (4, 7), (5, 6), (6, 7)}
V100_SINGLE = {(0, 1), (0, 2), (1, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7)}


def links_of(node: NodeSpec, device: int, kind: str) -> int:
    """Physical links of ``kind`` at ``device`` (parallel links counted)."""
    return sum(d["links"] for _, _, d in node.graph.edges(device, data=True) if d["kind"] == kind)


def device_pairs(node: NodeSpec, kind: str = "nvlink") -> dict[tuple[int, int], int]:
    return {tuple(sorted((a, b))): d["links"] for a, b, d in node.graph.edges(data=True)
            if d["kind"] == kind}


def test_every_v100_has_six_nvlinks_and_every_p100_four() -> None:
    v100, p100 = dgx1_v100(), dgx1_p100()
    assert [links_of(v100, d, "nvlink") for d in range(8)] == [6] * 8
    assert [links_of(p100, d, "nvlink") for d in range(8)] == [4] * 8


def test_v100_pairs_have_the_link_counts_of_the_brief() -> None:
    pairs = device_pairs(dgx1_v100())
    assert {p for p, n in pairs.items() if n == 2} == V100_DOUBLE
    assert {p for p, n in pairs.items() if n == 1} == V100_SINGLE
    assert dgx1_v100().graph.edges[0, 3]["bandwidth_Bps"] == 2 * 25e9


def test_p100_is_two_fully_connected_quads_plus_i_to_i_plus_4() -> None:
    pairs = device_pairs(dgx1_p100())
    for quad in ((0, 1, 2, 3), (4, 5, 6, 7)):
        assert all((a, b) in pairs for a in quad for b in quad if a < b)
    assert all(pairs[(i, i + 4)] == 1 for i in range(4))
    assert len(pairs) == 2 * 6 + 4 and set(pairs.values()) == {1}
    assert dgx1_p100().graph.edges[0, 1]["bandwidth_Bps"] == 20e9


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_every_topology_follows_the_nodespec_contract(name: str) -> None:
    node = build_node(name)
    graph = node.graph
    assert nx.is_connected(graph)
    assert [n for n, k in graph.nodes(data="kind") if k == "device"] == node.device_ids
    for _, _, data in graph.edges(data=True):
        assert data["links"] >= 1 and data["bandwidth_Bps"] > 0 and data["latency_s"] >= 0
    # Host path: every device reaches a socket, and every NIC is in the graph.
    sockets = [n for n, k in graph.nodes(data="kind") if k == "cpu"]
    assert sockets and all(nx.has_path(graph, d, sockets[0]) for d in node.device_ids)
    assert node.nics and all(graph.nodes[nic]["kind"] == "nic" for nic in node.nics)


def test_dgx1_has_two_gpus_and_one_edr_nic_per_pcie_switch() -> None:
    graph = dgx1_v100().graph
    switches = [n for n, k in graph.nodes(data="kind") if k == "switch"]
    assert len(switches) == 4
    for sw in switches:
        kinds = sorted(graph.nodes[n]["kind"] for n in graph[sw])
        assert kinds == ["cpu", "device", "device", "nic"]
        assert graph.edges[sw, next(n for n in graph[sw] if graph.nodes[n]["kind"] == "cpu")][
            "kind"] == "pcie"
    assert graph.edges["cpu0", "cpu1"]["kind"] == "qpi"


def test_pcie_box_has_no_direct_gpu_links_and_qpi_between_sockets() -> None:
    node = pcie8("p100-sxm2")
    assert not device_pairs(node, "nvlink")
    path = nx.shortest_path(node.graph, 0, 7)
    assert "cpu0" in path and "cpu1" in path  # GPUs on different sockets cross QPI


def test_cpu_node_splits_the_socket_pair_between_ranks() -> None:
    whole, split = cpu_node("xeon-e5-2670x2"), cpu_node("xeon-e5-2670x2", ranks=2)
    assert whole.devices_per_node == 1 and split.devices_per_node == 2
    assert split.device.peak_flops == pytest.approx(whole.device.peak_flops / 2)
    assert {split.graph.edges[r, f"cpu{r}"]["kind"] for r in (0, 1)} == {"shm"}


def test_nvswitch_node_gives_every_gpu_its_links_to_the_switch() -> None:
    node = nvswitch_node("a100-sxm4", 8)
    assert [links_of(node, d, "nvswitch") for d in range(8)] == [12] * 8
    h100 = build_node("dgx-h100")
    assert h100.graph.edges[0, "nvswitch"]["bandwidth_Bps"] == pytest.approx(18 * 25e9)


def test_options_reach_the_graph_and_are_remembered() -> None:
    node = build_node("dgx1-v100", nvlink_bandwidth_Bps=22e9, nics=2)
    assert node.graph.edges[0, 1]["bandwidth_Bps"] == 22e9 and len(node.nics) == 2
    assert node.graph.graph["options"] == {"nvlink_bandwidth_Bps": 22e9, "nics": 2}


def test_unknown_topology_and_option_are_named() -> None:
    with pytest.raises(UnknownNameError, match="dgx1-v100"):
        build_node("dgx-2")
    with pytest.raises(SpecError) as info:
        build_node("dgx1-v100", nvlink_bw=1.0)
    assert info.value.field == "node.options.nvlink_bw"


def test_custom_node_rejects_a_link_to_a_missing_device_and_a_disconnected_graph() -> None:
    link = {"kind": "pcie", "link_bandwidth": "12 GB/s"}
    ok = custom_node("v100-sxm2", devices=2, vertices={"sw0": "switch"},
                     links=[{"a": 0, "b": "sw0", **link}, {"a": 1, "b": "sw0", **link}])
    check_node(ok)
    with pytest.raises(SpecError) as info:
        custom_node("v100-sxm2", devices=2, links=[{"a": 0, "b": 2, **link}])
    assert info.value.field == "node.links[0].b"
    with pytest.raises(SpecError) as info:
        custom_node("v100-sxm2", devices=3, links=[{"a": 0, "b": 1, **link}])
    assert info.value.field == "node.links" and "2" in str(info.value.value)


def test_fewer_gpus_of_a_pcie_box_are_its_first_gpus() -> None:
    # 8 GPUs on 4 switches, 2 per socket: GPUs 0-3 sit under socket 0, 0-5 span both (the
    # QPI hop is what NCCL's ring then crosses: topo.h PCIe 12 GB/s, QPI 6).
    box = build_node("pcie8", "p100-sxm2", devices=8, devices_per_switch=2)
    four, six = with_devices(box, 4), with_devices(box, 6)
    assert {n for d in range(4) for n in nx.shortest_path(four.graph, 0, d)} <= \
        {0, 1, 2, 3, "sw0", "sw1", "cpu0"}
    assert "cpu1" in nx.shortest_path(six.graph, 0, 5)
    assert node_graph(four, ERAS["nccl2"]).intra_Bps == pytest.approx(12e9)
    assert node_graph(six, ERAS["nccl2"]).intra_Bps == pytest.approx(6e9)
    # asked again for the whole box, or for more, the box is rebuilt
    assert with_devices(four, 8).devices_per_node == 8
    assert with_devices(box, 12).devices_per_node == 12


def test_a_one_socket_pcie_box_has_no_qpi_hop() -> None:
    # A workstation (Threadripper, Xeon W): every GPU on the one socket's root ports, so a
    # ring over 6 GPUs runs at NCCL's PCIe figure (12 GB/s) where two sockets give QPI's 6.
    one = build_node("pcie8", "p100-sxm2", devices=8, devices_per_switch=1, sockets=1)
    assert "qpi" not in {kind for _, _, kind in one.graph.edges(data="kind")}
    assert {n for n, kind in one.graph.nodes(data="kind") if kind == "cpu"} == {"cpu0"}
    assert node_graph(with_devices(one, 6), ERAS["nccl2"]).intra_Bps == pytest.approx(12e9)
    two = build_node("pcie8", "p100-sxm2", devices=8, devices_per_switch=1)
    assert node_graph(with_devices(two, 6), ERAS["nccl2"]).intra_Bps == pytest.approx(6e9)
    with pytest.raises(SpecError):
        build_node("pcie8", "p100-sxm2", sockets=0)


def test_a_gpu_on_the_cpu_topology_is_one_whole_gpu_per_rank():
    """The what-if "these CPU nodes with a GPU per rank": each rank gets the catalogue's GPU
    (not a share of it, as ranks get of a CPU's sockets), on its socket's PCIe root port."""
    from hwmodels.topology import build_node
    from hwmodels.devices import resolve_device
    v100 = resolve_device("v100-sxm2", "device")
    node = build_node("cpu", "v100-sxm2", ranks=2)
    assert node.device.name == "v100-sxm2" and node.device.peak_flops == v100.peak_flops
    assert node.devices_per_node == 2
    kinds = {node.graph.edges[r, f"cpu{r % 2}"]["kind"] for r in range(2)}
    assert kinds == {"pcie"}
    cpu = build_node("cpu", "xeon-e5-2670x2", ranks=2)   # CPUs are still shared out
    assert cpu.device.peak_flops == pytest.approx(resolve_device(
        "xeon-e5-2670x2", "device").peak_flops / 2)


@pytest.mark.parametrize("topology", ["dgx1-v100", "pcie8", "nvswitch"])
def test_a_cpu_on_a_gpu_topology_is_refused(topology):
    from hwmodels.topology import build_node
    with pytest.raises(SpecError) as err:
        build_node(topology, "xeon-e5-2670x2")
    assert err.value.field == "device" and "GPU device" in str(err.value)


def test_nvlink_bridges_join_pairs_and_only_a_lone_pair_rides_them() -> None:
    from hwmodels.collectives.eras import NVLINK_Bps, PCIE_Bps
    from hwmodels.topology import build_node
    era = ERAS["nccl2.8"]

    def box(devices: int, links: int = 0) -> NodeSpec:
        bridge = {"nvlink_bridge_links": links, "nvlink_bandwidth_Bps": 14.0625e9} if links else {}
        return build_node("pcie8", "rtx-a6000", devices=devices, **bridge)

    bridged = box(4, 4)
    pairs = sorted((a, b) for a, b, kind in bridged.graph.edges(data="kind") if kind == "nvlink")
    assert pairs == [(0, 1), (2, 3)]
    assert all(bridged.graph.edges[p]["bandwidth_Bps"] == 4 * 14.0625e9 for p in pairs)
    # Two bridged GPUs ring over the bridge at NCCL's SM86 link speed (topo.h: 12 GB/s) per
    # link; unbridged they share the PCIe switch at NCCL's PCIe figure.
    two = node_graph(box(2, 4), era)
    assert two.hw == "nvlink" and two.intra_Bps == pytest.approx(4 * NVLINK_Bps["rtx-a6000"])
    assert node_graph(box(2), era).intra_Bps == pytest.approx(PCIE_Bps)
    # Over two pairs the ring also takes the PCIe hops between them: no faster than unbridged.
    assert node_graph(box(4, 4), era).intra_Bps == pytest.approx(node_graph(box(4), era).intra_Bps)


def test_a_bridged_geforce_pair_skips_the_host_staging_its_pcie_needs() -> None:
    from hwmodels.collectives.eras import NVLINK_Bps
    from hwmodels.collectives.nccl import shm_Bps
    from hwmodels.topology import build_node
    era = ERAS["nccl2.8"]
    plain = node_graph(build_node("pcie8", "rtx-3090", devices=2), era)
    bridged = node_graph(build_node("pcie8", "rtx-3090", devices=2, nvlink_bridge_links=4,
                                    nvlink_bandwidth_Bps=14.0625e9), era)
    # No PCIe peer access (NVIDIA/nccl#1127): each hop through host memory, at most the SHM
    # duplex figure; over the bridge the pair is peer to peer on 4 NVLinks.
    assert plain.hw == "pcie" and plain.intra_Bps <= shm_Bps(era)
    assert bridged.hw == "nvlink" and bridged.intra_Bps == pytest.approx(4 * NVLINK_Bps["rtx-3090"])
