"""What NCCL gets over a fabric: TCP through NCCL's socket transport, not the TCP goodput.

Figures asserted by hand come from the issue threads cited in ``hwmodels/data/fabrics.yaml``
(nccl-tests bus bandwidth over TCP), never from the model's own output.
"""

from __future__ import annotations

import pytest

from hwmodels.cluster import load_cluster
from hwmodels.collectives.nccl import network_Bps
from hwmodels.commmodel import CommModel
from hwmodels.fabrics import fabric_to_spec, get_fabric, list_fabrics, resolve_fabric

ACHIEVED = 0.9   # the NCCL eras' fraction of their graph bandwidth (hwmodels/collectives/eras.py)


def test_socket_transport_figures_are_below_tcp_goodput_and_sourced() -> None:
    for name in list_fabrics():
        fabric = get_fabric(name)
        if fabric.collective_bandwidth_Bps:
            assert fabric.kind == "ethernet"
            assert fabric.collective_bandwidth_Bps < fabric.bandwidth_Bps
            assert "collective_bandwidth:" in fabric.source
        assert fabric.nccl_Bps <= fabric.bandwidth_Bps


@pytest.mark.parametrize("name, measured_busbw_Bps", [
    ("eth-25g", 1.7e9),      # NVIDIA/nccl-tests#83
    ("eth-100g", 4.7e9),     # NVIDIA/nccl#398, one GPU per node (ring)
])
def test_nccl_over_tcp_reproduces_the_measured_bus_bandwidth(name: str,
                                                             measured_busbw_Bps: float) -> None:
    assert ACHIEVED * get_fabric(name).nccl_Bps == pytest.approx(measured_busbw_Bps, rel=0.03)


def test_infiniband_keeps_its_bandwidth_for_nccl() -> None:
    for name in ("ib-fdr", "ib-edr", "ib-hdr", "ib-ndr"):
        fabric = get_fabric(name)
        assert fabric.nccl_Bps == fabric.bandwidth_Bps


def test_the_nccl_network_term_reads_the_socket_figure_and_mpi_does_not() -> None:
    base = load_cluster("dgx1-v100").with_nodes(2)
    tcp = base.with_fabric(get_fabric("eth-100g"))
    nics = min(len(tcp.node.nics), tcp.devices_per_node)
    assert network_Bps(tcp) == pytest.approx(nics * get_fabric("eth-100g").nccl_Bps)
    # MPI (host-staged GPUs, CPU ranks) moves at the TCP goodput, as before.
    inter = CommModel(tcp, library="mpi").link_params()["inter"]
    assert inter.beta_s_per_B == pytest.approx(1 / (nics * get_fabric("eth-100g").bandwidth_Bps))


def test_a_large_allreduce_over_100g_tcp_is_slower_than_the_goodput_would_give() -> None:
    base = load_cluster("dgx1-v100").with_nodes(4)
    at_goodput = base.with_fabric(resolve_fabric({"name": "eth-100g",
                                                  "collective_bandwidth": "11.75 GB/s"}))
    sockets = base.with_fabric(get_fabric("eth-100g"))
    n = 1 << 28
    slow, fast = CommModel(sockets).allreduce(n).at(n), CommModel(at_goodput).allreduce(n).at(n)
    assert slow > 1.5 * fast


def test_the_socket_figure_round_trips_through_a_file_form() -> None:
    custom = resolve_fabric({"name": "eth-100g", "collective_bandwidth": "3 GB/s"})
    spec = fabric_to_spec(custom)
    assert spec["collective_bandwidth"] == "3 GB/s"
    assert resolve_fabric(spec).collective_bandwidth_Bps == pytest.approx(3e9)
    assert fabric_to_spec(get_fabric("eth-100g")) == "eth-100g"
