"""The hardware vocabulary: devices, fabrics, nodes and clusters as frozen dataclasses.

Every quantity is an SI float with its unit in the name. Constructing a spec validates it and
raises :class:`~vocab.errors.SpecError` naming the field; it never reads or writes files
(loading lives in :mod:`hwmodels.cluster`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import networkx as nx

from vocab.errors import SpecError
from hwmodels.socketbw import DEFAULT_STREAMS, RELATION

if TYPE_CHECKING:
    from hwmodels.calibration import Calibration
    from hwmodels.hetero import Variation

DEVICE_KINDS = ("gpu", "cpu")
#: Training precisions: the compute rate a layer runs at and the bytes of each gradient element.
#: ``amp`` (torch.cuda.amp, TensorFlow AMP) computes in fp16 on tensor cores but keeps fp32
#: master weights, so its gradients are fp32; ``fp16``/``bf16`` training sends 2-byte gradients.
PRECISIONS = ("fp32", "amp", "fp16", "bf16")
GRAD_BYTES_PER_ELEMENT = {"fp32": 4, "amp": 4, "fp16": 2, "bf16": 2}
FABRIC_KINDS = ("infiniband", "ethernet", "none")
TRANSPORTS = ("device", "host")
#: When a posted non-blocking collective makes progress (see :class:`Cluster`).
PROGRESS_MODES = ("async", "wait", "test")
#: Link classes a fitted cluster may override (see :class:`AlphaBeta`).
LINK_CLASSES = ("intra", "inter", "host")


def require_positive(field_name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise SpecError unless ``value`` is a finite number > 0 (or >= 0)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise SpecError(field_name, value, "a non-negative number" if allow_zero
                        else "a positive number")


@dataclass(frozen=True)
class Device:
    """One compute device (a GPU, or a whole CPU socket pair acting as one rank's device)."""

    name: str
    kind: str                    # "gpu" | "cpu"
    peak_flops: float            # dense fp32 FLOP/s
    mem_bandwidth_Bps: float     # device memory bandwidth
    memory_bytes: float          # device memory capacity
    efficiency: float = 0.5      # fraction of peak a training layer reaches (roofline factor)
    source: str = ""
    fp16_flops: float = 0.0      # dense fp16 FLOP/s (tensor cores where present); 0: none
    bf16_flops: float = 0.0      # dense bf16 FLOP/s; 0: the device has no bf16 arithmetic
    half_efficiency: float = 0.0  # fraction of the half-precision peak reached; 0: efficiency
    #: Default overlap interference f: compute and an overlapped collective both run (1 + f)
    #: times slower while they overlap (a cluster file or a stack may set their own).
    overlap_interference: float = 0.0
    #: Whether two of these GPUs can reach each other's memory over PCIe (CUDA peer access).
    #: Without it (GeForce Turing without an NVLink bridge) NCCL moves every hop through host
    #: memory (its SHM transport): up to the socket and down again.
    pcie_p2p: bool = True
    #: Whether a NIC can read and write this GPU's memory directly (GPUDirect RDMA: Tesla and
    #: Quadro GPUs). Without it NCCL's network transport stages every byte in host memory.
    gpudirect_rdma: bool = True
    #: Spread of speed between GPUs of this one model (coefficient of variation across a
    #: cluster's population: manufacturing and power management). A synchronous step waits
    #: for the slowest of its GPUs, so it costs the expected maximum of that many draws.
    speed_spread: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in DEVICE_KINDS:
            raise SpecError("device.kind", self.kind, f"one of {', '.join(DEVICE_KINDS)}")
        for name in ("peak_flops", "mem_bandwidth_Bps", "memory_bytes"):
            require_positive(f"device.{name}", getattr(self, name))
        if not (isinstance(self.efficiency, (int, float)) and 0 < self.efficiency <= 1):
            raise SpecError("device.efficiency", self.efficiency, "a fraction in (0, 1]")
        for name in ("fp16_flops", "bf16_flops", "overlap_interference", "speed_spread"):
            require_positive(f"device.{name}", getattr(self, name), allow_zero=True)
        if not (isinstance(self.half_efficiency, (int, float)) and 0 <= self.half_efficiency <= 1):
            raise SpecError("device.half_efficiency", self.half_efficiency, "a fraction in [0, 1]")
        if not isinstance(self.pcie_p2p, bool):
            raise SpecError("device.pcie_p2p", self.pcie_p2p, "true or false")
        if not isinstance(self.gpudirect_rdma, bool):
            raise SpecError("device.gpudirect_rdma", self.gpudirect_rdma, "true or false")

    def rate_flops(self, precision: str = "fp32") -> float:
        """FLOP/s a training layer reaches at ``precision`` (peak times efficiency).

        fp32 runs at the fp32 peak; ``amp`` and ``fp16`` at the fp16 peak, ``bf16`` at the bf16
        peak, each times ``half_efficiency`` (tensor-core layers reach a smaller fraction of a
        much higher peak). A device without the half-precision figure runs at its fp32 rate for
        ``amp``/``fp16``; ``bf16`` on a device without bf16 is an error.
        """
        if precision not in PRECISIONS:
            raise SpecError("precision", precision, f"one of {', '.join(PRECISIONS)}")
        peak = {"fp32": 0.0, "amp": self.fp16_flops, "fp16": self.fp16_flops,
                "bf16": self.bf16_flops}[precision]
        if precision == "bf16" and not peak:
            raise SpecError("precision", precision, f"fp32, amp or fp16 ({self.name} has no "
                            "bf16 arithmetic)")
        if not peak:
            return self.peak_flops * self.efficiency
        return peak * (self.half_efficiency or self.efficiency)


@dataclass(frozen=True)
class Fabric:
    """The inter-node network: achieved bandwidth per NIC per direction and MPI latency."""

    name: str
    kind: str                    # "infiniband" | "ethernet" | "none" (single node)
    bandwidth_Bps: float         # achieved, per NIC, per direction
    latency_s: float             # small-message end-to-end latency
    line_rate_Bps: float = 0.0   # nominal signalling rate, for reference
    source: str = ""
    #: What NCCL's network transport achieves per NIC where it differs from ``bandwidth_Bps``
    #: (NCCL's socket transport over TCP); 0: the same as ``bandwidth_Bps``.
    collective_bandwidth_Bps: float = 0.0
    #: NCCL's network transport over this fabric: "verbs" (InfiniBand, RoCE: the NIC moves
    #: device or host memory itself) or "socket" (TCP, over Ethernet or IPoIB: host memory
    #: only); "" for the fabric kind's (InfiniBand verbs, Ethernet sockets).
    nccl_transport: str = ""
    #: TCP streams NCCL's socket transport runs per NIC per direction (its 2 channels per NIC x
    #: NCCL_SOCKET_NTHREADS x NCCL_NSOCKS_PERTHREAD); 0: NCCL's default, 2. Read only where
    #: there is no ``collective_bandwidth`` (:data:`hwmodels.socketbw.RELATION`).
    nccl_streams: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FABRIC_KINDS:
            raise SpecError("fabric.kind", self.kind, f"one of {', '.join(FABRIC_KINDS)}")
        require_positive("fabric.bandwidth_Bps", self.bandwidth_Bps)
        require_positive("fabric.latency_s", self.latency_s, allow_zero=True)
        require_positive("fabric.collective_bandwidth_Bps", self.collective_bandwidth_Bps,
                         allow_zero=True)
        if self.nccl_transport not in ("", "verbs", "socket"):
            raise SpecError("fabric.nccl_transport", self.nccl_transport, "verbs or socket")
        if isinstance(self.nccl_streams, bool) or not isinstance(self.nccl_streams, int) \
                or self.nccl_streams < 0:
            raise SpecError("fabric.nccl_streams", self.nccl_streams, "a whole number >= 1")
        if self.nccl_streams and self.collective_bandwidth_Bps:
            raise SpecError("fabric.nccl_streams", self.nccl_streams,
                            "none beside collective_bandwidth (one or the other)")

    @property
    def nccl_sockets(self) -> bool:
        """Whether NCCL runs its socket transport (TCP, host memory only) over this fabric."""
        return (self.nccl_transport or ("socket" if self.kind == "ethernet" else "verbs")) \
            == "socket"

    @property
    def nccl_Bps(self) -> float:
        """Per NIC per direction, what GPU collectives (NCCL) achieve over this fabric: the
        measured ``collective_bandwidth`` where there is one; over NCCL's socket transport
        without one, the relation fitted to published measurements at ``nccl_streams`` (NCCL's
        default 2 if unset; :data:`hwmodels.socketbw.RELATION`, never above the TCP goodput);
        else ``bandwidth``."""
        if self.collective_bandwidth_Bps:
            return self.collective_bandwidth_Bps
        if self.nccl_sockets:
            return RELATION.collective_Bps(self.bandwidth_Bps,
                                           self.nccl_streams or DEFAULT_STREAMS)
        return self.bandwidth_Bps


@dataclass(frozen=True)
class AlphaBeta:
    """Per-message latency (alpha), per-byte transfer time (beta) and per-byte reduce (gamma)."""

    alpha_s: float
    beta_s_per_B: float
    gamma_s_per_B: float = 0.0

    def __post_init__(self) -> None:
        require_positive("alpha_s", self.alpha_s, allow_zero=True)
        require_positive("beta_s_per_B", self.beta_s_per_B, allow_zero=True)
        require_positive("gamma_s_per_B", self.gamma_s_per_B, allow_zero=True)


@dataclass(frozen=True, eq=False)
class NodeSpec:
    """One node: its devices and the graph of links inside it.

    ``graph`` is an undirected networkx graph. Devices are the integer nodes ``0..k-1`` (node
    attribute ``kind="device"``); other nodes are named strings with ``kind`` one of
    ``"switch"`` (PCIe switch), ``"cpu"`` (a socket and its memory), ``"nic"`` or ``"nvswitch"``.
    Every edge has ``kind`` (``"nvlink"``, ``"pcie"``, ``"qpi"``, ``"nvswitch"``, ``"nic"``,
    ``"shm"``), ``links`` (parallel physical links, >= 1), ``bandwidth_Bps`` (all of the edge's
    links together, per direction) and ``latency_s``.
    """

    name: str
    device: Device
    devices_per_node: int
    graph: nx.Graph
    nics: tuple[str, ...] = ()
    host_mem_bandwidth_Bps: float = 50e9
    description: str = ""

    @property
    def device_ids(self) -> list[int]:
        """The device nodes of the graph, 0..devices_per_node-1."""
        return list(range(self.devices_per_node))


@dataclass(frozen=True, eq=False)
class Cluster:
    """``nodes`` identical nodes on a fat tree of ``fabric``, plus the software costs.

    ``collective_overhead_s`` is the software cost of launching one collective (what makes one
    message per small layer slow); ``comm_interference`` is the overlap interference f: compute
    and an overlapped collective both run (1 + f) times slower while they overlap (CPU ranks
    progressing MPI on their cores; GPUs sharing HBM and SMs with NCCL); None when the file
    sets none, and then the stack's or the device's default applies
    (:func:`hwmodels.stacks.overlap_interference`). ``fitted`` holds
    calibrated :class:`AlphaBeta` per link class (``intra``, ``inter``, ``host``) that override
    what the hardware figures imply; ``provenance`` says where a fitted file came from (a
    record: nothing reads it as configuration). A fitted file's ``calibration`` is the
    :class:`~hwmodels.calibration.Calibration` that adapts the fitted figures to a rank count
    and supplies the fitted compute.

    ``progress`` says when a posted non-blocking collective advances (MPI semantics):
    ``"async"`` on its own, whatever the rank does (NCCL's kernels; an MPI with an
    asynchronous progress thread); ``"wait"`` only while its rank is blocked in Wait/Waitall;
    ``"test"`` also by one schedule step per MPI_Test poll at each layer boundary. The
    simulator's :mod:`simulator.progress` documents the model.
    """

    name: str
    node: NodeSpec
    nodes: int = 1
    fabric: Fabric = Fabric("none", "none", 1e12, 0.0)
    oversubscription: float = 1.0
    max_nodes: int = 1024
    collective_overhead_s: float = 5e-6
    comm_interference: float | None = None
    transport: str = "device"
    progress: str = "async"
    fitted: Mapping[str, AlphaBeta] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    #: Where each figure of a cluster file came from, keyed by field (``"collective_overhead"``,
    #: ``"node.options.nvlink_bandwidth"``), so that a saved file keeps its sources.
    sources: Mapping[str, str] = field(default_factory=dict)
    calibration: "Calibration | None" = None
    #: Where the nodes differ (node groups, slow nodes, degraded links, leaf switches;
    #: :mod:`hwmodels.hetero`); None: ``nodes`` identical nodes.
    variation: "Variation | None" = None

    def __post_init__(self) -> None:
        if not isinstance(self.nodes, int) or isinstance(self.nodes, bool) or self.nodes < 1:
            raise SpecError("nodes", self.nodes, "a whole number >= 1")
        if self.variation is not None:
            self.variation.check(self.nodes)
        if self.nodes > self.max_nodes:
            raise SpecError("nodes", self.nodes,
                            f"at most {self.max_nodes} (the fabric's max_nodes for {self.name}; "
                            "a larger fabric: max_nodes in a cluster file, or gradsync whatif --nodes)")
        if not (isinstance(self.oversubscription, (int, float)) and self.oversubscription >= 1):
            raise SpecError("fabric.oversubscription", self.oversubscription, "a ratio >= 1")
        require_positive("collective_overhead_s", self.collective_overhead_s, allow_zero=True)
        if self.comm_interference is not None:
            require_positive("comm_interference", self.comm_interference, allow_zero=True)
        if self.transport not in TRANSPORTS:
            raise SpecError("transport", self.transport, f"one of {', '.join(TRANSPORTS)}")
        if self.progress not in PROGRESS_MODES:
            raise SpecError("progress", self.progress, f"one of {', '.join(PROGRESS_MODES)}")
        for key in self.fitted:
            if key not in LINK_CLASSES:
                raise SpecError("fitted", key, f"link classes {', '.join(LINK_CLASSES)}")
        object.__setattr__(self, "fitted", MappingProxyType(dict(self.fitted)))

    @property
    def devices_per_node(self) -> int:
        return self.node.devices_per_node

    @property
    def device(self) -> Device:
        return self.node.device

    @property
    def total_devices(self) -> int:
        """Ranks in the cluster: one per device."""
        return self.nodes * self.node.devices_per_node

    def with_nodes(self, nodes: int) -> "Cluster":
        """The same cluster at another node count (validated against ``max_nodes``)."""
        return replace(self, nodes=nodes)

    def with_devices_per_node(self, devices: int) -> "Cluster":
        """The same cluster with ``devices`` devices (ranks) per node: the node rebuilt by its
        topology (a CPU node's ``ranks``, a PCIe box's or NVSwitch node's device count), and a
        calibrated machine's figures as fitted at that rank count. SpecError if the topology
        has a fixed device count."""
        if devices == self.devices_per_node:
            return self
        from hwmodels.topology import with_devices  # the topology builders sit above specs
        cluster = replace(self, node=with_devices(self.node, devices))
        return self.calibration.adapt(cluster) if self.calibration is not None else cluster

    def with_fabric(self, fabric: Fabric) -> "Cluster":
        """The same nodes on another inter-node fabric (fitted inter-node figures dropped)."""
        fitted = {k: v for k, v in self.fitted.items() if k != "inter"}
        return replace(self, fabric=fabric, fitted=fitted)

    def with_variation(self, variation: "Variation | None") -> "Cluster":
        """The same cluster with its nodes differing as ``variation`` says (None: uniform)."""
        return replace(self, variation=variation)

    def with_transport(self, transport: str) -> "Cluster":
        """The same cluster with device-direct or host-staged collectives."""
        return replace(self, transport=transport)

    def with_progress(self, progress: str) -> "Cluster":
        """The same cluster with another progress mode for non-blocking collectives."""
        return replace(self, progress=progress)
