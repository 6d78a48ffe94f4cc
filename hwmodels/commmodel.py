"""The communication model of a cluster: link parameters per class and collective costs.

:class:`CommModel` turns a :class:`~hwmodels.specs.Cluster` into alpha-beta-gamma parameters
for three link classes and into affine costs of collectives over all ``cluster.total_devices``
ranks, numbered node-major (``rank = node * devices_per_node + local device``).

Link classes (what :meth:`CommModel.link_params` derives; ``cluster.fitted`` wins):

``intra``
    ranks inside one node, device to device: alpha = the slowest hop latency of the node's
    rings; beta = ``1 / ring_bandwidth`` of the node graph (:mod:`hwmodels.collectives.rings`);
    gamma = ``3 / device memory bandwidth`` (a reduction reads two arrays and writes one).
``inter``
    a node's network port as a whole: alpha = fabric latency; beta = ``oversubscription /
    (fabric bandwidth * NICs usable)``, with ``min(NICs, ranks per node)`` NICs usable (at
    least one). Oversubscription always applies: the spec does not say how many nodes share
    a leaf switch, so traffic is assumed to cross the oversubscribed uplinks.
``host``
    host staging, per rank: alpha and beta of one copy between a device and its socket over
    PCIe (all devices of a node copying at once share the switches' uplinks); gamma =
    ``3 * ranks per node / host memory bandwidth`` (every rank reduces in host memory at once).

With ``transport == "host"`` on GPUs an allreduce costs a device-to-host and a host-to-device
copy of the whole buffer plus the collective among host buffers: inside a node through shared memory
(beta = ``2 * ranks per node / host memory bandwidth``: a copy reads and writes, all ranks at
once), across nodes over the fabric, reductions at host memory bandwidth. CPU ranks'
buffers already live in host memory, so for them the transport changes nothing.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import replace
from itertools import pairwise
from typing import Callable, Hashable

import networkx as nx

from hwmodels.collectives.affine import ZERO_COST, Affine, affine_hierarchical, affine_terms
from hwmodels.collectives.cost import (
    ALLREDUCE_ALGORITHMS, ZERO, CostTerms, binomial_broadcast_terms, hierarchical_terms,
    ring_allgather_terms, ring_reduce_scatter_terms,
)
from hwmodels.collectives.rings import find_rings
from hwmodels.collectives.schedules import Schedule, allreduce_schedule
from hwmodels.collectives.patterns import StepGroup, allreduce_groups, total_steps
from hwmodels.collectives.tuner import choose_allreduce
from hwmodels.collectives.eras import LIBRARIES, MIN_ERA, MPI, by_device
from hwmodels.collectives.nccl import NCCL_ALGORITHMS, Choice, NcclCosts, NcclScales
from vocab.errors import SpecError, UnknownNameError
from hwmodels.collectives.measured import CollectiveFit
from hwmodels.specs import AlphaBeta, Cluster


def default_library(cluster: Cluster) -> str:
    """The library era a cluster gets without one named: ``nccl2.8`` for GPUs moving data
    device to device (``nccl2.20`` for GPUs NCCL 2.8 cannot drive, :data:`MIN_ERA`), ``mpi``
    for CPU ranks and host-staged GPUs (today's alpha-beta model)."""
    direct = cluster.device.kind == "gpu" and cluster.transport != "host"
    return by_device(MIN_ERA, cluster.device.name, "nccl2.8") if direct else MPI


def _nccl_scales(cluster: Cluster) -> NcclScales | None:
    calibration = cluster.calibration
    fitted = getattr(calibration, "collectives", None) if calibration is not None else None
    return fitted.scales if fitted is not None else None


_CHOICE_CACHE_SIZE = 4096


def _nccl_curves(cluster: Cluster) -> CollectiveFit | None:
    calibration = cluster.calibration
    fitted = getattr(calibration, "collectives", None) if calibration is not None else None
    return fitted if fitted is not None and fitted.curves else None


class CommModel:
    """Costs of collectives over every device of ``cluster``.

    ``algorithm`` is an allreduce name from ``ALLREDUCE_ALGORITHMS`` or ``"auto"``: the
    choice of :func:`~hwmodels.collectives.tuner.choose_allreduce` in NCCL style on GPUs with
    device transport (several nodes of several devices: the cheaper of hierarchical and a flat
    ring on this cluster's links, as NCCL picks by its cost model), MPICH style otherwise
    (hierarchical when there are several nodes with several devices each). Every cost includes ``cluster.collective_overhead_s``; with one
    rank there is nothing to communicate and every cost is zero.

    ``library`` is a collective-library era (:data:`~hwmodels.collectives.eras.LIBRARIES`):
    ``None`` takes :func:`default_library` (``nccl2.8`` for GPUs with device transport, else
    ``mpi``). Under an NCCL era, ``"auto"``, ``"ring"`` and ``"tree"`` are priced by
    :class:`~hwmodels.collectives.nccl.NcclCosts` (its latency terms hold the launch, so no
    ``collective_overhead_s`` is added), measured curves of a fitted cluster
    (``cluster.calibration.collectives``) first; the MPI algorithms stay alpha-beta, as does
    everything under ``mpi``, exactly the model before the eras.
    """

    def __init__(self, cluster: Cluster, algorithm: str = "auto",
                 library: str | None = None) -> None:
        if algorithm != "auto" and algorithm not in ALLREDUCE_ALGORITHMS:
            raise UnknownNameError("algorithm", algorithm, ["auto", *ALLREDUCE_ALGORITHMS])
        self.cluster = cluster
        self.algorithm = algorithm
        self.p = cluster.total_devices
        self.ranks_per_node = cluster.devices_per_node
        self.nodes = cluster.nodes
        # A CPU rank's buffers already live in host memory: only GPUs stage through the host.
        self.host_staged = cluster.transport == "host" and cluster.device.kind == "gpu"
        device_direct = cluster.device.kind == "gpu" and not self.host_staged
        self.era = default_library(cluster) if library is None else library
        if self.era not in LIBRARIES:
            raise UnknownNameError("library", self.era, list(LIBRARIES))
        if self.era != MPI and not device_direct:
            raise SpecError("library", self.era, "mpi for CPU ranks or host-staged GPUs "
                            "(the NCCL eras move data GPU to GPU)")
        # The alpha-beta tuner's style (the "mpi" library, and algorithms NCCL does not run).
        self.library = "nccl" if device_direct else "mpich"
        self.nccl = (NcclCosts(cluster, self.era, _nccl_scales(cluster))
                     if self.era != MPI else None)
        self._params = {**_derived_params(cluster), **cluster.fitted}
        self._intra, self._inter = self._collective_links()
        self._staging = (Affine(2 * self._params["host"].alpha_s,
                                2 * self._params["host"].beta_s_per_B)
                         if self.host_staged else ZERO_COST)
        self._allreduce: dict[str, Affine] = {}
        self._at_nodes: dict[int, NcclCosts] = {}
        self._by_size: dict[float, Affine] = {}
        self._choice: dict[float, str] = {}

    # ---- parameters ------------------------------------------------------------------------

    def link_params(self) -> dict[str, AlphaBeta]:
        """``{"intra", "inter", "host"}`` alpha-beta-gamma (fitted values override)."""
        return dict(self._params)

    def collective_links(self) -> dict[str, AlphaBeta]:
        """``{"intra", "inter"}``: the links the collectives are priced on.

        The device links with device transport; with host staging the host buffers (shared
        memory inside a node, host reductions); under an NCCL era the achieved ring bandwidth
        and Simple step latency of each class. The detailed simulator charges its steps these
        alphas, so that the schedule and the closed form describe the same algorithm.
        """
        if self._nccl_runs(self.algorithm):
            return self.nccl.links(self._intra.gamma_s_per_B)
        return {"intra": self._intra, "inter": self._inter}

    def _collective_links(self) -> tuple[AlphaBeta, AlphaBeta]:
        """(intra, inter) links the collectives run on: device links, or host buffers."""
        intra, inter = self._params["intra"], self._params["inter"]
        if not self.host_staged:
            return intra, inter
        host = self._params["host"]
        shm_beta = 2 * self.ranks_per_node / self.cluster.node.host_mem_bandwidth_Bps
        return (AlphaBeta(host.alpha_s, shm_beta, host.gamma_s_per_B),
                AlphaBeta(inter.alpha_s, inter.beta_s_per_B, host.gamma_s_per_B))

    def _flat_link(self, neighbour_only: bool) -> AlphaBeta:
        """One AlphaBeta for an algorithm over all ranks: the bottleneck of the link classes.

        A node-major ring has one flow per node boundary, so it sees the whole port
        (``neighbour_only``); in the inter-node steps of the other algorithms every rank of a
        node crosses the network at once and gets ``1 / ranks_per_node`` of it.
        """
        intra, inter = self._intra, self._inter
        if self.nodes == 1:
            return intra
        if self.ranks_per_node == 1:
            return inter
        share = 1 if neighbour_only else self.ranks_per_node
        return AlphaBeta(max(intra.alpha_s, inter.alpha_s),
                         max(intra.beta_s_per_B, share * inter.beta_s_per_B),
                         max(intra.gamma_s_per_B, inter.gamma_s_per_B))

    # ---- allreduce -------------------------------------------------------------------------

    def algorithm_for(self, nbytes: float) -> str:
        """The allreduce algorithm used for ``nbytes`` per rank."""
        if self._nccl_runs(self.algorithm):
            # The schedule nearest NCCL's: its ring, or for its tree (chains inside nodes,
            # a tree across them) the hierarchical one. NVLS (one node, each GPU to the
            # NVSwitch and back) loads every GPU's links evenly, as the ring does; its time
            # comes from the regime's pricing either way.
            chosen = self._choice.get(nbytes)
            if chosen is None:
                chosen = self._nccl_choice(nbytes).algorithm
                if len(self._choice) < _CHOICE_CACHE_SIZE:
                    self._choice[nbytes] = chosen
            return "ring" if chosen in ("ring", "nvls") else "hierarchical"
        if self.algorithm != "auto":
            return self.algorithm
        choice = self._choice.get(nbytes)
        if choice is None:
            # NCCL style prices its multi-node candidates on this cluster's links.
            choice = choose_allreduce(nbytes, self.p, self.ranks_per_node, self.nodes,
                                      library=self.library,
                                      cost=lambda name: self.allreduce_by(name).at(nbytes))
            if len(self._choice) < _CHOICE_CACHE_SIZE:
                self._choice[nbytes] = choice
        return choice

    def allreduce(self, nbytes: float) -> Affine:
        """Affine cost of an allreduce of ``nbytes`` per rank (evaluate with ``.at(nbytes)``).

        Under an NCCL era the Affine belongs to ``nbytes``'s regime: fixed = the chosen
        (algorithm, protocol)'s latency there, per byte = 1 / its bandwidth there (measured
        curves of a fitted cluster take precedence)."""
        if self._nccl_runs(self.algorithm):
            cost = self._by_size.get(nbytes)
            if cost is None:
                cost = self._with_overheads(self._nccl_allreduce(_whole_bytes(nbytes)))
                if len(self._by_size) < _CHOICE_CACHE_SIZE:
                    self._by_size[nbytes] = cost
            return cost
        return self.allreduce_by(self.algorithm_for(nbytes))

    def _nccl_runs(self, algorithm: str) -> bool:
        return self.nccl is not None and (algorithm == "auto" or algorithm in NCCL_ALGORITHMS)

    def _model_at(self, nodes: int, nbytes: float) -> float:
        """The fitted closed form at another node count (for measured curves' ratios)."""
        model = self._at_nodes.get(nodes)
        if model is None:
            model = self._at_nodes[nodes] = (
                self.nccl if nodes == self.nodes else
                NcclCosts(self.cluster.with_nodes(nodes), self.era, _nccl_scales(self.cluster)))
        return model.choose(nbytes).cost.at(nbytes)

    def _nccl_choice(self, nbytes: float) -> Choice:
        return self.nccl.choose(nbytes, algorithm=None if self.algorithm == "auto"
                                else self.algorithm)

    def _nccl_allreduce(self, nbytes: float) -> Affine:
        choice = self._nccl_choice(nbytes)
        curves = _nccl_curves(self.cluster)
        if curves is not None and self.algorithm == "auto":
            measured = curves.time_s(self.nodes, self.ranks_per_node, nbytes, self._model_at)
            if measured is not None:
                fixed = min(choice.cost.fixed_s, measured)
                return Affine(fixed, (measured - fixed) / nbytes if nbytes else 0.0)
        return choice.cost

    def allreduce_by(self, algorithm: str) -> Affine:
        """Affine cost of an allreduce by ``algorithm`` on this cluster (cached)."""
        cost = self._allreduce.get(algorithm)
        if cost is None:
            cost = self._allreduce[algorithm] = self._with_overheads(self._raw_allreduce(algorithm))
        return cost

    def _raw_allreduce(self, algorithm: str) -> Affine:
        entry = ALLREDUCE_ALGORITHMS[algorithm]
        if self.p == 1:
            return ZERO_COST
        if entry.terms is None:
            return affine_hierarchical(self.ranks_per_node, self.nodes, self._intra, self._inter)
        return affine_terms(entry.terms(self.p), self._flat_link(algorithm == "ring"))

    @property
    def overhead_s(self) -> float:
        """The per-call constant in every cost: the cluster's ``collective_overhead_s``, or 0
        under an NCCL era, whose measured latency terms already hold the launch."""
        return 0.0 if self._nccl_runs(self.algorithm) else self.cluster.collective_overhead_s

    def _with_overheads(self, cost: Affine) -> Affine:
        if self.p == 1:
            return ZERO_COST
        if self._nccl_runs(self.algorithm):   # NCCL's latency terms hold the launch cost
            return cost
        return (cost + self._staging).plus_fixed(self.cluster.collective_overhead_s)

    def steps(self, nbytes: float) -> int:
        """Sequential rounds of the allreduce of ``nbytes`` (at least 1).

        The closed form's alpha multiplier (the schedule's step count), plus the two staging
        copies of host-staged transport: what an MPI without a progress thread starts one at a
        time, each from inside a call into the library (``simulator.progress``).
        """
        if self.p == 1:
            return 1
        algorithm = self.algorithm_for(nbytes)     # under NCCL: the schedule it runs
        entry = ALLREDUCE_ALGORITHMS[algorithm]
        if entry.terms is None:
            terms = sum(hierarchical_terms(self.ranks_per_node, self.nodes), ZERO)
        else:
            terms = entry.terms(self.p)
        return max(1, round(terms.alpha)) + (2 if self.host_staged else 0)

    def schedule(self, nbytes: float) -> Schedule:
        """The allreduce of ``nbytes`` per rank as steps, for the detailed simulator (under
        an NCCL era priced as :meth:`allreduce` prices that size)."""
        schedule = allreduce_schedule(self.algorithm_for(nbytes), self.p, _whole_bytes(nbytes),
                                      ranks_per_node=self.ranks_per_node)
        priced = self.regime_pricing(nbytes, len(schedule.steps))
        if priced is None:
            return schedule
        return replace(schedule, alpha_s=priced[0], transfer_s=priced[1])

    def schedule_groups(self, nbytes: float) -> tuple[tuple[StepGroup, ...], float | None,
                                                      float | None]:
        """The schedule of :meth:`schedule` in compact form (runs of identical steps, bytes
        as fractions of the message; :mod:`hwmodels.collectives.patterns`), with the regime's
        per-step alpha and transfer seconds (None, None without a regime model)."""
        groups = allreduce_groups(self.algorithm_for(nbytes), self.p, self.ranks_per_node)
        priced = self.regime_pricing(nbytes, total_steps(groups))
        return (groups, *(priced or (None, None)))

    def regime_pricing(self, nbytes: float, steps: int) -> tuple[float, float] | None:
        """(alpha per step, transfer seconds) where an NCCL era prices the collective's
        steps itself; None where the link classes price them."""
        if self.nccl is None or not self._nccl_runs(self.algorithm) or not steps:
            return None
        cost = self.allreduce(nbytes)
        return cost.fixed_s / steps, cost.per_byte_s * _whole_bytes(nbytes)

    # ---- other collectives -----------------------------------------------------------------

    def reduce_scatter(self, nbytes: float) -> Affine:
        """Ring reduce-scatter of an ``nbytes`` input over all ranks."""
        if self.nccl is not None:
            return self.nccl.choose(_whole_bytes(nbytes), "reduce_scatter").cost
        return self._flat(ring_reduce_scatter_terms, neighbour_only=True)

    def allgather(self, nbytes: float) -> Affine:
        """Ring allgather to an ``nbytes`` output over all ranks."""
        if self.nccl is not None:
            return self.nccl.choose(_whole_bytes(nbytes), "allgather").cost
        return self._flat(ring_allgather_terms, neighbour_only=True)

    def broadcast(self, nbytes: float) -> Affine:
        """Broadcast of ``nbytes`` from one rank to all (NCCL: a pipelined ring; MPI:
        binomial)."""
        if self.nccl is not None:
            return self.nccl.choose(_whole_bytes(nbytes), "broadcast").cost
        return self._flat(binomial_broadcast_terms, neighbour_only=False)

    def _flat(self, terms: Callable[[int], CostTerms], neighbour_only: bool) -> Affine:
        if self.p == 1:
            return ZERO_COST
        return self._with_overheads(affine_terms(terms(self.p), self._flat_link(neighbour_only)))


def _whole_bytes(nbytes: float) -> int:
    if not (isinstance(nbytes, numbers.Real) and math.isfinite(nbytes) and nbytes >= 0):
        raise SpecError("nbytes", nbytes, "a non-negative number of bytes")
    return math.ceil(nbytes)


# ---- link parameters from the hardware figures ----------------------------------------------

def _derived_params(cluster: Cluster) -> dict[str, AlphaBeta]:
    node = cluster.node
    gamma = 3.0 / cluster.device.mem_bandwidth_Bps
    if node.devices_per_node > 1:
        rings = find_rings(node.graph, node.device_ids)
        ring_Bps = sum(r.bandwidth_Bps for r in rings)
        intra = AlphaBeta(max(r.latency_s for r in rings), 1.0 / ring_Bps, gamma)
    else:
        intra = AlphaBeta(0.0, 0.0, gamma)
    nics = max(1, min(len(node.nics), node.devices_per_node))
    fabric = cluster.fabric
    inter = AlphaBeta(fabric.latency_s,
                      cluster.oversubscription / (fabric.bandwidth_Bps * nics), gamma)
    return {"intra": intra, "inter": inter, "host": _host_params(cluster)}


def _host_params(cluster: Cluster) -> AlphaBeta:
    """Per-rank staging copy over PCIe while every device of the node copies at once."""
    node = cluster.node
    gamma = 3.0 * node.devices_per_node / node.host_mem_bandwidth_Bps
    if cluster.device.kind == "cpu":
        return AlphaBeta(0.0, 0.0, gamma)           # the data already lives in host memory
    sockets = [n for n, kind in node.graph.nodes(data="kind") if kind == "cpu"]
    if not sockets:
        if cluster.transport == "host":
            raise SpecError("node.graph", node.name, "a vertex of kind cpu for host staging")
        return AlphaBeta(0.0, 0.0, gamma)           # unused: no host path described
    paths = [_path_to_host(node.graph, d, sockets) for d in node.device_ids]
    users = Counter((u, v) for path in paths for u, v in pairwise(path))
    share = min(node.graph.edges[u, v]["bandwidth_Bps"] / n for (u, v), n in users.items())
    latency = max(sum(node.graph.edges[u, v].get("latency_s", 0.0) for u, v in pairwise(path))
                  for path in paths)
    return AlphaBeta(latency, 1.0 / share, gamma)


def _path_to_host(graph: nx.Graph, device: int, sockets: list[Hashable]) -> list[Hashable]:
    """Fewest-hop path from ``device`` to the nearest socket, through no other device."""
    allowed = graph.subgraph(n for n in graph
                             if graph.nodes[n].get("kind") != "device" or n == device)
    lengths = nx.single_source_shortest_path_length(allowed, device)
    near = min((s for s in sockets if s in lengths), key=lambda s: (lengths[s], str(s)),
               default=None)
    if near is None:
        raise SpecError("node.graph", device, "a PCIe path from every device to a socket")
    return nx.shortest_path(allowed, device, near)
