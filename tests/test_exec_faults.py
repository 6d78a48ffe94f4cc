"""A failing rank takes the job down quickly, naming itself; checkpoints resume bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mpi4py")

from vocab.trace import read_trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def gradsync_run(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """``gradsync run ARGS`` in a subprocess, with a timeout."""
    return subprocess.run([sys.executable, "-m", "gradsync", "run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


# Parts by steps alone (--trace-flush-s 0): a rank killed at step 6 has flushed steps 0-3.
BASE = ["--model", "tiny-mlp", "--batch", "8", "--data", "digits", "--flush-every", "2",
        "--trace-flush-s", "0"]


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_quickly_and_names_itself(mpiexec, tmp_path, mode):
    out = tmp_path / "run"
    started = time.monotonic()
    done = gradsync_run("-n", "4", *BASE, "--strategy", "layerwise", "--steps", "200",
                        "--fail-at-step", "6", "--fail-rank", "2", "--fail-mode", mode,
                        "--out", str(out))
    took = time.monotonic() - started
    assert done.returncode != 0
    assert took < 60      # startup of 4 oversubscribed ranks included; the teardown is seconds
    last = done.stderr.strip().splitlines()[-1]
    assert "rank 2" in last, done.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "rank 2" in record["error"]
    trace = read_trace(out)     # what was flushed before the failure stays readable
    assert set(trace["rank"]) == {0, 1, 2, 3}
    assert trace["iteration"].max() >= 3


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["delayed", "crossiter"])
def test_resume_reaches_the_uninterrupted_weights_bit_for_bit(mpiexec, tmp_path, strategy):
    common = ["-n", "2", "--model", "tiny-cnn", "--batch", "8", "--data", "digits",
              "--strategy", strategy, "--steps", "8", "--checkpoint-every", "3"]
    whole = gradsync_run(*common, "--out", str(tmp_path / "a"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    crashed = gradsync_run(*common, "--out", str(tmp_path / "b"), "--fail-at-step", "5",
                           "--fail-rank", "1", "--fail-mode", "kill")
    assert crashed.returncode != 0
    resumed = gradsync_run(*common, "--out", str(tmp_path / "b"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = torch.load(tmp_path / "a" / "model.pt")
    b = torch.load(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    trace = read_trace(tmp_path / "b")
    assert set(range(8)) <= set(trace["iteration"])   # checkpointed steps kept, rest redone
    assert json.loads((tmp_path / "b" / "run.json").read_text())["resumed_from_step"] == 3
