"""``python -m benchmarks.published`` and the trust band every prediction shows with it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import published
from benchmarks.published import (
    DEFAULT_CSV, PublishedRow, api_accepts, load_rows, predict_row, row_cluster,
)
from gradsync.cli.main import main as gradsync_main
from hwmodels.cluster import load_cluster
from hwmodels.fabrics import get_fabric
from simulator.api import compare, prepare
from simulator.noise import expected_max_normal
from simulator.trust import (BANDS_FILE, Trust, band_of, load_bands, setup_class, trust_for,
                             with_devices, with_holdout)

FIXTURES = Path(__file__).resolve().parent / "data" / "published"
FIXTURE_CSV = FIXTURES / "fixture.csv"


def write_csv(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "rows.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ------------------------------------------------------------------------------ the shipped CSV

def test_the_shipped_csv_parses_and_every_row_names_its_source():
    rows = load_rows(DEFAULT_CSV)
    assert len(rows) >= 40
    assert {r.set.split("-")[0] for r in rows} >= {"dlperf", "abci", "hkbu", "tf10723"}
    for row in rows:
        assert row.source and row.stack
        assert 0.0 < row.published_efficiency <= 1.05, row   # superlinear by at most 5 %


def test_every_shipped_row_resolves_its_cluster_at_its_size():
    for row in load_rows(DEFAULT_CSV):
        cluster = row_cluster(row, DEFAULT_CSV.parent)
        assert (cluster.nodes, cluster.devices_per_node) == (row.nodes, row.gpus_per_node)


def test_published_efficiency_against_the_source_tables():
    """DLPerf states efficiencies; the CSV stores throughputs derived from them, and must give
    them back (gpu-fidelity.md section 5: PyTorch 95.9 % at 8 GPUs, TF1+Horovod 82.0 % at 32)."""
    rows = load_rows(DEFAULT_CSV)
    pytorch8 = next(r for r in rows if r.set == "dlperf-resnet50" and r.stack == "ddp"
                    and r.gpus == 8)
    horovod32 = next(r for r in rows if r.set == "dlperf-resnet50" and r.gpus == 32
                     and "TensorFlow 1" in r.source)
    assert pytorch8.published_efficiency == pytest.approx(0.959, abs=1e-4)
    assert horovod32.published_efficiency == pytest.approx(0.820, abs=1e-4)
    # HKBU publishes throughputs: ResNet-50 on 10 GbE, 32 GPUs: 5113.18 / (32 x 253.1).
    hkbu = next(r for r in rows if r.set == "hkbu-resnet50" and r.gpus == 32
                and "10gbe" in r.source)
    assert hkbu.published_efficiency == pytest.approx(5113.18 / (32 * 253.1))


# ------------------------------------------------------------------------------ arithmetic

def test_efficiency_of_a_hand_worked_row():
    row = PublishedRow("s", "src", "dgx1-v100", 1, 8, "resnet50", 64, "fp32", "ddp", "sync",
                       None, throughput_1gpu=100.0, throughput=700.0)
    assert row.gpus == 8
    assert row.published_efficiency == pytest.approx(700 / 800)


def test_predicted_sync_efficiency_is_compute_over_compute_plus_allreduce():
    """Oracle: sync runs one fused allreduce after backward, so efficiency is the one-device
    iteration over that plus the allreduce of every gradient byte (the cost model's price).
    The stack is the bare library (no framework costs) and sync overlaps nothing, so no
    interference applies; the 16 GPUs compute at the slowest one's pace (the device's speed
    spread times the expected maximum of 16 normal draws), the one-GPU baseline at the median."""
    row = PublishedRow("s", "src", "dgx1-v100", 2, 8, "resnet50", 64, "fp32", "nccl2.8", "sync",
                       None, throughput_1gpu=400.0, throughput=5000.0, row=1)
    result = predict_row(row, FIXTURES)
    cluster = load_cluster("dgx1-v100", nodes=2)
    ctx = prepare(cluster, "resnet50", 64, stack="nccl2.8")
    nbytes = ctx.workload.total_grad_bytes
    fixed_s, per_byte_s = ctx.cost(nbytes)
    one_device_s = 64 / 400.0
    slowest_s = one_device_s * (1 + cluster.device.speed_spread * expected_max_normal(16))
    assert result.predicted_efficiency == pytest.approx(
        one_device_s / (slowest_s + fixed_s + per_byte_s * nbytes), rel=1e-9)
    assert result.error_points == pytest.approx(100 * (result.predicted_efficiency - 5000 / 6400))


def test_a_row_relative_to_its_own_size_predicts_perfect_scaling():
    row = PublishedRow("s", "src", "dgx1-v100", 2, 8, "resnet50", 64, "fp32", "ddp",
                       "bucketed", 25, 400.0, 6000.0, baseline_gpus=16, row=1)
    assert predict_row(row, FIXTURES).predicted_efficiency == pytest.approx(1.0)


def test_a_tables_mgwfbp_label_runs_bucketed_with_mgwfbp_merging():
    row = next(r for r in load_rows(DEFAULT_CSV) if r.strategy == "bucketed+mgwfbp")
    assert published.row_settings(row, DEFAULT_CSV.parent)["merge"] == "mgwfbp"
    assert 0 < predict_row(row, DEFAULT_CSV.parent).predicted_efficiency <= 1.0


def test_fields_the_simulator_cannot_take_are_reported_not_dropped():
    rows = {r.precision: r for r in load_rows(FIXTURE_CSV)}
    fp32, amp = predict_row(rows["fp32"], FIXTURES), predict_row(rows["amp"], FIXTURES)
    assert ("stack=ddp" in amp.not_applied) == (not api_accepts("stack"))
    assert ("precision=amp" in amp.not_applied) == (not api_accepts("precision"))
    assert not any(item.startswith("precision") for item in fp32.not_applied)


# ------------------------------------------------------------------------------ whole epochs

def test_an_epoch_with_no_fixed_cost_and_an_even_split_is_the_steady_throughput():
    # 4 GPUs x batch 10 over 400 samples: 10 steps, no padding, nothing else.
    assert published.epoch_throughput(1000.0, 4, 10, 400, 0.0) == pytest.approx(1000.0)


def test_epoch_throughput_by_hand():
    # 40 samples a step at 1000 samples/s: 0.04 s a step; 400 samples on 4 GPUs: 10 steps
    # (0.4 s), plus 0.6 s fixed: 400 samples in 1.0 s.
    assert published.epoch_throughput(1000.0, 4, 10, 400, 0.6) == pytest.approx(400.0)
    # 401 samples: every rank padded to ceil(401 / 4) = 101, 10.1 steps.
    assert published.epoch_steps(401, 4, 10) == pytest.approx(10.1)
    assert published.epoch_throughput(1000.0, 4, 10, 401, 0.0) == pytest.approx(401 / 0.404)


def test_a_fixed_cost_per_epoch_is_amdahls_serial_part():
    # Perfect steps (per-GPU throughput constant): efficiency against 1 GPU is
    # (S t + F) / (S t / n + F) / n with S t one GPU's epoch of steps.
    samples, batch, per_gpu, fixed = 1_280_000, 64, 400.0, 5.0
    one = published.epoch_throughput(per_gpu, 1, batch, samples, fixed)
    serial = samples / per_gpu
    previous = 1.0
    for n in (2, 8, 32, 128):
        eff = published.epoch_throughput(per_gpu * n, n, batch, samples, fixed) / (n * one)
        assert eff == pytest.approx((serial + fixed) / (serial / n + fixed) / n)
        assert eff < previous
        previous = eff


def test_only_the_rows_that_time_epochs_carry_the_epoch_columns():
    rows = load_rows(DEFAULT_CSV)
    epochs = [r for r in rows if r.epoch_samples is not None]
    assert epochs and all(r.epoch_fixed_s is not None for r in epochs)
    # ImageNet-1k's training set, timed by whole runs (ABCI's Horovod table).
    assert {r.epoch_samples for r in epochs} == {1_281_167}
    assert all("whole-epoch" in r.source for r in epochs)


def test_a_row_without_its_epoch_fixed_cost_predicts_its_steady_throughput():
    row = next(r for r in load_rows(DEFAULT_CSV) if r.epoch_samples is not None)
    steady = replace(row, epoch_samples=None, epoch_fixed_s=None)
    free = replace(row, epoch_fixed_s=0.0)
    with_cost = predict_row(row, DEFAULT_CSV.parent).predicted_efficiency
    # Padding aside (under 0.1 % here), an epoch of steps alone is the steady figure.
    assert predict_row(free, DEFAULT_CSV.parent).predicted_efficiency == pytest.approx(
        predict_row(steady, DEFAULT_CSV.parent).predicted_efficiency, rel=1e-3)
    assert with_cost < predict_row(steady, DEFAULT_CSV.parent).predicted_efficiency


# ------------------------------------------------------------------------------ bad CSVs

@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace(",throughput_1gpu,", ",one_gpu,", 1), "column throughput_1gpu"),
    (lambda t: t.replace(",dgx1-v100,1,8,resnet50,64,fp32,ddp,bucketed",
                         ",dgx9-v100,1,8,resnet50,64,fp32,ddp,bucketed", 1),
     "row 1 column cluster"),
    (lambda t: t.replace(",400,2900", ",400,lots", 1), "row 2 column throughput"),
    (lambda t: t.replace("2,8,resnet50", "2,8,resnet51", 1), "row 3 column model"),
    (lambda t: t.replace("tiny-eth.yaml", "missing.yaml", 1), "row 6 column cluster"),
    (lambda t: t.replace(",amp,", ",fp8,", 1), "row 4 column precision"),
    (lambda t: t.replace(",throughput\n", ",throughput,epoch_samples\n", 1)
     .replace(",400,3000\n", ",400,3000,1000\n", 1), "row 1 column epoch_fixed_s"),
    (lambda t: t.replace(",throughput\n", ",throughput,epoch_samples,epoch_fixed_s\n", 1)
     .replace(",400,3000\n", ",400,3000,1000,-1\n", 1), "row 1 column epoch_fixed_s"),
    # 1000x the 8-GPU throughput: 87402 % of linear scaling (the 200 % bound).
    (lambda t: t.replace(",400,2900", ",400,2796864", 1), "row 2 column throughput"),
    # a baseline of 16 GPUs for a row of 8: the efficiency would be relative to more GPUs.
    (lambda t: t.replace(",throughput\n", ",throughput,baseline_gpus\n", 1)
     .replace(",400,3000\n", ",400,3000,16\n", 1), "row 1 column baseline_gpus"),
    # a typo in an optional column's name: it would be dropped silently
    (lambda t: t.replace(",throughput\n", ",throughput,baseline_gpu\n", 1),
     "column baseline_gpu"),
    (lambda t: t.encode("utf-8").replace(b"toy-ib", b"toy-\xff", 1), "encoding"),
])
def test_a_broken_csv_is_one_line_naming_file_row_and_column(tmp_path, capsys, edit, needle):
    (tmp_path / "tiny-eth.yaml").write_text((FIXTURES / "tiny-eth.yaml").read_text())
    path = write_csv(tmp_path, edit(FIXTURE_CSV.read_text()))
    assert published.main(["--csv", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and needle in err, err
    assert err.count("got ") == 1, err  # the bad value said once, not once per layer


def test_a_stack_file_beside_the_csv_is_read_like_a_cluster_file(tmp_path):
    """A stack YAML named in the CSV resolves against the CSV's folder (not the working
    directory); the preset's own figures saved to a file predict exactly as the preset, and
    a file that changes one figure (a 0.1 ms Horovod cycle: more, smaller messages) moves the
    prediction, so the file's figures are what runs, not its name."""
    from hwmodels.stacks import load_stack, save_stack
    from dataclasses import replace as replace_stack

    (tmp_path / "tiny-eth.yaml").write_text((FIXTURES / "tiny-eth.yaml").read_text())
    sub = tmp_path / "stacks"
    sub.mkdir()
    preset = load_stack("horovod-0.19")
    save_stack(replace_stack(preset, name="copy"), sub / "copy.yaml")
    save_stack(replace_stack(preset, name="fast", cycle_s=0.1e-3), sub / "fast.yaml")
    text = FIXTURE_CSV.read_text()
    rows = {}
    for name in ("horovod-0.19", "stacks/copy.yaml", "stacks/fast.yaml"):
        path = write_csv(tmp_path, text.replace(",horovod-0.19,bucketed,64,400,5000",
                                                f",{name},bucketed,64,400,5000"))
        rows[name] = {r.row.row: r for r in published.predict_csv(path)}[3]
    assert rows["stacks/copy.yaml"].row.stack == "stacks/copy.yaml"
    assert rows["stacks/copy.yaml"].predicted_efficiency == \
        rows["horovod-0.19"].predicted_efficiency
    assert rows["stacks/fast.yaml"].predicted_efficiency != \
        rows["horovod-0.19"].predicted_efficiency


