"""What NCCL's socket transport moves per NIC over TCP: published measurements and the relation
fitted to them.

NCCL over plain Ethernet (no RoCE) runs its socket transport (``src/transport/net_socket.cc``):
every byte is staged through host memory and sent on TCP sockets by helper threads. Three
mechanisms bound what nccl-tests then measures:

* **Streams.** Each channel crossing the NIC is one connection, NCCL opens 2 channels per NIC
  ("2 currently, to ensure proper overlap and no bubbles", sjeaugey, NVIDIA/nccl#438), and each
  connection has ``NCCL_SOCKET_NTHREADS`` x ``NCCL_NSOCKS_PERTHREAD`` sockets. Both default to 1
  (``ncclSocketGetNsockNthread``: ``autoNt=1, autoNs=1``; AWS ENA NICs, vendor 0x1d0f, get 2 x 8
  and, in later releases, Google gVNIC, 0x1ae0, gets 4 x 1; at most 16 threads and 64 sockets),
  so a NIC normally carries 2 TCP streams.
* **The slowest stream.** NCCL splits each transfer evenly over its sockets, "so the NCCL
  bandwidth will be the minimum speed of the sockets multiplied by the number of sockets"
  (sjeaugey, NVIDIA/nccl-tests#83; also NVIDIA/nccl#438). One stream runs at what one core
  moves through the kernel TCP stack; ``n`` streams give less than ``n`` times that, the
  slowest of them setting the pace, so the aggregate grows as ``n ** exponent``.
* **The host path.** Past enough streams the staging copies and proxy threads bind: extra
  sockets or threads stop helping (NVIDIA/nccl#398: ``NCCL_SOCKET_NTHREADS`` 4 or 6 gave nothing
  over 100 Gb/s; NVIDIA/nccl#450: more threads or sockets made it worse).

The relation (per NIC per direction, written like a fabric's ``collective_bandwidth``; the NCCL
eras multiply it by their ``achieved`` fraction, 0.9, to give nccl-tests' bus bandwidth)::

    collective_bandwidth = min(TCP goodput, stream x streams ** exponent, host)

with ``stream``, ``exponent`` and ``host`` fitted (:func:`fit`, least squares in log) on the
points of :data:`MEASURED` marked ``fitted``; :data:`RELATION` ships the fit and
``tests/test_socketbw.py`` re-fits and checks the residuals. A fabric preset with a measured
``collective_bandwidth`` keeps it; an Ethernet fabric without one gets this relation at NCCL's
default 2 streams (:attr:`hwmodels.specs.Fabric.nccl_Bps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Channels NCCL opens per NIC (sjeaugey, NVIDIA/nccl#438: "2 currently").
CHANNELS_PER_NIC = 2
#: NCCL_SOCKET_NTHREADS x NCCL_NSOCKS_PERTHREAD outside AWS and Google Cloud: 1 x 1
#: (``ncclSocketGetNsockNthread`` in ``src/transport/net_socket.cc``).
DEFAULT_SOCKETS_PER_CONNECTION = 1
#: TCP streams per NIC per direction with NCCL's defaults.
DEFAULT_STREAMS = CHANNELS_PER_NIC * DEFAULT_SOCKETS_PER_CONNECTION
#: The NCCL eras' fraction of the figure nccl-tests reports as bus bandwidth
#: (``achieved`` in hwmodels/collectives/eras.py; checked equal by the tests).
ACHIEVED = 0.9
#: TCP goodput over line rate at MTU 1500 (1448 payload bytes per 1538 on the wire), as the
#: Ethernet presets' ``bandwidth``.
TCP_GOODPUT = 0.94


@dataclass(frozen=True)
class SocketPoint:
    """One published nccl-tests all_reduce_perf bus bandwidth over NCCL's socket transport."""

    label: str
    line_rate_Bps: float   # the NIC's signalling rate (Gb/s / 8)
    streams: int           # TCP streams per NIC per direction in that run
    busbw_Bps: float       # large-message bus bandwidth measured
    source: str
    fitted: bool = True    # part of the fit; False: kept for the record, reason in ``source``

    @property
    def goodput_Bps(self) -> float:
        """TCP goodput of the NIC (the cap of the relation)."""
        return TCP_GOODPUT * self.line_rate_Bps


