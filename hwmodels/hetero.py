"""What makes a cluster's nodes differ: node groups, slow nodes, degraded links, leaf switches.

A plain :class:`~hwmodels.specs.Cluster` is ``nodes`` identical nodes on one fat tree; the
analytic fidelity simulates one representative rank of it. A :class:`Variation` says where the
nodes stop being identical, which only the detailed fidelity (every node's links, every rank
class's compute) can represent:

- ``groups``: node groups with their own node (device, topology, NIC count), in node order
  (60 DGX-1 V100 then 4 DGX-1 P100); every group has the same devices per node, so ranks stay
  node-major with one ranks-per-node;
- ``slow_nodes``: node index -> compute slow-down factor (>= 1) of all its ranks (a thermal
  throttle, a noisy neighbour: a whole node slow, not one rank);
- ``degraded``: links or NICs of one node running at a fraction of their bandwidth;
- ``leaf_radix``: the fabric as leaf switches of that many NIC ports, with the cluster's
  ``oversubscription`` between a leaf's ports and its uplinks (a non-blocking spine above);
  where a job's nodes sit on the leaves is the run's ``placement``
  (:data:`PLACEMENTS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from hwmodels.specs import NodeSpec
from vocab.errors import SpecError

#: Where a job's nodes sit on the leaf switches: ``packed`` fills leaves in node order (ring
#: neighbours share a leaf); ``spread`` deals nodes round-robin over the leaves (every ring hop
#: between nodes crosses the spine); ``rail-aligned`` puts NIC ``j`` of every node on the
#: leaves of rail ``j`` (same-rail traffic stays inside a leaf, as on rail-optimised fabrics).
PLACEMENTS = ("packed", "spread", "rail-aligned")


#: The largest slow-down of a slow node: a bound on typos, not a measurement. Sinha et al.
#: (SC22, arXiv 2208.11035) measured at most 22 % between GPUs of one SKU; assumption: a node
#: 100x slower is not straggling but down, and a factor past it a typo (1e300 was accepted
#: and made every step last ~1e297 s).
MAX_SLOWDOWN = 100.0

@dataclass(frozen=True, eq=False)
class NodeGroup:
    """``count`` consecutive nodes of one kind."""

    name: str
    count: int
    node: NodeSpec

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise SpecError(f"groups.{self.name}.nodes", self.count, "a whole number >= 1")


@dataclass(frozen=True)
class Degraded:
    """Node ``node``'s NIC ``nic`` (a vertex name) or link ``link`` (two vertex names) at
    ``factor`` of its bandwidth, both directions."""

    node: int
    factor: float
    nic: str | None = None
    link: tuple[object, object] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.factor, (int, float)) and 0 < self.factor <= 1):
            raise SpecError("degraded.factor", self.factor, "a fraction of bandwidth in (0, 1]")
        if (self.nic is None) == (self.link is None):
            raise SpecError("degraded", self.node, "one of nic or link for each entry")
        if isinstance(self.node, bool) or not isinstance(self.node, int) or self.node < 0:
            raise SpecError("degraded.node", self.node, "a node index >= 0")


@dataclass(frozen=True, eq=False)
class Variation:
    """Where a cluster's nodes differ (see the module docstring); empty means uniform."""

    groups: tuple[NodeGroup, ...] = ()
    slow_nodes: Mapping[int, float] = field(default_factory=dict)
    degraded: tuple[Degraded, ...] = ()
    leaf_radix: int | None = None
    #: Draw the run's compute noise per node (all ranks of a node share its factor: a whole
    #: node straggles) instead of per rank.
    noise_per_node: bool = False

    def __post_init__(self) -> None:
        for node, factor in self.slow_nodes.items():
            if isinstance(node, bool) or not isinstance(node, int) or node < 0:
                raise SpecError("slow_nodes", node, "node indices >= 0")
            if not (isinstance(factor, (int, float)) and 1 <= factor <= MAX_SLOWDOWN):
                raise SpecError(f"slow_nodes.{node}", factor, f"a slow-down factor from 1 to "
                                f"{MAX_SLOWDOWN:g} (a slower node is a dead one: leave it out)")
        object.__setattr__(self, "slow_nodes", MappingProxyType(dict(self.slow_nodes)))
        if self.leaf_radix is not None and (isinstance(self.leaf_radix, bool) or not isinstance(
                self.leaf_radix, int) or self.leaf_radix < 1):
            raise SpecError("fabric_leaves.radix", self.leaf_radix, "a whole number of ports >= 1")
        if len({g.node.devices_per_node for g in self.groups}) > 1:
            raise SpecError("groups", [g.node.devices_per_node for g in self.groups],
                            "the same devices per node in every group")

    @property
    def nodes(self) -> int | None:
        """Nodes the groups add up to (None without groups)."""
        return sum(g.count for g in self.groups) if self.groups else None

    @property
    def uniform_nodes(self) -> bool:
        """Whether every group has the same node as the first (by content, not identity)."""
        return len({node_key(g.node) for g in self.groups}) <= 1

    @property
    def links_differ(self) -> bool:
        """Whether some link differs from the plain cluster's (groups, degradation, leaves)."""
        return not (self.uniform_nodes and not self.degraded and self.leaf_radix is None)

    @property
    def is_uniform(self) -> bool:
        """Whether the variation changes nothing a plain cluster could not say."""
        return (self.uniform_nodes and not self.slow_nodes and not self.degraded
                and self.leaf_radix is None and not self.noise_per_node)

    def describe(self) -> str:
        """What makes the nodes differ, in words ('' when nothing does)."""
        parts = []
        if not self.uniform_nodes:
            parts.append("node groups of different nodes (" + ", ".join(
                f"{g.count} x {g.node.name}/{g.node.device.name}" for g in self.groups) + ")")
        if self.slow_nodes:
            parts.append(f"{len(self.slow_nodes)} slow node(s)")
        if self.degraded:
            parts.append(f"{len(self.degraded)} degraded link(s) or NIC(s)")
        if self.leaf_radix is not None:
            parts.append(f"leaf switches of radix {self.leaf_radix}")
        if self.noise_per_node:
            parts.append("per-node noise")
        return ", ".join(parts)

    def check(self, nodes: int) -> None:
        """Node indices must lie inside a cluster of ``nodes`` nodes."""
        if self.nodes is not None and self.nodes != nodes:
            raise SpecError("nodes", nodes, f"the groups' total of {self.nodes} nodes")
        for node in [*self.slow_nodes, *(d.node for d in self.degraded)]:
            if node >= nodes:
                raise SpecError("node", node, f"a node index in 0..{nodes - 1}")

    def node_of_group(self, nodes: int) -> list[int]:
        """The group index of every node (all 0 without groups)."""
        if not self.groups:
            return [0] * nodes
        return [i for i, g in enumerate(self.groups) for _ in range(g.count)]


