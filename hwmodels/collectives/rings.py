"""Rings embedded in a node's link graph, and their effective bandwidth, as NCCL builds them.

Convention (per direction, in bytes/s): a *ring* is directional: each device sends to the
next one. The effective ring bandwidth ``B`` is what enters the ring allreduce's beta term,
``beta = 1 / B``: the sum over rings of each ring's bottleneck share. A ring's share on a
directed edge is the edge's bandwidth (all its parallel links, one direction) divided by the
number of rings crossing it in that direction; its bottleneck share is the smallest along it.

*Direct rings* (NVLink meshes): Hamiltonian cycles over device-to-device edges. An edge with
``links = m`` carries at most ``m`` cycles, and each undirected cycle is run in both
directions (links are full duplex), so it counts as two rings. The DGX-1 P100 cube-mesh holds
2 edge-disjoint cycles -> 4 rings x 20 GB/s = 80 GB/s; the DGX-1 V100 mesh (6 links per GPU)
holds 3 -> 6 rings x 25 GB/s = 150 GB/s, the per-GPU NVLink bandwidth NCCL approaches.
The multiset is found by branch and bound over all Hamiltonian cycles (milliseconds for 8
devices); on graphs with more cycles than :data:`MAX_CYCLES` (complete graphs on 9+ devices),
by greedily peeling edge-disjoint cycles.

*Routed rings* (PCIe trees, NVSwitch), used only when the devices admit no direct cycle: one
device order, run in both directions, each hop routed along the fastest paths through
non-device nodes (split evenly over equal-cost paths, like ECMP); all rings go at the same
rate, limited by the most loaded directed edge. On a tree this reaches the cut bound (the
narrowest edge, e.g. a PCIe uplink or QPI); on an NVSwitch, the per-GPU bandwidth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Hashable, Iterable, Mapping, Sequence

import networkx as nx

from vocab.errors import SpecError

Edge = tuple[Hashable, Hashable]


@dataclass(frozen=True)
class Ring:
    """One directional ring: ``order[i]`` sends to ``order[i+1]`` (and the last to the first)."""

    order: tuple[int, ...]
    bandwidth_Bps: float     # this ring's bottleneck share, per direction
    latency_s: float         # the slowest hop's latency (summed along its path)
    routed: bool             # True when hops go through switches rather than direct links


def ring_bandwidth(graph: nx.Graph, devices: Sequence[int]) -> float:
    """Effective ring bandwidth (bytes/s) of the best set of rings over ``devices``.

    One device needs no ring: ``inf``.
    """
    devices = list(devices)
    if len(devices) <= 1:
        return float("inf")
    return sum(ring.bandwidth_Bps for ring in find_rings(graph, devices))


def find_rings(graph: nx.Graph, devices: Sequence[int]) -> list[Ring]:
    """The rings that :func:`ring_bandwidth` sums (empty for fewer than two devices)."""
    devices = list(devices)
    _check(graph, devices)
    if len(devices) <= 1:
        return []
    if len(devices) == 2 and graph.has_edge(*devices):
        a, b = devices
        data = graph.edges[a, b]
        return [Ring((a, b), float(data["bandwidth_Bps"]), _latency(graph, a, b), False)]
    return _direct_rings(graph, devices) or _routed_rings(graph, devices)


def _check(graph: nx.Graph, devices: list[int]) -> None:
    missing = [d for d in devices if d not in graph]
    if missing:
        raise SpecError("devices", missing, "device nodes of the graph")
    if len(devices) > 1 and not all(nx.has_path(graph, devices[0], d) for d in devices[1:]):
        raise SpecError("graph", sorted(map(str, graph.nodes)), "a graph connecting all devices")
    for u, v, data in graph.edges(data=True):
        if not data.get("bandwidth_Bps", 0) > 0:
            raise SpecError(f"graph.edge[{u}-{v}].bandwidth_Bps", data.get("bandwidth_Bps"),
                            "a positive bandwidth")


def _latency(graph: nx.Graph, u: Hashable, v: Hashable) -> float:
    return float(graph.edges[u, v].get("latency_s", 0.0))


def _key(u: Hashable, v: Hashable) -> Edge:
    """An undirected edge's key, independent of direction."""
    return (u, v) if str(u) <= str(v) else (v, u)


# ---- direct rings ------------------------------------------------------------------------

#: Bounds that keep the search fast on dense graphs (a complete graph on 8 devices has 2,520
#: Hamiltonian cycles, on 10 181,440): past them the best set found so far is used.
MAX_CYCLES = 3000
MAX_WORK = 100_000          # candidate cycles examined by the branch and bound
MAX_EXTENSIONS = 500_000    # path extensions while enumerating cycles


