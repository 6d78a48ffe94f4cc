"""calibrate + validate on synthetic measurements made by the simulator itself.

The oracle: bench tables from the closed forms of a known cluster and run directories whose
traces are the simulator's. The fit must give the parameters back (within 2 %), the fitted file
must load like any preset and run in the simulator, and validation must predict held-out runs.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from calibration import synthetic
from calibration.calibrate import calibrate, mpich_algorithm
from calibration.validate import validate
from calibration.whatif import what_if
from gradsync.cli.main import main
from hwmodels.cluster import load_cluster
from hwmodels.specs import AlphaBeta
from simulator.api import simulate
from simulator.roofline import roofline_profile
from vocab.strategies import StrategySpec
from vocab.workload import load_workload

TRUE_AB = AlphaBeta(3e-6, 1e-10, 3e-11)
TRUE_OVERHEAD_S = 8e-6
MODEL, BATCH = "resnet18-ci", 16


@pytest.fixture(scope="module")
def true_cluster():
    return replace(load_cluster("local-cpu"), transport="device", fitted={"intra": TRUE_AB},
                   collective_overhead_s=TRUE_OVERHEAD_S, comm_interference=0.0)


@pytest.fixture(scope="module")
def measured(tmp_path_factory, true_cluster):
    """A bench directory, a one-rank profile run, a sync fit run and held-out runs."""
    d = tmp_path_factory.mktemp("calib")
    synthetic.write_bench(d / "bench", true_cluster, mpich_algorithm, ranks=(2, 4), noise=0.002)
    profile = roofline_profile(load_workload(MODEL), true_cluster.device, BATCH)
    one = synthetic.write_run(d / "n1", true_cluster.with_devices_per_node(1), MODEL,
                              StrategySpec("sync"), BATCH, profile)
    fit = synthetic.write_run(d / "sync-n2", true_cluster, MODEL, StrategySpec("sync"), BATCH,
                              profile)
    held = [synthetic.write_run(d / f"{s}-n{p}", true_cluster.with_devices_per_node(p), MODEL,
                                StrategySpec(s), BATCH, profile)
            for s in ("layerwise", "bucketed", "delayed") for p in (2, 4)]
    fitted = calibrate([d / "bench", one, fit], d / "fitted.yaml")
    return {"dir": d, "fitted": fitted, "held": held, "one": one, "fit": fit}


def test_fit_recovers_alpha_beta_gamma_and_overhead_within_2_percent(measured):
    intra = measured["fitted"].fitted["intra"]
    assert intra.alpha_s == pytest.approx(TRUE_AB.alpha_s, rel=0.02)
    assert intra.beta_s_per_B == pytest.approx(TRUE_AB.beta_s_per_B, rel=0.02)
    assert intra.gamma_s_per_B == pytest.approx(TRUE_AB.gamma_s_per_B, rel=0.02)
    assert measured["fitted"].collective_overhead_s == pytest.approx(TRUE_OVERHEAD_S, rel=0.02)


def test_fitted_file_round_trips_through_load_cluster_and_the_simulator(measured):
    path = measured["dir"] / "fitted.yaml"
    loaded = load_cluster(path)
    assert loaded.fitted == measured["fitted"].fitted
    assert loaded.provenance["runs"][0]["model"] == MODEL
    assert loaded.provenance["link_fit"]["rms_rel"] < 0.02
    assert loaded.sources["comm_interference"].startswith("fitted")   # not the base's text
    assert set(loaded.calibration.profiles) == {(MODEL, BATCH, 1)}       # in the one file
    result = simulate(cluster=path, model=MODEL, batch=BATCH, strategy="sync", iterations=2)
    assert result.iteration_time_s > 0


def test_validation_predicts_held_out_strategies_and_rank_counts(measured):
    report = validate(measured["dir"] / "fitted.yaml", measured["held"])
    assert len(report.predictions) == 6
    assert report.max_abs_error_pct < 2.0


def test_validate_cli_prints_the_json_contract(measured, capsys, tmp_path):
    png = tmp_path / "pvm.png"
    argv = ["validate", "--cluster", str(measured["dir"] / "fitted.yaml"), "--json",
            "--plot", str(png), *map(str, measured["held"][:2])]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"runs", "median_abs_error_pct", "max_abs_error_pct"}
    assert set(out["runs"][0]) >= {"run", "strategy", "measured_s", "predicted_s", "error_pct"}
    assert png.stat().st_size > 0


def test_what_if_keeps_the_fit_on_another_fabric_at_64_nodes(measured):
    scenario = what_if(measured["dir"] / "fitted.yaml", fabric="ib-edr", nodes=64,
                       model=MODEL, batch=BATCH)
    assert scenario.cluster.total_devices == 128 and scenario.cluster.fabric.name == "ib-edr"
    kept, fitted = scenario.cluster.fitted["intra"], measured["fitted"].fitted["intra"]
    assert kept.beta_s_per_B == pytest.approx(fitted.beta_s_per_B, rel=0.02)
    assert scenario.profile.compute_s > 0
    assert scenario.simulate("delayed", iterations=2).iteration_time_s > 0
