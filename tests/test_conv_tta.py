"""Staleness penalty tables and time-to-accuracy: hand-worked cases and the simulator's own times."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from convergence.nqm import NoisyQuadratic, Optimiser, sample_losses, steps_to_target
from convergence.penalty import (
    Penalty, PenaltyError, PenaltyTable, nqm_penalty, penalty_from_steps, read_penalty_csv,
)
from convergence.tta import time_to_accuracy
from simulator.api import simulate
from vocab.errors import GradsyncError, SpecError


def steps_frame(rows: list[tuple[int, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["staleness", "global_batch", "seed", "steps_to_target"])


def test_penalty_from_steps_is_the_ratio_of_mean_steps() -> None:
    frame = steps_frame([(0, 64, s, 100.0) for s in range(3)]
                        + [(2, 64, s, v) for s, v in enumerate((140.0, 150.0, 160.0))])
    [row] = penalty_from_steps(frame).rows
    assert (row.staleness, row.global_batch) == (2, 64)
    assert row.penalty == pytest.approx(1.5)
    assert 1.4 <= row.lo <= 1.5 <= row.hi <= 1.6


def test_a_seed_that_never_reaches_the_target_makes_the_penalty_unbounded() -> None:
    frame = steps_frame([(0, 64, 0, 100.0), (0, 64, 1, 110.0), (4, 64, 0, 300.0),
                         (4, 64, 1, -1.0)])
    [row] = penalty_from_steps(frame).rows
    assert math.isinf(row.penalty)


def test_lookup_picks_the_staleness_and_the_nearest_global_batch_in_log_scale() -> None:
    table = PenaltyTable((Penalty(2, 64, 1.2, 1.1, 1.3), Penalty(2, 1024, 1.5, 1.4, 1.6),
                          Penalty(4, 64, 2.0, 1.8, 2.2)))
    assert table.lookup(0, 99).penalty == 1.0
    assert table.lookup(2, 200).global_batch == 64        # log(200/64) < log(1024/200)
    assert table.lookup(2, 400).global_batch == 1024
    with pytest.raises(PenaltyError, match=r"d=3.*\[2, 4\]"):
        table.lookup(3, 64)


def test_a_users_csv_is_read_and_its_bad_cells_are_named(tmp_path) -> None:
    good = tmp_path / "p.csv"
    good.write_text("staleness,global_batch,penalty,penalty_lo,penalty_hi\n2,256,1.25,1.2,1.3\n")
    assert read_penalty_csv(good).lookup(2, 256).penalty == 1.25
    bad = tmp_path / "bad.csv"
    bad.write_text("staleness,global_batch,penalty\n2,256,-1\n")
    with pytest.raises(SpecError, match=r"bad.csv:2 penalty"):
        read_penalty_csv(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("staleness,penalty\n2,1.5\n")
    with pytest.raises(PenaltyError, match="global_batch"):
        read_penalty_csv(missing)


@pytest.mark.slow  # a few seconds: samples the noisy quadratic
def test_nqm_penalty_matches_sampled_runs_of_the_same_model() -> None:
    table = nqm_penalty([2], global_batch=256, lr=0.05, momentum=0.5, dims=400)
    nqm, target = NoisyQuadratic.standard(400), 0.1 * NoisyQuadratic.standard(400).initial_loss
    runs = {d: steps_to_target(sample_losses(nqm, Optimiser(0.05, 256, 0.5, d), 3000, 30, d),
                               target) for d in (0, 2)}
    sampled = runs[2].mean() / runs[0].mean()
    assert table.lookup(2, 256).penalty == pytest.approx(sampled, rel=0.02)


@pytest.mark.slow  # a few seconds: samples the noisy quadratic
def test_nqm_penalty_grows_with_staleness_and_is_unbounded_past_stability() -> None:
    table = nqm_penalty([1, 2, 4, 32], global_batch=1024)
    pens = [table.lookup(d, 1024).penalty for d in (1, 2, 4, 32)]
    assert all(p >= 1 for p in pens) and pens == sorted(pens) and math.isinf(pens[-1])


def test_time_is_steps_times_the_simulated_iteration_time_and_ranked() -> None:
    penalty = PenaltyTable((Penalty(2, 64, 1.5, 1.4, 1.6),))
    result = time_to_accuracy("dgx1-p100", "alexnet-ci", ["sync", "bucketed", "delayed"],
                              sync_steps=1000, penalty=penalty, staleness=(2,), batch=8)
    frame = result.frame.set_index("strategy")
    for name, steps in (("sync", 1000), ("bucketed", 1000), ("delayed", 1500)):
        it = simulate("dgx1-p100", "alexnet-ci", 8, name,
                      staleness=2 if name == "delayed" else None).iteration_time_s
        assert frame.loc[name, "time_s"] == pytest.approx(steps * it)
    assert list(result.frame["time_s"]) == sorted(result.frame["time_s"])
    assert result.global_batch == 8 * 8


def test_a_diverging_staleness_ranks_last_with_infinite_time() -> None:
    penalty = PenaltyTable((Penalty(8, 64, math.inf, math.inf, math.inf),))
    result = time_to_accuracy("dgx1-p100", "alexnet-ci", ["sync", "delayed"], 1000, penalty,
                              (8,), batch=8)
    assert result.frame.iloc[-1]["strategy"] == "delayed"
    assert math.isinf(result.frame.iloc[-1]["time_s"]) and result.best() == "sync"


@pytest.mark.parametrize("kwargs,field", [({"sync_steps": 0}, "sync_steps"),
                                          ({"sync_steps": 10, "seeds": 0}, "seeds"),
                                          ({"sync_steps": 10, "strategies": ["snyc"]},
                                           "strategies")])
def test_bad_time_to_accuracy_inputs_name_the_field(kwargs, field) -> None:
    with pytest.raises(GradsyncError, match=field):
        time_to_accuracy("dgx1-p100", "alexnet-ci", **kwargs)


@pytest.mark.slow  # a few seconds: samples the noisy quadratic
def test_cli_ranks_and_refuses_a_missing_step_count() -> None:
    cmd = [sys.executable, "-m", "gradsync", "tta", "--cluster", "dgx1-p100", "--model",
           "alexnet-ci", "--batch", "8"]
    ok = subprocess.run(cmd + ["--sync-steps", "500", "--staleness", "1"], capture_output=True,
                        text=True)
    assert ok.returncode == 0 and "fastest to the target" in ok.stdout
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 2 and "--sync-steps" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
