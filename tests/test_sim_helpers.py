"""Small hand-built clusters, workloads, profiles and cost models for the simulator tests.

A toy node has ``k`` devices fully connected at ``intra_Bps``, a PCIe switch, a CPU and one NIC.
:class:`ToyComm` prices a ring allreduce on the slowest link class, so its closed form and the
detailed fidelity's ring schedule describe the same collective.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from hwmodels.collectives.affine import Affine
from hwmodels.collectives.rings import ring_bandwidth
from hwmodels.collectives.schedules import allreduce_schedule
from hwmodels.specs import AlphaBeta, Cluster, Device, Fabric, NodeSpec
from simulator.api import Context
from vocab.workload import Layer, Workload

DEVICE = Device("toy-gpu", "gpu", 10e12, 500e9, 16e9)


def toy_node(k: int = 4, intra_Bps: float = 20e9, pcie_Bps: float = 50e9) -> NodeSpec:
    graph = nx.Graph()
    for d in range(k):
        graph.add_node(d, kind="device")
    for name, kind in (("sw", "switch"), ("cpu0", "cpu"), ("nic0", "nic")):
        graph.add_node(name, kind=kind)
    for a in range(k):
        for b in range(a + 1, k):
            graph.add_edge(a, b, kind="nvlink", links=1, bandwidth_Bps=intra_Bps,
                           latency_s=1e-6)
        graph.add_edge(a, "sw", kind="pcie", links=1, bandwidth_Bps=pcie_Bps, latency_s=1e-6)
    graph.add_edge("sw", "cpu0", kind="pcie", links=1, bandwidth_Bps=pcie_Bps, latency_s=1e-6)
    graph.add_edge("sw", "nic0", kind="pcie", links=1, bandwidth_Bps=pcie_Bps, latency_s=1e-6)
    return NodeSpec("toy", DEVICE, k, graph, nics=("nic0",))


def toy_cluster(nodes: int = 1, k: int = 4, intra_Bps: float = 20e9, inter_Bps: float = 10e9,
                overhead_s: float = 0.0, interference: float = 0.0,
                transport: str = "device") -> Cluster:
    return Cluster("toy", toy_node(k, intra_Bps), nodes,
                   Fabric("toy-ib", "infiniband", inter_Bps, 1e-6), collective_overhead_s=overhead_s,
                   comm_interference=interference, transport=transport)


class ToyComm:
    """Ring allreduce over all ranks, priced on the bottleneck link class (a CostModel)."""

    algorithm = "ring"

    def __init__(self, cluster: Cluster, alpha_s: float = 0.0, scale_bw: float = 1.0):
        self.cluster = cluster
        self.alpha_s = alpha_s
        node = cluster.node
        bw = cluster.fabric.bandwidth_Bps if cluster.nodes > 1 else \
            ring_bandwidth(node.graph, node.device_ids)
        self.bw = bw * scale_bw

    def link_params(self) -> dict[str, AlphaBeta]:
        return {"intra": AlphaBeta(self.alpha_s, 1 / self.bw),
                "inter": AlphaBeta(self.alpha_s, 1 / self.bw),
                "host": AlphaBeta(self.alpha_s, 1 / self.bw)}

    def allreduce(self, nbytes: int) -> Affine:
        p = self.cluster.total_devices
        if p == 1:
            return Affine(self.cluster.collective_overhead_s, 0.0)
        return Affine(2 * (p - 1) * self.alpha_s + self.cluster.collective_overhead_s,
                      2 * (p - 1) / p / self.bw)

    def collective_links(self) -> dict[str, AlphaBeta]:
        params = self.link_params()
        return {"intra": params["intra"], "inter": params["inter"]}

    def steps(self, nbytes: int) -> int:
        return 1  # one call drives it: these oracles leave the progress model out

    def schedule(self, nbytes: int):
        return allreduce_schedule("ring", self.cluster.total_devices, nbytes)


@dataclass(frozen=True)
class ToyProfile:
    forward_s: tuple[float, ...]
    backward_s: tuple[float, ...]
    update_s: float
    batch: int = 32
    source: str = "hand-built"


def toy_workload(grad_bytes: list[int]) -> Workload:
    layers = tuple(Layer(f"l{i}", params=g // 4, grad_bytes=g) for i, g in enumerate(grad_bytes))
    return Workload("toy", layers, default_batch=32)


def toy_context(grad_bytes, forward_s, backward_s, update_s=1e-3, cluster=None, comm=None,
                batch=32):
    """A resolved simulator Context from hand-built pieces (no preset files needed)."""
    cluster = cluster or toy_cluster()
    return Context(cluster, toy_workload(list(grad_bytes)), batch,
                   ToyProfile(tuple(forward_s), tuple(backward_s), update_s, batch),
                   comm or ToyComm(cluster))
