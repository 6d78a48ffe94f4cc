"""The convergence study: planning, resuming, refusing, and (MPI tier) the real strategies'
curves: every synchronous strategy is the same SGD, step for step."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from convergence.study import (
    StudyError, StudyPlan, _subprocess_runner, plan_runs, run_command, run_study,
    steps_to_target,
)
from vocab.errors import SpecError

TINY = StudyPlan(strategies=("sync", "layerwise", "bucketed", "crossiter", "delayed"),
                 staleness=(2,),
                 ranks=(2,), seeds=1, batch=16, steps=20, eval_every=5, target=0.3)


def test_plan_has_delayed_once_per_staleness_and_every_seed() -> None:
    plan = StudyPlan(strategies=("sync", "delayed"), staleness=(1, 2, 4), ranks=(2, 4), seeds=3)
    keys = plan_runs(plan)
    assert len(keys) == 2 * 3 * (1 + 3) and len({k.name for k in keys}) == len(keys)


def test_run_command_says_what_the_run_is() -> None:
    key = [k for k in plan_runs(TINY) if k.strategy == "delayed"][0]
    cmd = run_command(TINY, key, "OUT")
    for flag, value in (("--strategy", "delayed"), ("--staleness", "2"), ("-n", "2"),
                        ("--eval-every", "5"), ("--data", "digits")):
        assert cmd[cmd.index(flag) + 1] == value


def test_linear_scaling_rule() -> None:
    plan = StudyPlan(lr=0.1, batch=16, base_batch=32, linear_scaling=True)
    assert plan.lr_for(4) == pytest.approx(0.1 * 64 / 32)
    assert StudyPlan(lr=0.1).lr_for(4) == 0.1
    cmd = run_command(plan, plan_runs(plan)[0], "OUT")
    assert cmd[cmd.index("--base-batch") + 1] == "32"    # the executor applies the rule


def test_the_executors_schedule_warms_up_linearly_to_the_scaled_rate() -> None:
    from executor.config import scheduled_lr

    lrs = [scheduled_lr(0.1, t, global_batch=128, base_batch=32, warmup_steps=4)
           for t in range(6)]
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    assert scheduled_lr(0.1, 0, 128) == 0.1


def test_delayed_at_staleness_zero_is_left_to_sync() -> None:
    plan = StudyPlan(strategies=("sync", "delayed"), staleness=(0, 2), seeds=1)
    assert [(k.strategy, k.staleness) for k in plan_runs(plan)] == [("sync", 0), ("delayed", 2)]


def test_a_run_that_refuses_its_settings_stops_the_study_with_its_reason(tmp_path) -> None:
    reason = "nprocs * batch: got 4096, expected at most 1348 (training samples in the data)"
    with pytest.raises(StudyError, match=r"mlp-digits-sync-n2-s0: nprocs \* batch"):
        run_study(TINY, tmp_path / "s", progress=False, runner=lambda cmd: reason)


@pytest.mark.parametrize("kwargs,field", [({"staleness": (-1,)}, "staleness"),
                                          ({"target": 1.5}, "target"),
                                          ({"strategies": ("snyc",)}, "strategies"),
                                          ({"seeds": 0}, "seeds")])
def test_bad_plans_name_the_field(kwargs, field) -> None:
    with pytest.raises(SpecError, match=field):
        StudyPlan(**kwargs)


def test_another_studys_folder_or_a_users_files_are_refused(tmp_path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(SpecError, match="--out"):
        run_study(TINY, tmp_path, progress=False, runner=lambda cmd: 0)
    other = tmp_path / "other"
    other.mkdir()
    (other / "study.json").write_text(json.dumps({"plan": {"steps": 1}}))
    with pytest.raises(StudyError, match="other settings"):
        run_study(TINY, other, progress=False, runner=lambda cmd: 0)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_a_failed_run_stops_the_study_naming_it(tmp_path) -> None:
    with pytest.raises(StudyError, match="mlp-digits-sync-n2-s0 failed"):
        run_study(TINY, tmp_path / "s", progress=False, runner=lambda cmd: 1)


@pytest.mark.mpi
@pytest.mark.slow
def test_synchronous_strategies_share_one_curve_and_the_study_resumes(tmp_path) -> None:
    out = tmp_path / "study"
    curves = run_study(TINY, out, progress=False)
    by = {s: g.sort_values("step") for s, g in curves.groupby("strategy")}
    def step_losses(name: str) -> np.ndarray:      # every step's train loss, not only evals
        run = out / "runs" / f"mlp-digits-{name}-n2-s0"
        return pd.read_csv(run / "metrics.csv").sort_values("step")["loss"].to_numpy()

    sync_steps = step_losses("sync")
    assert len(sync_steps) == TINY.steps
    for name in ("layerwise", "bucketed", "crossiter"):
        np.testing.assert_allclose(step_losses(name), sync_steps, rtol=1e-5,
                                   err_msg=f"{name} per-step train loss")
        for col in ("train_loss", "test_loss", "test_accuracy"):
            np.testing.assert_allclose(by[name][col].to_numpy(), by["sync"][col].to_numpy(),
                                       rtol=1e-5, err_msg=f"{name} {col}")
    assert not np.allclose(by["delayed"]["test_loss"], by["sync"]["test_loss"])
    assert set(curves["lr_schedule"]) == {"constant"}
    assert (out / "penalty.csv").exists() and len(steps_to_target(curves, 0.3)) == 5
    # Resume: an interrupted run (half-written folder) is moved aside and redone; finished
    # runs are not repeated.
    victim = out / "runs" / "mlp-digits-delayed-d2-n2-s0"
    (victim / "run.json").write_text(json.dumps({"status": "running"}))
    launched = []

    def runner(cmd):
        launched.append(cmd)
        return _subprocess_runner(cmd)

    again = run_study(TINY, out, progress=False, runner=runner)
    assert len(launched) == 1 and "delayed" in launched[0]
    assert (out / "runs" / "mlp-digits-delayed-d2-n2-s0.interrupted").is_dir()
    assert len(again) == len(curves)


def cli(*argv: str, capsys=None) -> tuple[int, str]:
    from gradsync.cli.main import main

    status = main(list(argv))
    return status, capsys.readouterr().err if capsys else ""


def test_cli_refuses_negative_staleness_in_one_line(tmp_path, capsys) -> None:
    status, err = cli("convergence", "--staleness", "1,-2", "--out", str(tmp_path / "s"),
                      capsys=capsys)
    assert status == 2 and "staleness" in err and "-2" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow      # starts `gradsync run` (torch) in a subprocess; it stops before mpiexec
def test_cli_refuses_more_ranks_than_samples_naming_the_limit(tmp_path, capsys) -> None:
    # digits has 1348 training samples: 100 ranks x 16 is more than one global batch holds
    status, err = cli("convergence", "--strategies", "sync", "-n", "100", "--seeds", "1",
                      "--no-progress", "--out", str(tmp_path / "s"), capsys=capsys)
    assert status == 2 and "nprocs * batch" in err and "1348" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_says_when_no_run_reached_the_target(tmp_path, capsys, monkeypatch) -> None:
    import gradsync.cli.convergence as conv

    curves = pd.DataFrame({"model": "mlp-digits", "strategy": "sync", "staleness": 0,
                           "ranks": 2, "global_batch": 32, "seed": 0, "step": [10, 20],
                           "test_accuracy": [0.5, 0.8]})
    monkeypatch.setattr(conv, "run_study", lambda plan, out, progress: curves)
    status, err = cli("convergence", "--target", "0.99", "--out", str(tmp_path / "s"),
                      capsys=capsys)
    assert status == 2 and "no run reached test accuracy 0.99" in err and "0.800" in err