def node_key(node: NodeSpec) -> tuple:
    """What makes two nodes the same for simulation: device, NICs, links and their figures."""
    edges = sorted((str(a), str(b), round(d["bandwidth_Bps"]), d.get("kind", ""))
                   for a, b, d in node.graph.edges(data=True))
    return (node.device.name, node.device.peak_flops, node.devices_per_node, node.nics,
            node.host_mem_bandwidth_Bps, tuple(edges))


def leaf_of_ports(nics_per_node: list[int], radix: int, placement: str) -> list[list[int]]:
    """The leaf switch of every node's every NIC port under ``placement``."""
    if placement not in PLACEMENTS:
        raise SpecError("placement", placement, f"one of {', '.join(PLACEMENTS)}")
    nodes = len(nics_per_node)
    if placement == "packed":
        leaves, port = [], 0
        for nics in nics_per_node:
            leaves.append([(port + j) // radix for j in range(nics)])
            port += nics
        return leaves
    if placement == "spread":
        per_leaf = max(1, radix // max(nics_per_node))
        count = math.ceil(nodes / per_leaf)
        return [[n % count] * nics for n, nics in enumerate(nics_per_node)]
    per_rail = math.ceil(nodes / radix)   # rail j's leaves: j * per_rail ...
    return [[j * per_rail + n // radix for j in range(nics)]
            for n, nics in enumerate(nics_per_node)]
