"""``gradsync run`` checks its inputs before starting anything and overwrites nothing."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("mpi4py")

from executor import data as datamod  # noqa: E402
from executor.config import RunConfig, add_run_arguments, exec_strategy, to_argv  # noqa: E402
from executor.launch import build_command, failure_message  # noqa: E402
from executor.outputs import mean_iteration_time  # noqa: E402
from vocab.errors import SpecError  # noqa: E402
from vocab.strategies import StrategySpec  # noqa: E402
from vocab.units import MiB  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, capsys=None) -> subprocess.CompletedProcess:
    """``gradsync run ARGS`` as a real command, or with ``capsys`` in this process (what the
    command runs, less the 4 s of starting Python and importing torch each time)."""
    if capsys is None:
        return subprocess.run([sys.executable, "-m", "gradsync", "run", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
    from gradsync.cli.main import main

    capsys.readouterr()
    try:
        status = main(["run", *args])
    except SystemExit as exc:          # argparse's usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["gradsync", "run", *args], status, out, err)


GOOD = ["-n", "2", "--model", "tiny-mlp", "--strategy", "sync", "--batch", "4", "--steps", "2"]


@pytest.mark.parametrize("change,expected", [
    ({"--model": "no-such-net"}, "model: got 'no-such-net'"),
    ({"--strategy": "telepathy"}, "strategy: got 'telepathy'"),
    ({"--batch": "0"}, "--batch: got '0'"),
    ({"-n": "1000", "--data": "digits"}, "nprocs * batch"),
    ({"--data": "npz:/no/such/file.npz"}, "readable .npz"),
    ({"--model": "resnet18-ci", "--data": "digits"}, "64-feature vectors"),
    ({"--strategy": "ddp", "--local": None}, "local: got True"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, capsys, change, expected):
    args = dict(zip(GOOD[::2], GOOD[1::2]))
    args.update(change)
    out = tmp_path / "run"
    done = run_cli(*[x for kv in args.items() for x in kv if x is not None], "--out", str(out),
                   capsys=capsys)
    assert done.returncode == 2
    assert expected in done.stderr and done.stderr.count("\n") == 1
    assert not out.exists()


def test_the_command_itself_exits_2_with_one_line(tmp_path):
    out = tmp_path / "run"
    done = run_cli(*GOOD, "--model", "no-such-net", "--out", str(out))
    assert done.returncode == 2
    assert "model: got 'no-such-net'" in done.stderr and done.stderr.count("\n") == 1
    assert not out.exists()


def test_an_npz_without_x_and_y_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, a=np.zeros((4, 2)))
    with pytest.raises(SpecError, match="arrays 'x' and 'y'"):
        datamod.load_arrays(f"npz:{path}", 0)


def test_a_directory_holding_another_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"keep": true}')
    done = run_cli(*GOOD, "--out", str(out), capsys=capsys)
    assert done.returncode == 2 and "holds another run" in done.stderr
    assert (out / "run.json").read_text() == '{"keep": true}'


def test_resume_needs_a_checkpoint(tmp_path, capsys):
    done = run_cli(*GOOD, "--out", str(tmp_path), "--resume", capsys=capsys)
    assert done.returncode == 2 and "checkpoint" in done.stderr


def test_open_mpi_gets_oversubscribe_and_the_ranks_run_the_executor(tmp_path):
    cfg = RunConfig(nprocs=4, model="tiny-mlp", strategy=exec_strategy("sync"), batch=2,
                    steps=1, out=str(tmp_path))
    command = build_command(cfg, "/x/mpiexec", "openmpi")
    assert command[:2] == ["/x/mpiexec", "--oversubscribe"]
    assert command[command.index("-n") + 1] == "4"
    assert command[command.index("-m") + 1] == "executor"
    assert "--oversubscribe" not in build_command(cfg, "/x/mpiexec", "mpich")
    assert to_argv(cfg)[to_argv(cfg).index("--strategy") + 1] == "sync"
    assert "--local" not in to_argv(cfg)
    assert "--local" in build_command(replace(cfg, local=True), "/x/mpiexec", "mpich")


def test_failure_messages_name_the_rank():
    own = ["noise", "gradsync exec: rank 3 of 4 failed at step 2: RuntimeError: boom"]
    assert "rank 3 of 4" in failure_message(1, own)
    hydra = ["=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES", "=   PID 77 RUNNING AT h",
             "=   EXIT CODE: 9", "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed "
             "(signal 9)"]
    assert "rank 1 " in failure_message(9, hydra, {77: 1})
    assert "rank 2 " in failure_message(9, hydra, {77: 1}, (2, []))


def test_shards_are_disjoint_and_make_up_the_global_batch():
    arrays = datamod.load_arrays("digits", seed=3)
    x, y = datamod.global_batch(arrays, None, 3, step=5, nprocs=4, batch=8)
    idx = datamod.global_indices(arrays, 3, 5, 32)
    assert len(set(idx.tolist())) == 32
    for r in range(4):
        xr, _ = datamod.shard(arrays, None, 3, 5, r, 4, 8)
        assert (xr == x[r * 8:(r + 1) * 8]).all()


def test_the_iteration_time_is_the_mean_gap_between_iteration_starts():
    frame = pd.DataFrame({"rank": [0] * 5, "iteration": [0, 1, 2, 3, 4],
                          "start_s": [0.0, 1.0, 3.0, 4.0, 6.0],
                          "end_s": [0.5, 2.5, 3.5, 5.5, 7.0]})
    assert mean_iteration_time(frame, warmup=2) == pytest.approx((1.0 + 2.0 + 1.0) / 3)
    assert mean_iteration_time(frame, warmup=5) is None
    assert mean_iteration_time(None, warmup=2) is None


def parse(*argv: str) -> RunConfig:
    import argparse
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return RunConfig.from_args(parser.parse_args([*GOOD[2:], "--out", "x", *argv]))


def test_the_strategy_is_one_spec_in_bytes_converted_once_at_parse_time():
    cfg = parse("--strategy", "bucketed", "--bucket-mb", "0.002", "--first-bucket-mb", "0.001")
    assert cfg.strategy == StrategySpec("bucketed", bucket_bytes=int(0.002 * MiB),
                                        first_bucket_bytes=int(0.001 * MiB))
    assert parse().strategy == StrategySpec("sync")          # the shared defaults
    assert parse("--strategy", "ddp").strategy.is_baseline
    # the ranks get the very bytes of the launcher's spec
    again = parse(*to_argv(replace(cfg, strategy=StrategySpec("delayed", bucket_bytes=12345,
                                                               first_bucket_bytes=7,
                                                               staleness=3)))[2:])
    assert again.strategy == StrategySpec("delayed", bucket_bytes=12345, first_bucket_bytes=7,
                                          staleness=3)
    with pytest.raises(SpecError, match="bucket_mb: got 0.0"):       # the API's check
        exec_strategy("bucketed", 0.0)
    with pytest.raises(SystemExit):                                   # the flag's range
        parse("--bucket-mb", "0")
    with pytest.raises(SystemExit):
        parse("--strategy", "delayed", "--staleness", "0")
    with pytest.raises(SpecError, match="staleness"):                 # sync ignores it
        parse("--strategy", "sync", "--staleness", "2")
    with pytest.raises(SpecError, match="strategy"):
        RunConfig(nprocs=1, model="tiny-mlp", strategy="sync", batch=1, steps=1, out="x")
