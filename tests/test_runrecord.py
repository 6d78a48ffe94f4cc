"""One ``run.json`` schema on both sides: simulator and executor records validate; malformed
records are refused, naming the field."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.api import simulate
from vocab.errors import SpecError
from vocab.runrecord import (RUN_FILE, RUN_SCHEMA_VERSION, check_run_record, make_run_record,
                             read_run_record, strategy_from_record, write_run_record)
from vocab.strategies import StrategySpec

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {"cluster", "workload", "batch", "strategy", "run"}


@pytest.fixture(scope="module")
def sim_record(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("sim")
    simulate(cluster="dgx1-p100", model="alexnet", batch=32, strategy="delayed",
             iterations=2, staleness=2).save(out)
    return read_run_record(out)


def test_a_simulated_run_validates_in_the_shared_sections(sim_record):
    assert sim_record["schema_version"] == RUN_SCHEMA_VERSION
    assert (sim_record["source"], sim_record["status"]) == ("sim", "ok")
    assert SECTIONS <= set(sim_record["specs"])
    assert strategy_from_record(sim_record["specs"]) == StrategySpec("delayed", staleness=2)
    assert sim_record["specs"]["run"]["warmup"] == 4          # 2 + staleness
    assert {"gradsync", "git_revision", "python"} <= set(sim_record["versions"])


@pytest.mark.parametrize("breakage,field", [
    (lambda r: [r], "run record"),
    (lambda r: {**r, "schema_version": 0}, "schema_version"),
    (lambda r: {k: v for k, v in r.items() if k != "schema_version"}, "schema_version"),
    (lambda r: {k: v for k, v in r.items() if k != "status"}, "status"),
    (lambda r: {**r, "status": "meh"}, "status"),
    (lambda r: {**r, "source": "telepathy"}, "source"),
    (lambda r: {**r, "seed": "zero"}, "seed"),
    (lambda r: {**r, "specs": []}, "specs"),
    (lambda r: {**r, "specs": {k: v for k, v in r["specs"].items() if k != "strategy"}},
     "specs.strategy"),
    (lambda r: {**r, "specs": {**r["specs"], "batch": 0}}, "specs.batch"),
    (lambda r: {**r, "specs": {**r["specs"], "workload": {}}}, "specs.workload.name"),
    (lambda r: {**r, "specs": {**r["specs"], "strategy": {"name": "sync", "bucket_mb": 25}}},
     "specs.strategy.bucket_mb"),
    (lambda r: {**r, "specs": {**r["specs"], "strategy": {"name": "sync",
                                                          "bucket_bytes": -1}}},
     "specs.strategy.bucket_bytes"),
    (lambda r: {**r, "source": "exec"}, "specs.cluster.ranks"),   # an exec record needs ranks
])
def test_malformed_records_are_refused_naming_the_field(sim_record, tmp_path, breakage, field):
    bad = breakage(copy.deepcopy(sim_record))
    with pytest.raises(SpecError) as error:
        check_run_record(bad)
    assert error.value.field == field
    # ... by readers as by writers, which write nothing
    (tmp_path / RUN_FILE).write_text(json.dumps(bad))
    with pytest.raises(SpecError, match=field):
        read_run_record(tmp_path)
    if isinstance(bad, dict):
        with pytest.raises(SpecError, match=field):
            write_run_record(bad, tmp_path / "new")
        assert not (tmp_path / "new").exists()


def test_records_of_other_tools_need_only_the_common_fields(tmp_path):
    record = make_run_record("bench-net", "b", {"nranks": 2, "cores": 4}, seed=None)
    write_run_record(record, tmp_path)
    assert read_run_record(tmp_path)["source"] == "bench-net"


@pytest.mark.mpi
def test_executor_records_validate_in_the_same_sections(mpiexec, tmp_path):
    def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "executor",
                               "--model", "tiny-mlp", "--strategy", "bucketed", "--batch", "4",
                               "--steps", "4", "--bucket-mb", "0.001", "--out", str(out),
                               *extra], cwd=ROOT, capture_output=True, text=True, timeout=180,
                              check=False)

    done = run(tmp_path / "ok")
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_run_record(tmp_path / "ok")
    assert (record["source"], record["status"]) == ("exec", "ok")
    specs = record["specs"]
    assert SECTIONS <= set(specs)
    assert specs["cluster"]["ranks"] == 2 and specs["batch"] == 4
    assert specs["workload"]["name"] == "tiny-mlp" and specs["workload"]["layers"] > 0
    assert strategy_from_record(specs) == StrategySpec("bucketed", bucket_bytes=int(0.001 * 2**20))
    assert specs["run"]["steps"] == 4 and specs["run"]["warmup"] == 2
    assert record["results"]["iteration_time_s"] > 0
    assert {"torch", "mpi"} <= set(record["versions"])

    failed = run(tmp_path / "failed", "--fail-at-step", "1", "--fail-rank", "1")
    assert failed.returncode != 0
    record = read_run_record(tmp_path / "failed")
    assert (record["source"], record["status"]) == ("exec", "failed")
    assert "rank 1" in record["error"] and record["specs"]["workload"]["layers"] > 0
