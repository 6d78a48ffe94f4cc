"""Node topologies: the graph of links inside one node, as a :class:`~hwmodels.specs.NodeSpec`.

Graphs follow the NodeSpec contract: devices are the integer nodes ``0..k-1`` (``kind="device"``);
PCIe switches (``"sw0"``...), sockets (``"cpu0"``...), NICs (``"nic0"``...) and NVSwitch fabrics
(``"nvswitch"``) are named nodes; every edge has ``kind``, ``links``, ``bandwidth_Bps`` (all its
links together, per direction) and ``latency_s``. Besides device-to-device links each GPU node
has its host path (GPU -> PCIe switch -> socket, sockets joined by QPI) and its NICs on the PCIe
switches, so that host-staged and inter-node traffic can be routed on the graph.

Bandwidths: NVLink at the vendor's per-link rate (about 90% of it is measured), PCIe at the
achieved rate (about 12 of 15.75 GB/s for 3.0 x16), QPI at its nominal rate. Every builder takes
these as keyword options so a cluster file can override them with its own sourced figures.
``build_node(name, **options)`` is the registry that cluster files use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import networkx as nx

from hwmodels.devices import get_device
from vocab.errors import SpecError
from vocab.registry import Registry
from hwmodels.specfile import check_keys, join, quantity, require_mapping, text, unwrap, whole
from hwmodels.specs import Device, NodeSpec
from vocab.units import parse_bandwidth, parse_time

NODE_KINDS = ("device", "switch", "cpu", "nic", "nvswitch")
EDGE_KINDS = ("nvlink", "pcie", "qpi", "nvswitch", "nic", "shm")

#: One-hop latency per edge kind. They matter little next to the software cost of a collective
#: (cluster ``collective_overhead``), but keep the detailed simulator's small messages honest.
LATENCY_S = {"nvlink": 1e-6, "pcie": 1e-6, "qpi": 0.2e-6, "nvswitch": 1e-6, "nic": 1e-6,
             "shm": 0.5e-6}

PCIE3_X16_BPS = 12e9       # PCIe 3.0 x16: 15.75 GB/s line rate, about 12 achieved
PCIE4_X16_BPS = 24e9       # PCIe 4.0 x16: 31.5 GB/s line rate
PCIE5_X16_BPS = 48e9       # PCIe 5.0 x16: 63 GB/s line rate

# NVLink pairs of the DGX-1 hybrid cube-mesh (NVIDIA DGX-1 white paper; nvidia-smi topo dumps).
DGX1_P100_PAIRS = {(a, b): 1 for quad in ((0, 1, 2, 3), (4, 5, 6, 7))
                   for i, a in enumerate(quad) for b in quad[i + 1:]}
DGX1_P100_PAIRS.update({(i, i + 4): 1 for i in range(4)})
DGX1_V100_PAIRS = {**{p: 2 for p in ((0, 3), (0, 4), (1, 2), (1, 5), (2, 3), (4, 7), (5, 6),
                                     (6, 7))},
                   **{p: 1 for p in ((0, 1), (0, 2), (1, 3), (2, 6), (3, 7), (4, 5), (4, 6),
                                     (5, 7))}}


def _device(device: Device | str) -> Device:
    return device if isinstance(device, Device) else get_device(device)


def _link(graph: nx.Graph, a: Any, b: Any, kind: str, links: int, link_Bps: float) -> None:
    """Add an edge of ``links`` parallel links of ``link_Bps`` each (per direction)."""
    graph.add_edge(a, b, kind=kind, links=links, bandwidth_Bps=links * link_Bps,
                   latency_s=LATENCY_S[kind])


def _devices(n: int) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(n), kind="device")
    return graph


def _sockets(graph: nx.Graph, sockets: int, qpi_links: int, qpi_Bps: float) -> None:
    """Sockets ``cpu0..`` in a chain (QPI/UPI/xGMI; two sockets are simply joined)."""
    graph.add_nodes_from((f"cpu{s}" for s in range(sockets)), kind="cpu")
    for s in range(sockets - 1):
        _link(graph, f"cpu{s}", f"cpu{s + 1}", "qpi", qpi_links, qpi_Bps)


def _pcie_tree(graph: nx.Graph, n: int, per_switch: int, nics: int, pcie_Bps: float,
               sockets: int = 2) -> tuple[str, ...]:
    """PCIe switches with ``per_switch`` GPUs each, split over the sockets; NICs spread evenly.

    Each switch has one x16 uplink to its socket, shared by its GPUs and NICs: the host path.
    """
    switches = -(-n // per_switch)
    for s in range(switches):
        graph.add_node(f"sw{s}", kind="switch")
        _link(graph, f"sw{s}", f"cpu{s * sockets // switches}", "pcie", 1, pcie_Bps)
    for d in range(n):
        _link(graph, d, f"sw{d // per_switch}", "pcie", 1, pcie_Bps)
    names = tuple(f"nic{i}" for i in range(nics))
    for i, nic in enumerate(names):  # DGX-1: nic i on switch i; 8 NICs on 4 switches: 2 each
        graph.add_node(nic, kind="nic")
        _link(graph, nic, f"sw{i * switches // nics}", "nic", 1, pcie_Bps)
    return names


def _dgx1(name: str, pairs: Mapping[tuple[int, int], int], device: Device | str,
          nvlink_Bps: float, pcie_Bps: float, qpi_Bps: float, nics: int,
          host_mem_Bps: float, description: str) -> NodeSpec:
    graph = _devices(8)
    for (a, b), links in pairs.items():
        _link(graph, a, b, "nvlink", links, nvlink_Bps)
    _sockets(graph, 2, 2, qpi_Bps)
    nic_names = _pcie_tree(graph, 8, 2, nics, pcie_Bps)
    return NodeSpec(name, _device(device), 8, graph, nic_names, host_mem_Bps, description)


def dgx1_p100(device: Device | str = "p100-sxm2", *, nvlink_bandwidth_Bps: float = 20e9,
              pcie_bandwidth_Bps: float = PCIE3_X16_BPS, qpi_bandwidth_Bps: float = 19.2e9,
              nics: int = 4, host_mem_bandwidth_Bps: float = 136.5e9) -> NodeSpec:
    """DGX-1 (P100): NVLink 1.0, 4 links per GPU; quads {0,1,2,3}, {4,5,6,7} plus i<->i+4.

    Host: 2x Xeon E5-2698 v4 (2 QPI links at 9.6 GT/s, 8 channels of DDR4-2133); 4 PCIe 3.0
    switches with 2 GPUs and one EDR NIC each.
    """
    return _dgx1("dgx1-p100", DGX1_P100_PAIRS, device, nvlink_bandwidth_Bps, pcie_bandwidth_Bps,
                 qpi_bandwidth_Bps, nics, host_mem_bandwidth_Bps,
                 "DGX-1 (P100): NVLink 1.0 hybrid cube-mesh, 4 links per GPU")


def dgx1_v100(device: Device | str = "v100-sxm2", *, nvlink_bandwidth_Bps: float = 25e9,
              pcie_bandwidth_Bps: float = PCIE3_X16_BPS, qpi_bandwidth_Bps: float = 19.2e9,
              nics: int = 4, host_mem_bandwidth_Bps: float = 136.5e9) -> NodeSpec:
    """DGX-1 (V100): NVLink 2.0, 6 links per GPU; the cube-mesh with 8 doubled pairs.

    Host and PCIe as in :func:`dgx1_p100`.
    """
    return _dgx1("dgx1-v100", DGX1_V100_PAIRS, device, nvlink_bandwidth_Bps, pcie_bandwidth_Bps,
                 qpi_bandwidth_Bps, nics, host_mem_bandwidth_Bps,
                 "DGX-1 (V100): NVLink 2.0 hybrid cube-mesh, 6 links per GPU")


def nvlink_quad(device: Device | str = "v100-sxm2", *, nvlink_bandwidth_Bps: float = 25e9,
                nvlink_links: int = 2, pcie_bandwidth_Bps: float = PCIE3_X16_BPS,
                qpi_bandwidth_Bps: float = 20.8e9, nics: int = 2,
                host_mem_bandwidth_Bps: float = 255e9) -> NodeSpec:
    """Four SXM2 GPUs, every pair joined by ``nvlink_links`` NVLinks (ABCI's compute node V,
    and other 4-GPU V100 servers); two sockets, a PCIe switch per socket with 2 GPUs each,
    ``nics`` NICs spread over the switches."""
    graph = _devices(4)
    for a in range(4):
        for b in range(a + 1, 4):
            _link(graph, a, b, "nvlink", nvlink_links, nvlink_bandwidth_Bps)
    _sockets(graph, 2, 2, qpi_bandwidth_Bps / 2)
    nic_names = _pcie_tree(graph, 4, 2, nics, pcie_bandwidth_Bps)
    return NodeSpec("nvlink-quad", _device(device), 4, graph, nic_names, host_mem_bandwidth_Bps,
                    f"4 GPUs, {nvlink_links} NVLinks per pair, all-to-all")


def pcie8(device: Device | str = "p100-sxm2", *, devices: int = 8, devices_per_switch: int = 2,
          pcie_bandwidth_Bps: float = PCIE3_X16_BPS, qpi_bandwidth_Bps: float = 19.2e9,
          nics: int = 1, host_mem_bandwidth_Bps: float = 136.5e9, nvlink_bridge_links: int = 0,
          nvlink_bandwidth_Bps: float = 25e9, sockets: int = 2) -> NodeSpec:
    """A PCIe GPU box: GPUs on PCIe switches (``devices_per_switch`` each; 1 for GPUs on the
    CPUs' own root ports), ``sockets`` sockets (2 by default; 1 for a workstation) joined by QPI.

    The switches are split evenly over the sockets in device order, so on two sockets GPUs
    0-3 of 8 share the first. Without bridges there are no GPU-to-GPU links: peer traffic
    goes through the switches, and across the sockets through QPI. ``nvlink_bridge_links``
    > 0 joins GPUs 0-1, 2-3, ... in pairs by NVLink bridges of that many links of
    ``nvlink_bandwidth_Bps`` each (A100 PCIe and H100 NVL: 12 links of 25 GB/s, 600 GB/s both
    ways; A30: 4 of 25; A40, RTX 3090 and RTX A6000: 4 links, 112.5 GB/s both ways, 14.0625
    each way); traffic between pairs still crosses PCIe, so a ring over more than one pair
    runs at the PCIe hops' speed.
    """
    graph = _devices(devices)
    for a in range(0, devices - 1, 2) if nvlink_bridge_links else ():
        _link(graph, a, a + 1, "nvlink", nvlink_bridge_links, nvlink_bandwidth_Bps)
    if sockets < 1:
        raise SpecError("node.options.sockets", sockets, "1 or more sockets")
    _sockets(graph, sockets, 2, qpi_bandwidth_Bps)
    nic_names = _pcie_tree(graph, devices, devices_per_switch, nics, pcie_bandwidth_Bps,
                           sockets)
    bridges = (f", pairs on NVLink bridges ({nvlink_bridge_links} links each)"
               if nvlink_bridge_links else "")
    host = "1 socket" if sockets == 1 else f"{sockets} sockets joined by QPI"
    return NodeSpec("pcie8", _device(device), devices, graph, nic_names, host_mem_bandwidth_Bps,
                    f"{devices} GPUs on PCIe switches ({devices_per_switch} per switch), "
                    f"{host}{bridges}")


#: The ``cpu`` topology's own device.
DEFAULT_CPU = "xeon-e5-2670x2"


def cpu_node(device: Device | str = DEFAULT_CPU, *, ranks: int = 1, sockets: int = 2,
             qpi_bandwidth_Bps: float = 16e9, shm_bandwidth_Bps: float = 0.0, nics: int = 1,
             pcie_bandwidth_Bps: float = PCIE3_X16_BPS) -> NodeSpec:
    """A CPU node: ``ranks`` MPI ranks sharing the sockets (default: one rank per socket pair).

    ``device`` describes the whole node; with several ranks each gets an equal share of its
    FLOP/s, memory bandwidth and memory. Rank ``i`` sits on socket ``i % sockets`` and talks
    through shared memory (``shm``, by default half a socket's memory bandwidth, since a copy
    reads and writes). NICs hang off the sockets' PCIe root ports.
    """
    whole_node = _device(device)
    if whole_node.kind == "gpu":
        # One whole GPU per rank (a GPU is not shared out like sockets' FLOP/s), each on its
        # socket's PCIe root port: what a CPU machine's what-if "the same nodes with a GPU per
        # rank" means. The host's memory is the topology's default CPU's (the swapped-out CPU
        # is not known here).
        graph, nic_names = _socket_graph(ranks, sockets, qpi_bandwidth_Bps, nics,
                                         pcie_bandwidth_Bps, "pcie", pcie_bandwidth_Bps)
        return NodeSpec("cpu", whole_node, ranks, graph, nic_names,
                        _device(DEFAULT_CPU).mem_bandwidth_Bps,
                        f"{ranks} {whole_node.name} GPU(s) on the PCIe root ports of a "
                        f"{sockets}-socket node")
    dev = whole_node if ranks == 1 else replace(
        whole_node, name=f"{whole_node.name}/{ranks}", peak_flops=whole_node.peak_flops / ranks,
        mem_bandwidth_Bps=whole_node.mem_bandwidth_Bps / ranks,
        memory_bytes=whole_node.memory_bytes / ranks,
        source=f"{whole_node.source}; split evenly between {ranks} ranks")
    shm_Bps = shm_bandwidth_Bps or whole_node.mem_bandwidth_Bps / sockets / 2
    graph, nic_names = _socket_graph(ranks, sockets, qpi_bandwidth_Bps, nics, pcie_bandwidth_Bps,
                                     "shm", shm_Bps)
    return NodeSpec("cpu", dev, ranks, graph, nic_names, whole_node.mem_bandwidth_Bps,
                    f"{sockets}-socket CPU node, {ranks} rank(s)")


def _socket_graph(ranks: int, sockets: int, qpi_Bps: float, nics: int, pcie_Bps: float,
                  rank_link: str, rank_Bps: float) -> tuple[nx.Graph, tuple[str, ...]]:
    """Ranks on sockets (rank ``i`` on socket ``i % sockets``, by a ``rank_link`` link) and
    NICs on the sockets' PCIe root ports, spread the same way."""
    graph = _devices(ranks)
    _sockets(graph, sockets, 2, qpi_Bps)
    for r in range(ranks):
        _link(graph, r, f"cpu{r % sockets}", rank_link, 1, rank_Bps)
    nic_names = tuple(f"nic{i}" for i in range(nics))
    for i, nic in enumerate(nic_names):
        graph.add_node(nic, kind="nic")
        _link(graph, nic, f"cpu{i % sockets}", "nic", 1, pcie_Bps)
    return graph, nic_names


def nvswitch_node(device: Device | str = "a100-sxm4", n: int = 8, *, nvlink_links: int = 12,
                  nvlink_bandwidth_Bps: float = 25e9, pcie_bandwidth_Bps: float = PCIE4_X16_BPS,
                  qpi_links: int = 4, qpi_bandwidth_Bps: float = 32e9, nics: int = 8,
                  host_mem_bandwidth_Bps: float = 409.6e9) -> NodeSpec:
    """GPUs on an NVSwitch crossbar (defaults: DGX A100), plus PCIe switches, sockets, NICs.

    The NVSwitch chips act as one non-blocking crossbar, modelled as the single node
    ``"nvswitch"``; each GPU's edge to it carries all of its ``nvlink_links`` links.
    """
    graph = _devices(n)
    graph.add_node("nvswitch", kind="nvswitch")
    for d in range(n):
        _link(graph, d, "nvswitch", "nvswitch", nvlink_links, nvlink_bandwidth_Bps)
    _sockets(graph, 2, qpi_links, qpi_bandwidth_Bps)
    nic_names = _pcie_tree(graph, n, 2, nics, pcie_bandwidth_Bps)
    return NodeSpec("nvswitch", _device(device), n, graph, nic_names, host_mem_bandwidth_Bps,
                    f"{n} GPUs on NVSwitch, {nvlink_links} NVLinks each")


def dgx_a100(device: Device | str = "a100-sxm4", *, nvlink_bandwidth_Bps: float = 25e9,
             pcie_bandwidth_Bps: float = PCIE4_X16_BPS, qpi_bandwidth_Bps: float = 32e9,
             nics: int = 8, host_mem_bandwidth_Bps: float = 409.6e9) -> NodeSpec:
    """DGX A100: 8x A100 SXM4 with 12 NVLink 3.0 links each (300 GB/s per direction) to six
    NVSwitches; 4 PCIe 4.0 switches with 2 GPUs and 2 HDR NICs each; 2x AMD EPYC 7742
    (xGMI between the sockets, 8 channels of DDR4-3200 each)."""
    spec = nvswitch_node(device, 8, nvlink_links=12, nvlink_bandwidth_Bps=nvlink_bandwidth_Bps,
                         pcie_bandwidth_Bps=pcie_bandwidth_Bps, qpi_links=4,
                         qpi_bandwidth_Bps=qpi_bandwidth_Bps, nics=nics,
                         host_mem_bandwidth_Bps=host_mem_bandwidth_Bps)
    return replace(spec, name="dgx-a100",
                   description="DGX A100: 8 GPUs on NVSwitch, 12 NVLink 3.0 links each")


def dgx_h100(device: Device | str = "h100-sxm5", *, nvlink_bandwidth_Bps: float = 25e9,
             pcie_bandwidth_Bps: float = PCIE5_X16_BPS, qpi_bandwidth_Bps: float = 32e9,
             nics: int = 8, host_mem_bandwidth_Bps: float = 614.4e9) -> NodeSpec:
    """DGX H100: 8x H100 SXM5 with 18 NVLink 4.0 links each (450 GB/s per direction) to four
    NVSwitches; PCIe 5.0 with 8 NDR NICs; 2x Xeon 8480C (4 UPI links, 8 DDR5-4800 channels
    each)."""
    spec = nvswitch_node(device, 8, nvlink_links=18, nvlink_bandwidth_Bps=nvlink_bandwidth_Bps,
                         pcie_bandwidth_Bps=pcie_bandwidth_Bps, qpi_links=4,
                         qpi_bandwidth_Bps=qpi_bandwidth_Bps, nics=nics,
                         host_mem_bandwidth_Bps=host_mem_bandwidth_Bps)
    return replace(spec, name="dgx-h100",
                   description="DGX H100: 8 GPUs on NVSwitch, 18 NVLink 4.0 links each")


#: Node builders by topology name; a cluster file may also say ``custom`` and list its graph.
TOPOLOGIES: Registry[Callable[..., NodeSpec]] = Registry("topology", {
    "dgx1-p100": dgx1_p100, "dgx1-v100": dgx1_v100, "pcie8": pcie8, "cpu": cpu_node,
    "nvswitch": nvswitch_node, "dgx-a100": dgx_a100, "dgx-h100": dgx_h100,
    "nvlink-quad": nvlink_quad,
}, also_valid=("custom",))


def _option_names(builder: Callable[..., NodeSpec]) -> dict[str, str]:
    """File key -> keyword of a builder: ``nvlink_bandwidth`` -> ``nvlink_bandwidth_Bps``."""
    names = {}
    for param in list(inspect.signature(builder).parameters)[1:]:  # [0] is the device
        key = param.removesuffix("_Bps") if param.endswith("_Bps") else param.removesuffix("_s")
        names[key] = param
    return names


def topology_options(topology: str, raw: Mapping[str, Any], field: str) -> dict[str, Any]:
    """Parse a cluster file's ``node.options`` for ``topology`` into the builder's SI keywords."""
    builder = _builder(topology, join(field.rpartition(".")[0], "topology"))
    names = _option_names(builder)
    check_keys(require_mapping(raw, field), field, (), tuple(names))
    options: dict[str, Any] = {}
    for key, value in raw.items():
        param, where = names[key], join(field, key)
        if param.endswith("_Bps"):
            options[param] = quantity(value, where, parse_bandwidth)
        elif param.endswith("_s"):
            options[param] = quantity(value, where, parse_time, allow_zero=True)
        else:
            options[param] = whole(value, where)
    return options


def options_to_file(options: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`topology_options` without units: keyword -> file key."""
    return {k.removesuffix("_Bps") if k.endswith("_Bps") else k.removesuffix("_s"): v
            for k, v in options.items()}


def _builder(topology: str, field: str) -> Callable[..., NodeSpec]:
    return TOPOLOGIES.lookup(topology, field)


def _check_device_kind(topology: str, device: Device) -> None:
    """GPU topologies take GPUs: a CPU on an NVLink or PCIe-switch graph is no machine. (The
    ``cpu`` topology takes either: CPU sockets shared by ranks, or one GPU per rank.)"""
    if topology != "cpu" and device.kind != "gpu":
        raise SpecError("device", device.name, f"a GPU device for a {topology} node ({device.name}"
                        " is a CPU: for it use the cpu topology or a CPU cluster preset)")


def build_node(topology: str, device: Device | str | None = None, **options: Any) -> NodeSpec:
    """The node called ``topology`` with ``device`` (or the topology's own) and SI ``options``.

    The result is checked with :func:`check_node`; its graph remembers the topology name, the
    options and the device under ``graph.graph`` so that a saved cluster file can rebuild it.
    """
    builder = _builder(topology, "node.topology")
    if device is not None:
        _check_device_kind(topology, _device(device))
    names = _option_names(builder)
    for key, value in options.items():
        if key not in names.values():
            raise SpecError(f"node.options.{key}", value,
                            f"one of the options of {topology}: {', '.join(names)}")
    node = builder(device, **options) if device is not None else builder(**options)
    node.graph.graph.update(topology=topology, options=dict(options),
                            device=_device(device) if device is not None else node.device)
    check_node(node)
    return node


#: The option that sets a topology's device count, where it has one (others are fixed).
DEVICE_COUNT_OPTION: Mapping[str, str] = {"cpu": "ranks", "pcie8": "devices", "nvswitch": "n"}
#: Topologies whose switches and sockets are the box's hardware: fewer GPUs than built are the
#: first ones of the same box (CUDA's PCI order), so 4 of 8 GPUs on 4 switches stay under one
#: socket and 6 of 8 span both; more GPUs than built rebuild a bigger box.
SUBSET_BELOW_BUILT = ("pcie8",)


def with_devices(node: NodeSpec, devices: int) -> NodeSpec:
    """``node`` with ``devices`` devices: rebuilt by its topology where that takes a count
    (its other options kept), else the first ``devices`` GPUs of the fixed node (what a job
    gets with ``CUDA_VISIBLE_DEVICES`` unset, and what the DGX-1 measurements by GPU count
    used): see :func:`device_subset`. A PCIe box (:data:`SUBSET_BELOW_BUILT`) asked for fewer
    GPUs than it has is such a subset too; asked for more, it is rebuilt."""
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise SpecError("devices_per_node", devices, "a whole number >= 1")
    info = node.graph.graph
    parent = info.get("parent")
    if parent is not None:                       # a subset: start again from the whole node
        node = build_node(parent[0], info["device"], **parent[1])
        info = node.graph.graph
    topology = info.get("topology", "custom")
    option = DEVICE_COUNT_OPTION.get(topology)
    if topology in SUBSET_BELOW_BUILT and devices < node.devices_per_node:
        return device_subset(node, devices)
    if option is not None:
        options = {**info.get("options", {}), option: devices}
        return build_node(topology, info["device"], **options)
    if devices == node.devices_per_node:
        return node
    if topology == "custom" or devices > node.devices_per_node:
        raise SpecError("devices_per_node", devices,
                        f"at most {node.devices_per_node} for a {topology} node (a custom "
                        "node's device count is fixed; "
                        f"{', '.join(DEVICE_COUNT_OPTION)} take any count)")
    return device_subset(node, devices)


def device_subset(node: NodeSpec, devices: int) -> NodeSpec:
    """GPUs ``0..devices-1`` of ``node`` with their links, switches, sockets and NICs.

    The collective model then builds its rings on what is left, as NCCL's graph search does:
    5 GPUs of a DGX-1 P100 hold no NVLink ring and fall to PCIe (Tartan measured 5.6 GB/s
    busbw against 52 for 4 and 62 for 8). The graph remembers the whole node (``parent``)
    and is saved as a custom node.
    """
    graph = node.graph.copy()
    graph.remove_nodes_from(range(devices, node.devices_per_node))
    info = node.graph.graph
    graph.graph.update(topology="custom", options={}, device=node.device,
                       parent=(info.get("topology", "custom"), dict(info.get("options", {}))))
    subset = NodeSpec(f"{node.name}[{devices} of {node.devices_per_node}]", node.device,
                      devices, graph, node.nics, node.host_mem_bandwidth_Bps,
                      f"{node.description}; GPUs 0-{devices - 1} of {node.devices_per_node}")
    check_node(subset)
    return subset


def custom_node(device: Device | str, *, devices: int, links: Sequence[Mapping[str, Any]],
                vertices: Mapping[str, str] | None = None, nics: Sequence[str] = (),
                host_mem_bandwidth_Bps: float = 50e9, description: str = "",
                field: str = "node") -> NodeSpec:
    """A node described link by link in a cluster file (``topology: custom``).

    ``links`` are file entries ``{a, b, kind, links, link_bandwidth, latency}`` (``links``
    defaults to 1 and ``latency`` to the kind's); ``a``/``b`` are device numbers or names in
    ``vertices`` (``{name: kind}``). Every problem is a SpecError naming ``node.links[i].x``.
    """
    graph = _devices(devices)
    for name, kind in (vertices or {}).items():
        if kind not in NODE_KINDS[1:] or isinstance(name, int):
            raise SpecError(f"{field}.vertices.{name}", kind,
                            f"a named vertex of kind {', '.join(NODE_KINDS[1:])}")
        graph.add_node(name, kind=kind)
    for i, entry in enumerate(links):
        where = f"{field}.links[{i}]"
        entry = require_mapping(entry, where)
        check_keys(entry, where, ("a", "b", "kind", "link_bandwidth"), ("links", "latency"))
        ends = [_endpoint(graph, entry[end], f"{where}.{end}") for end in ("a", "b")]
        kind = text(entry["kind"], f"{where}.kind")
        if kind not in EDGE_KINDS:
            raise SpecError(f"{where}.kind", kind, f"one of {', '.join(EDGE_KINDS)}")
        count = whole(entry.get("links", 1), f"{where}.links")
        link_Bps = quantity(entry["link_bandwidth"], f"{where}.link_bandwidth", parse_bandwidth)
        latency = (quantity(entry["latency"], f"{where}.latency", parse_time, allow_zero=True)
                   if "latency" in entry else LATENCY_S[kind])
        graph.add_edge(*ends, kind=kind, links=count, bandwidth_Bps=count * link_Bps,
                       latency_s=latency)
    node = NodeSpec("custom", _device(device), devices, graph, tuple(nics),
                    host_mem_bandwidth_Bps, description)
    node.graph.graph.update(topology="custom", options={}, device=node.device)
    check_node(node, field)
    return node


def _endpoint(graph: nx.Graph, raw: Any, field: str) -> Any:
    value, _ = unwrap(raw)
    if isinstance(value, bool) or value not in graph:
        devices = sum(1 for _, kind in graph.nodes(data="kind") if kind == "device")
        named = [str(n) for n in graph if not isinstance(n, int)]
        raise SpecError(field, value, f"a device 0..{devices - 1}"
                        + (f" or a vertex ({', '.join(named)})" if named else ""))
    return value


def check_node(node: NodeSpec, field: str = "node") -> None:
    """Check the NodeSpec graph contract; a broken graph is a SpecError naming what is wrong."""
    graph, k = node.graph, node.devices_per_node
    devices = sorted(n for n, kind in graph.nodes(data="kind") if kind == "device")
    if devices != list(range(k)):
        raise SpecError(f"{field}.devices", devices, f"devices numbered 0..{k - 1}")
    for name, kind in graph.nodes(data="kind"):
        if kind not in NODE_KINDS:
            raise SpecError(f"{field}.vertices.{name}", kind, f"one of {', '.join(NODE_KINDS)}")
    for a, b, data in graph.edges(data=True):
        if data.get("kind") not in EDGE_KINDS or data.get("links", 0) < 1 \
                or not data.get("bandwidth_Bps", 0) > 0 or data.get("latency_s", -1) < 0:
            raise SpecError(f"{field}.links", f"{a}-{b}", "a link with kind, links >= 1, "
                            "bandwidth > 0 and latency >= 0")
    for nic in node.nics:
        if graph.nodes.get(nic, {}).get("kind") != "nic":
            raise SpecError(f"{field}.nics", nic, "the name of a vertex of kind nic")
    if k and not nx.is_connected(graph):
        reachable = nx.node_connected_component(graph, 0)
        cut = sorted(str(n) for n in graph if n not in reachable)
        raise SpecError(f"{field}.links", f"unreachable from device 0: {', '.join(cut)}",
                        "a connected node graph")

