"""``gradsync hw``: list and show the hardware models (presets, devices, fabrics, clusters).

    gradsync hw list
    gradsync hw show dgx1-v100 [--nodes 16] [--json]
    gradsync hw show my-cluster.yaml
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from hwmodels.cluster import cluster_to_dict, list_presets, load_cluster, preset_path
from hwmodels.specfile import read_yaml
from hwmodels.devices import get_device, list_devices
from hwmodels.fabrics import get_fabric, list_fabrics
from hwmodels.socketbw import DEFAULT_STREAMS
from vocab.argtypes import NODES
from vocab.units import format_bandwidth, format_time


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hw list`` and ``hw show`` to the ``gradsync`` parser."""
    hw = subparsers.add_parser("hw", help="list and show hardware models and cluster presets",
                               description="Hardware models: cluster presets, devices, fabrics.")
    hw.set_defaults(func=lambda args: (hw.print_help(), 1)[1])
    sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="presets, devices and fabrics as tables")
    lst.set_defaults(func=run_list)
    show = sub.add_parser("show", help="one cluster: a preset name or a cluster YAML file")
    show.add_argument("cluster", metavar="NAME|FILE", help="preset name or path to a .yaml file")
    show.add_argument("--nodes", type=NODES, default=None, help="number of nodes (default: file's)")
    show.add_argument("--json", action="store_true", help="print the cluster as JSON")
    show.set_defaults(func=run_show)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns with a header and a rule, for terminals."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    """Print the presets, devices and fabrics."""
    presets = [load_cluster(name) for name in list_presets()]
    print("Cluster presets (gradsync hw show NAME)")
    print(table(["name", "nodes", "devices/node", "device", "node", "fabric", "max nodes"],
                [[c.name, c.nodes, c.devices_per_node, c.device.name,
                  c.node.graph.graph.get("topology", "custom"), c.fabric.name, c.max_nodes]
                 for c in presets]))
    print("\nDevices")
    print(table(["name", "kind", "peak fp32", "memory bw", "memory", "efficiency"],
                [[d.name, d.kind, _flops(d.peak_flops), format_bandwidth(d.mem_bandwidth_Bps),
                  _gb(d.memory_bytes), f"{d.efficiency:g}"]
                 for d in map(get_device, list_devices())]))
    print("\nFabrics (bandwidth: achieved per NIC per direction; NCCL: what NCCL's network "
          "transport gets, below it over TCP sockets)")
    print(table(["name", "kind", "bandwidth", "NCCL", "latency", "line rate"],
                [[f.name, f.kind, format_bandwidth(f.bandwidth_Bps), format_bandwidth(f.nccl_Bps),
                  format_time(f.latency_s), format_bandwidth(f.line_rate_Bps)]
                 for f in map(get_fabric, list_fabrics())]))
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one cluster, as a summary or as JSON."""
    cluster = load_cluster(args.cluster, nodes=args.nodes)
    data = cluster_to_dict(cluster)
    defaults = inherited(read_yaml(preset_path(args.cluster)), data)
    if args.json:
        print(json.dumps({**data, "inherited": defaults}, indent=2))
    else:
        print(summary(data))
        print(inherited_lines(defaults))
    return 0


def inherited(raw: Any, data: dict[str, Any]) -> dict[str, str]:
    """The figures the cluster file leaves out, each with the value it inherits and from
    where (what a file that names only a topology and a fabric silently gets)."""
    raw = raw if isinstance(raw, dict) else {}
    node = raw.get("node") if isinstance(raw.get("node"), dict) else {}
    topology = data["topology"]
    candidates = {
        "nodes": f"{data['nodes']} (default 1; --nodes changes it)",
        "nics": f"{data['nics_per_node']} per node (topology {topology}'s default; --nics "
                "changes it)",
        "node.device": f"{data['device']['name']} (topology {topology}'s device; --device "
                       "changes it)",
        "oversubscription": f"{data['oversubscription']:g} (a non-blocking fat tree)",
        "max_nodes": f"{data['max_nodes']} (default)",
        "collective_overhead": f"{format_time(data['collective_overhead_s'])} (default)",
        "comm_interference": "the device's or the stack's default",
        "transport": f"{data['transport']} (default)",
        "progress": f"{data['progress']} (default: collectives progress on their own)",
    }
    given = {key for key in raw} | {f"node.{key}" for key in node}
    if topology == "custom":   # a custom node lists its NICs and device itself
        given |= {"nics", "node.device"}
    return {key: text for key, text in candidates.items() if key not in given}


