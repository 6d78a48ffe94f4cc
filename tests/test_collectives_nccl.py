"""The NCCL-style collective model: eras, regimes, the topology cliff, and the DGX-1 P100 logs.

Figures asserted by hand come from NCCL's ``tuning.cc``/``topo.h`` (as cited in
``hwmodels/collectives/eras.py``) and from the Tartan logs in ``../shared/data/nccl-tests/``,
never from the model's own output.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from calibration.collfit import dgx1_check
from hwmodels.cluster import load_cluster
from hwmodels.collectives.eras import ERAS, LIBRARIES
from hwmodels.collectives.nccl import NcclCosts, node_graph
from hwmodels.collectives.rings import max_directed_rings
from hwmodels.commmodel import CommModel, default_library
from hwmodels.devices import get_device
from hwmodels.topology import build_node
from vocab.errors import SpecError, UnknownNameError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nccl-tests"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"no public nccl-tests logs at {DATA} (shared/ beside the clone)")
GiB = float(1 << 30)


def busbw(model: CommModel, n: float = GiB) -> float:
    p = model.p
    return n / model.allreduce(n).at(n) * 2 * (p - 1) / p


def test_era_names_are_the_registry() -> None:
    assert set(LIBRARIES) == {"nccl1", "nccl2", "nccl2.4", "nccl2.8", "nccl2.20", "mpi"}
    with pytest.raises(UnknownNameError, match="nccl2.8"):
        CommModel(load_cluster("dgx1-p100"), library="nccl3")


def test_default_library_by_transport() -> None:
    gpu = load_cluster("dgx1-v100")
    assert default_library(gpu) == "nccl2.8"
    assert default_library(gpu.with_transport("host")) == "mpi"
    assert default_library(load_cluster("cpu-10gbe")) == "mpi"
    with pytest.raises(SpecError, match="library"):
        CommModel(gpu.with_transport("host"), library="nccl2")


def test_mpi_library_is_the_alpha_beta_model() -> None:
    cluster = load_cluster("dgx1-v100", nodes=2)
    mpi = CommModel(cluster, library="mpi")
    # today's model: the alpha-beta cost plus the cluster's constant launch overhead
    assert mpi.allreduce(1e6).at(1e6) == pytest.approx(
        mpi.allreduce_by(mpi.algorithm_for(1e6)).at(1e6))
    assert mpi.overhead_s == cluster.collective_overhead_s


def test_dgx1_p100_rings_by_gpu_count() -> None:
    # NCCL 2.x's search over the cube-mesh at 18 GB/s per NVLink 1.0 link (topo.h), rings on
    # whole links (p2p.cu): 2 GPUs one link; 3 a triangle both ways (2 x 18); 4 a full quad:
    # 2 whole-link rings, or all 6 directed rings at 9 on doubled links (54); 6 and 7 two
    # (12 links, 7 per undirected cycle: one cycle, both ways); 8 the two edge-disjoint
    # Hamiltonian cycles both ways (4 x 18); 5 none: PCIe, across QPI (6).
    p100 = load_cluster("dgx1-p100")
    expected = {2: 18e9, 3: 36e9, 4: 54e9, 5: 6e9, 6: 36e9, 7: 36e9, 8: 72e9}
    for gpus, bw in expected.items():
        graph = node_graph(p100.with_devices_per_node(gpus).node, ERAS["nccl2"])
        assert graph.intra_Bps == pytest.approx(bw), gpus
    assert node_graph(p100.with_devices_per_node(5).node, ERAS["nccl2"]).hw == "pcie"


def test_five_gpus_of_a_dgx1_p100_are_slower_per_byte_than_four_or_eight() -> None:
    p100 = load_cluster("dgx1-p100")
    per_byte = {g: CommModel(p100.with_devices_per_node(g)).allreduce(GiB).per_byte_s
                for g in (4, 5, 8)}
    assert per_byte[5] > 3 * per_byte[4] and per_byte[5] > 3 * per_byte[8]


def test_nccl1_runs_one_ring_in_device_order() -> None:
    # NCCL 1.x (src/core.cu): one ring 0 -> 1 -> ... -> p-1 -> 0, peer copies where two GPUs
    # are peers. On the cube-mesh GPUs 0-3 are all NVLink peers, so 2-4 GPUs ring on NVLink;
    # from 5 GPUs on the hop 3 -> 4 (and the closing hop back to 0 from 6 on) has no NVLink
    # and crosses the sockets. Closed forms: one ring at min(link, the era's per-ring
    # ceiling) on NVLink, the era's cross-socket figure otherwise.
    p100, era = load_cluster("dgx1-p100"), ERAS["nccl1"]
    nvlink_p100 = 18e9                                    # topo.h, SM60
    for gpus in range(2, 9):
        graph = node_graph(p100.with_devices_per_node(gpus).node, era)
        assert graph.channels == 1
        if gpus <= 4:
            assert graph.hw == "nvlink"
            assert graph.intra_Bps == pytest.approx(min(nvlink_p100, era.ring_cap_Bps))
        else:
            assert graph.hw == "pcie" and graph.intra_Bps == pytest.approx(era.qpi_Bps)
    # NCCL 2.x's search finds the 8-GPU NVLink rings 1.x never looked for
    assert busbw(CommModel(p100, library="nccl1")) < busbw(CommModel(p100, library="nccl2")) / 4


def test_nccl1_ring_ceiling_leaves_pcie_rings_alone() -> None:
    # The per-ring ceiling was measured on NVLink hops (16.2 GB/s as NCCL's figure); a PCIe
    # ring (12 GB/s, topo.h) is below it, so a PCIe box under NCCL 1.x keeps its figure.
    era = ERAS["nccl1"]
    uncapped = replace(era, ring_cap_Bps=None)
    assert era.ring_cap_Bps > 12e9
    nodes = [build_node("pcie8", "titan-x-pascal", devices=g, devices_per_switch=2)
             for g in (2, 4, 8)]
    nodes += [load_cluster("dgx1-p100").with_devices_per_node(g).node for g in (5, 8)]
    for node in nodes:
        graph = node_graph(node, era)
        assert graph.hw == "pcie" and graph.intra_Bps <= 12e9 * (1 + 1e-9)
        assert graph == node_graph(node, uncapped)


def test_protocol_regimes_and_caps() -> None:
    # One DGX-1 V100 under 2.8: LL's latency (3.6 + 14 x 0.47 us) for tiny messages, Simple's
    # bandwidth for large ones; LL's bandwidth is a quarter of Simple's.
    model = NcclCosts(load_cluster("dgx1-v100"), "nccl2.8")
    assert model.choose(8).protocol == "LL"
    assert model.choose(GiB).protocol == "Simple"
    assert model.tuner.cost("ring", "LL", 8).fixed_s == pytest.approx((3.6 + 14 * 0.47) * 1e-6)
    ll, simple = (model.cost("ring", p, GiB).per_byte_s for p in ("LL", "Simple"))
    assert ll == pytest.approx(4 * simple)


def test_latency_grows_with_nodes_and_trees_appear_across_nodes() -> None:
    times = []
    for nodes in (2, 4, 8, 32):
        model = CommModel(load_cluster("dgx1-v100", nodes=nodes))
        times.append(model.allreduce(8).at(8))
        assert "tree" in {a for a, _ in model.nccl.candidates()}
    assert times == sorted(times)
    assert "tree" not in {a for a, _ in CommModel(load_cluster(
        "dgx1-v100", nodes=4), library="nccl2").nccl.candidates()}


def test_more_bytes_never_faster_and_faster_fabric_never_slower() -> None:
    cluster = load_cluster("dgx1-v100", nodes=4)
    fast = cluster.with_fabric(load_cluster("dgx-a100").fabric)
    slow_m, fast_m = CommModel(cluster), CommModel(fast)
    sizes = [float(1 << k) for k in range(3, 31)]
    slow_t = [slow_m.allreduce(n).at(n) for n in sizes]
    assert all(a <= b * (1 + 1e-9) for a, b in zip(slow_t, slow_t[1:]))
    assert all(fast_m.allreduce(n).at(n) <= t * (1 + 1e-9) for n, t in zip(sizes, slow_t))


@needs_data
def test_dgx1_p100_preset_reproduces_the_tartan_nccl_curves() -> None:
    # Tartan's NCCL 2.x shows Simple's latency (47 us at 8 B): the nccl2 era; NCCL 1.x: nccl1.
    errors = dgx1_check(DATA / "tartan-dgx1-p100")
    for curve in ("nccl2 by size", "nccl1 by size"):
        assert len(errors[curve]) == 15                  # 64 KB .. 1 GB
        worst = max(errors[curve], key=lambda row: abs(row[1]))
        assert abs(worst[1]) <= 0.15, (curve, worst)


@needs_data
def test_dgx1_p100_by_gpu_count_with_the_five_gpu_cliff() -> None:
    errors = dict(dgx1_check(DATA / "tartan-dgx1-p100")["nccl2 busbw at 1 GB by GPUs"])
    for gpus in (2, 3, 4, 5, 6, 8):
        assert abs(errors[gpus]) <= 0.15, (gpus, errors[gpus])


@needs_data
def test_dgx1_p100_nccl1_by_gpu_count_matches_tartan() -> None:
    # Tartan's NCCL 1.x busbw at 1 GB on GPUs 0..N-1 (calibration/data, nccl-v1/bandwidth.txt):
    # 14.25-15.81 GB/s on 2-4 GPUs (NVLink peers), 7.11-7.60 on 5-8 (a hop across the sockets).
    # Within 10 % at every count; the PCIe-only ring this era had before was 24-32 % slow at
    # 2-4 GPUs. The small-message time (8 B) within 15 % at every count, under both eras.
    errors = dgx1_check(DATA / "tartan-dgx1-p100")
    by_gpus = dict(errors["nccl1 busbw at 1 GB by GPUs"])
    assert sorted(by_gpus) == list(range(2, 9))
    for gpus, error in by_gpus.items():
        assert abs(error) <= 0.10, (gpus, error)
    for era in ("nccl1", "nccl2"):
        times = dict(errors[f"{era} time at 8 B by GPUs"])
        assert sorted(times) == list(range(2, 9))
        for gpus, error in times.items():
            assert abs(error) <= 0.15, (era, gpus, error)


@needs_data
def test_dgx1_p100_seven_gpus() -> None:
    # NCCL 2.x found 2 rings (34.7 GB/s) on GPUs 0-6 where a fractional packing finds 3
    errors = dict(dgx1_check(DATA / "tartan-dgx1-p100")["nccl2 busbw at 1 GB by GPUs"])
    assert abs(errors[7]) <= 0.15


def test_whole_link_rings_on_complete_digraphs_follow_tillson() -> None:
    # Tillson (1980): the complete digraph on n vertices splits into n - 1 arc-disjoint
    # directed Hamiltonian cycles exactly when n is not 4 or 6 (then one fewer is the most).
    for n, rings in {2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 6}.items():
        devices = list(range(n))
        links = {(a, b): 1 for a in devices for b in devices if a != b}
        assert max_directed_rings(links, devices) == rings, n
    # doubled links carry twice the rings (each Hamiltonian cycle of K4 once per direction)
    quad = {(a, b): 2 for a in range(4) for b in range(4) if a != b}
    assert max_directed_rings(quad, list(range(4))) == 6


def test_graph_era_packs_fractionally_p2p_era_on_whole_links() -> None:
    seven = load_cluster("dgx1-p100").with_devices_per_node(7).node
    assert node_graph(seven, ERAS["nccl2"]).intra_Bps == pytest.approx(2 * 18e9)
    assert node_graph(seven, ERAS["nccl2.8"]).intra_Bps == pytest.approx(3 * 18e9)


def test_gpus_without_pcie_peer_access_go_through_host_memory() -> None:
    # Two GPUs under one PCIe switch: peer access runs the ring through the switch (NCCL's
    # PCIe figure, 12 GB/s, topo.h); without it (RTX 2080 Ti) each hop goes up to the socket
    # and down again, so the switch's uplink carries both directions of the ring (12 / 2),
    # and each hop is an SHM hop, duplex-bound below that (3.9 GB/s busbw measured,
    # NVIDIA/nccl#384, over the era's achieved 0.9; tests/test_pcie_shm.py).
    era = ERAS["nccl2.8"]
    shm = 3.9e9 / era.achieved

    def two_on_a_switch(device: str) -> float:
        node = build_node("pcie8", device, devices=2, devices_per_switch=2)
        return node_graph(node, era).intra_Bps
    assert not get_device("rtx-2080-ti").pcie_p2p and get_device("titan-x-pascal").pcie_p2p
    assert two_on_a_switch("titan-x-pascal") == pytest.approx(12e9)
    assert two_on_a_switch("rtx-2080-ti") == pytest.approx(min(12e9 / 2, shm))
    # across the sockets both already pass through host memory: the QPI hop decides (6) with
    # peer access; without it, the SHM hops' duplex figure, below QPI's
    four = {d: node_graph(build_node("pcie8", d, devices=4, devices_per_switch=2),
                          era).intra_Bps for d in ("titan-x-pascal", "rtx-2080-ti")}
    assert four["titan-x-pascal"] == pytest.approx(6e9)
    assert four["rtx-2080-ti"] == pytest.approx(min(6e9, shm))
