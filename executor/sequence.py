"""Several executor runs, one after another, in one MPI job.

    mpiexec -n 2 python -m executor.sequence RUNS.json

``RUNS.json`` is a list of argument lists, each what ``python -m executor`` takes (each with
its own ``--out``); every rank runs them in order, each exactly as a job of its own would
(:func:`executor.__main__.main`: checks on rank 0, model built and seeded, outputs written),
so a run's directory is the same as a separate launch's. What is shared is the process: the
interpreter, torch and MPI start once instead of once per run, which on a small machine is
most of a short run's cost (a 2-rank ``alexnet-ci`` run of 6 steps: about 6 CPU seconds as
its own job, under 2 each in a sequence of six; ``calibration.protocol`` with ``one_job``).

Exit status: the first non-zero status of a run (the later runs are not started), else 0.
A run that fails aborts the whole job, as a job of its own does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from executor.__main__ import Interrupted, main as run_one
from executor.comm import MPI
from vocab.argtypes import OneLineParser
from vocab.errors import GradsyncError, SpecError
from vocab.files import read_json


def read_runs(path: Path) -> list[list[str]]:
    """The argument lists of ``path``: a JSON list of lists of strings, at least one."""
    runs = read_json(path, "a runs file", expect=list)
    if not isinstance(runs, list) or not runs or not all(
            isinstance(argv, list) and all(isinstance(a, str) for a in argv) for argv in runs):
        raise SpecError("runs", str(path), "a JSON list of argument lists (lists of strings), "
                        "one per run")
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Run every argument list of the file in turn; stop at the first that fails."""
    parser = OneLineParser(prog="python -m executor.sequence", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="JSON file: a list of executor argument lists")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    error = None
    try:
        runs = read_runs(args.runs)
    except GradsyncError as exc:
        error, runs = str(exc), []
    error = comm.bcast(error, root=0)
    if error is not None:
        if comm.rank == 0:
            print(f"gradsync exec: error: {error}", file=sys.stderr)
        return 2
    for run in runs:
        status = run_one(run)
        if status != 0:
            return status
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Interrupted as _exc:          # before a run started: nothing to record
        os._exit(128 + _exc.signum)