def hamiltonian_cycles(successors: Mapping[int, Sequence[int]], devices: list[int],
                       limit: int, *, one_direction: bool = False,
                       max_extensions: int | None = None) -> list[tuple[int, ...]]:
    """Up to ``limit`` Hamiltonian cycles from ``devices[0]``, by depth-first search along
    ``successors`` (a directed graph; give both directions for an undirected one).

    ``one_direction`` keeps one of each cycle and its reverse (undirected rings);
    ``max_extensions`` bounds the search on dense graphs (the cycles found so far are kept).
    """
    start, found, work = devices[0], [], [0]

    def extend(path: list[int], seen: set[int]) -> None:
        work[0] += 1
        if len(path) == len(devices):
            if start in successors[path[-1]] and (not one_direction or path[1] < path[-1]):
                found.append(tuple(path))
            return
        for nxt in successors[path[-1]]:
            if len(found) >= limit or (max_extensions is not None
                                       and work[0] >= max_extensions):
                return
            if nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                extend(path, seen)
                path.pop()
                seen.discard(nxt)

    extend([start], {start})
    return found


def _hamiltonian_cycles(capacity: dict[Edge, int], devices: list[int],
                        limit: int) -> list[tuple[int, ...]]:
    """Up to ``limit`` Hamiltonian cycles over edges with capacity left, each once."""
    adjacent = {d: sorted(n for n in devices if capacity.get(_key(d, n), 0) > 0)
                for d in devices}
    return hamiltonian_cycles(adjacent, devices, limit, one_direction=True,
                              max_extensions=MAX_EXTENSIONS)


class _CycleSearch:
    """Branch and bound over multisets of cycles, each edge used by at most ``links`` cycles.

    Bounds: adding a cycle never raises the others' shares, and each further cycle adds at most
    two rings of the widest edge's bandwidth; no set beats the narrowest device's outgoing
    bandwidth (every ring leaves every device once) nor ``max_cycles`` cycles of the widest
    edge, so reaching either ends the search.
    """

    def __init__(self, cycles: list[tuple[int, ...]], capacity: dict[Edge, int],
                 bandwidth: dict[Edge, float]) -> None:
        self.cycles, self.capacity, self.bandwidth = cycles, capacity, bandwidth
        self.edges = [[_key(u, v) for u, v in pairwise((*c, c[0]))] for c in cycles]
        devices = cycles[0]
        self.max_cycles = min(sum(n for e, n in capacity.items() if v in e)
                              for v in devices) // 2          # a cycle takes 2 links per device
        self.widest = max(bandwidth.values())
        self.ceiling = min(min(sum(b for e, b in bandwidth.items() if v in e) for v in devices),
                           2 * self.widest * self.max_cycles)
        self.best: tuple[float, tuple[int, ...]] = (0.0, ())
        self.used: Counter[Edge] = Counter()
        self.chosen: list[int] = []
        self.work = 0

    def total(self) -> float:
        """Twice (both directions) the sum of each chosen cycle's bottleneck share."""
        return 2 * sum(min(self.bandwidth[e] / self.used[e] for e in self.edges[i])
                       for i in self.chosen)

    def done(self) -> bool:
        return self.work >= MAX_WORK or self.best[0] >= self.ceiling * (1 - 1e-12)

    def visit(self, first: int = 0) -> None:
        total = self.total()
        if total > self.best[0] * (1 + 1e-12):
            self.best = (total, tuple(self.chosen))
        spare = self.max_cycles - len(self.chosen)
        if spare <= 0 or total + 2 * self.widest * spare <= self.best[0] * (1 + 1e-12):
            return
        for i in range(first, len(self.edges)):
            self.work += 1
            if self.done():
                return
            if all(self.used[e] < self.capacity[e] for e in self.edges[i]):
                self.used.update(self.edges[i])
                self.chosen.append(i)
                self.visit(i)
                self.chosen.pop()
                self.used.subtract(self.edges[i])

    def result(self) -> list[tuple[int, ...]]:
        """The best multiset found, as cycles."""
        self.visit()
        return [self.cycles[i] for i in self.best[1]]


def max_directed_rings(capacity: Mapping[tuple[int, int], int], devices: list[int]) -> int:
    """The most directed rings over every device, each directed link ``(a, b)`` carrying at
    most ``capacity[(a, b)]`` of them (whole links, no sharing): NCCL 2.0-2.4's NVLink ring
    search (``computeRingsRec`` in ``src/transport/p2p.cu``) finds this number by exhaustive
    depth-first search; here, a branch and bound over the directed Hamiltonian cycles.
    """
    successors = {d: sorted(b for (a, b), n in capacity.items() if a == d and n > 0)
                  for d in devices}
    cycles = [list(pairwise((*c, c[0])))
              for c in hamiltonian_cycles(successors, devices, MAX_CYCLES)]
    # every ring leaves every device once: no device's outgoing links allow more
    bound = min(sum(n for (a, _), n in capacity.items() if a == d) for d in devices)
    left, best, work = dict(capacity), [0], [0]

    def visit(first: int, rings: int) -> None:
        best[0] = max(best[0], rings)
        for i in range(first, len(cycles)):
            work[0] += 1
            if best[0] >= bound or work[0] >= MAX_WORK:
                return
            if all(left[arc] > 0 for arc in cycles[i]):
                for arc in cycles[i]:
                    left[arc] -= 1
                visit(i, rings + 1)
                for arc in cycles[i]:
                    left[arc] += 1

    visit(0, 0)
    return best[0]


