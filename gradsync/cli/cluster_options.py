"""The hardware what-if flags of ``simulate``, ``sweep`` and ``whatif``.

``--fabric NAME|FILE``, ``--nics N``, ``--oversubscription X`` and ``--device NAME`` change the
chosen cluster (``--devices-per-node`` and ``--nodes`` are the run arguments each command
already has). They are applied by the one function that changes clusters,
:func:`hwmodels.cluster.with_changes`, which lists every change in the cluster's
``provenance["changes"]``; the run record (``run.json``) keeps that list under
``specs.cluster.changes``. The flags use plain argparse types so that a shared validation
module can take them over.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwmodels.cluster import load_cluster, with_changes
from hwmodels.devices import list_devices
from hwmodels.fabrics import list_fabrics
from hwmodels.specs import Cluster
from vocab.argtypes import NICS, OVERSUBSCRIPTION

#: Flag attribute -> keyword of :func:`with_changes`.
CHANGE_FLAGS = {"fabric": "fabric", "nics": "nics", "oversubscription": "oversubscription",
                "device": "device"}


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --fabric, --nics, --oversubscription and --device to ``parser``."""
    group = parser.add_argument_group("what if the hardware were different")
    group.add_argument("--fabric", metavar="NAME|FILE",
                       help="inter-node fabric instead of the cluster's: a preset "
                            f"({', '.join(list_fabrics())}) or a YAML file with kind, "
                            "bandwidth and latency")
    group.add_argument("--nics", type=NICS, metavar="N",
                       help="NICs per node instead of the topology's (named topologies)")
    group.add_argument("--oversubscription", type=OVERSUBSCRIPTION, metavar="X",
                       help="fat-tree oversubscription ratio (>= 1) instead of the cluster's")
    group.add_argument("--device", metavar="NAME",
                       help=f"compute device instead of the node's ({', '.join(list_devices())})")


def cluster_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`with_changes` keywords of the flags that were given."""
    return {key: getattr(args, flag) for flag, key in CHANGE_FLAGS.items()
            if getattr(args, flag, None) is not None}


def changed_cluster(args: argparse.Namespace, cluster: str | Path | None = None,
                    nodes: int | None = None) -> str | Cluster:
    """``--cluster`` (or ``cluster``) with the what-if flags applied; the name itself when no
    flag changes it, so that commands keep their cached paths."""
    name = cluster if cluster is not None else args.cluster
    changes = cluster_changes(args)
    if not changes:
        return name
    return with_changes(load_cluster(name), nodes=nodes, **changes)
