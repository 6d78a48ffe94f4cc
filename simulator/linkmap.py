"""Every link direction of a cluster as an index, and a step's bytes per link with numpy.

The detailed fidelity prices a collective step as one vectorised computation: its transfers
(rank arrays) are mapped to the channels they cross, and ``numpy.bincount`` adds up the bytes
each channel carries. A step lasts as long as its most loaded channel needs (processor sharing
serves every transfer by then), so a ring step of ``p`` transfers is one load vector, not ``p``
events.

Channels, in index order: each node's directed node-graph edges (the node's own group graph,
so node groups may differ), one shared-memory channel per node (ranks meeting on one host at
half its memory bandwidth: copy in, copy out), each NIC's uplink and downlink at the fabric's
bandwidth, and the fabric above them: one core channel of ``nodes * nics * bandwidth /
oversubscription`` that every inter-node transfer crosses, or, with leaf switches, each leaf's
up- and downlink at ``radix * bandwidth / oversubscription`` crossed by transfers between
leaves. Routing is structural and equals the shortest path (edge cost 1 / bandwidth): inside a
node the node graph's shortest path; across nodes device -> nearest NIC -> fabric -> the other
node's NIC nearest its device -> device. A degraded link or NIC keeps its routes (NCCL binds
its rings to NICs) and serves at its fraction of the bandwidth.
"""

from __future__ import annotations

from typing import Hashable

import networkx as nx
import numpy as np

from hwmodels.hetero import Variation, leaf_of_ports
from hwmodels.specs import Cluster, NodeSpec
from vocab.errors import SpecError


class NodeTables:
    """One node kind's vertices, directed edges and shortest paths as index tables."""

    def __init__(self, node: NodeSpec):
        graph = node.graph
        self.node = node
        self.vertices: list[Hashable] = list(graph.nodes)
        self.index = {v: i for i, v in enumerate(self.vertices)}
        self.edges: list[tuple[Hashable, Hashable]] = [
            e for a, b in graph.edges for e in ((a, b), (b, a))]
        self.edge_index = {e: i for i, e in enumerate(self.edges)}
        self.rates = np.array([graph.edges[a, b]["bandwidth_Bps"] for a, b in self.edges])
        paths = dict(nx.all_pairs_dijkstra_path(
            graph, weight=lambda u, v, d: 1.0 / d["bandwidth_Bps"]))
        n = len(self.vertices)
        hops = max((len(p) - 1 for row in paths.values() for p in row.values()), default=0)
        self.path = np.full((n, n, max(hops, 1)), -1, dtype=np.int64)
        for a, row in paths.items():
            for b, p in row.items():
                ids = [self.edge_index[e] for e in zip(p, p[1:])]
                self.path[self.index[a], self.index[b], :len(ids)] = ids
        self.nics = list(node.nics)
        nic_ix = [self.index[nic] for nic in self.nics]
        # every vertex's nearest NIC (fastest path; first NIC on ties)
        self.nearest_nic = np.zeros(n, dtype=np.int64)
        if nic_ix:
            lengths = dict(nx.all_pairs_dijkstra_path_length(
                graph, weight=lambda u, v, d: 1.0 / d["bandwidth_Bps"]))
            for v, i in self.index.items():
                self.nearest_nic[i] = min(range(len(self.nics)), key=lambda j: (
                    lengths[v].get(self.nics[j], float("inf")), self.nics[j]))
        self.nic_vertex = np.array(nic_ix or [0], dtype=np.int64)
        cpus = [v for v in self.vertices if graph.nodes[v].get("kind") == "cpu"]
        self.cpu_of = np.arange(n)
        for v, i in self.index.items():
            if cpus:
                lengths_v = nx.single_source_dijkstra_path_length(
                    graph, v, weight=lambda u, w, d: 1.0 / d["bandwidth_Bps"])
                self.cpu_of[i] = self.index[min(cpus, key=lambda c: (lengths_v.get(
                    c, float("inf")), str(c)))]


