"""vocab.jobs: a job started through run_job never outlives its caller.

A stand-in for mpiexec (a process that starts two "ranks" which ignore nothing and sleep)
is run by a small driver through :func:`vocab.jobs.run_job`; the driver alone is signalled,
as a scheduler or ``timeout`` would. Every process of the job must be gone soon after, and
the driver must report the signal. No MPI needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vocab.jobs import JobInterrupted, run_checked, run_job, signal_exit_status

ROOT = Path(__file__).resolve().parent.parent

#: mpiexec's stand-in: two children that sleep; ``stubborn`` ranks ignore SIGTERM (a rank
#: stuck in a collective), so only the group kill after the grace can end them.
FAKE_JOB = textwrap.dedent("""
    import signal, subprocess, sys, time
    stubborn = sys.argv[1] == "stubborn"
    code = ("import signal, time\\n"
            + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n" if stubborn else "")
            + "time.sleep(300)")
    ranks = [subprocess.Popen([sys.executable, "-c", code, "MARK"]) for _ in range(2)]
    print("started", flush=True)
    for rank in ranks:
        rank.wait()
""")

DRIVER = textwrap.dedent("""
    import sys
    from vocab.jobs import run_job, signal_exit_status
    result = run_job([sys.executable, "-c", sys.argv[1], sys.argv[2]], grace_s=1.0)
    print("interrupted", result.interrupted, flush=True)
    sys.exit(signal_exit_status(result.interrupted) if result.interrupted else result.returncode)
""")


def marked_processes(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if mark.encode() in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs procfs (Linux)")
@pytest.mark.parametrize("signum,kind", [(signal.SIGTERM, "polite"), (signal.SIGINT, "polite"),
                                         (signal.SIGHUP, "polite"),
                                         (signal.SIGTERM, "stubborn")])
def test_a_signal_to_the_caller_alone_ends_the_whole_job(signum: int, kind: str) -> None:
    mark = f"MARK-{os.getpid()}-{signum}-{kind}"
    fake = FAKE_JOB.replace('"MARK"', repr(mark))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, fake, kind], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(marked_processes(mark)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(marked_processes(mark)) == 2, "the fake ranks never started"
        os.kill(driver.pid, signum)
        output, _ = driver.communicate(timeout=20)
    finally:
        for pid in marked_processes(mark):
            os.kill(pid, signal.SIGKILL)
        if driver.poll() is None:
            driver.kill()
    assert not marked_processes(mark)
    assert driver.returncode == signal_exit_status(signal.Signals(signum).name)
    assert f"interrupted {signal.Signals(signum).name}" in output
    assert "Traceback" not in output


def test_a_timeout_kills_the_job_and_says_so() -> None:
    started = time.monotonic()
    result = run_job([sys.executable, "-c", "import time; time.sleep(60)"], timeout_s=0.5,
                     grace_s=0.5)
    assert result.timed_out and result.interrupted is None
    assert time.monotonic() - started < 10


def test_output_is_captured_and_a_clean_exit_is_not_an_interrupt() -> None:
    result = run_checked([sys.executable, "-c", "import sys; print('out'); "
                          "print('err', file=sys.stderr); sys.exit(3)"], "a job")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.interrupted is None and not result.timed_out
    assert JobInterrupted("SIGTERM").exit_status == 128 + signal.SIGTERM