def _peel(capacity: dict[Edge, int], devices: list[int]) -> list[tuple[int, ...]]:
    """Greedy: take any Hamiltonian cycle of the links left, until none is left."""
    left, chosen = dict(capacity), []
    while found := _hamiltonian_cycles(left, devices, 1):
        chosen.append(found[0])
        for u, v in pairwise((*found[0], found[0][0])):
            left[_key(u, v)] -= 1
    return chosen


def _direct_rings(graph: nx.Graph, devices: list[int]) -> list[Ring]:
    """Both directions of the best multiset of direct cycles, with their bottleneck shares.

    Exhaustive (within the work bound) when all Hamiltonian cycles were enumerated; on denser
    graphs, greedy peeling of edge-disjoint cycles.
    """
    if len(devices) < 3:
        return []
    data = [(_key(u, v), d) for u, v, d in graph.subgraph(devices).edges(data=True)]
    capacity = {e: int(d.get("links", 1)) for e, d in data}
    bandwidth = {e: float(d["bandwidth_Bps"]) for e, d in data}
    cycles = _hamiltonian_cycles(capacity, devices, MAX_CYCLES)
    if not cycles:
        return []
    chosen = (_CycleSearch(cycles, capacity, bandwidth).result() if len(cycles) < MAX_CYCLES
              else _peel(capacity, devices))
    counts = Counter(_key(u, v) for c in chosen for u, v in pairwise((*c, c[0])))
    rings = []
    for forward in chosen:
        edges = [_key(u, v) for u, v in pairwise((*forward, forward[0]))]
        share = min(bandwidth[e] / counts[e] for e in edges)
        latency = max(_latency(graph, *e) for e in edges)
        backward = (forward[0], *reversed(forward[1:]))
        rings += [Ring(forward, share, latency, False), Ring(backward, share, latency, False)]
    return rings


# ---- routed rings ------------------------------------------------------------------------

def _routed_rings(graph: nx.Graph, devices: list[int]) -> list[Ring]:
    """The better of two device orders (graph DFS order, numeric order), in both directions."""
    member = set(devices)
    dfs = [n for n in nx.dfs_preorder_nodes(graph, devices[0], sort_neighbors=_sorted_neighbors)
           if n in member]
    best: list[Ring] = []
    for order in (tuple(dfs), tuple(sorted(devices))):
        rings = _route_both_ways(graph, order, member)
        if sum(r.bandwidth_Bps for r in rings) > sum(r.bandwidth_Bps for r in best):
            best = rings
    return best


def _sorted_neighbors(nodes: Iterable[Hashable]) -> list[Hashable]:
    """Neighbour order for the DFS: devices first, then by name, so results are deterministic."""
    return sorted(nodes, key=lambda n: (not isinstance(n, int), str(n)))


def _route_both_ways(graph: nx.Graph, order: tuple[int, ...], devices: set[int]) -> list[Ring]:
    """Load of ``order`` run forwards and backwards, each hop split over its shortest paths."""
    load: Counter[Edge] = Counter()
    latency = 0.0
    backward = (order[0], *reversed(order[1:]))
    for ring in (order, backward):
        for src, dst in pairwise((*ring, ring[0])):
            paths = _routes(graph, src, dst, devices)
            for path in paths:
                for u, v in pairwise(path):
                    load[(u, v)] += 1 / len(paths)
            latency = max(latency, sum(_latency(graph, u, v) for u, v in pairwise(paths[0])))
    rate = min(graph.edges[u, v]["bandwidth_Bps"] / n for (u, v), n in load.items())
    return [Ring(order, rate, latency, True), Ring(backward, rate, latency, True)]


def _seconds_per_byte(u: Hashable, v: Hashable, data: dict) -> float:
    return 1.0 / data["bandwidth_Bps"]


def _routes(graph: nx.Graph, src: int, dst: int, devices: set[int]) -> list[list[Hashable]]:
    """Fastest paths (least seconds per byte) from ``src`` to ``dst`` through no other device.

    Weighting by ``1 / bandwidth`` keeps a hop on the NVSwitch rather than the PCIe switch two
    GPUs also share, as NCCL would; ties (identical parallel switches) all carry traffic.
    """
    allowed = graph.subgraph(n for n in graph if n not in devices or n in (src, dst))
    try:
        paths = nx.all_shortest_paths(allowed, src, dst, weight=_seconds_per_byte)
        return sorted(paths, key=lambda p: list(map(str, p)))
    except nx.NetworkXNoPath:
        raise SpecError("graph", f"{src}->{dst}",
                        "a path between devices through switches or direct links") from None
