"""The noisy quadratic model trained by the real strategies under MPI against its exact
recurrence: steps-to-target at each staleness within the seeds' interval, and a staleness past
the stability bound diverges without crashing the run (it "did not reach the target")."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from convergence.nqm import NoisyQuadratic, Optimiser, expected_loss, steps_to_target

pytest.importorskip("torch")
pytest.importorskip("mpi4py")

LR, MOMENTUM, RANKS, BATCH, STEPS = 0.05, 0.9, 2, 128, 80
NQM = NoisyQuadratic.standard(400)           # what executor/models/nqm.py builds
TARGET = 0.3 * NQM.initial_loss


def train(tmp_path, strategy: str, staleness: int, seed: int) -> np.ndarray:
    """Loss after 0..STEPS-1 updates of one executor run (its recorded loss is exact)."""
    out = tmp_path / f"{strategy}-d{staleness}-s{seed}"
    cmd = [sys.executable, "-m", "gradsync", "run", "-n", str(RANKS), "--model", "nqm",
           "--strategy", strategy, "--batch", str(BATCH), "--steps", str(STEPS),
           "--lr", str(LR), "--momentum", str(MOMENTUM), "--seed", str(seed), "--no-trace",
           "--out", str(out)] + (["--staleness", str(staleness)] if staleness else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return pd.read_csv(out / "metrics.csv").sort_values("step")["loss"].to_numpy()


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("strategy,staleness", [("sync", 0), ("delayed", 4)])
def test_measured_steps_to_target_agree_with_the_recurrence(mpiexec, tmp_path, strategy,
                                                            staleness) -> None:
    exact_curve = expected_loss(NQM, Optimiser(LR, RANKS * BATCH, MOMENTUM, staleness), STEPS)
    exact = steps_to_target(exact_curve, TARGET)
    measured = np.array([steps_to_target(train(tmp_path, strategy, staleness, seed), TARGET)
                         for seed in range(3)], dtype=float)
    half_width = 3 * measured.std(ddof=1) / math.sqrt(len(measured)) + 1   # +1: whole steps
    assert exact is not None and abs(measured.mean() - exact) <= half_width, (measured, exact)


@pytest.mark.mpi
@pytest.mark.slow
def test_staleness_past_the_stability_bound_diverges_and_never_reaches_the_target(
        mpiexec, tmp_path) -> None:
    assert steps_to_target(expected_loss(NQM, Optimiser(LR, RANKS * BATCH, MOMENTUM, 8),
                                         STEPS), TARGET) is None
    losses = train(tmp_path, "delayed", 8, seed=0)
    assert steps_to_target(losses, TARGET) is None and not losses[-1] < losses[0]
