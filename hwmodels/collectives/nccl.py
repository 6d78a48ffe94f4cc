"""NCCL-style collective costs: NCCL's own cost model on a cluster's node graph and network.

For a cluster of ``N`` nodes of ``k`` GPUs (``p = N k`` ranks) and a library era
(:mod:`hwmodels.collectives.eras`), every (algorithm, protocol) the era has is priced as NCCL
prices it (``ncclTopoTuneModel`` / ``ncclTopoGetAlgoTime`` in ``src/graph/tuning.cc``):

    time = latency + nbytes / algorithm bandwidth

* **Graph bandwidth** (what NCCL's topology search finds, ``src/graph/search.cc``): inside a node,
  the largest total speed of directed rings over NVLink (each directed link carries at most
  its links x NCCL's per-link NVLink speed, ``topo.h``: P100 18 GB/s, V100 21, A100 20): from
  2.5 a linear program over the directed Hamiltonian cycles (channels share links at lower
  speeds); before, NCCL 2.0-2.4's ``p2p.cu`` search, rings on whole links (the era's
  ``ring_search``: 7 GPUs of a DGX-1 P100 get 2 rings, not 3); NCCL 1.x searched nothing: one
  ring in device order, each hop on its direct NVLink where there is one (``"order"``); with no
  NVLink ring over the GPUs (a subset such as 5 GPUs of a DGX-1), one ring routed over PCIe and
  QPI at NCCL's figures (12 and 6 GB/s), which is the topology cliff; on GPUs without PCIe peer access each hop off NVLink
  goes through host memory (NCCL's SHM transport), at most at the duplex figure NVIDIA/nccl#384
  measured (``SHM_DUPLEX_BUSBW``, 3.9 GB/s busbw). An era's ``ring_cap_Bps`` bounds each ring
  (NCCL 1.x's one ring on an NVLink measures below the link). Across nodes the node's usable NICs at the
  fabric's achieved rate (``min(NICs, GPUs)`` of them, shared under oversubscription); over TCP the
  rate NCCL's socket transport measures (``Fabric.nccl_Bps``), not the TCP goodput. The era's
  ``achieved`` fraction turns NCCL's figure into what nccl-tests measures.
* **Per protocol**: ring LL at 1/4, LL128 at 0.92 (<= 16.7 GB/s per channel), tree 0.9 of the
  graph bandwidth (<= 80 GB/s, 110 on 2 nodes), tree LL 1/3.8; ring algorithm bandwidth = bus
  bandwidth x p / 2(p-1), tree = bus bandwidth / 2. NCCL's tuner prices trees on ``<= 2`` nodes
  at the intra-node speed; what runs is bound by the network, whose whole port one tree level
  on exactly 2 nodes gets each way, so its reported bus bandwidth can exceed the network's
  (NVIDIA/nccl#209).
* **Latency**: base + per step on the link class: ring ``(2(p-1) - 2(N-1))`` NVLink/PCIe steps and
  ``2(N-1)`` network steps (LL intra steps x1.8 across nodes); tree ``2((k-1) intra + log2 N net)``.
  NCCL's network terms were measured over InfiniBand; over TCP each network step that runs also
  pays the fabric's TCP latency (:func:`socket_step_s`).
* **Mid sizes** (64 KB-1 MB run about 2x slower than that alpha-beta): NCCL's tuner prices
  every candidate with its own estimate (``self.tuner``: NCCL's figures as they are) and picks
  the fastest; what then runs costs more, for reasons found in NCCL's source: a message below
  ``channels x threads x threshold`` bytes runs on fewer channels (``getAlgoInfo`` in
  ``src/enqueue.cc``), the tree's bandwidth is NCCL's x ``treeCorrectionFactor`` (0.5-0.9 by
  size), Simple rings pay their steps' latency 1.9x from ``p/16 x 64 KiB`` on ("plateau effect of
  ring"), and a step takes the era's measured multiple of NCCL's ``hwLat``
  (:class:`~hwmodels.collectives.eras.Era`).

Fitted figures (:class:`NcclScales`, from :mod:`calibration.collfit`) multiply the terms of
what runs, never the tuner's estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise
from typing import Hashable, Mapping

import networkx as nx
import numpy as np
from scipy.optimize import linprog

from hwmodels.collectives.affine import Affine
from hwmodels.collectives.eras import (
    ERAS, NVLINK_Bps, NVLS_DEVICES, PCIE_Bps, QPI_Bps, SHM_DUPLEX_BUSBW, TREE_CORRECTION, Era,
    by_device,
)
from hwmodels.collectives.rings import hamiltonian_cycles, max_directed_rings
from hwmodels.specs import AlphaBeta, Cluster, NodeSpec

#: LL128's per-channel ceiling for allreduce (``ll128MaxBwPerCh``), and the tree's caps.
LL128_MAX_PER_CHANNEL_Bps = 16.7e9
TREE_MAX_Bps = {True: 110e9, False: 80e9}       # keyed by nodes <= 2
MAX_CYCLES = 5000
COLLECTIVES = ("allreduce", "reduce_scatter", "allgather", "broadcast")
#: The allreduce algorithm names NCCL runs (``CommModel(algorithm=...)`` may force one).
NCCL_ALGORITHMS = ("ring", "tree", "nvls")
#: NCCL's conversion of NVLS's bus bandwidth to algorithm bandwidth (``tuning.cc``: ratio 5/6).
NVLS_TUNER_RATIO = 5 / 6


@dataclass(frozen=True)
class NcclScales:
    """Fitted multipliers on the closed form (1 = NCCL's figures): bandwidth of the
    intra-node graph and of the network, latency of intra-node and network steps, the
    Simple ring's plateau factor (``None``: the era's), and the bytes per thread below which
    a collective runs on fewer channels (``NCCL_THREAD_THRESHOLDS``), and the tree's
    bandwidth and latency on their own (NCCL corrects its tree by size already; the tree
    across a fabric is what its own figures fit least)."""

    intra_bw: float = 1.0
    net_bw: float = 1.0
    intra_lat: float = 1.0
    net_lat: float = 1.0
    plateau: float | None = None
    threshold: float = 1.0       # on NCCL's per-thread bytes before it adds channels
    tree_bw: float = 1.0         # on the tree's bandwidth
    tree_lat: float = 1.0        # on the tree's latency


@dataclass(frozen=True)
class Graph:
    """What NCCL's topology search finds on one node: total ring speed, channels, link class."""

    intra_Bps: float        # inf for one GPU per node
    channels: int
    hw: str                 # "nvlink" or "pcie"


