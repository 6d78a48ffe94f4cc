"""Inter-node fabrics by name: InfiniBand FDR..NDR (with HDR100, NDR200) and Omni-Path, TCP
over Ethernet (and GCP's gVNIC), RoCE (RDMA over 25..400 GbE), AWS EFA (p3dn, p4d) and TCP
over IPoIB (an EDR port as an IP interface, NCCL on sockets), from ``data/fabrics.yaml``.

>>> get_fabric("ib-edr").bandwidth_Bps
12000000000.0

A cluster file names a fabric (``fabric: ib-edr``), overrides figures of a known one
(``fabric: {name: ib-edr, bandwidth: 11 GB/s}``) or describes a new one inline with ``kind``,
``bandwidth`` and ``latency``.

``bandwidth`` is what MPI moves per NIC; ``collective_bandwidth`` (optional) is what NCCL's
network transport achieves where that is less: over TCP (on Ethernet, or over IPoIB on an
InfiniBand wire: ``nccl_transport: socket``), NCCL's socket transport copies every
byte through host memory on one socket per connection and one proxy thread by default
(``ncclSocketGetNsockNthread`` in ``src/transport/net_socket.cc``), so on fast Ethernet it
reaches well under the TCP goodput (research/gpu-fidelity.md section 1); AWS EFA's
aws-ofi-nccl plugin measures under its line rate too (its own ``collective_bandwidth``). A
socket-transport fabric without a measured one gets the relation :mod:`hwmodels.socketbw` fits to the published
measurements (:attr:`hwmodels.specs.Fabric.nccl_Bps`) at ``nccl_streams`` TCP streams per NIC
(NCCL's 2 channels x ``NCCL_SOCKET_NTHREADS`` x ``NCCL_NSOCKS_PERTHREAD``; default 2): a cluster
file that tunes NCCL's sockets writes ``fabric: {name: eth-40g, nccl_streams: 8}``. Only the NCCL eras read it
(:func:`hwmodels.collectives.nccl.network_Bps`); MPI and CPU clusters keep ``bandwidth``.
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
    text,
    whole,
)
from hwmodels.specs import FABRIC_KINDS, Fabric
from vocab.units import parse_bandwidth, parse_time

DATA_FILE = Path(__file__).with_name("data") / "fabrics.yaml"
FIGURES = ("kind", "bandwidth", "latency", "line_rate", "collective_bandwidth",
           "nccl_transport", "nccl_streams")


def build_fabric(name: str, raw: Mapping[str, Any], field: str, base: Fabric | None) -> Fabric:
    """A :class:`Fabric` from a file entry; figures missing from ``raw`` come from ``base``."""
    kind = entry_kind(raw, field, base, FIGURES, 3, FABRIC_KINDS)
    bandwidth = (quantity(raw["bandwidth"], join(field, "bandwidth"), parse_bandwidth)
                 if "bandwidth" in raw else base.bandwidth_Bps)
    latency = (quantity(raw["latency"], join(field, "latency"), parse_time, allow_zero=True)
               if "latency" in raw else base.latency_s)
    line_rate = (quantity(raw["line_rate"], join(field, "line_rate"), parse_bandwidth)
                 if "line_rate" in raw else (base.line_rate_Bps if base else 0.0))
    collective = (quantity(raw["collective_bandwidth"], join(field, "collective_bandwidth"),
                           parse_bandwidth)
                  if "collective_bandwidth" in raw else
                  (base.collective_bandwidth_Bps if base else 0.0))
    streams = (whole(raw["nccl_streams"], join(field, "nccl_streams"))
               if "nccl_streams" in raw else (base.nccl_streams if base else 0))
    transport = (text(raw["nccl_transport"], join(field, "nccl_transport"))
                 if "nccl_transport" in raw else (base.nccl_transport if base else ""))
    if transport not in ("verbs", "socket", ""):
        raise SpecError(join(field, "nccl_transport"), transport, "verbs or socket")
    if streams and collective:
        # A measured figure holds for the streams it was measured with; the relation is what
        # knows streams. One or the other, never a figure silently ignored.
        raise SpecError(join(field, "nccl_streams"), streams,
                        f"no nccl_streams beside collective_bandwidth ({name}'s is "
                        f"{collective / 1e9:g} GB/s): give one or the other")
    return Fabric(name=name, kind=kind, bandwidth_Bps=bandwidth, latency_s=latency,
                  line_rate_Bps=line_rate, source=sources(raw, base.source if base else "",
                                                          FIGURES),
                  collective_bandwidth_Bps=collective, nccl_transport=transport,
                  nccl_streams=streams)


_CATALOGUE = Catalogue(DATA_FILE, build_fabric, "fabric")


def get_fabric(name: str) -> Fabric:
    """The fabric called ``name``; an unknown name lists the valid ones."""
    return resolve_fabric(name, "fabric")


def list_fabrics() -> list[str]:
    """Names of the built-in fabrics in file order: InfiniBand (and Omni-Path), TCP, RoCE,
    each slowest first, then AWS EFA and TCP over IPoIB."""
    return _CATALOGUE.names()


def resolve_fabric(raw: Any, field: str = "fabric") -> Fabric:
    """A fabric from a cluster file: a name, or a mapping with ``name`` and figures."""
    return _CATALOGUE.resolve(raw, field)


def fabric_to_spec(fabric: Fabric) -> Any:
    """The file form of ``fabric``: its name if it is the built-in one, else every figure."""
    if _CATALOGUE.is_builtin(fabric):
        return fabric.name
    spec: dict[str, Any] = {"name": fabric.name, "kind": fabric.kind,
                            "bandwidth": figure(fabric.bandwidth_Bps, "B/s"),
                            "latency": figure(fabric.latency_s, "s")}
    if fabric.line_rate_Bps:
        spec["line_rate"] = figure(fabric.line_rate_Bps, "B/s")
    if fabric.collective_bandwidth_Bps:
        spec["collective_bandwidth"] = figure(fabric.collective_bandwidth_Bps, "B/s")
    if fabric.nccl_transport:
        spec["nccl_transport"] = fabric.nccl_transport
    if fabric.nccl_streams:
        spec["nccl_streams"] = fabric.nccl_streams
    spec["source"] = fabric.source
    return spec
