"""Entry point of the ``gradsync`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func(args) -> int`` does the work. Errors meant for users (:class:`GradsyncError`) are
printed as one line with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from gradsync import __version__
from vocab.argtypes import OneLineParser
from vocab.errors import GradsyncError
from vocab.jobs import JobInterrupted

# Subcommand modules, in the order ``gradsync --help`` lists them. A module whose optional
# dependencies are missing (torch, mpi4py, scipy) still registers; it fails only when run.
SUBCOMMANDS = (
    "gradsync.cli.demo",
    "gradsync.cli.simulate",
    "gradsync.cli.sweep",
    "gradsync.cli.whatif",
    "gradsync.cli.hw",
    "gradsync.cli.workload",
    "gradsync.cli.run",
    "gradsync.cli.profile",
    "gradsync.cli.bench_net",
    "gradsync.cli.calibrate",
    "gradsync.cli.validate",
    "gradsync.cli.tta",
    "gradsync.cli.convergence",
)


#: Bad usage is one line, exit 2 (the subcommands' parsers are of this class too).
_Parser = OneLineParser


def build_parser() -> argparse.ArgumentParser:
    """The full ``gradsync`` parser with every available subcommand."""
    parser = _Parser(prog="gradsync", description=(
        "Predict, measure and calibrate gradient synchronisation strategies for data-parallel "
        "training. Run 'gradsync COMMAND --help' for each command."))
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # subcommand not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gradsync`` with ``argv``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # bad usage (one line, printed), --help or --version
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except GradsyncError as exc:
        print(f"gradsync {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except JobInterrupted as exc:     # a job it ran was stopped by a forwarded signal
        print(f"gradsync {args.command}: {exc}; stopped", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("gradsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gradsync ... | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0


def _version() -> str:
    return f"gradsync {__version__}"


if __name__ == "__main__":
    sys.exit(main())
