"""calibration.collfit: the NCCL model fitted to nccl-tests logs, stored, read back, predicted.

The ABCI logs in ``../shared/data/nccl-tests/abci-v100`` (4 V100 per node, 1-32 nodes) are
split: fitted on some node counts, the others predicted and compared with their own logs.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from calibration.collbench import read_collective_logs
from calibration.collfit import (
    MIN_FIT_BYTES, abci_check, attach, fit_collectives, fit_size_exponent,
)
from hwmodels.calibration import Calibration
from hwmodels.cluster import load_cluster
from hwmodels.collectives.measured import CollectiveFit
from hwmodels.collectives.nccl import NcclScales
from hwmodels.commmodel import CommModel
from vocab.errors import SpecError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nccl-tests"
ABCI = DATA / "abci-v100"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"no public nccl-tests logs at {DATA} (shared/ beside the clone)")
ROOT = Path(__file__).resolve().parents[1]


def _fit() -> CollectiveFit:
    return CollectiveFit("nccl2.8", NcclScales(0.9, 1.1, 2.0, 3.0, 1.5),
                         {(2, 4): ((65536.0, 1048576.0), (5e-5, 2e-4))},
                         {"files": ["a.nccl"], "closed_form_rms_rel": {"2x4": 0.1}})


def test_calibration_with_collectives_round_trips() -> None:
    calibration = Calibration(cores=1, fit_ranks=1, mpi_overhead_s=0.0, collectives=_fit())
    back = Calibration.from_dict(calibration.to_dict())
    assert back.to_dict() == calibration.to_dict()
    assert back.collectives.curves[(2, 4)] == ((65536.0, 1048576.0), (5e-5, 2e-4))
    assert back.collectives.scales == NcclScales(0.9, 1.1, 2.0, 3.0, 1.5)


def test_schema_1_still_reads_and_bad_parts_name_their_field() -> None:
    raw = Calibration(cores=2, fit_ranks=2, mpi_overhead_s=1e-6).to_dict()
    assert Calibration.from_dict({**raw, "schema": 1}).collectives is None
    with pytest.raises(SpecError, match="calibration.collectives.library"):
        CollectiveFit.from_dict({"library": "mpi"})
    with pytest.raises(SpecError, match="calibration.collectives.curves"):
        CollectiveFit("nccl2.8", curves={(1, 4): ((2.0, 1.0), (1.0, 2.0))})


def test_a_measured_curve_takes_precedence_and_is_interpolated_in_log_size() -> None:
    cluster = attach(load_cluster("abci-v100", nodes=2), _fit())
    model = CommModel(cluster)
    assert model.allreduce(65536).at(65536) == pytest.approx(5e-5)
    # halfway in log size between the two points: the geometric mean of their times
    assert model.allreduce(262144).at(262144) == pytest.approx((5e-5 * 2e-4) ** 0.5)
    # beyond them, the model's shape carries the last point
    plain = CommModel(load_cluster("abci-v100", nodes=2))
    ratio = 2e-4 / CommModel(cluster.with_nodes(2), library="nccl2.8").nccl.choose(
        1048576).cost.at(1048576)
    big = float(1 << 28)
    assert model.allreduce(big).at(big) == pytest.approx(
        ratio * model.nccl.choose(big).cost.at(big))
    assert plain.allreduce(big).at(big) != model.allreduce(big).at(big)


@needs_data
def test_fit_records_provenance_and_beats_the_closed_form() -> None:
    table = read_collective_logs(ABCI)
    base = load_cluster("abci-v100")
    fit = fit_collectives(table, base)
    assert fit.library == "nccl2.8"
    assert sorted(fit.provenance["layouts"]) == sorted(
        ["1x4", "2x4", "4x4", "8x4", "16x4", "32x4"])
    assert len(fit.provenance["files"]) == 6
    assert fit.provenance["fit_sizes"] == [MIN_FIT_BYTES, 32 << 20]
    for sizes, times in fit.curves.values():                # measured points kept as they are
        assert sizes[-1] == 32 << 20 and len(sizes) == len(times)
    # the size exponent was chosen on the interior node counts, and is stored with the fit
    assert sorted(fit.provenance["size_exponent"]["held_out_rms_log"]) == ["16x4", "4x4", "8x4"]
    assert fit.provenance["size_exponent"]["value"] == fit.size_exponent


@needs_data
def test_abci_predictions_at_unfitted_node_counts_within_15_and_10_percent_where_met() -> None:
    errors = abci_check(ABCI)
    big = [e for nodes in (4, 16) for n, e in errors[nodes] if n >= 4 << 20]
    assert max(map(abs, big)) <= 0.10                     # from 4 MB: the goal, both counts
    assert max(abs(e) for _, e in errors[4]) <= 0.10       # 4 nodes: every size from 64 KB
    sixteen = sorted(abs(e) for _, e in errors[16])
    assert sixteen[-2] <= 0.15 and sixteen[-1] <= 0.18     # 16 nodes: all sizes but one


@needs_data
@pytest.mark.xfail(strict=True, reason="the issue's goal, met but at one size: 16 nodes at "
                   "128 KB comes out 17.6 % fast. 16 nodes switches from the tree to the ring's "
                   "latency plateau at 2 KiB per rank, 4, 8 and 32 nodes at 4 KiB, so no "
                   "neighbour shows that size's regime (-17.2 to -17.7 % at every size exponent); "
                   "4 nodes within 8.1 % at every size, from 4 MB within 7.7 % "
                   "(python -m calibration.collfit --check)")
def test_abci_issue_goal_15_percent_from_64k_10_percent_from_4m() -> None:
    errors = abci_check(ABCI)
    for nodes in (4, 16):
        for n, e in errors[nodes]:
            assert abs(e) <= (0.10 if n >= 4 << 20 else 0.15), (nodes, n, e)


# ---- between node counts: the size mapping ----------------------------------------------------

K = 4
SIZES = tuple(float(1 << e) for e in range(14, 27))


def _ring(nodes: int, nbytes: float) -> float:
    """A ring allreduce with NCCL's per-rank LL thread threshold: 2(p-1) steps of 3 us, a
    channel per 16 KiB per rank up to 4 channels of 5 GB/s, so a plateau whose time and whose
    end both grow with the ranks, as ABCI's logs show."""
    p = nodes * K
    channels = min(4.0, max(1.0, nbytes / (p * 16384)))
    return 2 * (p - 1) * 3e-6 + 2 * (p - 1) / p * nbytes / (channels * 5e9)


