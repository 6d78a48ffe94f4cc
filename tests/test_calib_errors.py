"""Bad input to calibration: each a clear GradsyncError, and a one-line CLI error (exit 2)."""

from __future__ import annotations

import json
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from calibration import synthetic
from calibration.calibrate import calibrate, mpich_algorithm
from calibration.fitting import FitError
from calibration.runs import RunError, read_run
from gradsync.cli.main import main
from hwmodels.cluster import load_cluster
from vocab.errors import GradsyncError
from hwmodels.specs import AlphaBeta
from simulator.roofline import roofline_profile
from vocab.runrecord import RUN_FILE
from vocab.strategies import StrategySpec
from vocab.trace import TraceError
from vocab.workload import load_workload


@pytest.fixture(scope="module")
def cluster():
    return replace(load_cluster("local-cpu"), transport="device",
                   fitted={"intra": AlphaBeta(3e-6, 1e-10, 3e-11)})


@pytest.fixture
def run_dir(tmp_path, cluster):
    profile = roofline_profile(load_workload("mlp-digits"), cluster.device, 32)
    return synthetic.write_run(tmp_path / "run", cluster, "mlp-digits", StrategySpec("sync"),
                               32, profile)


def test_a_run_directory_without_a_trace(run_dir, capsys):
    (run_dir / "trace.parquet").unlink()
    with pytest.raises(TraceError, match="no trace here"):
        read_run(run_dir)
    assert main(["validate", "--cluster", "x.yaml", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err


def test_a_directory_without_run_json(tmp_path):
    with pytest.raises(RunError, match="no run.json"):
        read_run(tmp_path)


def test_a_trace_of_another_schema_version(run_dir):
    path = run_dir / "trace.parquet"
    table = pq.read_table(path)
    meta = {**table.schema.metadata, b"gradsync.trace_schema_version": b"2"}
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(TraceError, match="schema version 2, expected 1"):
        read_run(run_dir)


def test_runs_of_mixed_clusters_in_one_fit(tmp_path, run_dir, cluster, capsys):
    bench = synthetic.write_bench(tmp_path / "bench", cluster, mpich_algorithm)
    record = json.loads((run_dir / RUN_FILE).read_text())
    record["host"] = record["specs"]["cluster"]["name"] = "another-machine"
    (run_dir / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(RunError, match="mixed clusters"):
        calibrate([bench, run_dir], tmp_path / "fit.yaml")
    code = main(["calibrate", str(bench), str(run_dir), "--out", str(tmp_path / "f.yaml")])
    assert code == 2 and "mixed clusters" in capsys.readouterr().err


def test_too_few_points_to_fit(tmp_path, cluster):
    bench = synthetic.write_bench(tmp_path / "bench", cluster, mpich_algorithm, ranks=(2,),
                                  sizes=[4096])
    with pytest.raises(FitError, match="needs at least"):
        calibrate([bench], tmp_path / "fit.yaml")


def test_no_benchmark_is_a_clear_error(tmp_path, run_dir):
    with pytest.raises(FitError, match="no bench-net directory"):
        calibrate([run_dir], tmp_path / "fit.yaml")


def test_a_failed_run_is_refused(run_dir):
    record = json.loads((run_dir / RUN_FILE).read_text())
    record.update(status="failed", error="rank 1 died")
    (run_dir / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(GradsyncError, match="the run failed"):
        read_run(run_dir)
