"""The detailed fidelity: every step of a collective's schedule as transfers on the links.

The global graph is ``nodes`` copies of the node graph, each NIC wired to one fat-tree switch.
Every link direction is a processor-sharing :class:`~simulator.channel.Channel` at the link's
bandwidth; the switch core is one more channel of ``nodes * nics * bandwidth /
oversubscription`` that every inter-node transfer crosses, which is how oversubscription bites.
A transfer is routed on the shortest path (edge cost 1/bandwidth, so NVLink beats PCIe) and
moves cut-through: it is served by all its links at once and ends when the slowest has served
it, so a single flow takes ``nbytes / bottleneck bandwidth`` as in the cost model.

Choices, so the two fidelities stay comparable: like NCCL, a collective is split over the rings
embedded in the node graph (``hwmodels.collectives.rings.find_rings``), each ring carrying a
share of the bytes proportional to its bandwidth and placing local rank ``l`` on the ring's
``l``-th device; host-staged ranks of one node meet in a shared-memory channel at half the host
memory bandwidth (copy in, copy out). A collective starts when every rank has posted it; its steps run in lock-step (step ``s+1`` after every transfer of step ``s``), each step
paying the link-class latency ``alpha`` (intra or inter node, from ``CommModel.link_params``) of
its slowest transfer and the reduction time ``gamma * reduce_bytes``; the launch overhead is
paid once per collective. Host-staged transport adds a device-to-host copy before and a
host-to-device copy after, on each rank's path to its nearest CPU.
"""

from __future__ import annotations

from typing import Any, Hashable

import networkx as nx
import simpy

from hwmodels.errors import SpecError
from hwmodels.specs import Cluster
from hwmodels.collectives.rings import find_rings
from simulator.channel import Channel
from simulator.strategies import Message


def global_graph(cluster: Cluster) -> nx.Graph:
    """``nodes`` copies of the node graph (vertices ``(node, v)``) plus the fabric switch."""
    graph = nx.Graph()
    node_graph = cluster.node.graph
    for n in range(cluster.nodes):
        for v, attrs in node_graph.nodes(data=True):
            graph.add_node((n, v), **attrs)
        for u, v, attrs in node_graph.edges(data=True):
            graph.add_edge((n, u), (n, v), **attrs)
    if cluster.nodes > 1:
        if not cluster.node.nics:
            raise SpecError("node.nics", (), "at least one NIC for a multi-node cluster")
        graph.add_node("fabric", kind="switch")
        for n in range(cluster.nodes):
            for nic in cluster.node.nics:
                graph.add_edge((n, nic), "fabric", kind="fabric",
                               bandwidth_Bps=cluster.fabric.bandwidth_Bps,
                               latency_s=cluster.fabric.latency_s)
    for _, _, attrs in graph.edges(data=True):
        attrs["cost"] = 1.0 / attrs["bandwidth_Bps"]
    return graph


