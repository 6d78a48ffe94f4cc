"""The detailed fidelity: every link of the cluster, every step of a collective's schedule.

The cluster is its channels (:class:`~simulator.linkmap.LinkMap`: each node's link
directions, each NIC's up- and downlink, the fabric's core or leaf switches), each with its
rate; heterogeneous clusters (:class:`~hwmodels.hetero.Variation`: node groups, degraded links
and NICs, leaf switches with a rank placement) change those channels, and slow nodes change
their ranks' compute. A collective runs as its schedule's *step groups*
(:mod:`hwmodels.collectives.patterns`: a ring's ``p - 1`` reduce-scatter steps are one group of
``p`` transfers): one numpy computation gives the bytes every channel carries in a step, and
the step lasts as long as its most loaded channel needs at line rate (processor sharing serves
every transfer by then), so the work grows with the transfers of a step, not the events.

Choices, so the two fidelities stay comparable: like NCCL, a collective is split over the rings
embedded in the node graph (``hwmodels.collectives.rings.find_rings``), each ring carrying a
share of the bytes proportional to its bandwidth and placing local rank ``l`` on the ring's
``l``-th device (rings are embedded in the first node group's graph and used on every node;
on another group's nodes a ring hop takes that graph's fastest path); host-staged ranks of one node meet in a shared-memory channel at half the host
memory bandwidth (copy in, copy out). A collective starts when every rank has posted it; its
steps run in lock-step, each paying the link-class latency ``alpha`` (intra or inter node,
from ``CommModel.collective_links``) of its slowest transfer *before* its bytes move (a step
costs ``alpha + bytes / bandwidth``, the closed forms' model), then the reduction time ``gamma
* reduce_bytes``; the launch overhead is paid once per collective. Under serial ordering a
collective has the links to itself and its time follows from the loads (:meth:`alone`, cached
per size). Under concurrent ordering each step group is one job on its bottleneck channel
(the channel that sets its time), so collectives whose steps meet on a channel share it by
processor sharing. Host-staged transport adds a device-to-host copy before and a host-to-device
copy after, each paying the host link's alpha once. The software stack's per-call seconds are
paid with the launch overhead, its Horovod cycle before the collective queues, and overlap
interference slows every channel (and the serial collectives' bytes) while ranks compute.

Ranks with the same compute (no noise, or the same factors) are one rank class: the engine
runs one process per class (:func:`simulator.engine.run_engine`), each posting for all its
members, and the trace has one row per class per interval (its lowest rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import simpy

from hwmodels.collectives.patterns import StepGroup, groups_of
from hwmodels.collectives.rings import find_rings
from hwmodels.hetero import Variation
from hwmodels.specs import Cluster
from simulator.channel import Channel
from simulator.costmodel import CostModel
from simulator.engine import CallFn, MovingClock, OverlapStretch, enter_stream
from simulator.linkmap import LinkMap
from vocab.strategies import Message


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


@dataclass(frozen=True)
class GroupPrice:
    """One step group per byte of the message: line-rate seconds and bottleneck of a step."""

    repeat: int
    alpha_s: float           # one step's latency
    line_s_per_B: float      # one step's seconds per message byte at the channels' rates
    bottleneck: int          # the channel that sets the step's time
    work_per_B: float        # bytes that channel carries per message byte in one step
    reduce_share: float      # fraction of the message the busiest rank reduces per step
    sent_per_B: float        # bytes sent by all ranks per message byte in one step
    nominal_s_per_B: float = 0.0   # line_s_per_B on the uniform cluster (regime pricing)


class DetailedNetwork:
    """Collectives as schedules of transfers over every link of the cluster."""

    def __init__(self, env: simpy.Environment, cluster: Cluster, comm_model: CostModel,
                 ordering: str, rows: list, call_s: CallFn | None = None,
                 stretch: float = 1.0, cycle_s: float = 0.0,
                 variation: Variation | None = None, placement: str = "packed"):
        self.env = env
        self.call_s = call_s or (lambda message: 0.0)
        self.interference = OverlapStretch(stretch)
        self.cycle_s = cycle_s
        self.cluster = cluster
        self.comm_model = comm_model
        self.rows = rows
        self.ranks = cluster.total_devices
        self.recorded: list[int] = list(range(self.ranks))
        self.moving = MovingClock(env)
        self.bytes_sent = 0.0
        self.host = cluster.transport == "host"
        self.stream = simpy.PriorityResource(env, 1) if ordering == "serial" else None
        self.map = LinkMap(cluster, variation, placement)
        # A regime model (NCCL) prices the uniform cluster's bytes; its achieved fraction of
        # line rate is then applied to the actual links (degraded, other node groups, leaves).
        links_vary = variation is not None and variation.links_differ
        self.nominal = LinkMap(cluster) if links_vary else self.map
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
        self._node = np.arange(self.ranks) // cluster.devices_per_node
        self._verts = [self._ring_vertices(self.map, order) for order, _ in self.rings]
        self._nominal_verts = [self._ring_vertices(self.nominal, order)
                               for order, _ in self.rings]
        # Serial collectives' bandwidth seconds (``alone``) run on this channel, so that overlap
        # interference stretches them as it stretches the links.
        self.serial = Channel(env, "serial", 1.0)
        self._channels: dict[int, Channel] = {}
        self._schedules: dict[int, tuple[tuple[StepGroup, ...], Any, Any]] = {}
        self._prices: dict[int, GroupPrice] = {}
        self._alone: dict[int, tuple[float, float, float]] = {}
        self._stage: dict[bool, GroupPrice] = {}
        self._pending: dict[tuple[int, int], list] = {}

    def computing(self, rank: int, busy: bool) -> None:
        """Rank ``rank`` started or stopped computing: stretch every link meanwhile."""
        self.interference.computing(rank, busy, [self.serial, *self._channels.values()])

    def record_ranks(self, ranks: list[int]) -> None:
        """Write trace rows for these ranks only (one per rank class)."""
        self.recorded = list(ranks)

    # -- topology ---------------------------------------------------------------------------
    def _ring_orders(self) -> list[tuple[tuple[int, ...], float]]:
        """(device order, share of the bytes) per ring; one identity ring where none embed."""
        node = self.map.tables[0].node
        devices = node.device_ids
        rings = find_rings(node.graph, devices) if not self.host else []
        if not rings:
            return [(tuple(devices), 1.0)]
        total = sum(r.bandwidth_Bps for r in rings)
        orders = [tuple(r.order) for r in rings]
        if self.cluster.nodes > 1 and len(node.nics) > 1:
            orders = spread_over_nics(orders, node.graph, node.nics)
        return [(order, r.bandwidth_Bps / total) for order, r in zip(orders, rings)]

    def _ring_vertices(self, links: LinkMap, order: tuple[int, ...],
                       staged: bool | None = None) -> np.ndarray:
        """Each rank's vertex index in its node's tables on one ring (its CPU when staged)."""
        local = np.arange(self.ranks) % self.cluster.devices_per_node
        verts = np.empty(self.ranks, dtype=np.int64)
        for t, table in enumerate(links.tables):
            lookup = np.array([table.index[d] for d in order])
            mask = links.kind[self._node] == t
            verts[mask] = lookup[local[mask]]
        staged = self.host if staged is None else staged
        return links.cpu_of(self._node, verts) if staged else verts

    def channel(self, index: int) -> Channel:
        """The processor-sharing channel of link index ``index`` (created on first use)."""
        if index not in self._channels:
            self._channels[index] = Channel(self.env, f"link{index}",
                                            self.map.rates[index] * self.interference.rate)
        return self._channels[index]

    # -- pricing ----------------------------------------------------------------------------
    def schedule_groups(self, nbytes: int) -> tuple[tuple[StepGroup, ...], Any, Any]:
        """(step groups, regime alpha per step, regime transfer seconds), cached per size."""
        if nbytes not in self._schedules:
            if hasattr(self.comm_model, "schedule_groups"):
                self._schedules[nbytes] = self.comm_model.schedule_groups(nbytes)
            else:   # any CostModel: its full schedule, runs of equal steps merged
                schedule = self.comm_model.schedule(nbytes)
                self._schedules[nbytes] = (tuple(groups_of(schedule)), schedule.alpha_s,
                                           schedule.transfer_s)
        return self._schedules[nbytes]

    def price(self, group: StepGroup) -> GroupPrice:
        """One step of ``group`` per message byte, over every ring (cached per group)."""
        key = id(group)   # groups live as long as the schedule caches that hold them
        if key not in self._prices:
            load = self._load(self.map, self._verts, group)
            seconds = load / self.map.rates
            neck = int(np.argmax(seconds))
            nominal = seconds[neck]
            if self.nominal is not self.map:
                nominal = np.max(self._load(self.nominal, self._nominal_verts, group)
                                 / self.nominal.rates)
            crosses = bool((self._node[group.src] != self._node[group.dst]).any())
            alpha = self.alpha["inter" if crosses else "intra"] if group.src.size else 0.0
            self._prices[key] = GroupPrice(group.repeat, alpha, float(seconds[neck]), neck,
                                           float(load[neck]), float(group.reduce_share),
                                           float(group.share.sum()), float(nominal))
        return self._prices[key]

    def _load(self, links: LinkMap, verts: list[np.ndarray], group: StepGroup) -> np.ndarray:
        """Bytes per channel of one step of ``group`` per message byte, all rings together."""
        load = np.zeros(links.size)
        for ring_verts, (_, share) in zip(verts, self.rings):
            load += share * links.loads(self._node[group.src], ring_verts[group.src],
                                        self._node[group.dst], ring_verts[group.dst],
                                        group.share)
        return load

    def alone(self, nbytes: int) -> tuple[float, float, float]:
        """(latency seconds, moving and reducing seconds, bytes sent) of the schedule with no
        other traffic (cached): each step lasts as long as its most loaded channel needs."""
        if nbytes not in self._alone:
            groups, alpha_s, transfer_s = self.schedule_groups(nbytes)
            prices = [self.price(g) for g in groups]
            fixed = sum(p.repeat * (p.alpha_s if alpha_s is None else alpha_s) for p in prices)
            moving = nbytes * sum(p.repeat * (p.line_s_per_B + p.reduce_share * self.gamma)
                                  for p in prices)
            if transfer_s is not None:   # the regime's bytes, on the actual links
                moving = self.stretch(nbytes) * nbytes * sum(p.repeat * p.line_s_per_B
                                                             for p in prices)
            sent = nbytes * sum(p.repeat * p.sent_per_B for p in prices)
            self._alone[nbytes] = (fixed, moving, sent)
        return self._alone[nbytes]

    def stretch(self, nbytes: int) -> float:
        """How much longer the schedule's bytes take than on the links at line rate: 1, or
        for a schedule priced by its model, its ``transfer_s`` over the line-rate time."""
        groups, _, transfer_s = self.schedule_groups(nbytes)
        if transfer_s is None:
            return 1.0
        line = nbytes * sum(self.price(g).repeat * self.price(g).nominal_s_per_B
                            for g in groups)
        return transfer_s / line if line > 0 else 1.0

    # -- collectives ------------------------------------------------------------------------
    def post(self, rank: int, message: Message, iteration: int, priority: int,
             gate: Any = None, weight: int = 1) -> simpy.Event:
        """Register ``rank``'s part (for ``weight`` ranks of one class); the collective starts
        once every rank has posted it.

        Progress is always asynchronous here (the API refuses a gated progress mode for the
        detailed fidelity), so ``gate`` is not consulted.
        """
        key = (iteration, message.index)
        entry = self._pending.setdefault(key, [0, self.env.event()])
        entry[0] += weight
        if entry[0] == self.ranks:
            del self._pending[key]
            self.env.process(self.allreduce(message, iteration, priority, entry[1]))
        return entry[1]

    def allreduce(self, message: Message, iteration: int, priority: int, done: simpy.Event):
        """Run the schedule's steps on the channels, then signal ``done``."""
        env = self.env
        request = yield from enter_stream(env, self.cycle_s, self.stream, priority)
        start = env.now
        yield env.timeout(self.overhead_s + self.call_s(message))
        fixed_s, moving_s, sent = self.alone(message.nbytes)
        self.bytes_sent += sent
        if self.stream is not None:
            # Serial: this collective has the links to itself; its latency moves no bytes.
            yield env.timeout(fixed_s)
        # compute shares memory bandwidth with the staging copies and the transfers
        self.moving.start()
        if self.host:
            yield from self.stage(message.nbytes, to_host=True)
        if self.stream is not None:
            yield self.serial.transfer(moving_s)
        else:
            yield from self.run_groups(message.nbytes)
        if self.host:
            yield from self.stage(message.nbytes, to_host=False)
        self.moving.stop()
        if request is not None:
            self.stream.release(request)
        for rank in self.recorded:
            self.rows.append((iteration, rank, "comm", "allreduce", f"msg{message.index}",
                              message.index, message.nbytes, start, env.now))
        done.succeed()

    def run_groups(self, nbytes: int):
        """Concurrent ordering: each step group's latency, then its bytes as one job on its
        bottleneck channel (shared with any collective whose steps meet there), then its
        reductions."""
        groups, alpha_s, transfer_s = self.schedule_groups(nbytes)
        stretch = self.stretch(nbytes)
        for group in groups:
            price = self.price(group)
            alpha = price.alpha_s if alpha_s is None else alpha_s
            if alpha:
                yield self.env.timeout(price.repeat * alpha)
            work = price.repeat * nbytes * price.work_per_B * stretch
            if work > 0:
                yield self.channel(price.bottleneck).transfer(work)
            if price.reduce_share and self.gamma and transfer_s is None:
                yield self.env.timeout(price.repeat * nbytes * price.reduce_share * self.gamma)

    def stage(self, nbytes: int, to_host: bool):
        """Host staging: every rank copies the message between its device and its CPU."""
        if self.stage_alpha:   # one copy's latency (the closed form's 2 host alphas)
            yield self.env.timeout(self.stage_alpha)
        if to_host not in self._stage:
            devices = self._ring_vertices(self.map, self.rings[0][0], staged=False)
            cpus = self.map.cpu_of(self._node, devices)
            src, dst = (devices, cpus) if to_host else (cpus, devices)
            moving = src != dst
            load = self.map.loads(self._node[moving], src[moving], self._node[moving],
                                  dst[moving], np.ones(int(moving.sum())))
            seconds = load / self.map.rates
            neck = int(np.argmax(seconds))
            self._stage[to_host] = GroupPrice(1, 0.0, float(seconds[neck]), neck,
                                              float(load[neck]), 0.0, 0.0, 0.0)
        price = self._stage[to_host]
        if price.work_per_B > 0:
            yield self.channel(price.bottleneck).transfer(nbytes * price.work_per_B)


#: Cost coefficients of :func:`detailed_estimate`, from ``benchmarks/bench_scale.py`` on a
#: 2-core machine: seconds per engine event and per channel-load entry, bytes per entry.
EVENT_S = 8e-6
ENTRY_S = 6e-8
ENTRY_BYTES = 200


def detailed_estimate(ranks: int, classes: int, setup: Any) -> tuple[float, float]:
    """(seconds, peak bytes) a detailed run is expected to take: the rank classes' events
    (a compute segment per layer and pass, a few per message) plus the link loads of each
    distinct collective size (transfers x path hops x rings, a few schedules' worth)."""
    layers = len(setup.layer_names)
    messages = len(setup.messages)
    events = classes * setup.iterations * (2 * layers + 4 * messages)
    sizes = len({m.nbytes for m in setup.messages})
    entries = ranks * 12 * 4 * min(sizes, 3) + 4 * ranks
    seconds = events * EVENT_S + entries * ENTRY_S
    rows = classes * setup.iterations * (2 * layers + 2 * messages)
    return seconds, rows * 150 + entries * ENTRY_BYTES / 4 + ranks * 2_000