@dataclass(frozen=True)
class Choice:
    """The (algorithm, protocol) the tuner picked at a size, and its cost there."""

    algorithm: str
    protocol: str
    cost: Affine


def _nvlink_speed(node: NodeSpec) -> float:
    return by_device(NVLINK_Bps, node.device.name, 20e9)


def node_graph(node: NodeSpec, era: Era) -> Graph:
    """The ring graph NCCL builds on ``node``'s GPUs under ``era`` (cached per node)."""
    return _node_graph(node, era.name, era.nvlink, era.qpi_Bps or QPI_Bps, era.ring_search,
                       shm_Bps(era), era.ring_cap_Bps or math.inf)


def shm_Bps(era: Era) -> float:
    """What the ring model prices a hop of NCCL's SHM transport at under ``era``: the
    measured duplex bus bandwidth (:data:`~hwmodels.collectives.eras.SHM_DUPLEX_BUSBW`) over
    the era's ``achieved`` fraction, so that the predicted bus bandwidth is the measured one."""
    return SHM_DUPLEX_BUSBW / era.achieved


@lru_cache(maxsize=256)
def _node_graph(node: NodeSpec, era_name: str, nvlink: bool, qpi_Bps: float,
                ring_search: str = "graph", shm_hop_Bps: float = math.inf,
                ring_cap_Bps: float = math.inf) -> Graph:
    graph = _searched_graph(node, nvlink, qpi_Bps, ring_search, shm_hop_Bps)
    if math.isfinite(ring_cap_Bps) and math.isfinite(graph.intra_Bps):
        return replace(graph, intra_Bps=min(graph.intra_Bps, graph.channels * ring_cap_Bps))
    return graph


