"""An interrupt sent to ``gradsync run`` alone stops the whole MPI job and is recorded.

A scheduler, ``timeout`` or an IDE's stop button signals only the process it started, not
its process group; the launcher must forward the signal to mpiexec, its proxy and every rank
(:mod:`vocab.jobs`), so that nothing of the job outlives it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mpi4py")

ROOT = Path(__file__).resolve().parent.parent


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("signum,group", [(signal.SIGTERM, False), (signal.SIGINT, False),
                                          (signal.SIGINT, True)])
def test_signal_to_gradsync_alone_stops_the_job(tmp_path: Path, signum: int,
                                               group: bool) -> None:
    """``group``: Ctrl-C at a terminal, which signals gradsync's whole process group."""
    out = tmp_path / "run"          # unique per test: the marker of this job's processes
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradsync", "run", "-n", "2", "--model", "tiny-mlp",
         "--batch", "8", "--data", "digits", "--steps", "100000", "--flush-every", "2",
         "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)     # its own group: the signal reaches it alone
    try:
        assert wait_for(lambda: list((out / "partial").glob("metrics-*.csv")), 90), \
            "the job never started training"
        assert len(processes_mentioning(str(out))) >= 3    # mpiexec and both ranks
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)                        # gradsync alone, not its group
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert wait_for(lambda: not processes_mentioning(str(out)), 10), \
        f"still running 10 s later: {processes_mentioning(str(out))}"
    assert proc.returncode == 128 + signum
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert record["interrupted"]["signal"] == signal.Signals(signum).name
    assert record["interrupted"]["step"] >= 0       # it had started training
    assert "interrupted" in output.splitlines()[-1]
