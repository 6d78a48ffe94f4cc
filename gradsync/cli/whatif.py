"""``gradsync whatif``: a calibrated machine on hardware it never ran on.

    gradsync whatif --cluster fitted.yaml --fabric ib-edr --nodes 64 --model resnet18-ci

The cluster (usually one written by ``gradsync calibrate``) keeps what was fitted (intra-node
links, per-collective overhead, compute and its noise) and takes the changes asked for; the
strategies are then simulated as ``gradsync simulate`` does. The prediction path is
:func:`calibration.whatif.what_if` (changes by :func:`hwmodels.cluster.with_changes`).
"""

from __future__ import annotations

import argparse
import json

from calibration.whatif import what_if
from gradsync.cli.cluster_options import add_cluster_arguments, cluster_changes
from gradsync.cli.simulate import JSON_KEYS, format_table, strategy_list
from hwmodels.cluster import load_cluster
from simulator.api import compare
from vocab.argtypes import BATCH, DEVICES_PER_NODE, ITERATIONS, NODES, SEED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``whatif`` subcommand."""
    p = subparsers.add_parser("whatif", help="a calibrated machine with another fabric, "
                              "device or scale", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", required=True, help="fitted cluster file (or any cluster)")
    p.add_argument("--model", help="workload (default: the first calibrated one, else alexnet)")
    p.add_argument("--batch", type=BATCH, help="per-device batch (default: a calibrated one)")
    p.add_argument("--nodes", type=NODES, help="node count (max_nodes raised to it)")
    p.add_argument("--devices-per-node", type=DEVICES_PER_NODE, metavar="N",
                   help="ranks per node (a calibrated machine uses its figures at N ranks)")
    add_cluster_arguments(p)
    p.add_argument("--strategy", default="sync,layerwise,bucketed,delayed",
                   help="strategy or comma-separated list")
    p.add_argument("--iterations", type=ITERATIONS, help="measured iterations (default: simulate's)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Change the machine, simulate each strategy, print the table (or JSON)."""
    changes = cluster_changes(args)
    scenario = what_if(args.cluster, nodes=args.nodes, ranks_per_node=args.devices_per_node,
                       model=args.model or _first_model(args.cluster), batch=args.batch,
                       **changes)
    strategies = strategy_list(args.strategy)
    model = {"model": scenario.model} if scenario.model else {}
    comparison = compare(strategies, cluster=scenario.cluster, batch=scenario.batch,
                         iterations=args.iterations, seed=args.seed, **model)
    table = comparison.table(full=True)
    if args.json:
        rows = table.reset_index().to_dict(orient="records")
        print(json.dumps({"changes": list(scenario.changes),
                          "results": [{k: r[k] for k in JSON_KEYS} for r in rows]},
                         default=float))
        return 0
    first = next(iter(comparison))
    cluster = scenario.cluster
    print(f"{first.specs['workload']['name']} batch {first.batch}/device on {cluster.name} x "
          f"{cluster.nodes} nodes ({first.ranks} ranks, fabric {cluster.fabric.name})")
    print(f"changed: {', '.join(scenario.changes) or 'nothing'}")
    print(format_table(table))
    print(comparison.trust.line)
    return 0


def _first_model(cluster: str) -> str | None:
    """The first model the machine has calibrated compute for, if it is a fitted file."""
    calibration = load_cluster(cluster).calibration
    models = calibration.models() if calibration is not None else []
    return models[0] if models else None
