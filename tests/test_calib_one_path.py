"""One calibrated machine, one prediction path: what ``validate`` validated is what
``gradsync simulate --cluster FITTED.yaml`` and ``what_if`` predict at the same settings.

The machine is synthetic (traces the simulator wrote for a known cluster), calibrated by
``calibrate``; its calibrated compute noise is then set by hand, so that the noise, the
iteration count it implies and the rank-count scaling all have to travel through the one path.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from calibration import synthetic
from calibration.calibrate import calibrate, mpich_algorithm
from calibration.runs import read_run
from calibration.validate import validate
from calibration.whatif import what_if
from gradsync.cli.main import main
from hwmodels.calibration import Calibration
from hwmodels.cluster import load_cluster, save_cluster
from simulator.api import simulate
from simulator.roofline import roofline_profile
from vocab.errors import SpecError
from vocab.strategies import StrategySpec
from vocab.workload import load_workload

MODEL, BATCH = "resnet18-ci", 16
NOISE_CV = 0.1


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    d = tmp_path_factory.mktemp("onepath")
    cluster = synthetic.local_machine()
    synthetic.write_bench(d / "bench", cluster, mpich_algorithm, ranks=(2, 4), noise=0.002)
    profile = roofline_profile(load_workload(MODEL), cluster.device, BATCH)

    def run(name: str, p: int, strategy: str = "sync"):
        return synthetic.write_run(d / name, cluster.with_devices_per_node(p), MODEL,
                                   StrategySpec(strategy), BATCH, profile)

    fitted = d / "fitted.yaml"
    calibrate([d / "bench", run("n1", 1), run("sync-n2", 2)], fitted)
    noisy = load_cluster(fitted)
    calibration = replace(noisy.calibration,
                          noise_cv={k: NOISE_CV for k in noisy.calibration.profiles})
    save_cluster(replace(noisy, calibration=calibration), d / "noisy.yaml")
    held = [run(f"{s}-n{p}", p, s) for s in ("sync", "layerwise", "delayed") for p in (2, 4)]
    return d / "noisy.yaml", held


def cli_prediction(capsys, fitted, run) -> float:
    argv = ["simulate", "--cluster", str(fitted), "--model", run.model, "--batch",
            str(run.batch), "--strategy", run.strategy.name, "--devices-per-node",
            str(run.ranks), "--json"]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)["results"][0]["iteration_time_s"]


def test_simulate_cli_and_what_if_print_what_validate_predicted(machine, capsys):
    fitted, held = machine
    report = validate(fitted, held)
    assert len(report.predictions) == len(held)
    for prediction, path in zip(report.predictions, held):
        run = read_run(path)
        assert cli_prediction(capsys, fitted, run) == pytest.approx(prediction.predicted_s,
                                                                    rel=1e-3)
        scenario = what_if(fitted, ranks_per_node=run.ranks, model=run.model, batch=run.batch)
        assert scenario.simulate(run.strategy.name).iteration_time_s == pytest.approx(
            prediction.predicted_s, rel=1e-3)


def test_the_calibrated_noise_reaches_every_prediction(machine):
    fitted, _ = machine
    noisy = simulate(cluster=fitted, model=MODEL, batch=BATCH, strategy="sync",
                     devices_per_node=4)
    quiet = simulate(cluster=fitted, model=MODEL, batch=BATCH, strategy="sync",
                     devices_per_node=4, noise=0.0)
    # Four ranks wait for the slowest every step: noise costs time, never saves it.
    assert noisy.iteration_time_s > 1.02 * quiet.iteration_time_s
    assert noisy.specs["run"]["noise"]["cv"] == NOISE_CV
    assert noisy.specs["run"]["iterations"] == 40


def test_rank_count_adapts_the_fitted_figures_from_the_one_fit(machine):
    fitted, _ = machine
    machine_at_2 = load_cluster(fitted).with_devices_per_node(2)
    calibration = machine_at_2.calibration
    again = machine_at_2.with_devices_per_node(4).with_devices_per_node(2)
    assert again.fitted["intra"] == machine_at_2.fitted["intra"]     # adapting is idempotent
    at_4 = machine_at_2.with_devices_per_node(4)
    scale = calibration.comm_scales[4]
    assert at_4.fitted["intra"].beta_s_per_B == pytest.approx(
        calibration.links["intra"].beta_s_per_B * scale.per_byte)
    assert at_4.collective_overhead_s == pytest.approx(calibration.mpi_overhead_s * scale.fixed)


def test_a_model_without_calibrated_compute_names_the_run_to_make(machine):
    fitted, _ = machine
    with pytest.raises(SpecError, match=r"gradsync run -n 2 --local --model vgg16-ci"):
        simulate(cluster=fitted, model="vgg16-ci", batch=8, devices_per_node=2)


def test_extrapolated_compute_is_said_in_the_fitted_file(machine):
    fitted, _ = machine
    carried = load_cluster(fitted).provenance["extrapolated_compute"]
    # Only a one-rank profile was measured: 2 and 4 ranks rest on carrying it.
    assert any("at 4 ranks" in line and "--local" in line for line in carried)
    assert not any("at 1 rank" in line for line in carried)


def test_a_calibration_section_of_another_schema_is_refused():
    with pytest.raises(SpecError, match="calibration.schema"):
        Calibration(cores=2, fit_ranks=2, mpi_overhead_s=0.0, schema=99)
