"""What every MPI rank runs: ``mpiexec -n N python -m executor --model M --strategy S ...``.

``gradsync run`` starts exactly this under ``mpiexec`` after checking the inputs; running it
directly works the same (see ``python -m executor --help``). Exit status: 0 on success, 2 on
bad input (nothing written), and on a failure in any rank the whole job is aborted with
``MPI_Abort`` after the failing rank has printed a line naming itself and flushed its trace.
"""

from __future__ import annotations

import signal

# Until main() installs its handlers (after the slow torch import), an interrupt ends this
# rank quietly rather than with a KeyboardInterrupt traceback from inside an import.
for _signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_signum, signal.SIG_DFL)

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

from executor import preflight
from executor.comm import ABORT_ERROR, MPI
from executor.config import RunConfig, add_run_arguments
from executor.outputs import write_failure, write_interrupt_note
from executor.train import RankState, train_rank
from vocab.argtypes import OneLineParser
from vocab.errors import GradsyncError
from vocab.jobs import FORWARDED


class Interrupted(BaseException):
    """A forwarded SIGINT, SIGTERM or SIGHUP reached this rank (raised by its handler)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


def install_interrupt_handlers() -> None:
    """Turn the launcher's forwarded signals into :class:`Interrupted`, so a rank stops
    with a note and its partial trace instead of a KeyboardInterrupt traceback."""
    for signum in FORWARDED:
        signal.signal(signum, _raise_interrupted)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, check on rank 0, train on every rank; abort the job if any rank fails."""
    install_interrupt_handlers()
    parser = OneLineParser(prog="python -m executor", description=__doc__)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    args.nprocs = comm.size     # the world size is the truth; -n here is only informative
    error = None
    try:
        cfg = RunConfig.from_args(args)
        if comm.rank == 0:
            preflight.check(cfg)
    except GradsyncError as exc:
        error = str(exc)
    error = comm.bcast(error, root=0)   # same arguments everywhere: rank 0 speaks for all
    if error is not None:
        if comm.rank == 0:
            print(f"gradsync exec: error: {error}", file=sys.stderr)
        return 2
    state = RankState(cfg, comm.rank)
    wall0 = time.perf_counter()
    try:
        train_rank(cfg, state)
    except Interrupted as exc:
        stop(cfg, state, exc)
    except BaseException as exc:  # noqa: BLE001 - any failure must take the job down
        fail(cfg, state, exc, time.perf_counter() - wall0)
    return 0


def stop(cfg: RunConfig, state: RankState, exc: Interrupted) -> None:
    """Interrupted: keep what was recorded, note the step reached, exit at once.

    No MPI_Finalize (peers may be inside a collective that will never complete); the
    launcher writes ``run.json`` (``interrupted``) once the whole job is gone.
    """
    for signum in FORWARDED:            # a second signal must not interrupt the note
        signal.signal(signum, signal.SIG_IGN)
    try:
        state.flush()
        write_interrupt_note(Path(cfg.out), MPI.COMM_WORLD.rank, state.step, str(exc))
    except Exception:  # noqa: BLE001 - exiting promptly matters more than the note
        pass
    sys.stderr.flush()
    os._exit(128 + exc.signum)


def fail(cfg: RunConfig, state: RankState, exc: BaseException, wall_s: float) -> None:
    """Report, keep what was recorded, and abort every rank (never leave peers hanging)."""
    comm = MPI.COMM_WORLD
    where = f"step {state.step}" if state.step >= 0 else "setup"
    message = (f"gradsync exec: rank {comm.rank} of {comm.size} failed at {where}: "
               f"{type(exc).__name__}: {exc}")
    print(message, file=sys.stderr, flush=True)
    if not isinstance(exc, (GradsyncError, KeyboardInterrupt)):
        traceback.print_exc(file=sys.stderr)
    try:
        state.flush()
        write_failure(Path(cfg.out), cfg, message, wall_s=wall_s)
    except Exception as inner:  # noqa: BLE001 - reporting must not stop the abort
        print(f"gradsync exec: rank {comm.rank}: could not save the partial trace: {inner}",
              file=sys.stderr, flush=True)
    comm.Abort(ABORT_ERROR)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Interrupted as _exc:          # before training started: nothing to record
        os._exit(128 + _exc.signum)