def _searched_graph(node: NodeSpec, nvlink: bool, qpi_Bps: float, ring_search: str,
                    shm_hop_Bps: float) -> Graph:
    devices = node.device_ids
    if len(devices) == 1:
        return Graph(math.inf, 1, "nvlink")
    speed = _nvlink_speed(node)
    if nvlink and ring_search == "order":
        # NCCL 1.x: one ring in device order; hops between NVLink peers stay on NVLink, the
        # others are routed (PCIe, sockets, host memory) as any routed ring's are.
        on_nvlink = all(_nvlink_peers(node.graph, a, b)
                        for a, b in zip(devices, devices[1:] + devices[:1]))
        return Graph(_routed_ring(node.graph, devices, qpi_Bps, speed,
                                  via_host=not node.device.pcie_p2p, shm_Bps=shm_hop_Bps),
                     1, "nvlink" if on_nvlink else "pcie")
    if nvlink:
        total = (_p2p_rings(node.graph, devices, speed) if ring_search == "p2p"
                 else _nvlink_rings(node.graph, devices, speed))
        if total > 0:
            return Graph(total, max(1, round(total / speed)), "nvlink")
        switched = _nvswitch_speed(node.graph, devices, speed)
        if switched > 0:
            return Graph(switched, max(1, round(switched / speed)), "nvlink")
    return Graph(_routed_ring(node.graph, devices, qpi_Bps, speed if nvlink else None,
                              via_host=not node.device.pcie_p2p, shm_Bps=shm_hop_Bps),
                 1, "pcie")


def _nvlink_peers(graph: nx.Graph, a: int, b: int) -> bool:
    """Whether GPUs ``a`` and ``b`` share an NVLink or an NVSwitch."""
    if graph.has_edge(a, b) and graph.edges[a, b].get("kind") == "nvlink":
        return True
    def switches(d: int) -> set:
        return {n for n in graph[d] if graph.edges[d, n].get("kind") == "nvswitch"}
    return bool(switches(a) & switches(b))


def _nvlink_links(graph: nx.Graph, devices: list[int]) -> dict[tuple[int, int], int]:
    """NVLinks per directed pair of ``devices``."""
    return {(a, b): int(graph.edges[a, b].get("links", 1)) for a in devices for b in devices
            if a != b and graph.has_edge(a, b) and graph.edges[a, b].get("kind") == "nvlink"}


def _p2p_rings(graph: nx.Graph, devices: list[int], speed: float) -> float:
    """Total speed of the rings NCCL 2.0-2.4 builds (``src/transport/p2p.cu``): the most
    directed rings on whole NVLinks, each at one link's speed; on at most 4 GPUs it also
    tries two rings per link at half speed each and keeps that when it more than doubles
    the rings (4 GPUs of a cube-mesh: 2 whole-link rings, or 6 half-speed ones). So 7 GPUs
    of a DGX-1 P100 get 2 rings where a fractional packing would find 3."""
    links = _nvlink_links(graph, devices)
    rings = max_directed_rings(links, devices)
    if 0 < rings and len(devices) <= 4:
        doubled = max_directed_rings({arc: 2 * n for arc, n in links.items()}, devices)
        if doubled > 2 * rings:
            return doubled * speed / 2
    return rings * speed


