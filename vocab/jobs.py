"""Run a child job (``mpiexec ...``) so that nothing of it outlives the caller.

Every command gradsync starts under ``mpiexec`` (``gradsync run``, ``bench-net``, the
calibration protocol, the convergence study) goes through :func:`run_job`:

- the job gets its own process group and session (``start_new_session``), so mpiexec, its
  proxy and every rank can be signalled together, and a Ctrl-C at the terminal reaches the
  job only through us (one orderly path, not two racing ones);
- SIGINT, SIGTERM and SIGHUP sent to this process are forwarded to that group; after
  ``grace_s`` seconds whatever is left of the group is killed (SIGKILL), so a rank stuck in a
  collective cannot keep the job alive;
- a timeout kills the group the same way.

The result says which signal interrupted the job (``JobResult.interrupted``) so the caller can
record it (``run.json``'s ``interrupted`` status) before it exits itself. This module imports
neither torch nor mpi4py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Callable

from vocab.errors import SpecError

__all__ = ["FORWARDED", "GRACE_S", "JobInterrupted", "JobResult", "run_checked",
           "run_job", "signal_exit_status"]

#: The signals a scheduler, ``timeout``, a terminal or an IDE's stop button sends.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds the job has to wind down after a forwarded signal before its group is killed.
GRACE_S = 5.0


@dataclass
class JobResult:
    """How a job ended: its exit status, output, and whether a signal or a timeout ended it."""

    returncode: int
    stdout: str = ""
    stderr: str = ""
    #: The name of the first signal forwarded to the job (``'SIGTERM'``), or None.
    interrupted: str | None = None
    timed_out: bool = False
    #: The last lines of both streams, interleaved as read (for failure messages).
    tail: list[str] = field(default_factory=list)


class JobInterrupted(KeyboardInterrupt):
    """A job was stopped by a forwarded signal; the caller should stop too.

    A KeyboardInterrupt, so code that cleans up on Ctrl-C cleans up here as well; the CLI
    prints one line and exits with the shell's status for the signal (:attr:`exit_status`).
    """

    def __init__(self, signal_name: str, what: str = "the job"):
        super().__init__(f"{what} was interrupted by {signal_name}")
        self.signal_name = signal_name
        self.exit_status = signal_exit_status(signal_name)

    def __str__(self) -> str:
        return str(self.args[0])


#: Ranks per core above which a local job is refused (unless ``--oversubscribe``): each
#: extra rank slows every other, so 1000 ranks on 2 cores would take hours to do nothing.
MAX_RANKS_PER_CORE = 8


def machine_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_ranks(nranks: int, oversubscribe: bool = False, flag: str = "-n") -> str | None:
    """A warning when ``nranks`` local ranks outnumber the cores; SpecError above
    :data:`MAX_RANKS_PER_CORE` per core unless ``oversubscribe``; None when they fit."""
    cores = machine_cores()
    if nranks <= cores:
        return None
    if nranks > MAX_RANKS_PER_CORE * cores and not oversubscribe:
        raise SpecError(flag, nranks, f"at most {MAX_RANKS_PER_CORE * cores} ranks on this "
                        f"machine's {cores} cores ({MAX_RANKS_PER_CORE} per core; pass "
                        "--oversubscribe to run more anyway)")
    return (f"{nranks} ranks on {cores} cores: ranks share cores, so compute and "
            "communication times are not those of a machine with a core per rank")


def signal_exit_status(name: str) -> int:
    """The shell's exit status for a process ended by signal ``name`` (128 + number)."""
    return 128 + int(getattr(signal, name))


def run_job(command: Sequence[str], *, timeout_s: float | None = None,
            grace_s: float = GRACE_S, env: Mapping[str, str] | None = None,
            echo: bool = False, tail_lines: int = 400,
            preexec_fn: Callable[[], None] | None = None) -> JobResult:
    """Run ``command`` in its own process group; forward interrupts; never leave it behind.

    Both streams are captured (and copied to ours as they come when ``echo``). Returns when
    the job and every process of its group are gone.
    """
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            env=dict(env) if env is not None else None, start_new_session=True,
                            preexec_fn=preexec_fn)
    tail: deque[str] = deque(maxlen=tail_lines)
    outs: dict[str, list[str]] = {"stdout": [], "stderr": []}
    readers = [threading.Thread(target=_read, daemon=True,
                                args=(getattr(proc, name), outs[name], tail,
                                      copy if echo else None))
               for name, copy in (("stdout", sys.stdout), ("stderr", sys.stderr))]
    for reader in readers:
        reader.start()
    result = JobResult(returncode=0)
    with _Forwarding(proc, result):
        result.returncode = _wait(proc, result, timeout_s, grace_s)
    for reader in readers:
        reader.join(timeout=5)
    result.stdout, result.stderr = "".join(outs["stdout"]), "".join(outs["stderr"])
    result.tail = list(tail)
    return result


def run_checked(command: Sequence[str], what: str, **kwargs) -> JobResult:
    """:func:`run_job`, raising :class:`JobInterrupted` (naming ``what``) when a signal
    stopped it: for callers that run several jobs and must not start the next."""
    result = run_job(command, **kwargs)
    if result.interrupted is not None:
        raise JobInterrupted(result.interrupted, what)
    return result


def _read(stream: IO[str], into: list[str], tail: deque, copy: IO[str] | None) -> None:
    for line in stream:
        into.append(line)
        tail.append(line.rstrip("\n"))
        if copy is not None:
            copy.write(line)
            copy.flush()


def _wait(proc: subprocess.Popen, result: JobResult, timeout_s: float | None,
          grace_s: float) -> int:
    """Wait for the job; after a signal or the timeout, give it ``grace_s`` then kill it."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            rc = proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if result.interrupted is not None:
            rc = _wind_down(proc, grace_s)
            break
        if deadline is not None and time.monotonic() > deadline:
            result.timed_out = True
            _signal_group(proc, signal.SIGTERM)
            rc = _wind_down(proc, min(grace_s, 2.0))
            break
    _kill_group(proc)       # mpiexec gone, but a rank or proxy of its group may linger
    return rc


def _wind_down(proc: subprocess.Popen, grace_s: float) -> int:
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return proc.wait()


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)     # the group id is mpiexec's pid (its own session)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    _signal_group(proc, signal.SIGKILL)


class _Forwarding:
    """While active, the signals of :data:`FORWARDED` go to the job's group, not to us.

    Signal handlers can only be set from the main thread; elsewhere (a worker thread) the
    job is still killed when the caller is, by the group kill of :func:`_wait`'s caller.
    """

    def __init__(self, proc: subprocess.Popen, result: JobResult):
        self.proc, self.result = proc, result
        self.saved: dict[int, Callable | int | None] = {}

    def _handler(self, signum: int, _frame) -> None:
        if self.result.interrupted is None:
            self.result.interrupted = signal.Signals(signum).name
        _signal_group(self.proc, signum)

    def __enter__(self) -> "_Forwarding":
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED:
                self.saved[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:          # our own failure: take the job down with us
            _kill_group(self.proc)
            self.proc.wait()
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)
