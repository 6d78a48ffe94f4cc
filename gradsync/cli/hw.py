"""``gradsync hw``: list and show the hardware models (presets, devices, fabrics, clusters).

    gradsync hw list
    gradsync hw show dgx1-v100 [--nodes 16] [--json]
    gradsync hw show my-cluster.yaml
    gradsync hw show t4            # a device or a fabric: every figure with its source
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from hwmodels import devices, fabrics
from hwmodels.cluster import cluster_to_dict, list_presets, load_cluster, preset_path
from hwmodels.specfile import read_yaml, unwrap
from hwmodels.devices import get_device, list_devices
from hwmodels.fabrics import get_fabric, list_fabrics
from hwmodels.socketbw import DEFAULT_STREAMS
from vocab.argtypes import NODES
from vocab.errors import SpecError
from vocab.units import format_bandwidth, format_time


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hw list`` and ``hw show`` to the ``gradsync`` parser."""
    hw = subparsers.add_parser("hw", help="list and show hardware models and cluster presets",
                               description="Hardware models: cluster presets, devices, fabrics.")
    hw.set_defaults(func=lambda args: (hw.print_help(), 1)[1])
    sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="presets, devices and fabrics as tables")
    lst.set_defaults(func=run_list)
    show = sub.add_parser("show", help="one cluster (a preset name or a cluster YAML file), "
                                       "or one device or fabric with the source of each figure")
    show.add_argument("cluster", metavar="NAME|FILE",
                      help="preset, device or fabric name (in that order), or a .yaml file")
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
    """Print one cluster, as a summary or as JSON; or one device or fabric, figure by figure."""
    entry = catalogue_entry(args.cluster)
    if entry is not None:
        if args.nodes is not None:
            raise SpecError("--nodes", args.nodes, f"a cluster to size ({args.cluster} is a "
                            f"{entry['kind']}, not a cluster)")
        print(json.dumps(entry, indent=2) if args.json else entry_lines(entry))
        return 0
    cluster = load_cluster(args.cluster, nodes=args.nodes)
    data = cluster_to_dict(cluster)
    defaults = inherited(read_yaml(preset_path(args.cluster)), data)
    if args.json:
        print(json.dumps({**data, "inherited": defaults}, indent=2))
    else:
        print(summary(data))
        print(inherited_lines(defaults))
    return 0


def catalogue_entry(name: str) -> dict[str, Any] | None:
    """A built-in device or fabric as written in its data file: each figure with its value
    and its own source (or the entry's, for a bare datasheet figure), the built model's
    derived rates, and where it is defined. None if ``name`` is a preset (presets come first:
    ``local-cpu`` is both) or not in either catalogue."""
    if name in list_presets():
        return None
    for kind, names, module in (("device", list_devices(), devices),
                                ("fabric", list_fabrics(), fabrics)):
        if name in names:
            raw = read_yaml(module.DATA_FILE)[name]
            entry_source = str(raw.get("source") or "")
            figures = {}
            for key, value in raw.items():
                if key == "source":
                    continue
                figure, source = unwrap(value)
                figures[key] = {"value": figure,
                                "source": source or ("" if key == "kind" else "(the entry source, below)")}
            return {"name": name, "kind": kind, "file": f"hwmodels/data/{module.DATA_FILE.name}",
                    "figures": figures, "source": entry_source, "derived": _derived(kind, name)}
    return None


def _derived(kind: str, name: str) -> dict[str, str]:
    """What the simulator makes of an entry: a device's layer rates, a fabric's NCCL figure."""
    if kind == "device":
        device = get_device(name)
        rates = {"fp32 layer rate": _flops(device.rate_flops("fp32"))}
        if device.fp16_flops:
            rates["amp/fp16 layer rate"] = _flops(device.rate_flops("amp"))
        if device.bf16_flops:
            rates["bf16 layer rate"] = _flops(device.rate_flops("bf16"))
        return rates
    fabric = get_fabric(name)
    how = ("measured" if fabric.collective_bandwidth_Bps else
           f"socket relation at {fabric.nccl_streams or DEFAULT_STREAMS} streams"
           if fabric.nccl_sockets else "its bandwidth")
    return {"NCCL per NIC": f"{format_bandwidth(fabric.nccl_Bps)} ({how})",
            "NCCL transport": "socket (TCP, host memory)" if fabric.nccl_sockets else "RDMA"}


def entry_lines(entry: dict[str, Any]) -> str:
    """:func:`catalogue_entry` as lines: each figure, then its source indented under it."""
    width = max(map(len, [*entry["figures"], *entry["derived"]]))
    lines = [f"{entry['name']} ({entry['kind']}, {entry['file']})"]
    for key, figure in entry["figures"].items():
        lines.append(f"  {key.ljust(width)}  {figure['value']}")
        if key != "kind":
            lines.append(f"  {''.ljust(width)}    source: {figure['source']}")
    lines.append(f"  {'source'.ljust(width)}  {entry['source']}")
    lines += [f"  {key.ljust(width)}  {text}" for key, text in entry["derived"].items()]
    return "\n".join(lines)


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
    over = "over sockets" if fab["nccl_sockets"] else "over its network plugin"
    return [f"             NCCL {over} {format_bandwidth(fab['nccl_bandwidth_Bps'])} "
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