class DetailedNetwork:
    """Collectives as schedules of transfers over every link of the cluster."""

    def __init__(self, env: simpy.Environment, cluster: Cluster, comm_model: Any,
                 ordering: str, rows: list):
        self.env = env
        self.cluster = cluster
        self.comm_model = comm_model
        self.rows = rows
        self.ranks = cluster.total_devices
        self.active = 0
        self.bytes_sent = 0
        self.host = cluster.transport == "host"
        self.stream = simpy.PriorityResource(env, 1) if ordering == "serial" else None
        self.graph = global_graph(cluster)
        self.links: dict[tuple[Hashable, Hashable], Channel] = {}
        for u, v, attrs in self.graph.edges(data=True):
            for a, b in ((u, v), (v, u)):
                self.links[(a, b)] = Channel(env, f"{a}->{b}", attrs["bandwidth_Bps"])
        self.core = None
        if cluster.nodes > 1:
            capacity = (cluster.nodes * len(cluster.node.nics) * cluster.fabric.bandwidth_Bps
                        / cluster.oversubscription)
            self.core = Channel(env, "fabric-core", capacity)
        params = comm_model.link_params()
        self.alpha = {"intra": params["intra"].alpha_s, "inter": params["inter"].alpha_s}
        reduce_class = "host" if self.host and "host" in params else "intra"
        self.gamma = params[reduce_class].gamma_s_per_B
        self.rings = self._ring_orders()
        self.shm = [Channel(env, f"shm{n}", cluster.node.host_mem_bandwidth_Bps / 2)
                    for n in range(cluster.nodes)]
        self._vertices: dict[tuple[int, bool, int], Hashable] = {}
        self._paths: dict[tuple[Hashable, Hashable], list[Channel]] = {}
        self._schedules: dict[int, Any] = {}
        self._pending: dict[tuple[int, int], list] = {}

    # -- topology ---------------------------------------------------------------------------
    def _ring_orders(self) -> list[tuple[tuple[int, ...], float]]:
        """(device order, share of the bytes) per ring; one identity ring where none embed."""
        devices = self.cluster.node.device_ids
        rings = find_rings(self.cluster.node.graph, devices) if not self.host else []
        if not rings:
            return [(tuple(devices), 1.0)]
        total = sum(r.bandwidth_Bps for r in rings)
        return [(tuple(r.order), r.bandwidth_Bps / total) for r in rings]

    def vertex(self, rank: int, staged: bool | None = None, ring: int = 0) -> Hashable:
        """The graph vertex a rank's data lives on: its device, or its host CPU when staged."""
        staged = self.host if staged is None else staged
        key = (rank, staged, ring)
        if key not in self._vertices:
            self._vertices[key] = self._place(rank, staged, ring)
        return self._vertices[key]

    def _place(self, rank: int, staged: bool, ring: int) -> Hashable:
        node, local = divmod(rank, self.cluster.devices_per_node)
        device = self.rings[ring][0][local]
        if not staged:
            return (node, device)
        cpus = [v for v in self.cluster.node.graph if
                self.cluster.node.graph.nodes[v].get("kind") == "cpu"]
        if not cpus:
            return (node, device)
        lengths = nx.single_source_dijkstra_path_length(
            self.cluster.node.graph, device, weight=lambda u, v, d: 1 / d["bandwidth_Bps"])
        return (node, min(cpus, key=lambda c: lengths.get(c, float("inf"))))

    def path(self, src: Hashable, dst: Hashable) -> list[Channel]:
        """Channels a transfer from vertex ``src`` to ``dst`` crosses (cached)."""
        key = (src, dst)
        if key not in self._paths and src == dst:   # same host: through shared memory
            self._paths[key] = [self.shm[src[0]]]
        if key not in self._paths:
            hops = nx.shortest_path(self.graph, src, dst, weight="cost")
            channels = [self.links[(a, b)] for a, b in zip(hops, hops[1:])]
            if self.core is not None and "fabric" in hops:
                channels.append(self.core)
            self._paths[key] = channels
        return self._paths[key]

    # -- collectives ------------------------------------------------------------------------
    def post(self, rank: int, message: Message, iteration: int, priority: int) -> simpy.Event:
        """Register ``rank``'s part; the collective starts once every rank has posted it."""
        key = (iteration, message.index)
        entry = self._pending.setdefault(key, [0, self.env.event()])
        entry[0] += 1
        if entry[0] == self.ranks:
            del self._pending[key]
            self.env.process(self.allreduce(message, iteration, priority, entry[1]))
        return entry[1]

    def allreduce(self, message: Message, iteration: int, priority: int, done: simpy.Event):
        """Run the schedule's steps as link transfers, then signal ``done``."""
        env = self.env
        request = None
        if self.stream is not None:
            request = self.stream.request(priority=priority)
            yield request
        start = env.now
        self.active += 1
        yield env.timeout(self.cluster.collective_overhead_s)
        if self.host:
            yield from self.stage(message.nbytes, to_host=True)
        schedule = self.schedule(message.nbytes)
        yield simpy.AllOf(env, [env.process(self.run_ring(schedule, ring, share))
                                for ring, (_, share) in enumerate(self.rings)])
        if self.host:
            yield from self.stage(message.nbytes, to_host=False)
        self.active -= 1
        if request is not None:
            self.stream.release(request)
        for rank in range(self.ranks):
            self.rows.append((iteration, rank, "comm", "allreduce", f"msg{message.index}",
                              message.index, message.nbytes, start, env.now))
        done.succeed()

    def run_ring(self, schedule: Any, ring: int, share: float):
        """The schedule's steps on one ring, carrying ``share`` of every transfer's bytes."""
        for step in schedule.steps:
            events, inter = [], False
            for transfer in step.transfers:
                src = self.vertex(transfer.src, ring=ring)
                dst = self.vertex(transfer.dst, ring=ring)
                inter = inter or src[0] != dst[0]
                nbytes = transfer.nbytes * share
                self.bytes_sent += nbytes
                events.extend(ch.transfer(nbytes) for ch in self.path(src, dst))
            yield self.env.timeout(self.alpha["inter" if inter else "intra"])
            yield simpy.AllOf(self.env, events)
            # Rings reduce on the same device memory at once: each step waits for the whole
            # step's reduction (the slowest rank's), as the cost model's gamma term counts it.
            reduce_bytes = max(step.reduce_bytes, default=0)
            if reduce_bytes and self.gamma:
                yield self.env.timeout(reduce_bytes * self.gamma)

    def stage(self, nbytes: int, to_host: bool):
        """Host staging: every rank copies the message between its device and its CPU."""
        events = []
        for rank in range(self.ranks):
            device, cpu = self.vertex(rank, staged=False), self.vertex(rank, staged=True)
            src, dst = (device, cpu) if to_host else (cpu, device)
            if src != dst:
                events.extend(ch.transfer(nbytes) for ch in self.path(src, dst))
        if events:
            yield simpy.AllOf(self.env, events)

    def schedule(self, nbytes: int) -> Any:
        """The cost model's schedule for ``nbytes`` (cached per size)."""
        if nbytes not in self._schedules:
            self._schedules[nbytes] = self.comm_model.schedule(nbytes)
        return self._schedules[nbytes]
