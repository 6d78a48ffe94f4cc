"""Start an executor job under ``mpiexec`` from the active environment, and report its end.

Equivalent by hand: ``mpiexec -n N python -m executor --model M --strategy S ...`` (with
``--oversubscribe`` for Open MPI when ranks outnumber cores, and ``--allow-run-as-root`` as
root). The launcher checks every input before starting anything; after a failed job it merges
the partial per-rank traces into ``trace.parquet`` and records the error in ``run.json``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from executor import preflight
from executor.config import RunConfig, to_argv
from executor.outputs import write_failure
from hwmodels.errors import GradsyncError

_KILLED = re.compile(r"RANK\s+(\d+)\s+PID\s+\d+\s+(?:RUNNING AT \S+\s+)?KILLED BY SIGNAL:\s*(\d+)",
                     re.S)
_RANK_FAILED = re.compile(r"gradsync exec: rank \d+.*")


class LaunchError(GradsyncError):
    """No usable ``mpiexec``."""


def find_mpiexec() -> str:
    """``mpiexec`` beside this interpreter (the ``mpich`` wheel installs it there), else PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise LaunchError("no mpiexec beside the Python interpreter or on PATH; install the "
                          "executor extra (pip install 'gradsync[executor]')")
    return found


def mpi_flavour(mpiexec: str) -> str:
    """'openmpi', 'mpich' or 'unknown', from ``mpiexec --version``."""
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = out.stdout + out.stderr
    if "Open MPI" in text or "OpenRTE" in text or "open-mpi" in text:
        return "openmpi"
    if "HYDRA" in text or "MPICH" in text or "Intel(R) MPI" in text:
        return "mpich"
    return "unknown"


def build_command(cfg: RunConfig, mpiexec: str, flavour: str) -> list[str]:
    """The ``mpiexec ... python -m executor ...`` command line for ``cfg``."""
    extra: list[str] = []
    if flavour == "openmpi":
        extra.append("--oversubscribe")     # 4 ranks on 2 cores is refused otherwise
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            extra.append("--allow-run-as-root")
    return [mpiexec, *extra, "-n", str(cfg.nprocs), sys.executable, "-m", "executor",
            *to_argv(cfg)]


def launch(cfg: RunConfig, timeout_s: float | None = None) -> int:
    """Check ``cfg``, run the job, and return its exit status (0 on success).

    On failure the partial trace is merged and ``run.json`` records an error that names the
    failing rank where MPI or the rank said which.
    """
    preflight.check(cfg)
    mpiexec = find_mpiexec()
    command = build_command(cfg, mpiexec, mpi_flavour(mpiexec))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=None, stderr=subprocess.PIPE, text=True, env=env)
    tail: deque[str] = deque(maxlen=400)
    reader = threading.Thread(target=_tee, args=(proc.stderr, tail), daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        tail.append(f"gradsync run: job exceeded {timeout_s:g} s and was killed")
    reader.join(timeout=5)
    if rc != 0:
        message = failure_message(rc, list(tail))
        print(f"gradsync run: {message}", file=sys.stderr)
        write_failure(Path(cfg.out), cfg, message, wall_s=time.perf_counter() - start)
    return rc


def _tee(stream, tail: deque) -> None:
    for line in stream:
        sys.stderr.write(line)
        tail.append(line.rstrip("\n"))


def failure_message(rc: int, lines: list[str]) -> str:
    """One line saying which rank failed and how, from the job's stderr."""
    text = "\n".join(lines)
    own = [m.group(0) for m in _RANK_FAILED.finditer(text)]
    if own:
        return f"job failed (exit {rc}): {own[0]}"
    killed = _KILLED.search(text)
    if killed:
        return (f"job failed (exit {rc}): rank {killed.group(1)} was killed by signal "
                f"{killed.group(2)}")
    last = next((line for line in reversed(lines) if line.strip()), "no output")
    return f"job failed (exit {rc}): {last.strip()}"
