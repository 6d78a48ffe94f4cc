"""The held-out protocol: its noise guard (fast) and a reduced real protocol (slow, MPI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calibration import hostload
from calibration.protocol import HYGIENE_FILE, Hygiene, guarded, guarded_job, run_protocol


def test_foreign_load_sees_no_foreign_work_in_our_own_child():
    # A busy child of ours is our work, not other programs': the share stays well below the
    # child's own use of the machine (one core of os.cpu_count()).
    with hostload.ForeignLoad() as load:
        subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    assert 0.0 <= load.share < 1.0
    assert load.wall_s > 0


def test_foreign_load_reads_zero_without_proc_stat(monkeypatch, tmp_path):
    monkeypatch.setattr(hostload, "PROC_STAT", tmp_path / "missing")
    with hostload.ForeignLoad() as load:
        pass
    assert load.share == 0.0 and hostload.idle_share(0.0) == 1.0


def scripted_hygiene(monkeypatch, shares: list[float]) -> Hygiene:
    """A noise guard whose measurements see the given foreign shares, one per attempt."""
    hygiene = Hygiene(max_foreign=0.1, attempts=len(shares), quiet_wait_s=0)
    left = iter(shares)

    def fake_measure(name, attempt):
        attempt()
        share = next(left)
        hygiene.seen.setdefault(name, []).append(share)
        return share

    monkeypatch.setattr(hygiene, "measure", fake_measure)
    return hygiene


def test_a_disturbed_measurement_is_repeated_and_the_cleanest_kept(tmp_path, monkeypatch):
    hygiene = scripted_hygiene(monkeypatch, [0.6, 0.3, 0.5])
    made = []

    def make(path):
        path.mkdir()
        (path / "which").write_text(str(len(made)))
        made.append(path)

    out = guarded(tmp_path / "run", hygiene, make)
    assert len(made) == 3                              # every attempt was disturbed
    assert (out / "which").read_text() == "1"          # the second (share 0.3) is kept
    record = json.loads((out / HYGIENE_FILE).read_text())
    assert record == {"foreign_share": 0.3, "attempts": [0.6, 0.3, 0.5]}
    assert guarded(out, hygiene, make) == out and len(made) == 3   # done: reused


def test_a_clean_measurement_is_not_repeated(tmp_path):
    hygiene = Hygiene(max_foreign=1.01, quiet_wait_s=0)    # nothing counts as disturbed
    made = []
    guarded(tmp_path / "run", hygiene, lambda p: made.append(p.mkdir()))
    assert len(made) == 1


@pytest.mark.mpi
@pytest.mark.slow
def test_reduced_protocol_fits_reports_and_predicts(tmp_path, mpiexec):
    """Two models, sync and delayed, 2 ranks: fit on one model's sync run, predict 3 runs.

    The bound is loose (the machine is shared and the runs are short) but not vacuous: a
    compute profile in the wrong units, a lost rank count or a missing overhead is off by far
    more than 35 %.
    """
    report = run_protocol(tmp_path, models=("alexnet-ci", "bert-ci"), fit_model="alexnet-ci",
                          strategies=("sync", "delayed"), ranks=(2,), steps=10,
                          batches={"alexnet-ci": 16, "bert-ci": 16}, log=lambda _: None,
                          hygiene=Hygiene(attempts=3, quiet_wait_s=5, retry_budget_s=120),
                          bench_sizes="1KiB..4MiB", bench_repeats=3)
    names = sorted(p.run.rsplit("/", 1)[-1] for p in report.predictions)
    assert names == ["alexnet-ci-delayed-n2", "bert-ci-delayed-n2", "bert-ci-sync-n2"]
    summary = json.loads((tmp_path / "report.json").read_text())
    assert set(summary) >= {"runs", "median_abs_error_pct", "max_abs_error_pct", "wall_s",
                            "fit_set", "held_out", "load"}
    assert len(summary["runs"]) == 3 and summary["wall_s"] > 0
    assert all(r["measured_s"] > 0 and r["predicted_s"] > 0 for r in summary["runs"])
    assert not any("alexnet-ci-sync" in h for h in summary["held_out"])   # the fit run
    assert set(summary["load"]["foreign_share"]) >= {"alexnet-ci-sync-n2", "bench-n2"}
    assert (tmp_path / "predicted_vs_measured.png").exists()
    # Each held-out setup launched twice; profiles at the run's rank count are in the fit set.
    assert all(len(p.repeats) == 2 for p in report.predictions)
    assert any(f.endswith("bert-ci-local-n2") for f in summary["fit_set"])
    assert report.median_abs_error_pct < 35.0, report.table()


def test_a_job_of_several_runs_is_one_measurement_repeated_whole(tmp_path, monkeypatch):
    hygiene = scripted_hygiene(monkeypatch, [0.6, 0.2])
    outs = [tmp_path / name for name in ("local", "sync", "delayed")]
    jobs = []

    def make(paths):
        jobs.append(sorted(p.name for p in paths.values()))
        for path in paths.values():
            path.mkdir()
            (path / "job").write_text(str(len(jobs)))

    assert guarded_job(outs, hygiene, make, "block") == outs
    assert jobs == [["delayed", "local", "sync"],
                    ["delayed.try2", "local.try2", "sync.try2"]]   # the whole job again
    for out in outs:                                  # every run from the cleaner job
        assert (out / "job").read_text() == "2"
        record = json.loads((out / HYGIENE_FILE).read_text())
        assert record == {"foreign_share": 0.2, "attempts": [0.6, 0.2],
                          "job": ["local", "sync", "delayed"]}
    assert guarded_job(outs, hygiene, make, "block") == outs and len(jobs) == 2


def test_a_resumed_job_makes_only_the_runs_it_lacks(tmp_path):
    # One attempt: on a loaded machine the foreign share can pass any bound, and a repeat
    # would make b.try2 as well (what the guard does is tested above).
    hygiene = Hygiene(attempts=1, quiet_wait_s=0)
    outs = [tmp_path / "a", tmp_path / "b"]
    guarded(outs[0], hygiene, lambda p: p.mkdir())
    made = []

    def make(paths):
        for path in paths.values():
            path.mkdir()
            made.append(path)
    guarded_job(outs, hygiene, make, "ab")
    assert made == [outs[1]]
    assert all((out / HYGIENE_FILE).exists() for out in outs)


@pytest.mark.mpi
@pytest.mark.slow
def test_one_job_runs_the_block_in_one_mpi_job_and_times_each_run(tmp_path, mpiexec):
    """The small protocol with ``one_job``: the block's six runs come from one MPI job
    (its runs file lists them), each with its own trace and record, each timed."""
    report = run_protocol(tmp_path, models=("alexnet-ci",), fit_model="alexnet-ci",
                          strategies=("sync", "delayed"), ranks=(2,), steps=6,
                          batches={"alexnet-ci": 16}, log=lambda _: None,
                          hygiene=Hygiene(attempts=1, quiet_wait_s=0),
                          bench_sizes="1KiB..64KiB", bench_repeats=2, one_job=True)
    runs = json.loads((tmp_path / "runs" / "alexnet-ci-n2-job.json").read_text())
    assert len(runs) == 6 and all("--out" in argv for argv in runs)
    assert sum("--local" in argv for argv in runs) == 2
    held = [p.run.rsplit("/", 1)[-1] for p in report.predictions]
    assert held == ["alexnet-ci-delayed-n2"] and len(report.predictions[0].repeats) == 2
    for argv in runs:
        out = Path(argv[argv.index("--out") + 1])
        record = json.loads((out / "run.json").read_text())
        assert record["status"] == "ok" and record["specs"]["cluster"]["ranks"] == 2
        assert len(json.loads((out / HYGIENE_FILE).read_text())["job"]) == 6
    assert all(p.measured_s > 0 and p.predicted_s > 0 for p in report.predictions)
