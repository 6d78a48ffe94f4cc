"""``gradsync validate``: measured vs predicted iteration times of runs, with a fitted cluster."""

from __future__ import annotations

import argparse
import json

from calibration.validate import plot, validate
from vocab.outpath import check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate", help="simulate measured runs with a fitted cluster; report the errors",
        description=("Simulate each run (its model, strategy, ranks and batch from run.json) "
                     "with the fitted cluster and its profiles, and report measured vs "
                     "predicted median iteration time, the absolute percentage error, its "
                     "median and maximum."))
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--cluster", required=True, help="a file written by gradsync calibrate")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", metavar="FILE", help="write a predicted-vs-measured PNG")
    parser.add_argument("--force", action="store_true", help="replace an existing --plot")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print."""
    if args.plot:       # refused before the runs are simulated, not after
        check_output(args.plot, overwrite=args.force, field="--plot")
    report = validate(args.cluster, args.runs)
    if args.plot:
        plot(report, args.plot, overwrite=args.force)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.table())
    return 0