def _tree(nodes: int, nbytes: float) -> float:
    """A tree allreduce: latency in log2 of the nodes, bandwidth independent of them."""
    return 10e-6 + 2 * math.log2(2 * nodes) * 5e-6 + nbytes / 8e9


def _curves(family, node_counts) -> dict:
    return {(n, K): (SIZES, tuple(family(n, s) for s in SIZES)) for n in node_counts}


# The ring is exact at 1 (but for p-1 against p); the tree's bandwidth term is exact at 0, its
# log2 latency is not log-linear, which pulls the best exponent up a little.
@pytest.mark.parametrize("family, exponent_range", [(_ring, (0.9, 1.0)), (_tree, (0.0, 0.5))])
def test_the_fit_chooses_bytes_per_rank_for_a_ring_and_nearer_the_message_for_a_tree(
        family, exponent_range) -> None:
    exponent, held_out = fit_size_exponent(_curves(family, (2, 4, 8, 16, 32)),
                                           lambda n, k, b: family(n, b), "nccl2.8")
    assert exponent_range[0] <= exponent <= exponent_range[1]
    assert sorted(held_out) == ["16x4", "4x4", "8x4"]


def test_a_ring_between_measured_node_counts_follows_its_closed_form_at_bytes_per_rank() -> None:
    # 2 and 8 nodes measured; 4 nodes predicted. At the same bytes per rank the ring's time
    # is 2(p-1) x (step + chunk / bandwidth): log-linear in log p but for p-1 against p.
    model_at = lambda n, b: _ring(n, b)                    # noqa: E731
    per_rank = CollectiveFit("nccl2.8", curves=_curves(_ring, (2, 8)), size_exponent=1.0)
    same_size = CollectiveFit("nccl2.8", curves=_curves(_ring, (2, 8)), size_exponent=0.0)
    errors = {name: [fit.time_s(4, K, s, model_at) / _ring(4, s) - 1 for s in SIZES]
              for name, fit in (("per rank", per_rank), ("same size", same_size))}
    assert max(map(abs, errors["per rank"])) < 0.03
    assert max(map(abs, errors["same size"])) > 0.10       # the plateau's end moves with p
    # beyond the measured node counts: the nearest curve carried by the model's shape
    assert per_rank.time_s(16, K, 1 << 20, model_at) == pytest.approx(_ring(16, 1 << 20))


