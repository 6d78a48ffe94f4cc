"""``gradsync tta``: rank strategies by predicted wall-clock time to a target accuracy."""

from __future__ import annotations

import argparse
import json

from convergence.tta import time_to_accuracy
from gradsync.cli.simulate import strategy_list
from vocab.argtypes import BATCH, EPOCHS, NODES, STEPS, whole
from vocab.errors import SpecError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tta`` subcommand."""
    p = subparsers.add_parser(
        "tta", help="time to accuracy: steps to a target x simulated iteration time",
        description=("Predict each strategy's wall-clock time to a target: the steps sync "
                     "needs (--sync-steps, or --epochs x --dataset-size / global batch), times "
                     "the staleness penalty of delayed (a table from a convergence study or "
                     "your runs, --penalty FILE; or the noisy quadratic model, --penalty nqm), "
                     "times the simulated iteration time on the cluster."))
    p.add_argument("--cluster", default="dgx1-v100", help="cluster preset name or YAML file")
    p.add_argument("--model", default="resnet50", help="zoo workload name or YAML file")
    p.add_argument("--batch", type=BATCH, help="samples per device (default: the model's)")
    p.add_argument("--nodes", type=NODES, help="number of nodes (default: the preset's)")
    p.add_argument("--strategy", default="sync,bucketed,delayed",
                   help="comma-separated strategies (delayed at every --staleness)")
    p.add_argument("--staleness", default="1,2,4", help="comma-separated d for delayed")
    p.add_argument("--sync-steps", type=STEPS, help="steps sync needs to reach the target")
    p.add_argument("--epochs", type=EPOCHS, help="epochs sync needs (with --dataset-size)")
    p.add_argument("--dataset-size", type=whole(1, 10**12, what="samples"), help="training samples per epoch")
    p.add_argument("--penalty", default="nqm",
                   help="staleness penalty table (CSV: staleness, global_batch, penalty[, "
                        "penalty_lo, penalty_hi]) or 'nqm' (default: the noisy quadratic model)")
    p.add_argument("--seeds", type=whole(1, 1000, what="seeds"), default=1,
                   help="simulation seeds (an interval with a calibrated machine's noise)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def sync_steps(args: argparse.Namespace, global_batch: int | None = None) -> int | None:
    """``--sync-steps``, or epochs x dataset size / global batch once the batch is known."""
    if args.sync_steps is not None:
        if args.epochs is not None or args.dataset_size is not None:
            raise SpecError("--sync-steps", args.sync_steps,
                            "either --sync-steps or --epochs with --dataset-size, not both")
        return args.sync_steps
    if args.epochs is None or args.dataset_size is None:
        raise SpecError("--sync-steps", None,
                        "--sync-steps N, or --epochs E with --dataset-size S")
    if not args.epochs > 0 or args.dataset_size < 1:
        raise SpecError("--epochs", args.epochs, "epochs > 0 with a dataset size >= 1")
    return None if global_batch is None else max(1, round(args.epochs * args.dataset_size
                                                            / global_batch))


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpecError(flag, text, "comma-separated whole numbers") from None


def run(args: argparse.Namespace) -> int:
    """Predict and print the ranking."""
    strategies = strategy_list(args.strategy)
    staleness = _ints(args.staleness, "--staleness")
    steps = sync_steps(args)
    if steps is None:   # epochs given: the global batch comes from the cluster and model
        probe = time_to_accuracy(args.cluster, args.model, ["sync"], 1, "nqm", (),
                                 args.batch, args.nodes)
        steps = sync_steps(args, probe.global_batch)
    result = time_to_accuracy(args.cluster, args.model, strategies, steps, args.penalty,
                              staleness, args.batch, args.nodes, args.seeds)
    if args.json:
        print(json.dumps({"global_batch": result.global_batch, "sync_steps": result.sync_steps,
                          "best": result.best(),
                          "rows": result.frame.to_dict("records")}, indent=2, default=str))
        return 0
    print(f"{args.model} on {args.cluster}: global batch {result.global_batch}, sync needs "
          f"{result.sync_steps} steps")
    print(result.table().to_string(index=False))
    print(f"fastest to the target: {result.best()}")
    sources = sorted(set(result.frame["penalty_source"]) - {"synchronous SGD: no penalty"})
    for source in sources:
        print(f"staleness penalty: {source}")
    return 0
