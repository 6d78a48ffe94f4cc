"""Start an executor job under ``mpiexec`` from the active environment, and report its end.

Equivalent by hand: ``mpiexec -n N python -m executor --model M --strategy S ...`` (with
``--oversubscribe`` for Open MPI when ranks outnumber cores, and ``--allow-run-as-root`` as
root). The launcher checks every input before starting anything; after a failed job it merges
the partial per-rank traces into ``trace.parquet`` and records the error in ``run.json``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from executor import deathwatch, preflight
from executor.config import RunConfig, to_argv
from executor.outputs import write_failure, write_interrupted
from executor.tracing import PARTIAL_DIR
from vocab.jobs import check_ranks, run_job, signal_exit_status
from vocab.runrecord import RUN_FILE
from vocab.mpiexec import MpiexecError, find_mpiexec, mpi_flavour, mpiexec_command, python_argv

_HYDRA_PID = re.compile(r"BAD TERMINATION.*?PID\s+(\d+).*?EXIT CODE:\s*(\d+)", re.S)
_OMPI_RANK = re.compile(r"rank\s+(\d+)\s+with PID\s+(\d+).*?(?:exited|signal\s+(\d+))", re.S)
_RANK_FAILED = re.compile(r"gradsync exec: rank \d+.*")


#: No usable ``mpiexec`` (the error of :func:`vocab.mpiexec.find_mpiexec`).
LaunchError = MpiexecError


def build_command(cfg: RunConfig, mpiexec: str, flavour: str) -> list[str]:
    """The ``mpiexec ... python -m executor ...`` command line for ``cfg``."""
    return mpiexec_command(cfg.nprocs, python_argv("executor", *to_argv(cfg)), mpiexec=mpiexec,
                           flavour=flavour)


def launch(cfg: RunConfig, timeout_s: float | None = None, oversubscribe: bool = False) -> int:
    """Check ``cfg``, run the job, and return its exit status (0 on success).

    On failure the partial trace is merged and ``run.json`` records an error that names the
    failing rank where MPI or the rank said which. A SIGINT, SIGTERM or SIGHUP sent to this
    process is forwarded to the whole job (:func:`vocab.jobs.run_job`), which is killed if it
    has not stopped within a few seconds; ``run.json`` then says ``interrupted`` with the step
    reached, and the status is the shell's for that signal (130 for SIGINT).
    """
    preflight.check(cfg)
    crowded = check_ranks(cfg.nprocs, oversubscribe)
    if crowded:
        print(f"gradsync run: warning: {crowded}", file=sys.stderr)
    mpiexec = find_mpiexec()
    command = build_command(cfg, mpiexec, mpi_flavour(mpiexec))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    # Both streams are read: MPICH's hydra reports a killed rank on stdout.
    job = run_job(command, timeout_s=timeout_s, env=env, echo=True)
    wall_s = time.perf_counter() - start
    out = Path(cfg.out)
    if job.interrupted is not None:
        step = write_interrupted(out, cfg, job.interrupted, wall_s=wall_s)
        reached = f" at step {step}" if step is not None and step >= 0 else ""
        print(f"gradsync run: interrupted by {job.interrupted}{reached}; the job was stopped "
              f"and {out / RUN_FILE} says so", file=sys.stderr)
        return signal_exit_status(job.interrupted)
    tail = job.tail
    if job.timed_out:
        tail.append(f"gradsync run: job exceeded {timeout_s:g} s and was killed")
    rc = job.returncode
    if rc != 0:
        message = failure_message(rc, tail, rank_pids(out), _first_death(out))
        print(f"gradsync run: {message}", file=sys.stderr)
        write_failure(out, cfg, message, wall_s=wall_s)
    return rc


def rank_pids(out: Path) -> dict[int, int]:
    """pid -> rank, from the ``pid-rank-R`` files every rank writes at start."""
    found = {}
    for path in (out / PARTIAL_DIR).glob("pid-rank-*"):
        try:
            found[int(path.read_text().strip())] = int(path.name.rsplit("-", 1)[1])
        except (OSError, ValueError):
            continue
    return found


def _first_death(out: Path) -> tuple[int, list[int]] | None:
    time.sleep(0.1)     # the watchers poll every 2 ms; give the last of them time to write
    return deathwatch.first_to_die(out / PARTIAL_DIR)


def failure_message(rc: int, lines: list[str], pids: dict[int, int] | None = None,
                    first: tuple[int, list[int]] | None = None) -> str:
    """One line saying which rank failed and how, from the job's output and death notes."""
    text = "\n".join(lines)
    own = [m.group(0) for m in _RANK_FAILED.finditer(text)]
    if own:
        return f"job failed (exit {rc}): {own[0]}"
    hydra = _HYDRA_PID.search(text)
    if hydra:
        pid, code = int(hydra.group(1)), hydra.group(2)
        rank = (pids or {}).get(pid)
        who = f"rank {rank} (pid {pid})" if rank is not None else f"the rank with pid {pid}"
        if first is not None:
            tied = f" (ranks {first[1]} died within 1 ms)" if first[1] else ""
            who = f"rank {first[0]}{tied}"
        how = f"was killed by signal {code}" if "signal" in text else f"exited with {code}"
        return f"job failed (exit {rc}): {who} {how}"
    ompi = _OMPI_RANK.search(text)
    if ompi:
        return f"job failed (exit {rc}): rank {ompi.group(1)} (pid {ompi.group(2)}) died"
    last = next((line for line in reversed(lines) if line.strip()), "no output")
    return f"job failed (exit {rc}): {last.strip()}"
