"""Every strategy trains to the single-process reference weights under real MPI ranks.

``sync``, ``layerwise``, ``bucketed``, ``crossiter`` and ``ddp`` must equal single-process SGD
with momentum on the global batch; ``delayed`` must equal the staleness-d reference rule.
float64 keeps the comparison about semantics, not summation order.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mpi4py")

from executor.config import RunConfig, exec_strategy, to_argv  # noqa: E402
from executor.reference import max_relative_difference, reference_train  # noqa: E402
from vocab.mpiexec import mpiexec_command, python_argv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 240


def run_executor(mpiexec: str, nprocs: int, out: Path, *args: str,
                 timeout_s: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """``mpiexec -n N python -m executor ARGS --out OUT`` with a timeout."""
    command = mpiexec_command(nprocs, python_argv("executor", *args, "--out", str(out)),
                              mpiexec=mpiexec)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def tiny_config(strategy: str, nprocs: int, out: Path, staleness: int | None = None,
                **kw) -> RunConfig:
    """The configuration these tests train: tiny-cnn on digits, float64, 4 steps (``delayed``
    at staleness 1 unless told; the other strategies take none)."""
    if strategy == "delayed" and staleness is None:
        staleness = 1
    settings = dict(nprocs=nprocs, model="tiny-cnn",
                    strategy=exec_strategy(strategy, bucket_mb=0.002, first_bucket_mb=0.001,
                                           staleness=staleness),
                    batch=6, steps=4, out=str(out), data="digits", dtype="float64", lr=0.05,
                    momentum=0.9, weight_decay=1e-4)
    settings.update(kw)
    return RunConfig(**settings)


def argv_of(cfg: RunConfig) -> list[str]:
    """The executor's arguments for ``cfg`` (without ``--out``: run_executor adds it)."""
    argv = to_argv(cfg)
    at = argv.index("--out")
    return argv[:at] + argv[at + 2:]


CASES = [(s, n) for n in (2, 4) for s in ("sync", "layerwise", "bucketed", "delayed",
                                           "crossiter", "ddp")]


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("strategy,nprocs", CASES)
def test_strategy_matches_single_process_reference(mpiexec, tmp_path, strategy, nprocs):
    cfg = tiny_config(strategy, nprocs, tmp_path / "run")
    done = run_executor(mpiexec, nprocs, tmp_path / "run", *argv_of(cfg))
    assert done.returncode == 0, done.stderr[-3000:]
    weights = torch.load(tmp_path / "run" / "model.pt")
    assert max_relative_difference(weights, reference_train(cfg)) < 1e-5


@pytest.mark.mpi
def test_delayed_with_staleness_two_matches_its_rule(mpiexec, tmp_path):
    cfg = tiny_config("delayed", 2, tmp_path / "run", staleness=2, steps=5)
    done = run_executor(mpiexec, 2, tmp_path / "run", *argv_of(cfg))
    assert done.returncode == 0, done.stderr[-3000:]
    weights = torch.load(tmp_path / "run" / "model.pt")
    assert max_relative_difference(weights, reference_train(cfg)) < 1e-5
    # ... and it is not the synchronous result: staleness changes the trajectory.
    sync = reference_train(tiny_config("sync", 2, tmp_path / "x", steps=5))
    assert max_relative_difference(weights, sync) > 1e-3


def test_reference_of_delayed_makes_no_update_in_the_first_d_steps(tmp_path):
    start = reference_train(tiny_config("delayed", 2, tmp_path, staleness=3, steps=1))
    after = reference_train(tiny_config("delayed", 2, tmp_path, staleness=3, steps=3))
    assert max_relative_difference(after, start) == 0.0


@pytest.mark.mpi
def test_local_run_trains_each_replica_on_its_own_shard(mpiexec, tmp_path):
    """``--local``: no exchange, so rank 0's weights are SGD on rank 0's shard alone, and
    not the synchronous result on the global batch."""
    cfg = tiny_config("sync", 2, tmp_path / "run", local=True)
    done = run_executor(mpiexec, 2, tmp_path / "run", *argv_of(cfg), "--local")
    assert done.returncode == 0, done.stderr[-3000:]
    weights = torch.load(tmp_path / "run" / "model.pt")
    assert max_relative_difference(weights, reference_train(cfg)) < 1e-5
    exchanged = reference_train(tiny_config("sync", 2, tmp_path / "x"))
    assert max_relative_difference(weights, exchanged) > 1e-3
