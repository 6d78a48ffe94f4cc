"""Profiles measured at a run's own rank count (``--local`` runs), on synthetic measurements.

The oracle: a machine whose compute slows by a known factor at 4 ranks for a reason the
benchmark's compute kernel does not show (caches shared by the model's working set). The
simulator makes every measurement. With a ``--local`` profile at 4 ranks the fitted simulator
predicts the 4-rank runs; with the one-rank profile alone it cannot know the slowdown.
"""

from __future__ import annotations


import pytest

from calibration import synthetic
from calibration.calibrate import calibrate, mpich_algorithm
from calibration.calibrate import base_profiles
from calibration.runs import read_run
from calibration.validate import group_repeats, validate
from calibration.whatif import what_if
from hwmodels.calibration import ProfileKey
from hwmodels.cluster import load_cluster
from vocab.errors import SpecError
from simulator.roofline import roofline_profile
from vocab.strategies import StrategySpec
from vocab.workload import load_workload

MODEL, BATCH = "resnet18-ci", 16
#: Compute at 4 ranks vs 2, beyond what the benchmark's kernel shows (it shows none: 64 cores).
CONTENTION = 1.3


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    d = tmp_path_factory.mktemp("occupancy")
    cluster = synthetic.local_machine()
    synthetic.write_bench(d / "bench", cluster, mpich_algorithm, ranks=(2, 4))
    alone = roofline_profile(load_workload(MODEL), cluster.device, BATCH)
    at = {1: alone, 2: alone, 4: alone.scaled(CONTENTION)}

    def run(name: str, p: int, strategy: str = "sync", local: bool = False):
        return synthetic.write_run(d / name, cluster.with_devices_per_node(p), MODEL,
                                   StrategySpec(strategy), BATCH, at[p], local=local)

    runs = {"n1": run("n1", 1), "local-n2": run("local-n2", 2, local=True),
            "local-n4": run("local-n4", 4, local=True), "fit": run("sync-n2", 2),
            "held": [run(f"{s}-n4", 4, s) for s in ("sync", "layerwise", "delayed")]}
    return d, runs


def test_a_local_run_is_a_profile_keyed_by_its_rank_count(machine):
    d, runs = machine
    run = read_run(runs["local-n4"])
    assert run.local and run.is_profile and run.ranks == 4
    assert not read_run(runs["fit"]).is_profile
    found = base_profiles([run, read_run(runs["n1"]), read_run(runs["fit"])])
    assert set(found) == {ProfileKey(MODEL, BATCH, 4), ProfileKey(MODEL, BATCH, 1)}


def test_profiles_at_each_rank_count_are_written_and_read_back(machine, tmp_path):
    d, runs = machine
    fitted = tmp_path / "fitted.yaml"
    calibrate([d / "bench", runs["n1"], runs["local-n2"], runs["local-n4"], runs["fit"]], fitted)
    cluster = load_cluster(fitted)
    found = cluster.calibration.profiles
    assert set(found) == {(MODEL, BATCH, 1), (MODEL, BATCH, 2), (MODEL, BATCH, 4)}
    own = cluster.calibration.compute(MODEL, BATCH, 2)
    assert own.profile == found[(MODEL, BATCH, 2)]      # the local run is the compute, as is
    assert not own.extrapolated
    assert cluster.calibration.compute(MODEL, BATCH, 3).extrapolated   # carried from 1 rank
    fit_notes = cluster.provenance["compute_fit"]
    assert abs(fit_notes[0]["matched_error_pct"]) < 2.0   # and the fit run checks it


def test_a_profile_at_the_runs_rank_count_predicts_contention_the_benchmark_misses(machine,
                                                                                     tmp_path):
    d, runs = machine
    with_local = tmp_path / "with.yaml"
    calibrate([d / "bench", runs["n1"], runs["local-n2"], runs["local-n4"], runs["fit"]],
              with_local)
    assert validate(with_local, runs["held"]).max_abs_error_pct < 2.0
    # Without the 4-rank profile the one-rank profile is carried by the benchmark's kernel,
    # which shows no contention: every 4-rank run is under-predicted by about 1 - 1/1.3.
    without = tmp_path / "without.yaml"
    calibrate([d / "bench", runs["n1"], runs["local-n2"], runs["fit"]], without)
    errors = [p.error_pct for p in validate(without, runs["held"]).predictions]
    assert all(e < -15.0 for e in errors)


def test_what_if_uses_the_profile_of_its_rank_count_and_names_missing_ones(machine, tmp_path):
    d, runs = machine
    fitted = tmp_path / "fitted.yaml"
    calibrate([d / "bench", runs["local-n2"], runs["local-n4"], runs["fit"]], fitted)
    four = what_if(fitted, ranks_per_node=4, model=MODEL, batch=BATCH)
    two = what_if(fitted, model=MODEL, batch=BATCH)
    assert four.profile.compute_s == pytest.approx(CONTENTION * two.profile.compute_s, rel=0.03)
    with pytest.raises(SpecError, match="ranks_per_node"):
        what_if(fitted, ranks_per_node=8, model=MODEL, batch=BATCH)


def test_repeats_of_one_setup_are_one_prediction_measured_by_their_median(machine, tmp_path):
    d, runs = machine
    fitted = tmp_path / "fitted.yaml"
    calibrate([d / "bench", runs["n1"], runs["local-n2"], runs["local-n4"], runs["fit"]], fitted)
    profile = load_cluster(fitted).calibration.profiles[(MODEL, BATCH, 4)]
    slower = synthetic.write_run(tmp_path / "sync-n4-again",
                                 load_cluster(fitted).with_devices_per_node(4),
                                 MODEL, StrategySpec("sync"), BATCH, profile.scaled(1.2))
    held = runs["held"]
    report = validate(fitted, [held[0], held[1], slower, held[0]])  # a path twice: read once
    assert len(report.predictions) == 2 and report.launches == 3
    sync = report.predictions[0]
    assert sync.repeats == (str(held[0]), str(slower))
    assert sync.measured_s == pytest.approx(sum(sync.measured_each_s) / 2)
    assert sync.measured_each_s[1] > 1.1 * sync.measured_each_s[0]
    assert report.max_abs_launch_error_pct > report.max_abs_error_pct
    assert [len(g) for g in group_repeats([read_run(p) for p in (*held, slower)])] == [2, 1, 1]