def _gbit(gbps: float) -> float:
    return gbps * 1e9 / 8


#: Every public large-message all_reduce_perf bus bandwidth over NCCL sockets found (issue
#: threads; 2-node tree runs with several GPUs per node are left out: there busbw can exceed
#: the network's, NVIDIA/nccl#209). ``streams`` = channels on the NIC x threads x sockets.
MEASURED: tuple[SocketPoint, ...] = (
    SocketPoint("GCP 32 GbE, NCCL 2.3.7, 1 ring", _gbit(32), 1, 2.06e9,
                "NVIDIA/nccl#209 (cswinter, 2019-04-20): NCCL_MIN_NRINGS=1, one socket per ring"),
    SocketPoint("GCP 32 GbE, NCCL 2.3.7, 2 rings", _gbit(32), 2, 2.77e9,
                "NVIDIA/nccl#209: NCCL_MIN_NRINGS=2"),
    SocketPoint("GCP 32 GbE, NCCL 2.3.7, 4 rings", _gbit(32), 4, 3.28e9,
                "NVIDIA/nccl#209: NCCL_MIN_NRINGS=4"),
    SocketPoint("GCP 32 GbE, NCCL 2.3.7, 8 rings", _gbit(32), 8, 3.75e9,
                "NVIDIA/nccl#209: NCCL_MIN_NRINGS=8 ('close to optimal')"),
    SocketPoint("GCP 32 GbE, NCCL 2.4, 2 nodes x 1 GPU, 4 threads", _gbit(32), 8, 3.9e9,
                "NVIDIA/nccl#209 (kwen2501, 2019-06-04): NCCL_SOCKET_NTHREADS=4, "
                "NCCL_NSOCKS_PERTHREAD=1: 30.6-31.4 Gb/s"),
    SocketPoint("AWS 100 Gb/s, NCCL 2.4.8, 1 GPU per node", _gbit(100), 2 * 16, 4.7e9,
                "NVIDIA/nccl#398 (zarzen, 2020-10): ring, about 4.7 GB/s; AWS ENA: 2 threads x "
                "8 sockets; NCCL_SOCKET_NTHREADS=4 or 6 no better"),
    SocketPoint("AWS 100 Gb/s, NCCL 2.4.8, 8 GPUs per node", _gbit(100), 2 * 16, 6.0e9,
                "NVIDIA/nccl#398: about 6 GB/s with 8 GPUs per node"),
    SocketPoint("on-premises 100 Gb/s, 4 nodes x 8 V100, 4 channels", _gbit(100), 4, 5.2e9,
                "NVIDIA/nccl#450 (shjwudp, 2021-01): best 4-6 GB/s with NCCL_MIN_NCHANNELS=4, "
                "NCCL_SOCKET_NTHREADS=1, NCCL_NSOCKS_PERTHREAD=1 (5.21 at 16 MB); more "
                "threads or sockets made it worse"),
    SocketPoint("GCP 32 GbE, NCCL 2.4.2, defaults, 2 rings", _gbit(32), 2, 1.95e9,
                "NVIDIA/nccl#209 (cswinter, 2019-04-20): 1.85 / 1.95 / 1.73 / 1.45 GB/s at 1 / "
                "2 / 4 / 8 rings. Not fitted: a regression of that release on the machines "
                "where 2.3.7 gave 2.77 with 2 rings; later 2.4 releases reached the line rate "
                "there with 4 socket threads (the 3.9 above)", fitted=False),
    SocketPoint("Azure 25 GbE, NCCL 2.9, defaults", _gbit(25), DEFAULT_STREAMS, 1.7e9,
                "NVIDIA/nccl-tests#83: 1.7 GB/s (2.5 expected). Not fitted: the cloud's own "
                "per-flow rate (NTTTCP reached the line rate only over many flows; sjeaugey: "
                "NCCL needs single flows at full speed); it stays eth-25g's measured figure",
                fitted=False),
)


