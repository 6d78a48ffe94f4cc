"""Parsing of human quantities ("25 GB/s", "1.3 us", "25 MiB") into SI floats.

Inside gradsync every quantity is an SI float with its unit in the name (``bandwidth_Bps``,
``latency_s``); strings with units exist only in files, and are parsed here, where they are
loaded. Decimal prefixes are powers of 1000, binary ones (KiB, MiB, GiB) powers of 1024, and a
lower-case ``b`` means bits (``100 Gb/s`` is 12.5e9 bytes/s).
"""

from __future__ import annotations

import re

from vocab.errors import SpecError

#: One mebibyte. Bucket sizes travel in bytes; MiB exists only where humans type them (CLI
#: flags such as ``--bucket-mb``), converted once, at that edge.
MiB = 1 << 20

#: The largest figure a file may state for each kind of quantity. Not a bound on hardware
#: but on typos and overflow (``1e300``, a unit prefix too many): each is about 300x or more
#: past the largest figure of any device gradsync models. The H100 SXM5 preset
#: (``hwmodels/data/devices.yaml``, NVIDIA's datasheet) reads 3.35 TB/s HBM3 and 989 TFLOP/s
#: dense bf16; no step, layer, collective or latency of a training run lasts a day.
MAX_SECONDS = 86_400.0
MAX_BANDWIDTH_BPS = 1e15
MAX_FLOPS = 1e18
MAX_BYTES = 1e18
#: By the noun :mod:`hwmodels.specfile` names each parser's quantity with.
PLAUSIBLE_MAX = {"time": MAX_SECONDS, "bandwidth": MAX_BANDWIDTH_BPS, "FLOP rate": MAX_FLOPS,
                 "size": MAX_BYTES}

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/]*)\s*$")

_DECIMAL = {"": 1.0, "K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


def _split(text: object, field: str, expected: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise SpecError(field, text, expected)
    if isinstance(text, (int, float)):
        return float(text), ""
    match = _NUMBER.match(str(text).replace("µ", "u"))
    if not match:
        raise SpecError(field, text, expected)
    return float(match.group(1)), match.group(2)


def _prefixed(unit: str, base: str) -> float | None:
    """Multiplier for ``unit`` = prefix + ``base``, or None if it is not of that form."""
    if not unit.endswith(base):
        return None
    prefix = unit[: -len(base)]
    if prefix in _BINARY:
        return _BINARY[prefix]
    return _DECIMAL.get(prefix)


def parse_bytes(text: object, field: str = "bytes") -> float:
    """``"25 MiB"`` -> 26214400.0; a bare number is bytes."""
    expected = "a size such as 25 MiB, 1 GB or a number of bytes"
    value, unit = _split(text, field, expected)
    scale = 1.0 if unit == "" else _prefixed(unit, "B")
    if scale is None:
        raise SpecError(field, text, expected)
    return value * scale


def parse_bandwidth(text: object, field: str = "bandwidth") -> float:
    """``"25 GB/s"`` -> 25e9, ``"100 Gb/s"`` -> 12.5e9 bytes/s; a bare number is bytes/s."""
    expected = "a bandwidth such as 25 GB/s, 100 Gb/s or a number of bytes/s"
    value, unit = _split(text, field, expected)
    if unit == "":
        return value
    for base, bits in (("B/s", 1.0), ("Bps", 1.0), ("b/s", 0.125), ("bps", 0.125), ("bit/s", 0.125)):
        scale = _prefixed(unit, base)
        if scale is not None:
            return value * scale * bits
    raise SpecError(field, text, expected)


def parse_time(text: object, field: str = "time") -> float:
    """``"1.3 us"`` -> 1.3e-6 seconds; a bare number is seconds."""
    expected = "a time such as 1.3 us, 5 ms or a number of seconds"
    value, unit = _split(text, field, expected)
    if unit not in _TIME and unit != "":
        raise SpecError(field, text, expected)
    return value * _TIME.get(unit, 1.0)


def parse_flops(text: object, field: str = "flops") -> float:
    """``"10.6 TFLOP/s"`` -> 1.06e13 FLOP/s; a bare number is FLOP/s."""
    expected = "a rate such as 10.6 TFLOP/s or a number of FLOP/s"
    value, unit = _split(text, field, expected)
    if unit == "":
        return value
    for base in ("FLOP/s", "FLOPS", "flop/s"):
        scale = _prefixed(unit, base)
        if scale is not None:
            return value * scale
    raise SpecError(field, text, expected)


def format_bytes(nbytes: float) -> str:
    """1536 -> '1.5 KiB' (binary prefixes, for tables)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(nbytes) >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"


def format_bandwidth(bandwidth_Bps: float) -> str:
    """25e9 -> '25 GB/s' (decimal prefixes, as vendors quote links)."""
    for unit, scale in (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3)):
        if abs(bandwidth_Bps) >= scale:
            return f"{bandwidth_Bps / scale:.3g} {unit}"
    return f"{bandwidth_Bps:.3g} B/s"


def format_time(seconds: float) -> str:
    """0.0123 -> '12.3 ms'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"
