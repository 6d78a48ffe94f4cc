"""Devices and fabrics: the registries, their figures and sources, and inline overrides."""

from __future__ import annotations

import pytest

from hwmodels.devices import get_device, list_devices, resolve_device
from vocab.errors import SpecError, UnknownNameError
from hwmodels.fabrics import get_fabric, list_fabrics, resolve_fabric

GPUS = ("p100-sxm2", "v100-sxm2", "a100-sxm4", "h100-sxm5")
CPUS = ("xeon-e5-2670x2", "xeon-e5-2698v4x2", "local-cpu")
FABRICS = ("ib-fdr", "ib-edr", "ib-hdr100", "ib-hdr", "ib-ndr200", "ib-ndr", "opa-100",
           "eth-1g", "eth-10g", "eth-25g", "eth-40g", "eth-100g", "gvnic-100g",
           "roce-25g", "roce-50g", "roce-100g", "roce-200g", "roce-400g",
           "efa-p3dn", "efa-p4d", "ipoib-edr")


def test_every_device_of_the_brief_is_there_with_figures_and_a_source() -> None:
    assert set(GPUS + CPUS) <= set(list_devices())
    for name in GPUS + CPUS:
        device = get_device(name)
        assert device.kind == ("gpu" if name in GPUS else "cpu")
        assert device.peak_flops > 0 and device.mem_bandwidth_Bps > 0 and device.memory_bytes > 0
        assert 0 < device.efficiency <= 1
        assert device.source


def test_device_figures_match_the_datasheets() -> None:
    assert get_device("p100-sxm2").peak_flops == pytest.approx(10.6e12)
    assert get_device("v100-sxm2").peak_flops == pytest.approx(15.7e12)
    assert get_device("v100-sxm2").mem_bandwidth_Bps == pytest.approx(900e9)
    # Sandy Bridge: 2 sockets x 8 cores x 2.6 GHz x 16 fp32 FLOP/cycle.
    assert get_device("xeon-e5-2670x2").peak_flops == pytest.approx(2 * 8 * 2.6e9 * 16)


def test_an_unknown_device_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_device("v100")
    assert "v100-sxm2" in str(info.value) and info.value.field == "device"


def test_a_device_can_override_one_figure_of_a_known_one() -> None:
    device = resolve_device({"name": "v100-sxm2", "efficiency": {"value": 0.42,
                                                                  "source": "fitted"}})
    assert device.efficiency == 0.42
    assert device.peak_flops == get_device("v100-sxm2").peak_flops
    assert "fitted" in device.source


def test_a_new_device_needs_every_figure() -> None:
    with pytest.raises(SpecError) as info:
        resolve_device({"name": "my-gpu", "kind": "gpu", "peak_flops": "10 TFLOP/s"},
                       "node.device")
    assert info.value.field == "node.device.mem_bandwidth"


def test_every_fabric_of_the_brief_is_there_with_a_source() -> None:
    assert list_fabrics() == list(FABRICS)
    for name in FABRICS:
        fabric = get_fabric(name)
        assert fabric.source and 0 < fabric.bandwidth_Bps <= fabric.line_rate_Bps


def test_infiniband_latency_is_about_a_microsecond_and_tcp_tens() -> None:
    for name in FABRICS:
        fabric = get_fabric(name)
        if fabric.kind == "infiniband" and not fabric.nccl_sockets:
            assert fabric.latency_s <= 2e-6
        elif fabric.kind == "infiniband":
            # TCP over IPoIB: the kernel TCP stack's latency on an InfiniBand wire, and less
            # of the line than TCP over Ethernet gets (open-mpi/ompi#9087: 80 of 100 Gb/s).
            assert 5e-6 <= fabric.latency_s <= 100e-6
            assert 0.7 < fabric.bandwidth_Bps / fabric.line_rate_Bps < 0.94
        elif name.startswith("roce"):
            # RDMA over Ethernet: verbs latency, framing of 4096-byte payloads (4096/4178).
            assert fabric.latency_s <= 3e-6
            assert 0.94 < fabric.bandwidth_Bps / fabric.line_rate_Bps < 4096 / 4178
        elif not fabric.nccl_sockets:
            # AWS EFA: an RDMA NIC (SRD) through the cloud network, between RDMA and TCP.
            assert 2e-6 < fabric.latency_s <= 30e-6
            assert 0.9 < fabric.bandwidth_Bps / fabric.line_rate_Bps < 0.98
        else:
            assert 5e-6 <= fabric.latency_s <= 100e-6
            assert fabric.bandwidth_Bps / fabric.line_rate_Bps == pytest.approx(0.94)


def test_infiniband_achieved_bandwidth_follows_the_brief() -> None:
    assert get_fabric("ib-fdr").bandwidth_Bps == pytest.approx(6.5e9)
    assert get_fabric("ib-edr").bandwidth_Bps == pytest.approx(12e9)
    assert get_fabric("ib-edr").line_rate_Bps == pytest.approx(100e9 / 8)


def test_an_inline_fabric_overrides_or_describes() -> None:
    slower = resolve_fabric({"name": "ib-edr", "bandwidth": "11 GB/s"})
    assert slower.bandwidth_Bps == 11e9 and slower.latency_s == get_fabric("ib-edr").latency_s
    roce = resolve_fabric({"name": "roce", "kind": "ethernet", "bandwidth": "11 GB/s",
                           "latency": "3 us", "source": "measured"})
    assert (roce.bandwidth_Bps, roce.latency_s, roce.source) == (11e9, 3e-6, "measured")