def _nvlink_rings(graph: nx.Graph, devices: list[int], speed: float) -> float:
    """Largest total speed of directed NVLink rings (fractional packing, as NCCL's search
    puts several channels on one link at a lower speed each)."""
    cap = {arc: n * speed for arc, n in _nvlink_links(graph, devices).items()}
    cycles = _directed_cycles(cap, devices)
    if not cycles:
        return 0.0
    edges = sorted(cap)
    index = {e: i for i, e in enumerate(edges)}
    a_ub = np.zeros((len(edges), len(cycles)))
    for j, cycle in enumerate(cycles):
        for e in zip(cycle, cycle[1:] + cycle[:1]):
            a_ub[index[e], j] += 1
    b_ub = np.array([cap[e] for e in edges]) / 1e9
    result = linprog(-np.ones(len(cycles)), A_ub=a_ub, b_ub=b_ub, bounds=(0, None),
                     method="highs")
    return float(-result.fun) * 1e9 if result.status == 0 else 0.0


def _directed_cycles(cap: Mapping[tuple[int, int], float],
                     devices: list[int]) -> list[tuple[int, ...]]:
    """Directed NVLink rings over every device (a ring and its reverse are two channels)."""
    succ = {d: sorted(b for (a, b) in cap if a == d) for d in devices}
    return hamiltonian_cycles(succ, devices, MAX_CYCLES)


def has_nvswitch(node: NodeSpec) -> bool:
    """Whether ``node``'s GPUs reach each other through an NVSwitch."""
    return any(kind == "nvswitch" for _, _, kind in node.graph.edges(data="kind"))


def _nvswitch_speed(graph: nx.Graph, devices: list[int], speed: float) -> float:
    links = [data.get("links", 1) for d in devices for _, other, data in graph.edges(d, data=True)
             if data.get("kind") == "nvswitch"]
    return min(links) * speed if len(links) == len(devices) else 0.0


def _edge_speed(data: Mapping, qpi_Bps: float, nvlink_Bps: float | None) -> float:
    kind = data.get("kind")
    if kind == "qpi":
        return qpi_Bps
    if kind in ("nvlink", "nvswitch") and nvlink_Bps is not None:
        return data.get("links", 1) * nvlink_Bps
    if kind == "pcie":
        return pcie_speed(data.get("bandwidth_Bps", PCIE_Bps))
    return PCIE_Bps


def pcie_speed(link_Bps: float) -> float:
    """NCCL's speed for a PCIe link: its width times its generation's per-lane rate
    (``src/graph/topo.cc`` ``kvDictPciGen``: 8 GT/s 60, 16 GT/s 120, 32 GT/s 240 x100 Mb/s a
    lane; ``ncclTopoAddPci``: ``width * speed / 80`` GB/s), so x16 Gen3 12 GB/s (the old
    fixed ``PCI_BW``), Gen4 24, Gen5 48: the figures the node files carry for their PCIe
    links, read back as NCCL's. An x8 or slower link keeps its own figure."""
    return min(link_Bps, 4 * PCIE_Bps)