@dataclass(frozen=True)
class SocketRelation:
    """``min(goodput, stream_Bps x streams ** exponent, host_Bps)`` per NIC per direction."""

    stream_Bps: float   # one TCP stream through NCCL's socket transport
    exponent: float     # how the aggregate grows with streams (1: linear; 0: not at all)
    host_Bps: float     # the host staging path's ceiling

    def collective_Bps(self, goodput_Bps: float, streams: int = DEFAULT_STREAMS) -> float:
        """What NCCL's network term gets per NIC over TCP with ``goodput_Bps`` of TCP goodput."""
        if streams < 1:
            raise ValueError(f"streams: {streams}, expected at least 1")
        return min(goodput_Bps, self.stream_Bps * streams ** self.exponent, self.host_Bps)

    def busbw_Bps(self, point: SocketPoint) -> float:
        """The bus bandwidth nccl-tests would report for ``point``'s setup."""
        return ACHIEVED * self.collective_Bps(point.goodput_Bps, point.streams)

    def residual(self, point: SocketPoint) -> float:
        """Predicted over measured bus bandwidth, minus 1."""
        return self.busbw_Bps(point) / point.busbw_Bps - 1


def fit(points: tuple[SocketPoint, ...] = MEASURED) -> SocketRelation:
    """Least squares in log bus bandwidth over the ``fitted`` points, on a fine grid (the
    relation is a minimum of three terms: not smooth, so no gradient method)."""
    use = [p for p in points if p.fitted]
    goodput = np.array([p.goodput_Bps for p in use])
    streams = np.array([p.streams for p in use], dtype=float)
    busbw = np.array([p.busbw_Bps for p in use])
    stream = np.exp(np.linspace(math.log(0.5e9), math.log(5e9), 161))[:, None, None]
    host = np.exp(np.linspace(math.log(2e9), math.log(12e9), 161))[None, :, None]
    best = (math.inf, 0.0, 0.0, 0.0)
    for exponent in np.linspace(0.0, 1.0, 101):   # one slice at a time: small arrays
        predicted = ACHIEVED * np.minimum(np.minimum(goodput, stream * streams ** exponent),
                                          host)
        cost = (np.log(predicted / busbw) ** 2).sum(axis=-1)
        i, k = np.unravel_index(int(cost.argmin()), cost.shape)
        if cost[i, k] < best[0]:
            best = (float(cost[i, k]), float(stream.ravel()[i]), float(exponent),
                    float(host.ravel()[k]))
    return SocketRelation(best[1], best[2], best[3])


#: The fit of :data:`MEASURED`, rounded (``fit()`` gives 2.17 GB/s, 0.67, 5.93 GB/s). Residuals
#: on the fitted points -13 % .. +14 %, rms 10 % in log; the Azure and NCCL 2.4.2 points, not
#: fitted, +56 % and +59 %.
#: At NCCL's default 2 streams: 3.45 GB/s, so 1 and 10 GbE run at the TCP goodput and the
#: streams bind from about 30 Gb/s.
RELATION = SocketRelation(stream_Bps=2.17e9, exponent=0.67, host_Bps=5.93e9)


def report(relation: SocketRelation = RELATION) -> str:
    """The measured points beside the relation's bus bandwidth, as a plain-text table."""
    lines = [f"{'setup':52s} {'streams':>7s} {'measured':>9s} {'relation':>9s} {'resid':>6s}"]
    for p in MEASURED:
        mark = "" if p.fitted else "  (not fitted)"
        lines.append(f"{p.label:52s} {p.streams:7d} {p.busbw_Bps / 1e9:8.2f}G "
                     f"{relation.busbw_Bps(p) / 1e9:8.2f}G {100 * relation.residual(p):+5.0f}%"
                     f"{mark}")
    lines.append(f"relation: min(goodput, {relation.stream_Bps / 1e9:.2f} GB/s x streams ** "
                 f"{relation.exponent:.2f}, {relation.host_Bps / 1e9:.2f} GB/s); bus bandwidth "
                 f"= {ACHIEVED} x that")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
