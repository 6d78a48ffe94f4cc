"""The held-out protocol: its noise guard (fast) and a reduced real protocol (slow, MPI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from calibration import hostload
from calibration.protocol import HYGIENE_FILE, Hygiene, guarded, run_protocol


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


def test_a_disturbed_measurement_is_repeated_and_the_cleanest_kept(tmp_path, monkeypatch):
    shares = iter([0.6, 0.3, 0.5])
    hygiene = Hygiene(max_foreign=0.1, attempts=3, quiet_wait_s=0)

    def fake_measure(name, attempt):
        attempt()
        share = next(shares)
        hygiene.seen.setdefault(name, []).append(share)
        return share

    monkeypatch.setattr(hygiene, "measure", fake_measure)
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