def _routed_ring(graph: nx.Graph, devices: list[int], qpi_Bps: float,
                 nvlink_Bps: float | None, via_host: bool = False,
                 nic: Hashable | None = None, nic_via_host: bool = False,
                 shm_Bps: float = math.inf) -> float:
    """One ring in device order, each hop on the fewest-hop path avoiding other GPUs; its
    speed is that of its slowest part: the most loaded directed link's NCCL figure over its
    load, and ``shm_Bps`` if any hop runs over SHM. ``via_host`` (GPUs without PCIe peer
    access): a GPU-to-GPU hop not on NVLink goes through host memory at the receiver's
    socket (NCCL's SHM transport), so two GPUs under one switch load its uplink both ways,
    and the hop runs at most at ``shm_Bps`` (the duplex figure, :func:`shm_Bps`); an NVLink
    hop (a bridged pair) stays peer to peer. ``nic`` (a ring across nodes): the last GPU
    sends to the NIC and the NIC delivers to the first, instead of the closing hop;
    ``nic_via_host`` (no GPUDirect RDMA, or NCCL's socket transport): each of those goes
    through host memory at the GPU's socket too (the network transport's host buffers, not
    SHM: no duplex figure)."""
    allowed = nx.Graph(graph.subgraph(n for n in graph if graph.nodes[n].get("kind") != "device"
                                      or n in devices))
    if nvlink_Bps is None:   # a PCIe-only library: NVLink edges are not used
        allowed.remove_edges_from([(u, v) for u, v, kind in allowed.edges(data="kind")
                                   if kind in ("nvlink", "nvswitch")])
    load: dict[tuple[Hashable, Hashable], int] = {}
    slowest_hop = math.inf
    hops = list(zip(devices, devices[1:] + devices[:1]))
    if nic is not None:
        hops = hops[:-1] + [(devices[-1], nic), (nic, devices[0])]
    for src, dst in hops:
        others = set(devices) - {src, dst}
        view = nx.subgraph_view(allowed, filter_node=lambda n, o=others: n not in o)
        path = nx.shortest_path(view, src, dst)
        if nic in (src, dst):
            staged = nic_via_host
        else:
            staged = via_host and not _peer_path(view, path)
            if staged:
                slowest_hop = min(slowest_hop, shm_Bps)
        if staged and not any(view.nodes[n].get("kind") == "cpu" for n in path):
            host = _nearest_socket(view, src if dst == nic else dst)
            path = nx.shortest_path(view, src, host)[:-1] + nx.shortest_path(view, host, dst)
        for u, v in pairwise(path):
            load[(u, v)] = load.get((u, v), 0) + 1
    return min(slowest_hop, *(_edge_speed(allowed.edges[u, v], qpi_Bps, nvlink_Bps) / n
                              for (u, v), n in load.items()))


def _peer_path(graph: nx.Graph, path: list[Hashable]) -> bool:
    """Whether ``path`` runs on NVLink (or NVSwitch) only: GPUs without PCIe peer access
    still reach each other peer to peer over an NVLink bridge (two RTX 2080 on a bridge
    under Linux: p2pBandwidthLatencyTest peer access over NVLink, Puget Systems, "NVLINK on
    RTX 2080 TensorFlow and Peer-to-Peer Performance with Linux", Oct 2018)."""
    return all(graph.edges[u, v].get("kind") in ("nvlink", "nvswitch")
               for u, v in pairwise(path))


def _nearest_socket(graph: nx.Graph, device: int) -> Hashable:
    """The CPU socket closest to ``device`` (where its host memory is)."""
    lengths = nx.single_source_shortest_path_length(graph, device)
    return min((n for n in lengths if graph.nodes[n].get("kind") == "cpu"),
               key=lambda n: (lengths[n], str(n)))


def boundary_Bps(cluster: Cluster, era: Era) -> float:
    """The speed of a node's routed (PCIe) ring when it crosses nodes: its last GPU sends to
    the node's NIC and the NIC delivers to its first GPU, through host memory when the NIC
    cannot reach GPU memory (no GPUDirect RDMA on the device, or NCCL's socket transport,
    which takes host pointers only: ``ncclSocketPtrSupport``, ``src/transport/net_socket.cc``).
    ``inf`` where that does not apply (NVLink rings, one GPU per node, no NIC in the graph)."""
    node = cluster.node
    graph = node_graph(node, era)
    if cluster.nodes < 2 or graph.hw != "pcie" or not node.nics \
            or any(nic not in node.graph for nic in node.nics):
        return math.inf
    staged = cluster.fabric.nccl_sockets or not node.device.gpudirect_rdma
    return _boundary_Bps(node, era.name, era.nvlink, era.qpi_Bps or QPI_Bps, staged,
                         shm_Bps(era))


@lru_cache(maxsize=256)
def _boundary_Bps(node: NodeSpec, era_name: str, nvlink: bool, qpi_Bps: float,
                  staged: bool, shm_hop_Bps: float = math.inf) -> float:
    devices = node.device_ids
    lengths = nx.single_source_shortest_path_length(node.graph, devices[-1])
    nic = min(node.nics, key=lambda n: (lengths.get(n, math.inf), str(n)))
    speed = _nvlink_speed(node) if nvlink else None
    return _routed_ring(node.graph, devices, qpi_Bps, speed, via_host=not node.device.pcie_p2p,
                        nic=nic, nic_via_host=staged, shm_Bps=shm_hop_Bps)


