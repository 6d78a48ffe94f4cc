"""``gradsync run``: train a model across MPI ranks with a gradient strategy, for real.

Checks every input, then starts ``mpiexec -n N python -m executor ...`` from the active
environment. The run directory gets ``trace.parquet`` (schema v1), ``run.json``,
``metrics.csv`` and ``model.pt``.
"""

from __future__ import annotations

import argparse

from vocab.argtypes import SECONDS
from executor.config import RunConfig, add_run_arguments
from executor.launch import launch


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gradsync run`` to the ``gradsync`` parser."""
    parser = subparsers.add_parser(
        "run", help="train for real across MPI ranks and record a trace",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--timeout-s", type=SECONDS, default=None,
                        help="kill the whole job after this many seconds")
    parser.add_argument("--oversubscribe", action="store_true",
                        help="run more than 8 ranks per core anyway")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Launch the job; 0 on success, the job's non-zero status otherwise."""
    cfg = RunConfig.from_args(args)
    rc = launch(cfg, timeout_s=args.timeout_s, oversubscribe=args.oversubscribe)
    return 0 if rc == 0 else (rc if 0 < rc < 256 else 1)
