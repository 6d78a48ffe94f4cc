"""``gradsync workload list`` and ``gradsync workload show NAME|FILE [--json]``."""

from __future__ import annotations

import argparse
import json

from vocab.units import format_bytes
from vocab.workload import Workload, list_workloads, load_workload, workload_to_dict


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``workload`` subcommand with ``list`` and ``show``."""
    parser = subparsers.add_parser(
        "workload", help="list and show model workloads (layers, parameters, FLOPs)",
        description="Zoo workloads ship in vocab/workloads/; a user file in the same "
                    "YAML format can be shown by path.")
    sub = parser.add_subparsers(dest="workload_command", metavar="ACTION")
    sub.required = True
    lister = sub.add_parser("list", help="one line per zoo workload")
    lister.set_defaults(func=run_list)
    shower = sub.add_parser("show", help="one workload's layers")
    shower.add_argument("workload", metavar="NAME|FILE", help="zoo name or workload YAML file")
    shower.add_argument("--json", action="store_true",
                        help="print name, total_params, layers (name, params, ...) as JSON")
    shower.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    """Print the zoo as a table."""
    rows = [_summary(load_workload(name)) for name in list_workloads()]
    header = ("name", "layers", "params", "tensors", "GFLOP/sample", "batch")
    _print_table(header, rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one workload as a table, or as JSON with ``--json``."""
    workload = load_workload(args.workload)
    if args.json:
        print(json.dumps(workload_to_dict(workload), indent=2))
        return 0
    print(f"{workload.name}: {workload.description}")
    print(f"source: {workload.source}")
    print(f"{workload.total_params:,} parameters in {workload.param_tensors} tensors, "
          f"{format_bytes(workload.total_grad_bytes)} of gradients, "
          f"{workload.fwd_flops_per_sample() / 1e9:.4g} GFLOP forward per sample, "
          f"default batch {workload.default_batch}")
    rows = [(str(i), layer.name, f"{layer.params:,}", str(layer.param_tensors),
             f"{layer.fwd_flops / 1e6:.4g}", format_bytes(layer.grad_bytes))
            for i, layer in enumerate(workload.layers)]
    _print_table(("#", "layer", "params", "tensors", "MFLOP/sample", "grad"), rows)
    return 0


def _summary(workload: Workload) -> tuple[str, ...]:
    return (workload.name, str(len(workload.layers)), f"{workload.total_params:,}",
            str(workload.param_tensors), f"{workload.fwd_flops_per_sample() / 1e9:.4g}",
            str(workload.default_batch))


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [c.ljust(w) if i == 0 or not c[:1].isdigit() else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
