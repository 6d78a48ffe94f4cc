"""CommModel on a hand-built toy cluster whose every figure is checked by hand, then presets.

Toy node: 4 GPUs (300 GB/s memory) in an NVLink 4-cycle (10 GB/s per edge and direction,
1 us); two GPUs per PCIe switch (12 GB/s, 0.5 us per hop), both switches on socket cpu0;
host memory 60 GB/s; one NIC. Fabric: 10 GB/s per NIC, 2 us; oversubscription 2.

These are the alpha-beta closed forms (``library="mpi"``, what every cluster had before the
NCCL eras, and what CPU ranks and host-staged GPUs still get by default); the NCCL eras are
checked in ``test_collectives_nccl.py``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.collectives.cost import ring_allreduce
from hwmodels.collectives.schedules import allreduce_schedule
from hwmodels.commmodel import CommModel
from vocab.errors import UnknownNameError
from hwmodels.specs import AlphaBeta, Cluster, Device, Fabric, NodeSpec

GPU = Device("toy-gpu", "gpu", peak_flops=10e12, mem_bandwidth_Bps=300e9, memory_bytes=16e9)
IB = Fabric("toy-ib", "infiniband", bandwidth_Bps=10e9, latency_s=2e-6)
N = 1e6
#: The alpha-beta model these tests check by hand.
AlphaBeta_ = partial(CommModel, library="mpi")


def toy_node() -> NodeSpec:
    g = nx.Graph()
    g.add_nodes_from(range(4), kind="device")
    g.add_nodes_from(["sw0", "sw1"], kind="switch")
    g.add_node("cpu0", kind="cpu")
    g.add_node("nic0", kind="nic")
    for a in range(4):
        g.add_edge(a, (a + 1) % 4, kind="nvlink", links=1, bandwidth_Bps=10e9, latency_s=1e-6)
        g.add_edge(a, f"sw{a // 2}", kind="pcie", links=1, bandwidth_Bps=12e9, latency_s=0.5e-6)
    for s in ("sw0", "sw1"):
        g.add_edge(s, "cpu0", kind="pcie", links=1, bandwidth_Bps=12e9, latency_s=0.5e-6)
    g.add_edge("nic0", "sw0", kind="nic", links=1, bandwidth_Bps=12e9, latency_s=0.5e-6)
    return NodeSpec("toy", GPU, 4, g, nics=("nic0",), host_mem_bandwidth_Bps=60e9)


def toy(nodes: int = 1, **kw) -> Cluster:
    return Cluster("toy", toy_node(), nodes=nodes, fabric=IB, oversubscription=2.0, **kw)


def test_link_params_from_the_hardware() -> None:
    params = {k: (v.alpha_s, v.beta_s_per_B, v.gamma_s_per_B)
              for k, v in AlphaBeta_(toy()).link_params().items()}
    # ring: one 4-cycle each way at 10 GB/s = 20 GB/s; reduce reads 2 + writes 1 array
    assert params["intra"] == pytest.approx((1e-6, 1 / 20e9, 1e-11))
    # one NIC usable, 10 GB/s, halved by oversubscription
    assert params["inter"] == pytest.approx((2e-6, 2e-10, 1e-11))
    # two GPUs share each 12 GB/s switch uplink: 6 GB/s per rank; 4 ranks reduce in host memory
    assert params["host"] == pytest.approx((1e-6, 1 / 6e9, 3 * 4 / 60e9))


def test_fitted_values_override() -> None:
    fitted = AlphaBeta(1e-5, 1e-9, 0.0)
    model = AlphaBeta_(toy(fitted={"intra": fitted}))
    assert model.link_params()["intra"] == fitted
    assert model.allreduce(N).at(N) == pytest.approx(ring_allreduce(N, 4, fitted) + 5e-6)


def test_one_node_ring_with_overhead() -> None:
    model = AlphaBeta_(toy())
    assert model.algorithm_for(N) == "ring"                 # NCCL style inside one node
    # 6 a + 1.5 n / 20 GB/s + 0.75 n * 1e-11 + 5 us launch overhead
    assert model.allreduce(N).at(N) == pytest.approx(6e-6 + 7.5e-5 + 7.5e-6 + 5e-6)


def test_two_nodes_are_hierarchical() -> None:
    model = AlphaBeta_(toy(nodes=2))
    assert model.algorithm_for(N) == "hierarchical"
    intra = 6e-6 + 7.5e-5 + 7.5e-6                         # RS + AG inside the node
    inter = 2 * 2e-6 + N * 2e-10 + 0.5 * (N / 4) * 1e-11   # ring over 2 nodes' ports
    assert model.allreduce(N).at(N) == pytest.approx(intra + inter + 5e-6)


def test_flat_ring_over_nodes_sees_the_bottleneck_link() -> None:
    model = AlphaBeta_(toy(nodes=2), algorithm="ring")
    # p = 8 on alpha 2 us, beta = max(1/20 GB/s, 2e-10) = 2e-10
    expected = 14 * 2e-6 + 1.75 * N * 2e-10 + 0.875 * N * 1e-11 + 5e-6
    assert model.allreduce(N).at(N) == pytest.approx(expected)


def test_host_staging() -> None:
    model = AlphaBeta_(toy(transport="host"))
    assert model.algorithm_for(N) == "rabenseifner"         # MPI over host buffers, p = 4
    staging = 2 * (1e-6 + N / 6e9)                          # D2H + H2D over PCIe
    collective = 4 * 1e-6 + 1.5 * N * (2 * 4 / 60e9) + 0.75 * N * (3 * 4 / 60e9)
    assert model.allreduce(N).at(N) == pytest.approx(staging + collective + 5e-6)
    assert model.allreduce(N).at(N) > AlphaBeta_(toy()).allreduce(N).at(N)


def test_cpu_ranks_do_not_stage() -> None:
    cpu = Device("toy-cpu", "cpu", peak_flops=1e12, mem_bandwidth_Bps=60e9, memory_bytes=64e9)
    g = nx.Graph()
    g.add_node(0, kind="device")
    node = NodeSpec("cpu", cpu, 1, g, host_mem_bandwidth_Bps=60e9)
    direct, staged = (AlphaBeta_(Cluster("c", node, nodes=4, fabric=IB, transport=t))
                      for t in ("device", "host"))
    assert staged.allreduce(N) == direct.allreduce(N)
    assert direct.algorithm_for(N) == "rabenseifner"        # MPICH style, p = 4


def test_single_device_costs_nothing() -> None:
    g = nx.Graph()
    g.add_node(0, kind="device")
    solo = Cluster("solo", NodeSpec("solo", GPU, 1, g))
    model = AlphaBeta_(solo)
    assert model.allreduce(N).at(N) == 0.0 and model.schedule(N).steps == ()
    assert model.broadcast(N).at(N) == 0.0


def test_schedule_is_node_major() -> None:
    model = AlphaBeta_(toy(nodes=2))
    assert model.schedule(800) == allreduce_schedule("hierarchical", 8, 800, ranks_per_node=4)


def test_other_collectives() -> None:
    model = AlphaBeta_(toy())
    # ring reduce-scatter: 3 a + 0.75 n b + 0.75 n g (+ overhead); allgather without g
    assert model.reduce_scatter(N).at(N) == pytest.approx(3e-6 + 3.75e-5 + 7.5e-6 + 5e-6)
    assert model.allgather(N).at(N) == pytest.approx(3e-6 + 3.75e-5 + 5e-6)
    assert model.broadcast(N).at(N) == pytest.approx(2 * (1e-6 + N / 20e9) + 5e-6)


def test_unknown_algorithm_lists_auto() -> None:
    with pytest.raises(UnknownNameError, match="auto"):
        AlphaBeta_(toy(), algorithm="rign")


@settings(deadline=None, max_examples=50)
@given(n=st.floats(0, 1e9), speedup=st.floats(1.0, 50.0), nodes=st.integers(1, 8),
       algorithm=st.sampled_from(["auto", "ring", "tree", "rabenseifner", "hierarchical"]))
def test_faster_fabric_never_slower_more_bytes_never_faster(n, speedup, nodes, algorithm):
    cluster = toy(nodes=nodes)
    faster = cluster.with_fabric(Fabric("fast", "infiniband", 10e9 * speedup, 2e-6))
    slow, fast = AlphaBeta_(cluster, algorithm), AlphaBeta_(faster, algorithm)
    assert fast.allreduce(n).at(n) <= slow.allreduce(n).at(n) * (1 + 1e-12)
    assert slow.allreduce_by("ring").at(2 * n) >= slow.allreduce_by("ring").at(n)


def test_allreduce_costs_are_cached_per_size() -> None:
    # what keeps the engines' inner call cheap; how cheap (56,000 calls, goal < 1 s):
    # benchmarks/bench_micro.py
    model = AlphaBeta_(toy(nodes=4))
    sizes = [float(4 << i) for i in range(28)]
    first = [model.allreduce(n) for n in sizes]
    assert all(model.allreduce(n) is cost for n, cost in zip(sizes, first))
    assert [model.allreduce(n).at(n) for n in sizes] == [c.at(n) for n, c in zip(sizes, first)]


cluster_mod = pytest.importorskip("hwmodels.cluster")


def test_dgx1_v100_busbw_approaches_the_nvlink_ring_bandwidth() -> None:
    cluster = cluster_mod.load_cluster("dgx1-v100")
    graph = cluster.node.graph
    per_link = min(d["bandwidth_Bps"] / d["links"] for _, _, d in graph.edges(data=True)
                   if d["kind"] == "nvlink")
    intra = AlphaBeta_(cluster).link_params()["intra"]
    assert 1 / intra.beta_s_per_B == pytest.approx(6 * per_link)

    def busbw(model: CommModel, n: float = 2.0**30) -> float:
        return n / model.allreduce(n).at(n) * 2 * 7 / 8       # nccl-tests' bus bandwidth

    assert busbw(AlphaBeta_(cluster)) < 6 * per_link         # reductions cost time too...
    no_reduce = {"intra": AlphaBeta(intra.alpha_s, intra.beta_s_per_B, 0.0)}
    fitted = AlphaBeta_(replace(cluster, fitted=no_reduce))
    assert 0.95 * 6 * per_link < busbw(fitted) <= 6 * per_link   # ...without them, the links


def test_dgx1_p100_has_fewer_rings_than_v100() -> None:
    p100 = AlphaBeta_(cluster_mod.load_cluster("dgx1-p100"))
    v100 = AlphaBeta_(cluster_mod.load_cluster("dgx1-v100"))
    n = 100e6
    assert p100.allreduce(n).at(n) > v100.allreduce(n).at(n)


@pytest.mark.parametrize("nodes", [2, 4])
def test_nccl_auto_takes_the_cheaper_of_hierarchical_and_flat_ring(nodes) -> None:
    model = AlphaBeta_(cluster_mod.load_cluster("dgx1-p100", nodes=nodes))
    for n in (1e3, 1e5, 1e6, 4e6, 1e8):
        costs = {a: model.allreduce_by(a).at(n) for a in ("hierarchical", "ring")}
        assert model.algorithm_for(n) == min(costs, key=costs.get)
        assert model.allreduce(n).at(n) == min(costs.values())
    # Small messages: fewer latencies (2(k-1) + 2(nodes-1) against 2(p-1)) ...
    assert model.algorithm_for(1e3) == "hierarchical"
    # ... large ones: four rings, one per NIC, beat n across nodes plus 1.75 n inside.
    assert model.algorithm_for(1e8) == "ring"


def test_mpi_over_several_nodes_stays_hierarchical() -> None:
    host = AlphaBeta_(cluster_mod.load_cluster("dgx1-p100", nodes=4).with_transport("host"))
    assert {host.algorithm_for(n) for n in (1e3, 1e8)} == {"hierarchical"}   # MPICH's rule
