"""``gradsync workload list``, ``show NAME|FILE [--json]`` and ``from-torch SPEC --out FILE``.

``from-torch PKG.MODULE:FACTORY`` (or ``FILE.py:FACTORY``) builds the user's torch model and
writes its workload (layers in forward order, parameters, FLOPs) as a YAML file that
``gradsync simulate --model FILE`` reads; see :mod:`executor.usermodel` for the factory.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from pathlib import Path

from vocab.outpath import check_output
from vocab.argtypes import BATCH
from vocab.units import format_bytes
from vocab.workload import (Workload, list_workloads, load_workload, save_workload,
                            workload_to_dict)


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
    torch_ = sub.add_parser("from-torch", help="a workload file from your own torch model",
                            description="Build PKG.MODULE:FACTORY (or FILE.py:FACTORY), run one "
                                        "forward on an example input, write the workload.")
    torch_.add_argument("factory", metavar="PKG.MODULE:FACTORY",
                        help="a function of no arguments returning an nn.Module")
    torch_.add_argument("--input-shape", metavar="B,D1,...",
                        help="the example input's shape, batch first (default: the factory's "
                             "input_shape at batch 2)")
    torch_.add_argument("--input-dtype", choices=("float32", "int64"),
                        help="float32 (default) or int64 token ids (drawn below 2)")
    torch_.add_argument("--name", help="workload name (default: the factory's name)")
    torch_.add_argument("--batch", type=BATCH, help="default batch recorded in the file "
                                                  "(default: the example's)")
    torch_.add_argument("--out", type=Path, required=True, help="workload YAML to write")
    torch_.add_argument("--force", action="store_true", help="replace --out if it exists")
    torch_.set_defaults(func=run_from_torch)


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


def run_from_torch(args: argparse.Namespace) -> int:
    """Build the model, describe it, write the workload file, print a one-line summary."""
    check_output(args.out, overwrite=args.force)    # before the model is built
    # torch is optional for gradsync (simulation needs none): imported only for this command.
    introspect = importlib.import_module("executor.introspect")
    usermodel = importlib.import_module("executor.usermodel")
    model, factory = usermodel.build_user_model(args.factory)
    shape = usermodel.parse_shape(args.input_shape) if args.input_shape else None
    example = usermodel.example_input(model, factory, 2, shape=shape, dtype=args.input_dtype)
    name = args.name or args.factory.rpartition(":")[2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", introspect.UnusedParametersWarning)
        workload = usermodel.describe(
            model, example, args.factory, name=name, default_batch=args.batch,
            description=f"{type(model).__name__} from {args.factory}",
            source=f"gradsync workload from-torch {args.factory}")
    for warning in caught:
        print(f"gradsync workload from-torch: warning: {warning.message}", file=sys.stderr)
    save_workload(workload, args.out, overwrite=args.force)
    print(f"{workload.name}: {len(workload.layers)} layers, {workload.total_params:,} "
          f"parameters, {workload.fwd_flops_per_sample() / 1e9:.4g} GFLOP forward per sample; "
          f"written to {args.out} (gradsync simulate --model {args.out})")
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