@pytest.mark.parametrize("stack, needle", [
    ("horovod", "stack: got 'horovod', expected one of"),
    ("stacks/missing.yaml", "missing.yaml"),
])
def test_a_stack_this_version_lacks_fails_its_row_and_the_others_run(tmp_path, capsys, stack,
                                                                     needle):
    (tmp_path / "tiny-eth.yaml").write_text((FIXTURES / "tiny-eth.yaml").read_text())
    path = write_csv(tmp_path, FIXTURE_CSV.read_text().replace(
        ",horovod-0.19,bucketed,64,400,5000", f",{stack},bucketed,64,400,5000"))
    assert published.main(["--csv", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["failed"] == 1 and report["summary"]["rows"] == 6
    failed = report["rows"][2]
    assert failed["predicted_efficiency"] is None and needle in failed["failure"]


def test_an_unknown_model_names_the_nearest_zoo_model(tmp_path, capsys):
    (tmp_path / "tiny-eth.yaml").write_text((FIXTURES / "tiny-eth.yaml").read_text())
    path = write_csv(tmp_path, FIXTURE_CSV.read_text().replace("2,8,resnet50", "2,8,resnet-50"))
    assert published.main(["--csv", str(path)]) == 2
    err = capsys.readouterr().err
    assert "column model: got 'resnet-50', expected one of" in err
    assert "did you mean 'resnet50'?" in err


# ------------------------------------------------------------------------------ classes

def test_setup_classes_come_from_the_clusters_properties():
    dgx = load_cluster("dgx1-v100")
    assert setup_class(dgx) == "single-node-nvlink"
    assert setup_class(dgx.with_nodes(4)) == "multi-node-rdma"
    assert setup_class(dgx.with_nodes(4).with_fabric(get_fabric("eth-25g"))) == \
        "multi-node-sockets"
    pcie = load_cluster("pcie8-p100")
    assert setup_class(pcie) == "single-node-pcie"
    geforce = load_cluster("pcie4-rtx3090")          # no peer access: through host memory
    assert setup_class(geforce) == "single-node-pcie-host"
    # by where NCCL's ring runs: bridged pairs joined over PCIe, or 5 GPUs of a DGX-1 P100
    # (no NVLink ring there), run at PCIe speed and are classed with PCIe boxes
    bridged = load_cluster("pcie4-rtx3090-nvlink")
    assert setup_class(bridged) == "single-node-pcie-host"
    assert setup_class(bridged.with_devices_per_node(2)) == "single-node-nvlink"
    p100 = load_cluster("dgx1-p100")
    assert [setup_class(p100.with_devices_per_node(g)) for g in (4, 5, 8)] == \
        ["single-node-nvlink", "single-node-pcie", "single-node-nvlink"]
    assert setup_class(pcie.with_devices_per_node(1)) == "single-device"
    assert setup_class(load_cluster("cpu-10gbe")) == "cpu"
    # A custom node described link by link (ABCI: NVLink between all 4 GPUs).
    # By NCCL's transport, not the wire: RoCE is RDMA, TCP over IPoIB is sockets.
    assert setup_class(dgx.with_nodes(4).with_fabric(get_fabric("roce-25g"))) == \
        "multi-node-rdma"
    assert setup_class(dgx.with_nodes(4).with_fabric(get_fabric("ipoib-edr"))) == \
        "multi-node-sockets"
    abci = load_cluster(DEFAULT_CSV.parent / "clusters" / "abci-v-node.yaml")
    assert setup_class(abci.with_nodes(1)) == "single-node-nvlink"
    assert setup_class(abci) == "multi-node-rdma"


# ------------------------------------------------------------------------------ bands

def conformal_band(values: list[float], q: float) -> float:
    """The split-conformal band: the ceil((n + 1) q)-th smallest, the largest past n."""
    ordered = sorted(values)
    return ordered[min(len(ordered), math.ceil((len(ordered) + 1) * q)) - 1]


def test_the_band_is_the_split_conformal_order_statistic():
    # (n + 1) * 0.9 ranks: 27 rows -> the 26th, 42 -> the 39th, 9 -> the 9th (the largest);
    # the plain percentile would take the 25th, 38th and 9th
    errors = [float(i) for i in range(1, 43)]
    assert band_of("multi-node-rdma", errors).points == 39.0
    assert band_of("multi-node-rdma", errors[:27]).points == 26.0
    assert band_of("multi-node-rdma", errors[:9]).points == 9.0
    assert band_of("multi-node-rdma", errors[:2]).points == 2.0   # too few: the largest
    # a band from exchangeable errors covers about 90 % of new ones: 20 rows of 1..20 and
    # new rows drawn from the same 1..20 are inside for 19 or 20 of 20 values (>= 90 %)
    band = band_of("multi-node-rdma", [float(i) for i in range(1, 21)]).points
    assert sum(e <= band for e in range(1, 21)) / 20 >= 0.9


def test_band_file_agrees_with_the_rows_residuals(tmp_path, capsys):
    bands_file = tmp_path / "bands.json"
    assert published.main(["--csv", str(FIXTURE_CSV), "--json", "--write-bands",
                           str(bands_file)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    document = load_bands(bands_file)
    assert document["rows"] == len(rows) == 6
    assert "--csv" in document["command"] and document["date"]
    by_class: dict[str, list[float]] = {}
    for row in rows:
        assert row["error_points"] == pytest.approx(
            100 * (row["predicted_efficiency"] - row["throughput"]
                   / (row["gpus"] * row["throughput_1gpu"])))
        by_class.setdefault(row["setup_class"], []).append(row["error_points"])
    assert set(document["bands"]) == set(by_class) == {
        "single-node-nvlink", "multi-node-rdma", "multi-node-sockets"}
    for setup, errors in by_class.items():
        band = document["bands"][setup]
        absolute = sorted(abs(e) for e in errors)
        assert band["rows"] == len(errors)
        assert band["points"] == pytest.approx(conformal_band(absolute, 0.9), abs=0.01)
        assert band["max_points"] == pytest.approx(absolute[-1], abs=0.01)
        assert band["bias_points"] == pytest.approx(sum(errors) / len(errors), abs=0.01)
    ib = document["bands"]["multi-node-rdma"]
    assert ib["median_points"] == pytest.approx(sorted(abs(e) for e in by_class[
        "multi-node-rdma"])[1], abs=0.01)                 # 3 rows: the middle one
    trust = trust_for(load_cluster("dgx1-v100", nodes=8), bands_file)
    assert trust.band is not None and trust.band.rows == 3
    assert "from 3 published rows of multi-node RDMA (InfiniBand, RoCE) setups" in trust.line
    assert "no published rows validate this class" in \
        trust_for(load_cluster("pcie8-p100"), bands_file).line


def test_the_shipped_band_file_covers_the_shipped_csv():
    document = load_bands(BANDS_FILE)
    assert document["rows"] == len(load_rows(DEFAULT_CSV))
    assert document["command"].startswith("python -m benchmarks.published")
    assert sum(band["rows"] for band in document["bands"].values()) == document["rows"]


# ------------------------------------------------------------------------------ shown to users

def test_simulate_shows_the_trust_line_and_json_entry(capsys):
    assert gradsync_main(["simulate", "--cluster", "cpu-10gbe", "--model", "alexnet-ci",
                          "--strategy", "sync", "--iterations", "2"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == \
        "trust: no published rows validate this class (CPU setups)"
    assert gradsync_main(["simulate", "--cluster", "dgx1-v100", "--nodes", "4", "--model",
                          "alexnet-ci", "--strategy", "sync", "--iterations", "2",
                          "--json"]) == 0
    trust = json.loads(capsys.readouterr().out)["trust"]
    expected = load_bands(BANDS_FILE)["bands"].get("multi-node-rdma")
    assert trust["setup_class"] == "multi-node-rdma"
    assert trust["band"] == expected and trust["validated"] == (expected is not None)


def test_the_comparison_object_carries_the_trust_of_its_cluster():
    comparison = compare(["sync"], cluster="pcie8-p100", model="alexnet-ci", iterations=2)
    assert comparison.trust.setup_class == "single-node-pcie"
    assert comparison.trust.to_dict()["line"] == comparison.trust.line


def test_a_row_the_simulator_refuses_is_reported_and_the_others_still_run(tmp_path, capsys):
    """A DGX-1 has 8 GPUs: a 9-GPU row is well formed, but the machine it names cannot be
    built, so it is shown as not predicted and the other rows still run."""
    text = FIXTURE_CSV.read_text().replace("dgx1-v100,1,8,resnet50,64,fp32,ddp,sync",
                                           "dgx1-v100,1,9,resnet50,64,fp32,ddp,sync", 1)
    (tmp_path / "tiny-eth.yaml").write_text((FIXTURES / "tiny-eth.yaml").read_text())
    path = write_csv(tmp_path, text)
    assert len(load_rows(path)) == 6                # the CSV check accepts the row
    assert published.main(["--csv", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["failed"] == 1 and report["summary"]["rows"] == 6
    failed = report["rows"][1]
    assert failed["predicted_efficiency"] is None and "devices_per_node" in failed["failure"]


def test_held_out_rows_are_counted_against_their_class_band_and_a_narrow_band_is_named():
    bands = {"single-node-nvlink": band_of("single-node-nvlink", [1.0, -2.0, 3.0]),
             "multi-node-sockets": band_of("multi-node-sockets", [10.0, -5.0])}
    checked = with_holdout(bands, [("single-node-nvlink", 2.5), ("single-node-nvlink", -3.5),
                                   ("single-node-nvlink", 3.0), ("multi-node-sockets", -9.0),
                                   ("cpu", 50.0)])      # a class without a band: not counted
    nvlink, ethernet = checked["single-node-nvlink"], checked["multi-node-sockets"]
    assert (nvlink.points, nvlink.holdout_rows, nvlink.holdout_within) == (3.0, 3, 2)
    assert (ethernet.holdout_rows, ethernet.holdout_within) == (1, 1)
    # P(at most 2 of 3 inside | 90 % coverage) = 1 - 0.9 ** 3 = 0.27: no verdict.
    assert not nvlink.too_narrow and not ethernet.too_narrow
    # 20 of 39 inside would happen by chance with probability ~1e-9: too narrow.
    narrow = replace(nvlink, holdout_rows=39, holdout_within=20)
    assert narrow.too_narrow
    line = Trust("single-node-nvlink", narrow, "test").line
    assert "held-out rows: 20 of 39 within it, too narrow for this class" in line
    assert "held-out" not in Trust("single-node-nvlink", bands["single-node-nvlink"]).line
    # The edge of the test: 32 of 39 inside (binomial tail 0.089) passes, 31 (0.037) does not.
    assert not replace(narrow, holdout_within=32).too_narrow
    assert replace(narrow, holdout_within=31).too_narrow


def test_a_band_names_a_gpu_its_rows_never_ran_on():
    band = band_of("single-node-nvlink", [1.0, -2.0, 3.0])
    recorded = with_devices({"single-node-nvlink": band},
                            [("single-node-nvlink", "v100-sxm2"), ("single-node-nvlink", "a100-sxm4"),
                             ("multi-node-rdma", "h100-sxm5")])["single-node-nvlink"]
    assert recorded.devices == ("a100-sxm4", "v100-sxm2")     # sorted, other classes ignored
    on_v100 = Trust("single-node-nvlink", recorded, "test", "v100-sxm2")
    on_h100 = Trust("single-node-nvlink", recorded, "test", "h100-sxm5")
    assert on_v100.device_validated and "none of them" not in on_v100.line
    assert not on_h100.device_validated
    assert "none of them ran on h100-sxm5 GPUs" in on_h100.line
    assert on_h100.to_dict()["device_validated"] is False
    # A band file that records no devices says nothing about them.
    assert Trust("single-node-nvlink", band, "test", "h100-sxm5").device_validated


def test_the_shipped_bands_record_the_gpus_of_their_rows():
    trust = trust_for(load_cluster("dgx-h100"))
    assert trust.band is not None and "v100-sxm2" in trust.band.devices
    assert not trust.device_validated