def network_Bps(cluster: Cluster) -> float:
    """A node's achieved network bandwidth: its usable NICs at the rate NCCL's transport gets
    over the fabric (``Fabric.nccl_Bps``: below the TCP goodput over sockets)."""
    nics = max(1, min(len(cluster.node.nics), cluster.devices_per_node))
    return nics * cluster.fabric.nccl_Bps / cluster.oversubscription


#: NCCL's network-step terms (``hwLat`` NET, and the ABCI fit of what a step takes) were
#: measured over InfiniBand, whose own small-message latency is about 1 us
#: (``hwmodels/data/fabrics.yaml``, ib-*).
IB_LATENCY_S = 1e-6


def socket_step_s(cluster: Cluster) -> float:
    """What a network step costs beyond NCCL's (InfiniBand verbs) figure: each step pays the
    fabric's own latency (``latency_s``) in place of InfiniBand's ~1 us, whatever the wire.
    Over TCP (Ethernet, or IP over InfiniBand), NCCL's socket transport hands every step to
    the kernel TCP stack (10-50 us); RoCE runs NCCL's verbs transport as InfiniBand does, and
    its ~1-2 us adds next to nothing; InfiniBand verbs (1 us) add nothing."""
    if cluster.nodes < 2:
        return 0.0
    return max(0.0, cluster.fabric.latency_s - IB_LATENCY_S)


