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
its slowest transfer *before* its bytes move (a step costs ``alpha + bytes / bandwidth``, the
closed forms' model), then the reduction time ``gamma * reduce_bytes``; the launch overhead is
paid once per collective. Under serial ordering a collective has the links to itself, so
each step's time follows from its bytes per link without simulating them one by one
(:meth:`DetailedNetwork.alone`, cached per size); concurrent collectives run as transfers on
the shared channels. The alphas are those of the links the cost model prices the
collective on (``CommModel.collective_links``: host-staged collectives run among host buffers).
Host-staged transport adds a device-to-host copy before and a host-to-device copy after, on
each rank's path to its nearest CPU, each paying the host link's alpha once. The software
stack's per-call seconds are paid with the launch overhead, its Horovod cycle before the
collective queues, and overlap interference slows every link (and the serial collectives' bytes)
while ranks compute, as in the analytic fidelity.
"""

from __future__ import annotations

from typing import Any, Hashable

import networkx as nx
import simpy

from vocab.errors import SpecError
from hwmodels.specs import Cluster
from hwmodels.collectives.rings import find_rings
from simulator.channel import Channel
from simulator.costmodel import CostModel
from simulator.engine import CallFn, OverlapStretch, wait_for_cycle
from vocab.strategies import Message


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


def spread_over_nics(orders: list[tuple[int, ...]], graph: nx.Graph,
                     nics: tuple[str, ...]) -> list[tuple[int, ...]]:
    """Rotate each ring so that the rings leave and enter a node through different NICs.

    A flat ring over several nodes leaves node ``a`` from its last device and enters node
    ``a + 1`` at its first. NCCL builds its rings so that each crosses the network on its own
    NIC; the cost model's flat ring assumes the same (a node's whole port carries the rings).
    Without rotation every ring would enter at device 0 and share one NIC. Greedy: each ring
    takes the rotation whose exit and entry NICs are least used so far (first one on ties).
    """
    nearest = {d: _nearest_nic(graph, d, nics) for d in orders[0]}
    sends: dict[str, int] = {}
    receives: dict[str, int] = {}
    rotated = []
    for order in orders:
        options = [order[i:] + order[:i] for i in range(len(order))]
        best = min(options, key=lambda o: sends.get(nearest[o[-1]], 0)
                   + receives.get(nearest[o[0]], 0))
        sends[nearest[best[-1]]] = sends.get(nearest[best[-1]], 0) + 1
        receives[nearest[best[0]]] = receives.get(nearest[best[0]], 0) + 1
        rotated.append(best)
    return rotated


def _nearest_nic(graph: nx.Graph, device: int, nics: tuple[str, ...]) -> str:
    """The NIC a device's traffic leaves by: fastest path (edge cost 1 / bandwidth)."""
    lengths = nx.single_source_dijkstra_path_length(
        graph, device, weight=lambda u, v, d: 1 / d["bandwidth_Bps"])
    return min(nics, key=lambda nic: (lengths.get(nic, float("inf")), nic))


class DetailedNetwork:
    """Collectives as schedules of transfers over every link of the cluster."""

    def __init__(self, env: simpy.Environment, cluster: Cluster, comm_model: CostModel,
                 ordering: str, rows: list, call_s: CallFn | None = None,
                 stretch: float = 1.0, cycle_s: float = 0.0):
        self.env = env
        self.call_s = call_s or (lambda message: 0.0)
        self.interference = OverlapStretch(stretch)
        self.cycle_s = cycle_s
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
        # Price steps on the links the closed form prices them on (host-staged collectives
        # run among host buffers: shared memory inside a node).
        links = comm_model.collective_links()
        self.alpha = {"intra": links["intra"].alpha_s, "inter": links["inter"].alpha_s}
        self.stage_alpha = params["host"].alpha_s if self.host and "host" in params else 0.0
        reduce_class = "host" if self.host and "host" in params else "intra"
        self.gamma = params[reduce_class].gamma_s_per_B
        self.rings = self._ring_orders()
        # The per-call constant the cost model charges (an NCCL era's latency terms hold it).
        self.overhead_s = getattr(comm_model, "overhead_s", cluster.collective_overhead_s)
        self.shm = [Channel(env, f"shm{n}", cluster.node.host_mem_bandwidth_Bps / 2)
                    for n in range(cluster.nodes)]
        # Serial collectives' bandwidth seconds (``alone``) run on this channel, so that overlap
        # interference stretches them as it stretches the links.
        self.serial = Channel(env, "serial", 1.0)
        self._rates = {ch: ch.rate for ch in (*self.links.values(), *self.shm, self.serial,
                                               *([self.core] if self.core else []))}
        self._vertices: dict[tuple[int, bool, int], Hashable] = {}
        self._paths: dict[tuple[Hashable, Hashable], list[Channel]] = {}
        self._schedules: dict[int, Any] = {}
        self._alone: dict[int, tuple[float, float]] = {}
        self._stretch: dict[int, float] = {}
        self._pending: dict[tuple[int, int], list] = {}

    def computing(self, rank: int, busy: bool) -> None:
        """Rank ``rank`` started or stopped computing: stretch every link meanwhile."""
        self.interference.computing(rank, busy, self._rates)

    # -- topology ---------------------------------------------------------------------------
    def _ring_orders(self) -> list[tuple[tuple[int, ...], float]]:
        """(device order, share of the bytes) per ring; one identity ring where none embed."""
        devices = self.cluster.node.device_ids
        rings = find_rings(self.cluster.node.graph, devices) if not self.host else []
        if not rings:
            return [(tuple(devices), 1.0)]
        total = sum(r.bandwidth_Bps for r in rings)
        orders = [tuple(r.order) for r in rings]
        if self.cluster.nodes > 1 and len(self.cluster.node.nics) > 1:
            orders = spread_over_nics(orders, self.cluster.node.graph, self.cluster.node.nics)
        return [(order, r.bandwidth_Bps / total) for order, r in zip(orders, rings)]

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
    def post(self, rank: int, message: Message, iteration: int, priority: int,
             gate: Any = None) -> simpy.Event:
        """Register ``rank``'s part; the collective starts once every rank has posted it.

        Progress is always asynchronous here (the API refuses a gated progress mode for the
        detailed fidelity), so ``gate`` is not consulted.
        """
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
        yield from wait_for_cycle(env, self.cycle_s)
        request = None
        if self.stream is not None:
            request = self.stream.request(priority=priority)
            yield request
        start = env.now
        self.active += 1
        yield env.timeout(self.overhead_s + self.call_s(message))
        if self.host:
            yield from self.stage(message.nbytes, to_host=True)
        schedule = self.schedule(message.nbytes)
        if self.stream is not None:
            # Serial: this collective has the links to itself, so each step lasts as long as
            # its most loaded link needs (processor sharing serves every job by then).
            fixed_s, moving_s, sent = self.alone(message.nbytes)
            self.bytes_sent += sent
            yield env.timeout(fixed_s)
            yield self.serial.transfer(moving_s)
        else:
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
        stretch = self.stretch(schedule)
        for step in schedule.steps:
            ends = [(self.vertex(t.src, ring=ring), self.vertex(t.dst, ring=ring), t.nbytes)
                    for t in step.transfers]
            # A step waits for its slowest transfer's latency: the largest alpha of the link
            # classes it uses. Latency first, then the bytes: a step costs alpha + bytes /
            # bandwidth, as in the closed forms (bytes moving during alpha would hide alpha).
            yield self.env.timeout(self.step_alpha(schedule, ends))
            events = []
            for src, dst, nbytes in ends:
                self.bytes_sent += nbytes * share
                events.extend(ch.transfer(nbytes * share * stretch)
                              for ch in self.path(src, dst))
            yield simpy.AllOf(self.env, events)
            # Rings reduce on the same device memory at once: each step waits for the whole
            # step's reduction (the slowest rank's), as the cost model's gamma term counts it.
            reduce_bytes = max(step.reduce_bytes, default=0)
            if reduce_bytes and self.gamma and schedule.transfer_s is None:
                yield self.env.timeout(reduce_bytes * self.gamma)

    def step_alpha(self, schedule: Any, ends: list) -> float:
        """A step's latency: the schedule's own (a regime model), else its link classes'."""
        if schedule.alpha_s is not None:
            return schedule.alpha_s
        classes = {"inter" if src[0] != dst[0] else "intra" for src, dst, _ in ends}
        return max((self.alpha[c] for c in classes), default=0.0)

    def stretch(self, schedule: Any) -> float:
        """How much longer the schedule's bytes take than on the links at line rate: 1, or
        for a schedule priced by its model, its ``transfer_s`` over the line-rate time."""
        if schedule.transfer_s is None:
            return 1.0
        if schedule.nbytes not in self._stretch:
            line_rate = self._loads(schedule)[0]
            self._stretch[schedule.nbytes] = (schedule.transfer_s / line_rate if line_rate > 0
                                              else 1.0)
        return self._stretch[schedule.nbytes]

    def alone(self, nbytes: int) -> tuple[float, float, float]:
        """(latency seconds, moving and reducing seconds, bytes sent) of the schedule's steps
        with no other traffic (cached).

        The rings run a step together: all its transfers start at once after the step's
        alpha, so it ends when the link carrying the most bytes (over its rate) has served
        them, which is what the channels would compute event by event, at a fraction of the
        cost (a flat ring over 64 ranks has 126 steps of 256 transfers).
        """
        if nbytes not in self._alone:
            schedule = self.schedule(nbytes)
            transfer_s, alpha_s, reduce_s, sent = self._loads(schedule)
            if schedule.transfer_s is not None:
                transfer_s, reduce_s = schedule.transfer_s, 0.0
            self._alone[nbytes] = (alpha_s, transfer_s + reduce_s, sent)
        return self._alone[nbytes]

    def _loads(self, schedule: Any) -> tuple[float, float, float, float]:
        """(seconds of bytes at line rate, of step latencies, of reductions; bytes sent)."""
        transfer_s = alpha_s = reduce_s = sent = 0.0
        for step in schedule.steps:
            load: dict[Channel, float] = {}
            ends = []
            for ring, (_, share) in enumerate(self.rings):
                for t in step.transfers:
                    src, dst = self.vertex(t.src, ring=ring), self.vertex(t.dst, ring=ring)
                    ends.append((src, dst, t.nbytes))
                    sent += t.nbytes * share
                    for channel in self.path(src, dst):
                        load[channel] = load.get(channel, 0.0) + t.nbytes * share
            alpha_s += self.step_alpha(schedule, ends) if ends else 0.0
            # at the links' own rates: interference stretches them while it lasts, not here
            transfer_s += max((b / self._rates.get(c, c.rate) for c, b in load.items()),
                              default=0.0)
            reduce_s += max(step.reduce_bytes, default=0) * self.gamma
        return transfer_s, alpha_s, reduce_s, sent

    def stage(self, nbytes: int, to_host: bool):
        """Host staging: every rank copies the message between its device and its CPU."""
        if self.stage_alpha:   # one copy's latency (the closed form's 2 host alphas)
            yield self.env.timeout(self.stage_alpha)
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
