"""The heterogeneous part of a cluster file: node groups, slow nodes, degraded links, leaves.

Keys beside the plain cluster's (all optional)::

    groups:                               # node groups in node order; nodes = their sum
      - {name: v100, nodes: 60, node: {topology: dgx1-v100}}
      - {name: p100, nodes: 4, node: {topology: dgx1-p100}, nics: 2}
    slow_nodes: {3: 1.5}                  # node index: compute slow-down (>= 1)
    degraded:                             # links or NICs of one node at a fraction of bandwidth
      - {node: 0, nic: nic0, factor: 0.25}
      - {node: 1, link: [0, 1], factor: 0.5}
    fabric_leaves: {radix: 32}            # leaf switches; oversubscription above them
    noise_per_node: true                  # compute noise drawn per node, not per rank

With ``groups`` the top-level ``node`` may be left out (the first group's node is the
cluster's node). See :mod:`hwmodels.hetero` for what each means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hwmodels.hetero import Degraded, NodeGroup, Variation
from hwmodels.specfile import check_keys, number, require_mapping, text, unwrap, whole
from hwmodels.specs import NodeSpec
from vocab.errors import SpecError

VARIATION_KEYS = ("groups", "slow_nodes", "degraded", "fabric_leaves", "noise_per_node")
NodeReader = Callable[[Any, Any, dict[str, str]], NodeSpec]


def variation_from_dict(raw: Mapping[str, Any], read_node: NodeReader,
                        sources: dict[str, str]) -> Variation | None:
    """The file's :class:`Variation` (None when it has none of :data:`VARIATION_KEYS`)."""
    if not any(key in raw for key in VARIATION_KEYS):
        return None
    groups = tuple(_group(g, i, read_node, sources)
                   for i, g in enumerate(_list(raw.get("groups", []), "groups")))
    slow = {whole(k, "slow_nodes", minimum=0): number(unwrap(v)[0], f"slow_nodes.{k}")
            for k, v in require_mapping(raw.get("slow_nodes", {}), "slow_nodes").items()}
    degraded = tuple(_degraded(d, i) for i, d in enumerate(_list(raw.get("degraded", []),
                                                                   "degraded")))
    radix = None
    if "fabric_leaves" in raw:
        leaves = require_mapping(raw["fabric_leaves"], "fabric_leaves")
        check_keys(leaves, "fabric_leaves", ("radix",), ())
        radix = whole(leaves["radix"], "fabric_leaves.radix")
    per_node = unwrap(raw.get("noise_per_node", False))[0]
    if not isinstance(per_node, bool):
        raise SpecError("noise_per_node", per_node, "true or false")
    return Variation(groups, slow, degraded, radix, per_node)


def _list(raw: Any, field: str) -> list[Any]:
    value = unwrap(raw)[0]
    if not isinstance(value, list):
        raise SpecError(field, value, "a list")
    return value


def _group(raw: Any, i: int, read_node: NodeReader, sources: dict[str, str]) -> NodeGroup:
    raw = require_mapping(raw, f"groups[{i}]")
    check_keys(raw, f"groups[{i}]", ("name", "nodes", "node"), ("nics",))
    name = text(raw["name"], f"groups[{i}].name")
    try:
        node = read_node(raw["node"], raw.get("nics"), {})
    except SpecError as exc:
        raise SpecError(f"groups.{name}.{exc.field}", exc.value, exc.expected) from None
    return NodeGroup(name, whole(raw["nodes"], f"groups.{name}.nodes"), node)


def _degraded(raw: Any, i: int) -> Degraded:
    raw = require_mapping(raw, f"degraded[{i}]")
    check_keys(raw, f"degraded[{i}]", ("node", "factor"), ("nic", "link"))
    link = raw.get("link")
    if link is not None:
        link = _list(link, f"degraded[{i}].link")
        if len(link) != 2:
            raise SpecError(f"degraded[{i}].link", link, "two vertex names [a, b]")
        link = tuple(link)
    nic = text(raw["nic"], f"degraded[{i}].nic") if "nic" in raw else None
    return Degraded(whole(raw["node"], f"degraded[{i}].node", minimum=0),
                    number(unwrap(raw["factor"])[0], f"degraded[{i}].factor"), nic, link)


def variation_to_spec(variation: Variation, node_spec: Callable[[NodeSpec], dict[str, Any]]
                      ) -> dict[str, Any]:
    """The file form of ``variation`` (what :func:`variation_from_dict` reads back)."""
    spec: dict[str, Any] = {}
    if variation.groups:
        spec["groups"] = [{"name": g.name, "nodes": g.count, **_group_node(g.node, node_spec)}
                          for g in variation.groups]
    if variation.slow_nodes:
        spec["slow_nodes"] = dict(variation.slow_nodes)
    if variation.degraded:
        spec["degraded"] = [{"node": d.node, "factor": d.factor,
                             **({"nic": d.nic} if d.nic is not None else
                                {"link": list(d.link)})} for d in variation.degraded]
    if variation.leaf_radix is not None:
        spec["fabric_leaves"] = {"radix": variation.leaf_radix}
    if variation.noise_per_node:
        spec["noise_per_node"] = True
    return spec


def _group_node(node: NodeSpec, node_spec: Callable[[NodeSpec], dict[str, Any]]
                ) -> dict[str, Any]:
    """A group's ``node`` (and ``nics`` for a named topology, as the top level writes it)."""
    out: dict[str, Any] = {"node": node_spec(node)}
    if node.graph.graph.get("topology", "custom") != "custom":
        out["nics"] = len(node.nics)
    return out
