"""The one mpiexec command builder: Open MPI gets its flags, MPICH none; both find the launcher."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from vocab import mpiexec as mpx
from vocab.errors import GradsyncError
from vocab.mpiexec import (MpiexecError, find_mpiexec, is_open_mpi, mpi_flavour, mpiexec_command,
                           python_argv)

ARGV = python_argv("executor", "--model", "tiny-mlp")


def fake_mpiexec(directory: Path, version: str) -> str:
    """An executable ``mpiexec`` whose ``--version`` prints ``version``."""
    path = directory / "mpiexec"
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture()
def as_root(monkeypatch: pytest.MonkeyPatch):
    def set_root(root: bool) -> None:
        monkeypatch.setattr(mpx, "_is_root", lambda: root)
    return set_root


def test_open_mpi_gets_oversubscribe_and_root_only_as_root(as_root) -> None:
    as_root(False)
    command = mpiexec_command(4, ARGV, mpiexec="/x/mpiexec", flavour="openmpi")
    assert command == ["/x/mpiexec", "--oversubscribe", "-n", "4", *ARGV]
    as_root(True)
    command = mpiexec_command(4, ARGV, mpiexec="/x/mpiexec", flavour="openmpi")
    assert command[:3] == ["/x/mpiexec", "--oversubscribe", "--allow-run-as-root"]
    assert "--oversubscribe" not in mpiexec_command(2, ARGV, mpiexec="/x/mpiexec",
                                                    flavour="openmpi", oversubscribe=False)


@pytest.mark.parametrize("flavour", ["mpich", "unknown"])
def test_mpich_and_unknown_get_no_flags_even_as_root(as_root, flavour: str) -> None:
    as_root(True)
    assert mpiexec_command(2, ARGV, mpiexec="/m/mpiexec", flavour=flavour) == \
        ["/m/mpiexec", "-n", "2", *ARGV]


def test_env_goes_to_every_rank_in_each_launchers_syntax() -> None:
    env = {"OMP_NUM_THREADS": "1"}
    assert mpiexec_command(2, ARGV, env=env, mpiexec="m", flavour="mpich")[1:4] == \
        ["-genv", "OMP_NUM_THREADS", "1"]
    command = mpiexec_command(2, ARGV, env=env, mpiexec="m", flavour="openmpi")
    assert command[command.index("-x") + 1] == "OMP_NUM_THREADS=1"
    with pytest.raises(MpiexecError, match="neither Open MPI nor MPICH"):
        mpiexec_command(2, ARGV, env=env, mpiexec="m", flavour="unknown")


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        mpiexec_command(0, ARGV, mpiexec="m", flavour="mpich")
    with pytest.raises(ValueError):
        mpiexec_command(2, "python -m executor", mpiexec="m", flavour="mpich")


@pytest.mark.parametrize(("version", "flavour"), [
    ("mpiexec (OpenRTE) 4.1.2\nReport bugs to http://www.open-mpi.org/", "openmpi"),
    ("HYDRA build details:\n    Version: 4.1.2", "mpich"),
    ("something else 1.0", "unknown"),
])
def test_the_flavour_comes_from_version_and_drives_the_flags(
        tmp_path: Path, as_root, version: str, flavour: str) -> None:
    as_root(False)
    path = fake_mpiexec(tmp_path, version)
    assert mpi_flavour(path) == flavour and is_open_mpi(Path(path)) == (flavour == "openmpi")
    assert ("--oversubscribe" in mpiexec_command(2, ARGV, mpiexec=path)) == \
        (flavour == "openmpi")


def test_a_launcher_that_cannot_run_is_unknown(tmp_path: Path) -> None:
    assert mpi_flavour(str(tmp_path / "missing-mpiexec")) == "unknown"


def test_find_prefers_the_one_beside_python_then_path(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    venv, bindir = tmp_path / "venv", tmp_path / "bin"
    venv.mkdir()
    bindir.mkdir()
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(MpiexecError, match="pip install mpi4py mpich") as info:
        find_mpiexec()
    assert isinstance(info.value, GradsyncError)
    on_path = fake_mpiexec(bindir, "HYDRA")
    assert find_mpiexec() == on_path
    beside = fake_mpiexec(venv, "HYDRA")
    assert find_mpiexec() == beside
    assert mpiexec_command(2, ["x"], flavour="mpich")[0] == beside


def test_the_callers_use_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas")
    from calibration.benchnet import bench_command
    from calibration.protocol import executor_command
    monkeypatch.setattr(mpx, "find_mpiexec", lambda: "/o/mpiexec")
    monkeypatch.setattr(mpx, "mpi_flavour", lambda path: "openmpi")
    monkeypatch.setattr(mpx, "_is_root", lambda: False)
    bench = bench_command(2, Path("out"), [4, 8], 3)
    assert bench[:4] == ["/o/mpiexec", "--oversubscribe", "-n", "2"]
    assert bench[bench.index("-m") + 1] == "calibration.microbench"
    run = executor_command(4, "tiny-mlp", "sync", 2, 3, Path("out"), local=True)
    assert run[:4] == ["/o/mpiexec", "--oversubscribe", "-n", "4"] and run[-1] == "--local"
    assert os.path.basename(run[4]).startswith("python")
