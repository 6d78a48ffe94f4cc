"""NVLS (NVLink SHARP) in the ``nccl2.20`` era, against measured H100 bus bandwidths.

Measured (8x H100 SXM, nccl-tests ``all_reduce_perf`` at 2-4 GB): NVIDIA/nccl#1455 (ring
365-370 GB/s busbw from 2 to 8 GPUs; NVLS forced: 370 at 2-4 GPUs, 420 / 440 / 460 / 480 at
5 / 6 / 7 / 8), NVIDIA/nccl-tests#212 (sjeaugey: ring ~370, NVLS ~480 busbw at 8 GPUs),
NVIDIA/nccl#1442 (NVLS ~30 % over the ring); NVIDIA/nccl-tests#272 (8x H200, NCCL 2.20.3: peak
475 GB/s busbw); the figures, each with its source, in ``calibration/data/hopper-busbw.csv``.
The era's efficiency is fitted on the 8-GPU H100 figure alone (``hwmodels/collectives/eras.py``);
the other H100 GPU counts, the ring and the H200 are checks.
"""

from __future__ import annotations

import pytest

from calibration.collfit import HOPPER_BUSBW, hopper_check
from hwmodels.cluster import load_cluster
from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import NcclCosts
from hwmodels.commmodel import CommModel, default_library
from vocab.files import read_csv

SIZE = 4 * 2**30


def measured_rows():
    return read_csv(HOPPER_BUSBW, "published Hopper bus bandwidths")


def h100(gpus: int, nodes: int = 1):
    return load_cluster("dgx-h100", nodes=nodes).with_devices_per_node(gpus)


def test_hopper_defaults_to_the_era_that_drives_it() -> None:
    assert default_library(h100(8)) == "nccl2.20"
    assert default_library(load_cluster("dgx-a100")) == "nccl2.8"


def test_every_published_figure_has_its_source() -> None:
    rows = measured_rows()
    assert len(rows) >= 9 and all(row["source"].startswith("NVIDIA/nccl") for row in rows)


@pytest.mark.parametrize(("label", "error"), hopper_check())
def test_bus_bandwidth_is_the_published_one(label: str, error: float) -> None:
    """Every published one-node H100 / H200 figure within 3 % (ring and NVLS, 2-8 GPUs; the
    NVLS efficiency is fitted on one of them); across nodes, where the era keeps nccl2.8's
    network fraction and nothing is fitted, within 5 %."""
    assert abs(error) <= (0.05 if " x " in label else 0.03), label


def test_nvls_gains_about_thirty_percent_at_eight_gpus() -> None:
    auto = CommModel(h100(8), library="nccl2.20").allreduce(SIZE).at(SIZE)
    ring = CommModel(h100(8), algorithm="ring", library="nccl2.20").allreduce(SIZE).at(SIZE)
    assert 1.25 <= ring / auto <= 1.35


def test_nvls_is_the_traffic_bound_at_the_eras_efficiency() -> None:
    """Closed form: each GPU moves (1 + 1/k) x the message each way over its links."""
    cluster = h100(8)
    costs = NcclCosts(cluster, "nccl2.20")
    era = ERAS["nccl2.20"]
    bus = era.achieved * costs.intra_Bps
    expected = era.nvls_efficiency * bus / (1 + 1 / 8)
    assert 1 / costs.cost("nvls", "Simple", SIZE).per_byte_s == pytest.approx(expected)


@pytest.mark.parametrize(("cluster", "era"), [
    (h100(8), "nccl2.8"),                       # the era has no NVLS
    (h100(8, nodes=2), "nccl2.20"),             # across nodes NVLS needs CollNet (not modelled)
    (h100(3), "nccl2.20"),                      # below the era's 4 GPUs
    (load_cluster("dgx-a100"), "nccl2.20"),     # an A100's NVSwitch cannot reduce
])
def test_nvls_only_where_nccl_runs_it(cluster, era) -> None:
    costs = NcclCosts(cluster, era)
    assert ("nvls", "Simple") not in costs.candidates()
    assert costs.choose(SIZE).algorithm != "nvls"


def test_small_messages_stay_on_the_ring() -> None:
    """NVLS's 23 us latency loses to LL rings at small sizes, as NCCL's tuner has it."""
    costs = NcclCosts(h100(8), "nccl2.20")
    assert costs.choose(8 * 1024).algorithm == "ring"
    assert costs.choose(SIZE).algorithm == "nvls"



def test_the_run_records_the_library_it_priced() -> None:
    from simulator.api import simulate
    hopper = simulate("dgx-h100", "resnet50", 32, "sync", iterations=2)
    assert hopper.specs["comm"]["library"] == "nccl2.20"
    dated = simulate("dgx-h100", "resnet50", 32, "sync", iterations=2, stack="ddp")
    assert dated.specs["comm"]["library"] == "nccl2.8"       # the stack's, as it says


def test_a_fitted_intra_node_scale_moves_nvls_once() -> None:
    """A fitted intra-node bandwidth scale (NcclScales.intra_bw) moves NVLS's bandwidth by
    that factor, not its square."""
    from hwmodels.collectives.nccl import NcclScales
    plain = NcclCosts(h100(8), "nccl2.20")
    scaled = NcclCosts(h100(8), "nccl2.20", NcclScales(intra_bw=0.5))
    ratio = plain.cost("nvls", "Simple", SIZE).per_byte_s / scaled.cost("nvls", "Simple",
                                                                        SIZE).per_byte_s
    assert ratio == pytest.approx(0.5)
