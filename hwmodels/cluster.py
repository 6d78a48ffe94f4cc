"""Cluster files: load, check, show and save clusters (presets and users' files alike).

A cluster file is YAML; any figure may be written ``{value: ..., source: ...}``, and presets
give a source for every one (see ``hwmodels/presets/dgx1-v100.yaml``)::

    name: my-cluster                      # required
    source: "where this cluster is"       # optional free text
    node:                                 # required
      topology: dgx1-v100                 # a name from topology.TOPOLOGIES, or custom
      device: v100-sxm2                   # a name, or {name: ..., figures...}; default: topology's
      options: {nvlink_bandwidth: 25 GB/s}   # the topology builder's keywords, with units
    nodes: 4                              # default 1
    nics: 4                               # NICs per node; default: the topology's
    fabric: ib-edr                        # required: a name, or {name: ..., kind, bandwidth, latency}
    oversubscription: 1                   # fat-tree ratio >= 1
    max_nodes: 4096
    collective_overhead: 15 us            # software cost of launching one collective
    comm_interference: 0.1                # overlap slow-down f (default: the device's or stack's)
    transport: device                     # device | host (host-staged collectives)
    progress: async                       # async | wait | test: when non-blocking MPI
                                          # collectives progress (default async)
    fitted: {inter: {alpha_s: 3 us, beta_s_per_B: 8.5e-11, gamma_s_per_B: 0}}  # measured links
    provenance: {runs: [...]}             # a fit's record: which runs, residuals
    calibration: {schema: 1, ...}         # written by gradsync calibrate (hwmodels.calibration)

A ``custom`` node lists its graph instead of options: ``devices``, ``vertices`` (``{sw0:
switch}``), ``links`` (``[{a: 0, b: sw0, kind: pcie, links: 1, link_bandwidth: 12 GB/s}]``),
``nics`` (vertex names), ``host_mem_bandwidth`` and ``description``.

Every problem raises :class:`SpecError` naming the file, the field, the value and what was
expected. :func:`cluster_to_dict` is the ``gradsync hw show --json`` form; :func:`save_cluster`
writes the file form, which :func:`load_cluster` reads back to an equal cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwmodels.calibration import Calibration
from hwmodels.devices import device_to_spec, resolve_device
from vocab.outpath import check_output, write_text_atomic
from vocab.errors import SpecError
from vocab.registry import Registry
from hwmodels.fabrics import fabric_to_spec, resolve_fabric
from hwmodels.specfile import (
    check_keys,
    dump_yaml,
    figure,
    number,
    quantity,
    read_mapping,
    read_yaml,
    require_mapping,
    text,
    unwrap,
    whole,
)
from hwmodels.specs import (
    LINK_CLASSES, PROGRESS_MODES, TRANSPORTS, AlphaBeta, Cluster, Device, NodeSpec,
)
from hwmodels.topology import build_node, custom_node, options_to_file, topology_options
from hwmodels.variationfile import VARIATION_KEYS, variation_from_dict, variation_to_spec
from vocab.units import parse_bandwidth, parse_time

PRESET_DIR = Path(__file__).with_name("presets")
REQUIRED = ("name", "node", "fabric")
OPTIONAL = ("source", "nodes", "nics", "oversubscription", "max_nodes", "collective_overhead",
            "comm_interference", "transport", "progress", "fitted", "provenance",
            "calibration", *VARIATION_KEYS)
NAMED_NODE_KEYS = ("device", "options", "description")
CUSTOM_NODE_KEYS = ("devices", "links", "vertices", "nics", "host_mem_bandwidth", "description")
FITTED_KEYS = ("alpha_s", "beta_s_per_B", "gamma_s_per_B")


def cluster_presets() -> Registry[Path]:
    """The built-in cluster preset files (``hwmodels/presets/*.yaml``) by name, sorted."""
    files = sorted(PRESET_DIR.glob("*.yaml"), key=lambda path: path.stem)
    return Registry("cluster", {path.stem: path for path in files},
                    also_valid=("a path to a .yaml file",))


def list_presets() -> list[str]:
    """Names of the built-in cluster presets (``hwmodels/presets/*.yaml``)."""
    return list(cluster_presets())


def preset_path(name_or_path: str | Path) -> Path:
    """The file for a preset name, or the path itself; an unknown name lists the presets."""
    text_form = str(name_or_path)
    looks_like_path = (isinstance(name_or_path, Path) or "/" in text_form
                       or text_form.endswith((".yaml", ".yml")) or Path(text_form).exists())
    if looks_like_path:
        return Path(name_or_path)
    return cluster_presets().lookup(text_form)


def load_cluster(name_or_path: str | Path, nodes: int | None = None) -> Cluster:
    """The cluster of a preset name or a YAML file, at ``nodes`` nodes if given."""
    path = preset_path(name_or_path)
    raw = read_yaml(path)
    try:
        cluster = cluster_from_dict(raw)
        if nodes is None:
            return cluster
        # The file's source for its node count does not describe the count asked for.
        sources = {k: v for k, v in cluster.sources.items() if k != "nodes"}
        return replace(cluster, nodes=nodes, sources=sources)
    except SpecError as exc:
        raise exc.with_source(str(path)) from None


def cluster_from_dict(raw: Any) -> Cluster:
    """A :class:`Cluster` from the file form (a parsed YAML mapping), checked field by field."""
    raw = require_mapping(raw, "")
    if "groups" in raw and "node" not in raw:   # node groups: the first is the cluster's node
        raw = {**raw, "node": require_mapping(unwrap(raw["groups"])[0][0], "groups[0]")["node"]}
    check_keys(raw, "", REQUIRED, OPTIONAL)
    sources = {key: unwrap(raw[key])[1] for key in OPTIONAL if key in raw}
    oversubscription = quantity(raw.get("oversubscription", 1), "oversubscription", number)
    if oversubscription < 1:
        raise SpecError("oversubscription", unwrap(raw["oversubscription"])[0],
                        "a fat-tree oversubscription ratio >= 1")
    transport = text(raw.get("transport", "device"), "transport")
    if transport not in TRANSPORTS:
        raise SpecError("transport", transport, f"one of {', '.join(TRANSPORTS)}")
    progress = text(raw.get("progress", "async"), "progress")
    if progress not in PROGRESS_MODES:
        raise SpecError("progress", progress, f"one of {', '.join(PROGRESS_MODES)}")
    node = _node(raw["node"], raw.get("nics"), sources)
    calibration = Calibration.from_dict(raw["calibration"]) if "calibration" in raw else None
    variation = variation_from_dict(raw, _node, sources)
    if variation is not None and variation.groups:
        node = variation.groups[0].node
    nodes = whole(raw.get("nodes", (variation and variation.nodes) or 1), "nodes")
    cluster = Cluster(
        name=text(raw["name"], "name"), node=node,
        nodes=nodes,
        fabric=resolve_fabric(raw["fabric"], "fabric"),
        oversubscription=oversubscription,
        max_nodes=whole(raw.get("max_nodes", 1024), "max_nodes"),
        collective_overhead_s=quantity(raw.get("collective_overhead", 5e-6),
                                       "collective_overhead", parse_time, allow_zero=True),
        comm_interference=(None if "comm_interference" not in raw else quantity(
            raw["comm_interference"], "comm_interference", number, allow_zero=True)),
        transport=transport, progress=progress, fitted=_fitted(raw.get("fitted", {})),
        provenance=dict(require_mapping(raw.get("provenance", {}), "provenance")),
        source=str(raw.get("source") or ""),
        sources={key: src for key, src in sources.items() if src}, variation=variation)
    return calibration.adapt(cluster) if calibration is not None else cluster


def _node(raw: Any, nics: Any, sources: dict[str, str]) -> NodeSpec:
    """The node of a cluster file: a named topology with options, or a custom graph."""
    raw = require_mapping(raw, "node")
    topology = text(raw.get("topology"), "node.topology")
    device = resolve_device(raw["device"], "node.device") if "device" in raw else None
    if topology == "custom":
        check_keys(raw, "node", ("topology", "device", "devices", "links"), CUSTOM_NODE_KEYS[2:])
        if nics is not None:
            raise SpecError("nics", unwrap(nics)[0], "no top-level nics with a custom node "
                            "(list NIC vertices in node.nics)")
        host = raw.get("host_mem_bandwidth", 50e9)
        sources["node.host_mem_bandwidth"] = unwrap(host)[1]
        return custom_node(device, devices=whole(raw["devices"], "node.devices"),
                           links=_sequence(raw["links"], "node.links"),
                           vertices=require_mapping(raw.get("vertices", {}), "node.vertices"),
                           nics=tuple(_sequence(raw.get("nics", []), "node.nics")),
                           host_mem_bandwidth_Bps=quantity(host, "node.host_mem_bandwidth",
                                                           parse_bandwidth),
                           description=str(raw.get("description") or ""))
    check_keys(raw, "node", ("topology",), NAMED_NODE_KEYS)
    options_raw = require_mapping(raw.get("options", {}), "node.options")
    options = topology_options(topology, options_raw, "node.options")
    sources.update({f"node.options.{k}": unwrap(v)[1] for k, v in options_raw.items()})
    if nics is not None:
        if "nics" in options:
            raise SpecError("nics", unwrap(nics)[0], "NICs given once: nics or node.options.nics")
        options["nics"] = whole(nics, "nics")
    node = build_node(topology, device, **options)
    if "description" in raw:
        node = NodeSpec(node.name, node.device, node.devices_per_node, node.graph, node.nics,
                        node.host_mem_bandwidth_Bps, text(raw["description"], "node.description"))
    return node


def _sequence(raw: Any, field: str) -> list[Any]:
    if not isinstance(raw, list):
        raise SpecError(field, raw, "a list")
    return raw


def _fitted(raw: Any) -> dict[str, AlphaBeta]:
    """``fitted: {intra: {alpha_s, beta_s_per_B, gamma_s_per_B}, ...}`` as AlphaBeta per class."""
    raw = require_mapping(raw, "fitted")
    fitted = {}
    for link_class, params in raw.items():
        if link_class not in LINK_CLASSES:
            raise SpecError(f"fitted.{link_class}", params,
                            f"a link class: {', '.join(LINK_CLASSES)}")
        where = f"fitted.{link_class}"
        params = require_mapping(params, where)
        check_keys(params, where, FITTED_KEYS[:2], FITTED_KEYS[2:])
        fitted[link_class] = AlphaBeta(
            alpha_s=quantity(params["alpha_s"], f"{where}.alpha_s", parse_time, allow_zero=True),
            beta_s_per_B=quantity(params["beta_s_per_B"], f"{where}.beta_s_per_B", number,
                                  allow_zero=True),
            gamma_s_per_B=quantity(params.get("gamma_s_per_B", 0.0), f"{where}.gamma_s_per_B",
                                   number, allow_zero=True))
    return fitted


def cluster_to_spec(cluster: Cluster) -> dict[str, Any]:
    """The file form of ``cluster`` (what :func:`save_cluster` writes), sources kept."""
    src = cluster.sources

    def fig(key: str, value: Any, unit: str | None = None) -> Any:
        written = figure(value, unit) if unit else value
        return {"value": written, "source": src[key]} if src.get(key) else written

    spec: dict[str, Any] = {"name": cluster.name}
    if cluster.source:
        spec["source"] = cluster.source
    spec["node"] = _node_to_spec(cluster.node, src)
    spec["nodes"] = fig("nodes", cluster.nodes)
    if cluster.node.graph.graph.get("topology", "custom") != "custom":
        spec["nics"] = fig("nics", len(cluster.node.nics))
    spec["fabric"] = fabric_to_spec(cluster.fabric)
    spec["oversubscription"] = fig("oversubscription", cluster.oversubscription)
    spec["max_nodes"] = fig("max_nodes", cluster.max_nodes)
    spec["collective_overhead"] = fig("collective_overhead", cluster.collective_overhead_s, "s")
    if cluster.comm_interference is not None:   # unset: the device's or the stack's default
        spec["comm_interference"] = fig("comm_interference", cluster.comm_interference)
    spec["transport"] = fig("transport", cluster.transport)
    spec["progress"] = fig("progress", cluster.progress)
    if cluster.fitted:
        spec["fitted"] = {k: {"alpha_s": figure(ab.alpha_s, "s"), "beta_s_per_B": ab.beta_s_per_B,
                              "gamma_s_per_B": ab.gamma_s_per_B}
                          for k, ab in cluster.fitted.items()}
    if cluster.provenance:
        spec["provenance"] = _plain(cluster.provenance)
    if cluster.calibration is not None:
        spec["calibration"] = cluster.calibration.to_dict()
    if cluster.variation is not None:
        spec.update(variation_to_spec(cluster.variation, lambda n: _node_to_spec(n, {})))
    return spec


def _node_to_spec(node: NodeSpec, sources: Mapping[str, str]) -> dict[str, Any]:
    """A named topology as name + device + options; any other graph link by link."""
    info = node.graph.graph
    topology = info.get("topology", "custom")
    if topology != "custom":
        options = {k: v for k, v in options_to_file(info.get("options", {})).items()
                   if k != "nics"}  # nics is written at the top level
        spec: dict[str, Any] = {"topology": topology, "device": device_to_spec(info["device"])}
        if options:
            spec["options"] = {k: _option_figure(k, v, sources.get(f"node.options.{k}", ""))
                               for k, v in options.items()}
        if node.description != build_node(topology, info["device"],
                                          **info.get("options", {})).description:
            spec["description"] = node.description
        return spec
    return {"topology": "custom", "device": device_to_spec(node.device),
            "devices": node.devices_per_node,
            "vertices": {n: kind for n, kind in node.graph.nodes(data="kind")
                         if not isinstance(n, int)},
            "links": [{"a": a, "b": b, "kind": d["kind"], "links": d["links"],
                       "link_bandwidth": figure(d["bandwidth_Bps"] / d["links"], "B/s"),
                       "latency": figure(d["latency_s"], "s")}
                      for a, b, d in node.graph.edges(data=True)],
            "nics": list(node.nics),
            "host_mem_bandwidth": figure(node.host_mem_bandwidth_Bps, "B/s",
                                         sources.get("node.host_mem_bandwidth", "")),
            "description": node.description}


def _option_figure(key: str, value: Any, source: str) -> Any:
    unit = "B/s" if key.endswith("bandwidth") else None
    written = figure(value, unit) if unit else value
    return {"value": written, "source": source} if source else written


def _plain(value: Any) -> Any:
    """YAML/JSON-safe copy: numpy scalars to Python numbers, tuples to lists, paths to text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar, without importing numpy
        return value.item()
    return str(value)


def save_cluster(cluster: Cluster, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``cluster`` as a cluster file that :func:`load_cluster` reads back equal.

    Refuses to replace an existing file unless ``overwrite`` is true.
    """
    path = check_output(path, overwrite=overwrite, field="path")
    header = (f"# gradsync cluster file: {cluster.name}\n"
              "# Load with hwmodels.cluster.load_cluster or `gradsync hw show FILE`.\n")
    return write_text_atomic(path, header + dump_yaml(cluster_to_spec(cluster)))


def node_links(node: NodeSpec, devices_only: bool = True) -> list[dict[str, Any]]:
    """The node's edges as ``{"a", "b", "kind", "links", "bandwidth_Bps", "latency_s"}``.

    With ``devices_only``, only device-to-device edges (``a < b``), in order.
    """
    rows = []
    for a, b, data in node.graph.edges(data=True):
        if devices_only and not (isinstance(a, int) and isinstance(b, int)):
            continue
        if isinstance(a, int) and isinstance(b, int) and a > b:
            a, b = b, a
        rows.append({"a": a, "b": b, "kind": data["kind"], "links": data["links"],
                     "bandwidth_Bps": data["bandwidth_Bps"], "latency_s": data["latency_s"]})
    # Device pairs sort numerically; mixed device/named ends sort by their text.
    return sorted(rows, key=(lambda r: (r["a"], r["b"])) if devices_only
                  else (lambda r: (str(r["a"]), str(r["b"]))))


def cluster_to_dict(cluster: Cluster) -> dict[str, Any]:
    """The ``gradsync hw show --json`` form: every figure in SI units, JSON-safe."""
    node, device, fabric = cluster.node, cluster.device, cluster.fabric
    return {
        "name": cluster.name, "nodes": cluster.nodes, "devices_per_node": node.devices_per_node,
        "total_devices": cluster.total_devices, "max_nodes": cluster.max_nodes,
        "device": {"name": device.name, "kind": device.kind, "peak_flops": device.peak_flops,
                   "mem_bandwidth_Bps": device.mem_bandwidth_Bps,
                   "memory_bytes": device.memory_bytes, "efficiency": device.efficiency,
                   "source": device.source},
        "topology": node.graph.graph.get("topology", "custom"),
        "description": node.description,
        "intra_links": [{k: r[k] for k in ("a", "b", "links", "bandwidth_Bps", "kind",
                                           "latency_s")} for r in node_links(node)],
        "node_links": [{**r, "a": str(r["a"]), "b": str(r["b"])}
                       for r in node_links(node, devices_only=False)],
        "nics_per_node": len(node.nics), "nics": list(node.nics),
        "host_mem_bandwidth_Bps": node.host_mem_bandwidth_Bps,
        "fabric": {"name": fabric.name, "kind": fabric.kind,
                   "bandwidth_Bps": fabric.bandwidth_Bps, "latency_s": fabric.latency_s,
                   "line_rate_Bps": fabric.line_rate_Bps,
                   "collective_bandwidth_Bps": fabric.collective_bandwidth_Bps,
                   "nccl_bandwidth_Bps": fabric.nccl_Bps, "nccl_streams": fabric.nccl_streams,
                   "nccl_sockets": fabric.nccl_sockets,
                   "source": fabric.source},
        "oversubscription": cluster.oversubscription,
        "collective_overhead_s": cluster.collective_overhead_s,
        "comm_interference": cluster.comm_interference, "transport": cluster.transport,
        "progress": cluster.progress,
        "fitted": {k: {"alpha_s": ab.alpha_s, "beta_s_per_B": ab.beta_s_per_B,
                       "gamma_s_per_B": ab.gamma_s_per_B} for k, ab in cluster.fitted.items()},
        "provenance": _plain(cluster.provenance), "source": cluster.source,
        "sources": dict(cluster.sources),
        "calibration": (cluster.calibration.to_dict() if cluster.calibration is not None
                        else None),
        "variation": cluster.variation.describe() if cluster.variation is not None else "",
    }


def with_changes(cluster: Cluster, *, device: str | Any = None, nics: int | None = None,
                 devices_per_node: int | None = None, fabric: str | Path | Any = None,
                 oversubscription: float | None = None, nodes: int | None = None,
                 transport: str | None = None, progress: str | None = None) -> Cluster:
    """``cluster`` with the hardware changes a what-if asks for; None leaves a figure as it is.

    The one place a cluster is changed (the ``simulate``, ``sweep`` and ``whatif`` flags, and
    :func:`simulator.api.simulate`'s ``transport`` and ``progress``): ``device`` (a name or a
    Device; the node rebuilt by its topology, a calibrated machine's measured compute dropped
    since it belongs to the old device), ``nics`` per node (a named topology only),
    ``devices_per_node`` (:meth:`Cluster.with_devices_per_node`), ``fabric`` (a preset name, a
    fabric YAML file or a Fabric; fitted inter-node figures dropped), ``oversubscription``,
    ``transport`` (device-direct or host-staged collectives), ``progress`` (the MPI progress
    rule) and ``nodes`` (``max_nodes`` raised to it). Each change is listed in
    ``provenance["changes"]`` so that a run records what was changed. A change that leaves an
    MPI progress rule on GPUs with device transport is refused (:func:`check_progress`).
    """
    changes = list(cluster.provenance.get("changes", []))
    _refuse_node_change_with_groups(cluster, device=device, nics=nics,
                                    devices_per_node=devices_per_node)
    if device is not None:
        new = device if isinstance(device, Device) else resolve_device(device, "device")
        cluster = _with_node(cluster, device=new)
        changes.append(f"device {cluster.device.name}")
    if nics is not None:
        cluster = _with_node(cluster, nics=nics)
        changes.append(f"{nics} NIC(s) per node")
    if devices_per_node is not None and devices_per_node != cluster.devices_per_node:
        cluster = cluster.with_devices_per_node(devices_per_node)
        changes.append(f"{devices_per_node} devices per node")
    if fabric is not None:
        cluster = cluster.with_fabric(_fabric(fabric))
        changes.append(f"fabric {cluster.fabric.name}")
    if oversubscription is not None:
        cluster = replace(cluster, oversubscription=oversubscription)
        changes.append(f"oversubscription {oversubscription:g}")
    if transport is not None and transport != cluster.transport:
        cluster = cluster.with_transport(transport)      # the Cluster refuses other names
        changes.append(f"transport {transport}")
    if progress is not None and progress != cluster.progress:
        cluster = cluster.with_progress(progress)
        changes.append(f"progress {progress}")
    if device is not None or transport is not None or progress is not None:
        asked = device if device is None or isinstance(device, str) else device.name
        check_progress(cluster, device=asked)
    if nodes is not None:
        cluster = replace(cluster, max_nodes=max(nodes, cluster.max_nodes), nodes=nodes)
        changes.append(f"{nodes} nodes")
    if len(changes) == len(cluster.provenance.get("changes", [])):
        return cluster
    return replace(cluster, provenance={**cluster.provenance, "changes": changes})


def check_progress(cluster: Cluster, device: str | None = None) -> None:
    """MPI progress rules apply to MPI: GPUs with device transport run NCCL, always async.

    ``device``: the device a change just put in (the refusal then names it and says what to
    state: a fitted CPU machine's rule, e.g. polled ``test`` progress, does not carry over to
    device-direct GPUs by itself)."""
    if cluster.progress == "async" or cluster.transport != "device" or \
            cluster.device.kind != "gpu":
        return
    if device is not None:
        raise SpecError("device", device, f"a device {cluster.name}'s MPI progress rule "
                        f"'{cluster.progress}' applies to; on GPUs also state transport host "
                        "(MPI staged through host memory, the rule kept) or progress async "
                        "(device-direct, NCCL-like)")
    raise SpecError("progress", cluster.progress, "async with device transport on GPUs "
                    "(NCCL's kernels progress on their own); state transport host for MPI "
                    "progress semantics")


def _refuse_node_change_with_groups(cluster: Cluster, **node_changes: Any) -> None:
    """Node groups differ node by node: one flag cannot say which group to change."""
    groups = getattr(cluster.variation, "groups", None)
    for field, value in node_changes.items():
        if groups and value is not None:
            raise SpecError(field, value, f"a cluster without node groups ({cluster.name} has "
                            f"{len(groups)}: change the groups in its file)")


def _fabric(fabric: Any) -> Any:
    """A fabric from a preset name, a YAML file holding one fabric entry, or a Fabric."""
    if not isinstance(fabric, (str, Path)):
        return fabric
    path = Path(fabric)
    if str(fabric).endswith((".yaml", ".yml")) or path.exists():
        raw = read_mapping(path, "a fabric file")
        try:
            return resolve_fabric({"name": path.stem, **raw}, "fabric")
        except SpecError as exc:
            raise exc.with_source(str(path)) from None
    return resolve_fabric(str(fabric), "fabric")


def _with_node(cluster: Cluster, device: Any = None, nics: int | None = None) -> Cluster:
    """The cluster's node rebuilt by its topology with another device or NIC count."""
    info = cluster.node.graph.graph
    topology = info.get("topology", "custom")
    if topology == "custom":
        field, value = ("nics", nics) if nics is not None else ("device", device.name)
        raise SpecError(field, value, f"a cluster with a named node topology ({cluster.name}'s "
                        "node is a custom graph: edit its file instead)")
    options = dict(info.get("options", {}))
    if nics is not None:
        if not isinstance(nics, int) or isinstance(nics, bool) or nics < 1:
            raise SpecError("nics", nics, "a whole number of NICs per node >= 1")
        options["nics"] = nics
    node = build_node(topology, device if device is not None else info["device"], **options)
    changed = replace(cluster, node=node)
    calibration = cluster.calibration
    if calibration is None:
        return changed
    if device is not None:   # fitted compute belongs to the old device: roofline for the new
        calibration = replace(calibration, profiles={}, noise_cv={}, compute_scales={})
    return calibration.adapt(changed)