def inherited_lines(defaults: dict[str, str]) -> str:
    """``inherited`` as lines under the summary."""
    if not defaults:
        return "  inherited  nothing: the file sets every figure"
    width = max(map(len, defaults))
    return "\n".join(["  inherited  (not in the file; defaults used)"] +
                     [f"    {key.ljust(width)}  {text}" for key, text in defaults.items()])


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.3g} GB"  # decimal, as datasheets quote device memory


def _flops(value: float) -> str:
    return f"{value / 1e12:.3g} TFLOP/s" if value >= 1e12 else f"{value / 1e9:.3g} GFLOP/s"


def summary(data: dict[str, Any]) -> str:
    """A readable description of a cluster from its :func:`cluster_to_dict` form."""
    dev, fab = data["device"], data["fabric"]
    lines = [
        (f"{data['name']}: {data['nodes']} node(s) x {data['devices_per_node']} {dev['name']}"
         f" = {data['total_devices']} devices (at most {data['max_nodes']} nodes)"),
        (f"  device     {dev['name']} ({dev['kind']}): {_flops(dev['peak_flops'])} fp32, "
         f"{format_bandwidth(dev['mem_bandwidth_Bps'])}, {_gb(dev['memory_bytes'])}, "
         f"efficiency {dev['efficiency']:g}"),
        f"  node       {data['topology']}: {data['description']}",
        (f"             host memory {format_bandwidth(data['host_mem_bandwidth_Bps'])}, "
         f"{data['nics_per_node']} NIC(s): {' '.join(data['nics'])}"),
        *_link_lines(data["intra_links"]),
        (f"  fabric     {fab['name']} ({fab['kind']}): {format_bandwidth(fab['bandwidth_Bps'])} "
         f"per NIC, latency {format_time(fab['latency_s'])}, "
         f"fat tree oversubscription {data['oversubscription']:g}"),
        *_nccl_line(fab),
        (f"  software   collective overhead {format_time(data['collective_overhead_s'])}, "
         f"comm interference {_interference(data['comm_interference'])}, "
         f"transport {data['transport']}"),
    ]
    for link_class, ab in data["fitted"].items():
        lines.append(f"  fitted     {link_class}: alpha {format_time(ab['alpha_s'])}, "
                     f"{format_bandwidth(1 / ab['beta_s_per_B']) if ab['beta_s_per_B'] else 'inf'}"
                     f", gamma {ab['gamma_s_per_B']:.3g} s/B")
    if data.get("variation"):
        lines.append(f"  varies     {data['variation']} (fidelity detailed only)")
    if data["source"]:
        lines.append(f"  source     {data['source']}")
    return "\n".join(lines)


def _nccl_line(fab: dict[str, Any]) -> list[str]:
    """What NCCL gets per NIC where it is less than the fabric's bandwidth (TCP sockets)."""
    if fab["nccl_bandwidth_Bps"] >= fab["bandwidth_Bps"]:
        return []
    how = ("measured" if fab["collective_bandwidth_Bps"] else
           f"fitted socket relation at {fab['nccl_streams'] or DEFAULT_STREAMS} TCP streams, "
           "hwmodels/socketbw.py")
    return [f"             NCCL over sockets {format_bandwidth(fab['nccl_bandwidth_Bps'])} "
            f"per NIC ({how})"]


def _link_lines(links: list[dict[str, Any]]) -> list[str]:
    """Device-to-device links grouped by device: ``0: 1 (nvlink x1, 25 GB/s) ...``."""
    if not links:
        return ["  links      no direct device-to-device links (traffic goes via switches/host)"]
    lines = ["  links      device-to-device, per direction:"]
    for a in sorted({link["a"] for link in links} | {link["b"] for link in links}):
        peers = [(link["b"] if link["a"] == a else link["a"], link) for link in links
                 if a in (link["a"], link["b"])]
        total = sum(link["links"] for _, link in peers)
        text = ", ".join(f"{p} {link['kind']} x{link['links']} "
                         f"{format_bandwidth(link['bandwidth_Bps'])}" for p, link in sorted(
                             peers, key=lambda item: item[0]))
        lines.append(f"    {a}: {total} links -> {text}")
    return lines


def _interference(value: float | None) -> str:
    """The cluster's overlap interference, or where it comes from when the file sets none."""
    return "default (the device's or the stack's)" if value is None else f"{value:g}"