class NcclCosts:
    """NCCL-style costs of the collectives over every GPU of ``cluster`` under ``era``."""

    def __init__(self, cluster: Cluster, era: str | Era,
                 scales: NcclScales | None = None, *, as_tuner: bool = False) -> None:
        self.era = ERAS[era] if isinstance(era, str) else era
        self.as_tuner = as_tuner
        self.scales = NcclScales() if as_tuner or scales is None else scales
        #: NCCL's own estimate, which picks the algorithm and protocol: its figures as they
        #: are (no achieved fraction, every channel, nothing fitted). What runs then costs
        #: what this model says it costs.
        self.tuner = self if as_tuner else NcclCosts(cluster, self.era, as_tuner=True)
        self.k, self.nodes = cluster.devices_per_node, cluster.nodes
        self.p = self.k * self.nodes
        self.graph = node_graph(cluster.node, self.era)
        self.net_Bps = network_Bps(cluster) * self.scales.net_bw
        # NCCL's tuner prices network steps with its own (InfiniBand) terms; what runs over
        # TCP also pays the socket stack's latency per step.
        self.socket_step_s = 0.0 if as_tuner else socket_step_s(cluster)
        # Across nodes a PCIe ring's hops to and from the NIC load the same PCIe links.
        self.intra_Bps = (min(self.graph.intra_Bps, boundary_Bps(cluster, self.era))
                          * self.scales.intra_bw)
        name = cluster.device.name.lower()
        self.ll128_ok = self.graph.hw == "nvlink" and not name.startswith("p100")
        self.nvls_ok = (self.era.nvls and self.nodes == 1 and self.k >= self.era.nvls_min_gpus
                        and name.startswith(NVLS_DEVICES) and has_nvswitch(cluster.node))

    # -- what the era runs ----------------------------------------------------------------
    def candidates(self, collective: str = "allreduce") -> list[tuple[str, str]]:
        """(algorithm, protocol) pairs this era can run for ``collective`` here."""
        algorithms = ["ring"]
        if collective == "allreduce" and self.era.trees and self.nodes > 1:
            algorithms.append("tree")
        protocols = [p for p in self.era.protocols if p != "LL128" or self.ll128_ok]
        pairs = [(a, p) for a in algorithms for p in protocols]
        if collective == "allreduce" and self.nvls_ok:
            pairs.append(("nvls", "Simple"))     # NVLS runs the Simple protocol only
        return pairs

    def choose(self, nbytes: float, collective: str = "allreduce",
               algorithm: str | None = None) -> Choice:
        """The fastest candidate at ``nbytes``, as NCCL's tuner picks (first on ties);
        ``algorithm`` restricts the choice to its protocols (a tree falls back to the ring
        where the era or the layout has none)."""
        pairs = self.candidates(collective)
        if algorithm is not None and any(a == algorithm for a, _ in pairs):
            pairs = [(a, p) for a, p in pairs if a == algorithm]
        estimate = {pair: self.tuner.cost(*pair, nbytes, collective).at(nbytes) for pair in pairs}
        algorithm, protocol = min(pairs, key=estimate.__getitem__)
        return Choice(algorithm, protocol, self.cost(algorithm, protocol, nbytes, collective))

    # -- the closed form --------------------------------------------------------------------
    def cost(self, algorithm: str, protocol: str, nbytes: float,
             collective: str = "allreduce") -> Affine:
        """Latency (fixed) and 1 / algorithm bandwidth (per byte) at ``nbytes``."""
        if self.p == 1:
            return Affine(0.0, 0.0)
        latency = self._latency(algorithm, protocol, nbytes, collective)
        return Affine(latency, 1.0 / self._algbw(algorithm, protocol, nbytes, collective))

    def _bus(self, algorithm: str) -> float:
        if self.as_tuner:
            if self.nodes == 1:
                return self.intra_Bps
            if algorithm == "tree" and self.nodes <= 2:
                return self.intra_Bps if math.isfinite(self.intra_Bps) else self.net_Bps
            return min(self.intra_Bps, self.net_Bps)
        intra = self.era.achieved * self.intra_Bps
        if self.nodes == 1:
            return intra
        return min(intra, self.era.achieved_network * self.net_Bps)

    def _algbw(self, algorithm: str, protocol: str, nbytes: float, collective: str) -> float:
        bus, channels = self._bus(algorithm), self.graph.channels
        if algorithm == "nvls":
            return self._nvls_algbw(bus)
        if algorithm == "tree":
            bus = min(0.9 * bus, TREE_MAX_Bps[self.nodes <= 2])
            if protocol == "LL":
                bus /= 3.8
            elif protocol == "LL128":
                bus = min(bus * 0.915, LL128_MAX_PER_CHANNEL_Bps * channels * 7 / 9)
            if self.era.tree_correction:
                log_size = max(0, int(math.log2(max(nbytes, 64) / 64)))
                if log_size < len(TREE_CORRECTION[protocol]):
                    bus *= TREE_CORRECTION[protocol][log_size]
            # NCCL's tree moves each byte up and down: algbw = busbw / 2. On exactly two nodes
            # the one tree level crosses the network once each way, so what runs gets the
            # whole port (bus bandwidth up to ~2x the network's, NVIDIA/nccl#209).
            ratio = 1.0 if self.nodes == 2 and not self.as_tuner else 0.5
            return (bus * self.channel_share(algorithm, protocol, nbytes) * ratio
                    * self.scales.tree_bw)
        if protocol == "LL":
            bus /= 4 if (self.nodes > 1 or collective == "allreduce") else 3
        elif protocol == "LL128":
            bus = min(bus * (0.7 if self.k < 2 and self.nodes > 1 else 0.92),
                      LL128_MAX_PER_CHANNEL_Bps * channels)
        steps = self._steps(collective)[0]
        bus *= self.channel_share(algorithm, protocol, nbytes)
        return bus * (self.p / steps if collective != "broadcast" else 1.0)

    def _nvls_algbw(self, bus: float) -> float:
        """NVLS's algorithm bandwidth. NCCL's tuner: its bus bandwidth x 5/6. What runs: the
        NVSwitch reduces (multimem loads) and multicasts (multimem stores), so each GPU sends
        its whole buffer plus its reduced 1/k share and receives as much, ``1 + 1/k`` times
        the message each way over its links, at the era's measured efficiency of that bound
        (``Era.nvls_efficiency``; eras.py gives the source and the check at 5-8 GPUs)."""
        if self.as_tuner:
            return bus * NVLS_TUNER_RATIO
        # ``bus`` holds the fitted intra-node scale already (``self.intra_Bps``).
        return self.era.nvls_efficiency * bus / (1 + 1 / self.k)

    def channel_share(self, algorithm: str, protocol: str, nbytes: float) -> float:
        """The fraction of its channels a collective of ``nbytes`` runs on: NCCL drops
        channels while ``nbytes < channels x threads x threshold`` (``getAlgoInfo``), so a
        mid-size message gets a fraction of the bandwidth its tuner priced it at."""
        era = self.era
        if era.thread_threshold is None or self.as_tuner:
            return 1.0
        total = self.graph.channels * era.channels_per_ring
        threshold = era.thread_threshold[protocol] * self.scales.threshold
        if algorithm == "ring" and protocol == "LL":
            threshold *= self.p
        # NCCL drops one channel at a time; as a continuous share (what a fit can move).
        used = min(total, max(1.0, nbytes / (era.threads[protocol] * threshold)))
        return used / total

    def _steps(self, collective: str) -> tuple[int, int]:
        """(ring steps, of which network steps)."""
        p, n = self.p, self.nodes
        if collective == "allreduce":
            return 2 * (p - 1), 2 * (n - 1)
        if collective == "broadcast":
            return p - 1, n - 1
        return p - 1, n - 1

    def _latency(self, algorithm: str, protocol: str, nbytes: float, collective: str) -> float:
        era, s = self.era, self.scales
        key = (algorithm, protocol)
        base = era.base_lat_s.get(key, era.base_lat_s.get(("ring", protocol), 0.0))
        hw = era.hw_lat_s[self.graph.hw]
        measured = ({"intra": 1.0, "net": 1.0} if self.as_tuner
                    else era.step_latency_measured)
        intra = hw.get(key, hw.get(("ring", protocol), 0.0)) * s.intra_lat * measured["intra"]
        inter = era.hw_lat_s["net"].get(key, era.hw_lat_s["net"].get(("ring", protocol), 0.0))
        inter = inter * s.net_lat * measured["net"] + self.socket_step_s
        if self.nodes > 1 and protocol == "LL":
            intra *= 1.8
        if algorithm == "nvls":
            # NCCL prices one NVLS operation at its hwLat alone (no base, no steps); no
            # measured NVLS curve by size is at hand, so what runs is priced the same.
            return hw[key] * s.intra_lat
        if algorithm == "tree":
            return base + 2 * ((self.k - 1) * intra + math.log2(self.nodes) * inter) * s.tree_lat
        steps, net_steps = self._steps(collective)
        step_part = (steps - net_steps) * intra + net_steps * inter
        plateau = s.plateau if s.plateau is not None else era.ring_plateau
        if (protocol == "Simple" and collective == "allreduce"
                and nbytes >= self.p / 16 * 65536):
            step_part *= plateau
        return base + step_part

    def links(self, gamma_s_per_B: float) -> dict[str, AlphaBeta]:
        """``{"intra", "inter"}`` as NCCL's large-message regime sees them: a Simple ring
        step's latency and the achieved bus bandwidth of the node's rings and of its NICs."""
        def per_byte(bw: float, achieved: float) -> float:
            return 0.0 if not math.isfinite(bw) else 1.0 / (achieved * bw)
        hw, net = self.era.hw_lat_s[self.graph.hw], self.era.hw_lat_s["net"]
        measured = self.era.step_latency_measured
        return {"intra": AlphaBeta(hw[("ring", "Simple")] * self.scales.intra_lat
                                   * measured["intra"],
                                   per_byte(self.intra_Bps, self.era.achieved), gamma_s_per_B),
                "inter": AlphaBeta(net[("ring", "Simple")] * self.scales.net_lat
                                   * measured["net"] + self.socket_step_s,
                                   per_byte(self.net_Bps, self.era.achieved_network),
                                   gamma_s_per_B)}
