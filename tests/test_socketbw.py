"""NCCL's socket transport over TCP: the relation fitted to published nccl-tests bus bandwidths.

The measured points are the issue threads' numbers (``hwmodels/socketbw.py`` names each);
the checks are the fit's residuals on them, the shape the mechanism implies (monotone in line
rate and in streams, never above the TCP goodput) and NCCL's documented defaults.
"""

from __future__ import annotations

import math

import pytest

from hwmodels.cluster import load_cluster
from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import network_Bps
from hwmodels.fabrics import get_fabric, list_fabrics, resolve_fabric
from hwmodels.socketbw import (
    ACHIEVED, DEFAULT_STREAMS, MEASURED, RELATION, TCP_GOODPUT, SocketRelation, fit,
)

TOLERANCE = 0.15   # each fitted point's bus bandwidth within 15 %


@pytest.mark.parametrize("point", [p for p in MEASURED if p.fitted], ids=lambda p: p.label)
def test_the_relation_reproduces_each_measured_point(point) -> None:
    assert abs(RELATION.residual(point)) <= TOLERANCE


def test_the_shipped_relation_is_the_fit_of_the_measurements() -> None:
    refit = fit()
    assert refit.stream_Bps == pytest.approx(RELATION.stream_Bps, rel=0.02)
    assert refit.exponent == pytest.approx(RELATION.exponent, abs=0.02)
    assert refit.host_Bps == pytest.approx(RELATION.host_Bps, rel=0.02)
    # The fit is a minimum: moving any one parameter 10 % either way fits worse.
    def cost(rel: SocketRelation) -> float:
        return sum(math.log(1 + rel.residual(p)) ** 2 for p in MEASURED if p.fitted)
    for field in ("stream_Bps", "exponent", "host_Bps"):
        for factor in (0.9, 1.1):
            moved = SocketRelation(**{**vars(RELATION), field: getattr(RELATION, field) * factor})
            assert cost(moved) > cost(RELATION)


def test_the_unfitted_point_is_the_one_a_cloud_polices_and_stays_measured() -> None:
    azure = [p for p in MEASURED if not p.fitted]
    assert [p.label.split()[0] for p in azure] == ["Azure"]
    # The relation over-predicts it (a per-flow cap the relation does not know) ...
    assert RELATION.residual(azure[0]) > TOLERANCE
    # ... so the preset keeps the measured figure: 1.7 GB/s busbw over the eras' 0.9.
    assert ACHIEVED * get_fabric("eth-25g").nccl_Bps == pytest.approx(1.7e9, rel=0.03)


def test_defaults_are_nccls_and_the_achieved_fraction_the_eras() -> None:
    assert DEFAULT_STREAMS == 2          # 2 channels per NIC x 1 thread x 1 socket
    for era in ("nccl2", "nccl2.4", "nccl2.8"):
        assert ERAS[era].achieved == ACHIEVED
    assert get_fabric("eth-10g").bandwidth_Bps == pytest.approx(TCP_GOODPUT * 10e9 / 8)


def test_monotone_in_line_rate_and_streams_and_never_above_goodput() -> None:
    rates = [g * 1e9 / 8 * TCP_GOODPUT for g in (1, 2.5, 5, 10, 25, 32, 40, 50, 100, 200, 400)]
    for streams in (1, 2, 4, 8, 16, 64):
        got = [RELATION.collective_Bps(r, streams) for r in rates]
        assert got == sorted(got)
        assert all(g <= r for g, r in zip(got, rates))
    for rate in rates:
        by_streams = [RELATION.collective_Bps(rate, s) for s in (1, 2, 4, 8, 16, 64)]
        assert by_streams == sorted(by_streams)
    with pytest.raises(ValueError):
        RELATION.collective_Bps(rates[0], 0)


def test_ethernet_presets_rise_with_line_rate_and_stay_below_goodput() -> None:
    tcp = sorted((get_fabric(n) for n in list_fabrics() if get_fabric(n).nccl_sockets),
                 key=lambda f: f.line_rate_Bps)
    assert [f.name for f in tcp] == ["eth-1g", "eth-10g", "eth-25g", "eth-40g", "eth-100g"]
    figures = [f.nccl_Bps for f in tcp]
    assert figures == sorted(figures)
    assert all(f.nccl_Bps <= f.bandwidth_Bps for f in tcp)


def test_unmeasured_presets_take_the_relation_at_nccls_default_streams() -> None:
    # 2 streams: 2.17 GB/s x 2 ** 0.67 = 3.45 GB/s, under 40 GbE's 4.7 of goodput and above
    # 10 GbE's 1.175: slow Ethernet runs at the goodput, fast Ethernet at the streams.
    two_streams = 2.17e9 * 2 ** 0.67
    assert get_fabric("eth-40g").nccl_Bps == pytest.approx(two_streams)
    assert two_streams < get_fabric("eth-40g").bandwidth_Bps
    for name in ("eth-1g", "eth-10g"):
        assert get_fabric(name).nccl_Bps == get_fabric(name).bandwidth_Bps


def test_a_users_ethernet_fabric_gets_the_relation_and_an_explicit_figure_wins() -> None:
    mine = resolve_fabric({"name": "my-50g", "kind": "ethernet", "bandwidth": "5.875 GB/s",
                           "latency": "12 us"})
    assert mine.nccl_Bps == pytest.approx(RELATION.collective_Bps(5.875e9))
    told = resolve_fabric({"name": "eth-40g", "collective_bandwidth": "4 GB/s"})
    assert told.nccl_Bps == pytest.approx(4e9)
    assert get_fabric("roce-50g").nccl_Bps == get_fabric("roce-50g").bandwidth_Bps


def test_the_derived_figure_reaches_nccls_network_term() -> None:
    cluster = load_cluster("dgx1-v100").with_nodes(4).with_fabric(get_fabric("eth-40g"))
    nics = min(len(cluster.node.nics), cluster.devices_per_node)
    assert network_Bps(cluster) == pytest.approx(nics * 2.17e9 * 2 ** 0.67)


def test_the_report_lists_every_measured_point() -> None:
    from hwmodels.socketbw import report
    text = report()
    assert all(p.label in text for p in MEASURED)
    assert text.count("(not fitted)") == sum(not p.fitted for p in MEASURED)