class LinkMap:
    """The cluster's channels as indices, with rates; maps rank transfers to channel loads."""

    def __init__(self, cluster: Cluster, variation: Variation | None = None,
                 placement: str = "packed"):
        variation = variation or Variation()
        variation.check(cluster.nodes)
        nodes = cluster.nodes
        kinds = [g.node for g in variation.groups] or [cluster.node]
        self.tables = [NodeTables(node) for node in kinds]
        self.kind = np.array(variation.node_of_group(nodes), dtype=np.int64)
        self.k = cluster.devices_per_node
        rates: list[np.ndarray] = []
        self.base = np.zeros(nodes, dtype=np.int64)
        offset = 0
        for n in range(nodes):
            t = self.tables[self.kind[n]]
            self.base[n] = offset
            rates.append(t.rates)
            offset += len(t.edges)
        self.shm = offset
        rates.append(np.array([self.tables[self.kind[n]].node.host_mem_bandwidth_Bps / 2
                               for n in range(nodes)]))
        offset += nodes
        nics = [len(self.tables[self.kind[n]].nics) for n in range(nodes)]
        if nodes > 1 and not all(nics):
            raise SpecError("node.nics", (), "at least one NIC for a multi-node cluster")
        self.nic_base = np.concatenate([[0], np.cumsum(nics)[:-1]]).astype(np.int64)
        ports = int(sum(nics))
        bw = cluster.fabric.bandwidth_Bps
        self.up, self.down = offset, offset + ports
        rates += [np.full(ports, bw), np.full(ports, bw)]
        offset += 2 * ports
        self.leaf = None
        self.core = None
        if nodes > 1 and variation.leaf_radix is None:
            self.core = offset
            rates.append(np.array([ports * bw / cluster.oversubscription]))
            offset += 1
        elif nodes > 1:
            radix = variation.leaf_radix
            self.leaf = np.array([leaf for row in leaf_of_ports(nics, radix, placement)
                                  for leaf in row], dtype=np.int64)
            leaves = int(self.leaf.max()) + 1
            self.leaf_up, self.leaf_down = offset, offset + leaves
            rates += [np.full(2 * leaves, radix * bw / cluster.oversubscription)]
            offset += 2 * leaves
        self.rates = np.concatenate(rates).astype(float)
        self.size = offset
        self._degrade(variation)

    def _degrade(self, variation: Variation) -> None:
        """Scale the degraded links' and NICs' channels to their fraction of bandwidth."""
        for d in variation.degraded:
            t = self.tables[self.kind[d.node]]
            if d.nic is not None:
                if d.nic not in t.nics:
                    raise SpecError("degraded.nic", d.nic, f"one of node {d.node}'s NICs "
                                    f"{', '.join(t.nics)}")
                port = self.nic_base[d.node] + t.nics.index(d.nic)
                self.rates[[self.up + port, self.down + port]] *= d.factor
                continue
            a, b = d.link
            if (a, b) not in t.edge_index:
                raise SpecError("degraded.link", f"{a}-{b}", f"a link of node {d.node}'s graph")
            ids = [self.base[d.node] + t.edge_index[e] for e in ((a, b), (b, a))]
            self.rates[ids] *= d.factor

    def vertex_index(self, node: int, vertex: Hashable) -> int:
        """A vertex's index in its node's tables."""
        return self.tables[self.kind[node]].index[vertex]

    def cpu_of(self, nodes: np.ndarray, verts: np.ndarray) -> np.ndarray:
        """Each vertex's nearest CPU (itself where the node has no CPU)."""
        out = verts.copy()
        for t, table in enumerate(self.tables):
            mask = self.kind[nodes] == t
            out[mask] = table.cpu_of[verts[mask]]
        return out

    def loads(self, src_node: np.ndarray, src_v: np.ndarray, dst_node: np.ndarray,
              dst_v: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
        """Bytes each channel carries when every transfer ``i`` moves ``nbytes[i]`` from
        vertex ``src_v[i]`` of node ``src_node[i]`` to ``dst_v[i]`` of ``dst_node[i]``."""
        ids: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        same = src_node == dst_node
        here = same & (src_v == dst_v)
        ids.append(self.shm + src_node[here])
        weights.append(nbytes[here])
        inside = same & ~here
        self._local(src_node[inside], src_v[inside], dst_v[inside], nbytes[inside],
                    ids, weights)
        across = ~same
        if across.any():
            self._across(src_node[across], src_v[across], dst_node[across], dst_v[across],
                         nbytes[across], ids, weights)
        return np.bincount(np.concatenate(ids), np.concatenate(weights), minlength=self.size)

    def _local(self, node, a, b, nbytes, ids, weights) -> None:
        """Shortest paths inside nodes, per node kind (padded hop tables, -1 = no hop)."""
        for t, table in enumerate(self.tables):
            mask = self.kind[node] == t if len(self.tables) > 1 else slice(None)
            hops = table.path[a[mask], b[mask]]
            real = hops >= 0
            ids.append((self.base[node[mask]][:, None] + hops)[real])
            weights.append(np.broadcast_to(nbytes[mask][:, None], hops.shape)[real])

    def _across(self, sn, sv, dn, dv, nbytes, ids, weights) -> None:
        """Device -> NIC -> fabric -> NIC -> device."""
        s_nic = np.empty_like(sv)
        d_nic = np.empty_like(dv)
        for t, table in enumerate(self.tables):
            ms, md = self.kind[sn] == t, self.kind[dn] == t
            s_nic[ms] = table.nearest_nic[sv[ms]]
            d_nic[md] = table.nearest_nic[dv[md]]
            self._local(sn[ms], sv[ms], table.nic_vertex[s_nic[ms]], nbytes[ms], ids, weights)
            self._local(dn[md], table.nic_vertex[d_nic[md]], dv[md], nbytes[md], ids, weights)
        s_port, d_port = self.nic_base[sn] + s_nic, self.nic_base[dn] + d_nic
        ids += [self.up + s_port, self.down + d_port]
        weights += [nbytes, nbytes]
        if self.core is not None:
            ids.append(np.full(len(sn), self.core))
            weights.append(nbytes)
        elif self.leaf is not None:
            ls, ld = self.leaf[s_port], self.leaf[d_port]
            cross = ls != ld
            ids += [self.leaf_up + ls[cross], self.leaf_down + ld[cross]]
            weights += [nbytes[cross], nbytes[cross]]
