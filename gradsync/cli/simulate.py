"""``gradsync simulate``: predict iteration time, throughput and speedup per strategy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from vocab.argtypes import (BATCH, BUCKET_MB, ITERATIONS, NODES, NOISE_CV, RANKS_SIMULATED,
                            SEED, STALENESS)
from vocab.errors import SpecError
from vocab.outpath import check_output
from simulator.api import compare
from gradsync.cli.cluster_options import (add_cluster_arguments, add_devices_arguments,
                                          add_rule_arguments, changed_cluster,
                                          devices_per_node, rule_kwargs)
from gradsync.cli.stack_options import add_stack_arguments, stack_kwargs
from vocab.strategies.plan import MiB

TABLE_COLUMNS = {"iteration_time_s": "iter time (ms)", "throughput_samples_s": "samples/s",
                 "speedup_vs_sync": "vs sync", "speedup_vs_single": "vs 1 device",
                 "exposed_comm_s": "exposed comm (ms)", "interference_s": "interference (ms)",
                 "memory_bytes_per_rank": "mem/rank (GiB)"}
JSON_KEYS = ("strategy", "iteration_time_s", "throughput_samples_s", "speedup_vs_sync",
             "exposed_comm_s", "memory_bytes_per_rank")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    p = subparsers.add_parser("simulate", help="simulate gradient strategies on a cluster",
                              description=__doc__)
    add_run_arguments(p)
    add_stack_arguments(p)
    add_cluster_arguments(p)
    p.add_argument("--strategy", default="sync,layerwise,bucketed,delayed",
                   help="strategy or comma-separated list (sync, layerwise, bucketed, delayed, "
                        "crossiter)")
    add_output_arguments(p)
    p.add_argument("--strict", action="store_true",
                   help="refuse (exit 2) a setup whose memory per rank exceeds the device's")
    p.set_defaults(func=run)


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """--out, --force and --json (simulate and whatif)."""
    p.add_argument("--out", type=Path, help="write each run (trace, run.json, summary) here")
    p.add_argument("--force", action="store_true", help="replace an earlier --out")
    p.add_argument("--json", action="store_true", help="print results as JSON")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by simulate and demo-like commands."""
    p.add_argument("--cluster", default="dgx1-p100", help="cluster preset name or YAML file")
    p.add_argument("--model", default="alexnet", help="zoo workload name or YAML file")
    p.add_argument("--batch", type=BATCH, help="samples per device (default: the model's)")
    p.add_argument("--nodes", type=NODES, help="number of nodes (default: the preset's)")
    add_devices_arguments(p)
    p.add_argument("--iterations", type=ITERATIONS,
                   help="measured iterations (default 5; 40 with compute noise)")
    p.add_argument("--fidelity", default="analytic", choices=("analytic", "detailed"))
    p.add_argument("--max-ranks", type=RANKS_SIMULATED, metavar="N",
                   help="detailed fidelity: allow up to N ranks (default 16384; a run "
                        "estimated to take long prints its time and memory estimate first)")
    p.add_argument("--placement", default="packed", choices=("packed", "spread", "rail-aligned"),
                   help="where the nodes sit on a cluster's leaf switches (fabric_leaves)")
    add_rule_arguments(p)
    p.add_argument("--bucket-mb", type=BUCKET_MB, help="bucket size in MiB (bucketed, crossiter)")
    p.add_argument("--merge", choices=("size", "mgwfbp"), help="bucketing rule")
    p.add_argument("--staleness", type=STALENESS, help="delayed: update applies gradients d steps old")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--noise-cv", type=NOISE_CV,
                   help="per-rank compute noise CV (default 0; a fitted machine's calibrated "
                        "noise)")


def bucket_bytes(args: argparse.Namespace) -> int | None:
    """``--bucket-mb`` in bytes, refusing sizes that round to nothing."""
    if args.bucket_mb is None:
        return None
    if not args.bucket_mb > 0 or int(args.bucket_mb * MiB) < 1:
        raise SpecError("--bucket-mb", args.bucket_mb, "a bucket size > 0 MiB")
    return int(args.bucket_mb * MiB)


def strategy_list(text: str) -> list[str]:
    """The strategies of a ``--strategy`` value: comma-separated, blanks dropped."""
    return [s.strip() for s in text.split(",") if s.strip()]


def run(args: argparse.Namespace) -> int:
    """Simulate, print a table or JSON, optionally save every run."""
    strategies = strategy_list(args.strategy)
    if args.out:        # refused before the simulation, not after it
        check_output(args.out, overwrite=args.force, kind="dir")
    comparison = compare(strategies, cluster=changed_cluster(args), model=args.model,
                         batch=args.batch,
                         nodes=args.nodes, iterations=args.iterations, fidelity=args.fidelity,
                         seed=args.seed, noise=args.noise_cv,
                         bucket_bytes=bucket_bytes(args), staleness=args.staleness,
                         merge=args.merge, max_ranks=getattr(args, "max_ranks", None),
                         placement=getattr(args, "placement", "packed"),
                         devices_per_node=devices_per_node(args), **rule_kwargs(args),
                         **stack_kwargs(args))
    table = comparison.table(full=True)
    warnings = comparison.memory_warnings()
    if warnings and args.strict:
        raise SpecError("memory per rank", warnings[0].split(": ", 1)[1],
                        "a setup that fits the device (a smaller --batch, or drop --strict)")
    if args.out:
        comparison.save(args.out, overwrite=args.force)
    if args.json:
        rows = table.reset_index().to_dict(orient="records")
        print(json.dumps({"results": [{**{k: r[k] for k in JSON_KEYS}, **r} for r in rows],
                          "trust": comparison.trust.to_dict(), "warnings": warnings},
                         default=float))
        return 0
    first = next(iter(comparison))
    cluster = first.specs["cluster"]
    print(f"{first.specs['workload']['name']} batch {first.batch}/device on {cluster['name']} "
          f"x {cluster['nodes']} nodes ({first.ranks} ranks, {cluster['transport']} "
          f"transport, {cluster['progress']} progress, {args.fidelity}, "
          f"{software_label(first.specs)})")
    if cluster.get("changes"):
        print(f"changed: {', '.join(cluster['changes'])}")
    print(format_table(table))
    for line in warnings:
        print(f"warning: {line}")
    print(comparison.trust.line)
    if args.out:
        print(f"runs written under {args.out}")
    return 0


def software_label(specs: dict) -> str:
    """``stack NAME, library ERA`` of a run's specs, as the command headers print it."""
    stack = (specs.get("stack") or {}).get("name", "none")
    return f"stack {stack}, library {specs['comm'].get('library') or 'custom'}"


def format_table(table: pd.DataFrame) -> str:
    """The human table: milliseconds, GiB, speedups with two decimals."""
    shown = table[list(TABLE_COLUMNS)].copy()
    shown["iteration_time_s"] *= 1e3
    shown["exposed_comm_s"] *= 1e3
    shown["interference_s"] *= 1e3
    shown["memory_bytes_per_rank"] /= 2**30
    formats = {"iteration_time_s": "{:.2f}", "throughput_samples_s": "{:.0f}",
               "speedup_vs_sync": "{:.2f}x", "speedup_vs_single": "{:.2f}x",
               "exposed_comm_s": "{:.2f}", "interference_s": "{:.2f}",
               "memory_bytes_per_rank": "{:.2f}"}
    for column, fmt in formats.items():
        shown[column] = shown[column].map(fmt.format)
    return shown.rename(columns=TABLE_COLUMNS).to_string()
