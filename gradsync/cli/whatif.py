"""``gradsync whatif``: a calibrated machine on hardware it never ran on.

    gradsync whatif --cluster fitted.yaml --fabric ib-edr --nodes 64 --model resnet18-ci

The cluster (usually one written by ``gradsync calibrate``) keeps what was fitted (intra-node
links, per-collective overhead, compute and its noise) and takes the changes asked for; the
strategies are then simulated as ``gradsync simulate`` does. A fitted CPU machine keeps its
MPI progress rule (e.g. polled ``test``); moved onto GPUs with ``--device`` it needs
``--transport host`` (MPI staged through host memory, the rule kept) or ``--progress async``
(device-direct, NCCL-like), and is refused in one line without either. ``--out DIR`` saves
each run (its ``run.json`` lists the changes under ``specs.cluster.changes``). The prediction path is
:func:`calibration.whatif.what_if` (changes by :func:`hwmodels.cluster.with_changes`).
"""

from __future__ import annotations

import argparse
import json

from calibration.whatif import what_if
from gradsync.cli.cluster_options import (add_cluster_arguments, add_devices_arguments,
                                          add_rule_arguments, cluster_changes,
                                          devices_per_node, rule_kwargs)
from gradsync.cli.simulate import (JSON_KEYS, add_output_arguments, format_table,
                                   software_label, strategy_list)
from gradsync.cli.stack_options import add_stack_arguments, stack_kwargs
from hwmodels.cluster import load_cluster
from simulator.api import compare
from vocab.argtypes import BATCH, ITERATIONS, NODES, SEED
from vocab.outpath import check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``whatif`` subcommand."""
    p = subparsers.add_parser("whatif", help="a calibrated machine with another fabric, "
                              "device or scale", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", required=True, help="fitted cluster file (or any cluster)")
    p.add_argument("--model", help="workload (default: the first calibrated one, else alexnet)")
    p.add_argument("--batch", type=BATCH, help="per-device batch (default: a calibrated one)")
    p.add_argument("--nodes", type=NODES, help="node count (max_nodes raised to it)")
    add_devices_arguments(p, "ranks per node (a calibrated machine uses its figures at N "
                             "ranks)")
    add_cluster_arguments(p)
    add_rule_arguments(p)
    add_stack_arguments(p)
    p.add_argument("--strategy", default="sync,layerwise,bucketed,delayed",
                   help="strategy or comma-separated list")
    p.add_argument("--iterations", type=ITERATIONS, help="measured iterations (default: simulate's)")
    p.add_argument("--seed", type=SEED, default=0)
    add_output_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Change the machine, simulate each strategy, print the table (or JSON)."""
    strategies = strategy_list(args.strategy)
    if args.out:        # refused before the simulation, not after it
        check_output(args.out, overwrite=args.force, kind="dir")
    scenario = what_if(args.cluster, nodes=args.nodes, ranks_per_node=devices_per_node(args),
                       model=args.model or _first_model(args.cluster), batch=args.batch,
                       **cluster_changes(args), **rule_kwargs(args))
    model = {"model": scenario.model} if scenario.model else {}
    comparison = compare(strategies, cluster=scenario.cluster, batch=scenario.batch,
                         iterations=args.iterations, seed=args.seed, **model,
                         **stack_kwargs(args))
    table = comparison.table(full=True)
    if args.out:
        comparison.save(args.out, overwrite=args.force)
    if args.json:
        rows = table.reset_index().to_dict(orient="records")
        print(json.dumps({"changes": list(scenario.changes),
                          "results": [{k: r[k] for k in JSON_KEYS} for r in rows]},
                         default=float))
        return 0
    first = next(iter(comparison))
    cluster = scenario.cluster
    print(f"{first.specs['workload']['name']} batch {first.batch}/device on {cluster.name} x "
          f"{cluster.nodes} nodes ({first.ranks} ranks, fabric {cluster.fabric.name}, "
          f"{cluster.transport} transport, {cluster.progress} progress, "
          f"{software_label(first.specs)})")
    print(f"changed: {', '.join(scenario.changes) or 'nothing'}")
    print(format_table(table))
    print(comparison.trust.line)
    if args.out:
        print(f"runs written under {args.out}")
    return 0


def _first_model(cluster: str) -> str | None:
    """The first model the machine has calibrated compute for, if it is a fitted file."""
    calibration = load_cluster(cluster).calibration
    models = calibration.models() if calibration is not None else []
    return models[0] if models else None