def test_with_no_interior_node_count_the_exponent_is_the_rings() -> None:
    assert fit_size_exponent(_curves(_tree, (1, 2, 8)), lambda n, k, b: _tree(n, b),
                             "nccl2.8") == (1.0, {})


def test_size_exponent_round_trips_and_a_bad_one_names_its_field() -> None:
    fit = replace(_fit(), size_exponent=0.35)
    assert CollectiveFit.from_dict(fit.to_dict()).size_exponent == 0.35
    assert CollectiveFit.from_dict({"library": "nccl2.8"}).size_exponent == 1.0
    with pytest.raises(SpecError, match="calibration.collectives.size_exponent"):
        CollectiveFit.from_dict({**fit.to_dict(), "size_exponent": 1.5})
    with pytest.raises(SpecError, match="calibration.collectives.size_exponent"):
        CollectiveFit.from_dict({**fit.to_dict(), "size_exponent": "ring"})


@needs_data
def test_logs_on_a_cpu_cluster_are_refused_naming_the_cluster() -> None:
    with pytest.raises(SpecError, match="cluster"):
        fit_collectives(read_collective_logs(ABCI), load_cluster("cpu-10gbe"))


@needs_data
def test_unfitted_nccl28_is_nearer_the_abci_logs_than_nccls_own_estimate() -> None:
    # The mid-size mechanisms (fewer channels, the tree's correction, measured step latency)
    # against NCCL's tuning estimate alone, on every ABCI layout and size from 64 KB.
    table = read_collective_logs(ABCI)
    model_err, estimate_err = [], []
    for nodes in (1, 2, 4, 8, 16, 32):
        model = CommModel(load_cluster("abci-v100", nodes=nodes))
        rows = table[(table["nodes"] == nodes) & (table["placement"] == "out_of_place")
                     & (table["nbytes"] >= MIN_FIT_BYTES)]
        for n, t in zip(rows["nbytes"], rows["time_s"]):
            choice = model.nccl.choose(n)
            model_err.append(abs(choice.cost.at(n) / t - 1))
            estimate = model.nccl.tuner.cost(choice.algorithm, choice.protocol, n).at(n)
            estimate_err.append(abs(estimate / t - 1))
    model_err.sort(), estimate_err.sort()
    assert estimate_err[len(estimate_err) // 2] > 0.35        # NCCL's terms: ~2x optimistic
    assert model_err[len(model_err) // 2] < 0.15


def _gradsync(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradsync", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@needs_data
def test_cli_fits_logs_alone_into_a_fitted_file(tmp_path: Path) -> None:
    out = tmp_path / "abci.yaml"
    done = _gradsync("calibrate", str(ABCI), "--cluster", "abci-v100", "--out", str(out))
    assert done.returncode == 0, done.stderr
    cluster = load_cluster(out)
    assert cluster.calibration.collectives.library == "nccl2.8"
    assert (4, 4) in cluster.calibration.collectives.curves


def test_cli_garbled_log_is_one_line_and_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "broken.nccl"
    log.write_text("# nThread 1 nGpus 1 minBytes 8 maxBytes 64 step: 2(factor)\n#\n"
                   "# Using devices\n#   Rank  0 Pid 1 on h0 device  0 [0x3d] Tesla V100-SXM2-16GB\n"
                   "#   Rank  1 Pid 2 on h0 device  1 [0x3e] Tesla V100-SXM2-16GB\n#\n"
                   "#       size         count    type   redop     time   algbw   busbw  error"
                   "     time   algbw   busbw  error\n"
                   "#        (B)    (elements)                     (us)  (GB/s)  (GB/s)"
                   "            (us)  (GB/s)  (GB/s)\n"
                   "           8             2   float     sum    12.0    0.00    0.00  0e+00"
                   "    11.9    0.00    0.00  0e+00\n"
                   "          16             4   float     sum    1x.0\n")
    done = _gradsync("calibrate", str(log), "--cluster", "abci-v100",
                     "--out", str(tmp_path / "x.yaml"))
    assert done.returncode == 2
    assert "broken.nccl:" in done.stderr and len(done.stderr.strip().splitlines()) == 1
