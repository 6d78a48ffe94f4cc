"""Compute devices by name: GPUs and dual-socket CPU nodes, from ``data/devices.yaml``.

>>> get_device("v100-sxm2").peak_flops
15700000000000.0

A cluster file names a device (``device: v100-sxm2``) or describes one inline, possibly on top
of a known one (``device: {name: v100-sxm2, efficiency: 0.42}``); :func:`resolve_device` reads
both forms and :func:`device_to_spec` writes the inline form back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vocab.errors import SpecError
from hwmodels.specfile import (
    Catalogue,
    entry_kind,
    figure,
    join,
    quantity,
    sources,
    unwrap,
)
from hwmodels.specs import DEVICE_KINDS, Device
from vocab.units import parse_bandwidth, parse_bytes, parse_flops

DATA_FILE = Path(__file__).with_name("data") / "devices.yaml"
FIGURES = ("kind", "peak_flops", "mem_bandwidth", "memory", "efficiency", "fp16_flops",
           "bf16_flops", "half_efficiency", "overlap_interference", "pcie_p2p",
           "gpudirect_rdma", "speed_spread")


def build_device(name: str, raw: Mapping[str, Any], field: str, base: Device | None) -> Device:
    """A :class:`Device` from a file entry; figures missing from ``raw`` come from ``base``."""
    kind = entry_kind(raw, field, base, FIGURES, 4, DEVICE_KINDS)

    def get(key: str, parser: Any, default: float, at_most: float | None = None,
            allow_zero: bool = False) -> float:
        if key not in raw:
            return default
        return quantity(raw[key], join(field, key), parser, at_most=at_most,
                        allow_zero=allow_zero)

    def optional(key: str, parser: Any, at_most: float | None = None) -> float:
        return get(key, parser, getattr(base, key) if base else 0.0, at_most, allow_zero=True)

    return Device(
        name=name, kind=kind,
        peak_flops=get("peak_flops", parse_flops, base.peak_flops if base else 0.0),
        mem_bandwidth_Bps=get("mem_bandwidth", parse_bandwidth,
                              base.mem_bandwidth_Bps if base else 0.0),
        memory_bytes=get("memory", parse_bytes, base.memory_bytes if base else 0.0),
        efficiency=get("efficiency", _fraction, base.efficiency if base else 0.5, at_most=1.0),
        fp16_flops=optional("fp16_flops", parse_flops),
        bf16_flops=optional("bf16_flops", parse_flops),
        half_efficiency=optional("half_efficiency", _fraction, at_most=1.0),
        overlap_interference=optional("overlap_interference", _fraction),
        speed_spread=optional("speed_spread", _fraction, at_most=1.0),
        pcie_p2p=_flag(raw, "pcie_p2p", field, base.pcie_p2p if base else True),
        gpudirect_rdma=_flag(raw, "gpudirect_rdma", field,
                             base.gpudirect_rdma if base else True),
        source=sources(raw, base.source if base else "", FIGURES))


def _flag(raw: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
    if key not in raw:
        return default
    value = unwrap(raw[key])[0]
    if not isinstance(value, bool):
        raise SpecError(join(field, key), value, "true or false")
    return value


def _fraction(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, value, "a fraction in (0, 1]")
    return float(value)


_CATALOGUE = Catalogue(DATA_FILE, build_device, "device")


def get_device(name: str) -> Device:
    """The device called ``name``; an unknown name lists the valid ones."""
    return resolve_device(name, "device")


def list_devices() -> list[str]:
    """Names of the built-in devices, in file order."""
    return _CATALOGUE.names()


def resolve_device(raw: Any, field: str = "device") -> Device:
    """A device from a cluster file: a name, or a mapping with ``name`` and figures."""
    return _CATALOGUE.resolve(raw, field)


def device_to_spec(device: Device) -> Any:
    """The file form of ``device``: its name if it is the built-in one, else every figure."""
    if _CATALOGUE.is_builtin(device):
        return device.name
    return {"name": device.name, "kind": device.kind,
            "peak_flops": figure(device.peak_flops, "FLOP/s"),
            "mem_bandwidth": figure(device.mem_bandwidth_Bps, "B/s"),
            "memory": figure(device.memory_bytes, "B"),
            "efficiency": device.efficiency,
            **({"fp16_flops": figure(device.fp16_flops, "FLOP/s")} if device.fp16_flops else {}),
            **({"bf16_flops": figure(device.bf16_flops, "FLOP/s")} if device.bf16_flops else {}),
            **({"half_efficiency": device.half_efficiency} if device.half_efficiency else {}),
            **({"overlap_interference": device.overlap_interference}
               if device.overlap_interference else {}),
            **({"speed_spread": device.speed_spread} if device.speed_spread else {}),
            **({} if device.pcie_p2p else {"pcie_p2p": False}),
            **({} if device.gpudirect_rdma else {"gpudirect_rdma": False}),
            "source": device.source}
