"""The cluster flags of ``simulate``, ``sweep`` and ``whatif``, defined once here.

``--fabric NAME|FILE``, ``--nics N``, ``--oversubscription X`` and ``--device NAME`` change the
chosen cluster's hardware (:func:`add_cluster_arguments`); ``--transport device|host`` and
``--progress async|wait|test`` state how its collectives run (:func:`add_rule_arguments`);
``--devices-per-node N`` and its alias ``--gpus-per-node G`` set the ranks per node
(:func:`add_devices_arguments`). All are applied by the one function that changes clusters,
:func:`hwmodels.cluster.with_changes`, which lists every change in the cluster's
``provenance["changes"]``; the run record (``run.json``) keeps that list under
``specs.cluster.changes``. The hardware flags change the cluster object (or the cluster files
of a sweep); transport, progress and ranks per node travel as the keywords of
:func:`simulator.api.simulate` and :func:`calibration.whatif.what_if`, which hand them to the
same function (so a stack's host-staged default still yields to a stated ``--transport``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwmodels.cluster import load_cluster, with_changes
from hwmodels.devices import list_devices
from hwmodels.fabrics import list_fabrics
from hwmodels.specs import PROGRESS_MODES, TRANSPORTS, Cluster
from vocab.argtypes import DEVICES_PER_NODE, NICS, OVERSUBSCRIPTION
from vocab.errors import SpecError

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
                       help=f"compute device instead of the node's ({', '.join(list_devices())}"
                            "); a GPU on a machine fitted with an MPI progress rule needs "
                            "--transport host or --progress async beside it")


def add_rule_arguments(parser: argparse.ArgumentParser, progress: bool = True) -> None:
    """Add --transport (and, unless ``progress`` is False, --progress) to ``parser``."""
    parser.add_argument("--transport", choices=TRANSPORTS,
                        help="device-direct (NCCL-like) or host-staged MPI collectives "
                             "(default: the cluster's)")
    if progress:
        parser.add_argument("--progress", choices=PROGRESS_MODES,
                            help="when non-blocking MPI collectives progress: on their own "
                                 "(async), only inside Wait (wait), or also one step per "
                                 "MPI_Test at each layer boundary (test); default: the "
                                 "cluster's (async; a fitted machine's as calibrated)")


def rule_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``transport`` and ``progress`` of the flags that were given."""
    return {name: getattr(args, name) for name in ("transport", "progress")
            if getattr(args, name, None) is not None}


def add_devices_arguments(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """Add --devices-per-node N and its alias --gpus-per-node G to ``parser``."""
    parser.add_argument("--devices-per-node", type=DEVICES_PER_NODE, metavar="N",
                        help=help_text or "devices (ranks) per node where the node's topology "
                                     "allows (a CPU node's ranks; a fitted machine then uses "
                                     "its figures at N ranks)")
    parser.add_argument("--gpus-per-node", type=DEVICES_PER_NODE, metavar="G",
                        help="GPUs (ranks) per node; the same as --devices-per-node")


def devices_per_node(args: argparse.Namespace) -> int | None:
    """The ranks per node of --devices-per-node or --gpus-per-node (None: neither given);
    both given must agree."""
    devices = getattr(args, "devices_per_node", None)
    gpus = getattr(args, "gpus_per_node", None)
    if gpus is not None and devices is not None and devices != gpus:
        raise SpecError("--gpus-per-node", gpus, f"the same as --devices-per-node "
                        f"({devices}), or only one of them")
    return gpus if gpus is not None else devices


def cluster_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`with_changes` keywords of the flags that were given."""
    return {key: getattr(args, flag) for flag, key in CHANGE_FLAGS.items()
            if getattr(args, flag, None) is not None}


def changed_cluster(args: argparse.Namespace, cluster: str | Path | None = None,
                    nodes: int | None = None) -> str | Cluster:
    """``--cluster`` (or ``cluster``) with the hardware flags applied; the name itself when no
    flag changes it, so that commands keep their cached paths. A stated transport or progress
    rule is applied with them (a GPU device on a machine fitted with an MPI rule needs one of
    them beside it); the command still passes both on to the simulation, where a stated
    transport overrides a stack's default."""
    name = cluster if cluster is not None else args.cluster
    changes = cluster_changes(args)
    if not changes:
        return name
    return with_changes(load_cluster(name), nodes=nodes, **changes, **rule_kwargs(args))
