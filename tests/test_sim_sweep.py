"""``gradsync sweep``: a grid in processes, one tidy table, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from gradsync.cli.main import main
from simulator import plot_scaling
from simulator.sweep import expand_grid, load_grid, run_sweep, under_mpi


def test_grid_runs_in_processes_and_fills_speedup_vs_sync(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    assert main(["sweep", "--clusters", "dgx1-p100", "--nodes", "1,2", "--models", "alexnet-ci",
                 "--strategies", "sync,bucketed,delayed", "--bucket-mb", "1,25", "--jobs", "2",
                 "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 2 * 3 * 2 and table["error"].isna().all()
    assert {"cluster", "nodes", "model", "strategy", "bucket_mb", "iteration_time_s",
            "speedup_vs_sync", "memory_bytes_per_rank"} <= set(table.columns)
    assert (table[table.strategy == "sync"]["speedup_vs_sync"] == 1.0).all()
    assert plot_scaling(table, x="nodes").axes
    assert main(["sweep", "--models", "alexnet-ci", "--out", str(out)]) == 2   # no overwrite
    assert "exists" in capsys.readouterr().err


def test_grid_file_and_in_process_run(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("clusters: [dgx1-p100]\nnodes: [1]\nmodels: [googlenet-ci]\n"
                    "strategies: [sync, layerwise]\niterations: 1\n")
    table = run_sweep(expand_grid(load_grid(grid)), jobs=1, progress=False)
    assert list(table["strategy"]) == ["sync", "layerwise"]


@pytest.mark.parametrize("args,needle", [
    (["--strategies", "nope"], "strategy"),
    (["--bucket-mb", "0"], "bucket"),
    (["--nodes", "999999"], "nodes"),
    (["--clusters", "missing-cluster"], "cluster"),
])
def test_bad_grid_fails_before_any_work(tmp_path, capsys, args, needle):
    assert main(["sweep", "--models", "alexnet-ci", "--out", str(tmp_path / "s.csv"),
                 "--no-progress", *args]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_mpi_is_detected_from_the_launcher_environment(monkeypatch):
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID",
                "HYDRA_CONTROL_FD"):
        monkeypatch.delenv(var, raising=False)
    assert not under_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert under_mpi()
