"""Measured collective curves and fitted NCCL figures: the ``collectives`` part of a calibration.

:class:`CollectiveFit` holds what :mod:`calibration.collfit` fitted from nccl-tests (or OSU)
logs: the library era, the multipliers on the NCCL closed form
(:class:`~hwmodels.collectives.nccl.NcclScales`), each measured allreduce curve by rank layout
(nodes x GPUs per node), and the provenance (files, sizes, residuals). :meth:`CollectiveFit.time_s`
is what :class:`~hwmodels.commmodel.CommModel` asks, in this order of precedence:

1. a layout that was measured: the curve, interpolated in log size and log time between the
   measured sizes, and beyond them carried by the model's shape (``t_edge x model(n) /
   model(n_edge)``);
2. a layout with the same GPUs per node between measured node counts: the measured times of the
   nearest layouts on either side, interpolated in log time over log node count, each read at
   the *matching* size ``n x (N_ref / N) ** size_exponent``. With exponent 1 that is the same
   bytes per rank, where a ring allreduce's time grows in proportion to its ranks (its steps,
   and NCCL's LL thread threshold, which is per rank), so the regimes NCCL's tuner moves with
   node count line up; with 0, the same message, as a tree's bandwidth term is. The fit
   chooses the exponent by predicting each fitted interior node count from its neighbours
   (:func:`calibration.collfit.fit_size_exponent`). Beyond the measured node counts: the
   nearest layout's time at the matching size, carried by the model's shape
   (``t_ref x model(N, n) / model(N_ref, n_ref)``);
3. otherwise nothing: the fitted closed form alone.

What the reading between node counts cannot see is a switch of algorithm that one node count
makes earlier than both its neighbours. On ABCI's logs NCCL moves from the tree to the ring's
latency plateau (time flat in size while NCCL adds channels, about 6 us per rank) at 4 KiB
per rank on 4, 8 and 32 nodes, but at 2 KiB per rank on 16: 16 nodes at 128 KB runs at 0.93
of its plateau time, while 8 and 32 nodes at any matching size run at 0.59-0.98 of theirs, so
every size exponent reads it 17-18 % fast (``python -m calibration.collfit --check``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import NcclScales
from vocab.errors import SpecError

#: (nodes, GPUs per node) -> (sizes in bytes ascending, seconds).
Curves = Mapping[tuple[int, int], tuple[tuple[float, ...], tuple[float, ...]]]
ModelAt = Callable[[int, float], float]      # (nodes, nbytes) -> seconds of the closed form


@dataclass(frozen=True, eq=False)
class CollectiveFit:
    """Fitted collective figures of one cluster (see the module docstring)."""

    library: str
    scales: NcclScales = field(default_factory=NcclScales)
    curves: Curves = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    #: How a size maps between node counts (see the module docstring): 1 = same bytes per rank.
    size_exponent: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.size_exponent <= 1.0:
            raise SpecError("calibration.collectives.size_exponent", self.size_exponent,
                            "a number from 0 (same message size) to 1 (same bytes per rank)")
        if self.library not in ERAS:
            raise SpecError("calibration.collectives.library", self.library,
                            f"an NCCL era: {', '.join(ERAS)}")
        for layout, (sizes, times) in self.curves.items():
            if len(sizes) != len(times) or not sizes or list(sizes) != sorted(sizes):
                raise SpecError("calibration.collectives.curves", f"{layout[0]}x{layout[1]}",
                                "sizes ascending with one time each")
            if min(times) <= 0 or min(sizes) <= 0:
                raise SpecError("calibration.collectives.curves", f"{layout[0]}x{layout[1]}",
                                "positive sizes and times")
        object.__setattr__(self, "curves", MappingProxyType(dict(self.curves)))
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))

    # -- what the model asks -----------------------------------------------------------------
    def time_s(self, nodes: int, gpus_per_node: int, nbytes: float,
               model_at: ModelAt) -> float | None:
        """Seconds of an allreduce of ``nbytes`` at this layout, or None (no curve applies)."""
        if nbytes <= 0:
            return None
        if (nodes, gpus_per_node) in self.curves:
            return self._on_curve((nodes, gpus_per_node), nbytes, lambda n: model_at(nodes, n))
        measured = sorted(n for n, k in self.curves if k == gpus_per_node and n > 1)
        if not measured or nodes == 1:
            return None
        below = [n for n in measured if n < nodes]
        above = [n for n in measured if n > nodes]
        refs = ([below[-1]] if below else []) + ([above[0]] if above else [])
        points = []
        for ref in refs:
            at = nbytes * (ref / nodes) ** self.size_exponent
            on_curve = self._on_curve((ref, gpus_per_node), at,
                                     lambda n, ref=ref: model_at(ref, n))
            points.append((ref, at, math.log(on_curve)))
        if len(points) == 2:
            (lo, _, t_lo), (hi, _, t_hi) = points
            w = (math.log(nodes) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return math.exp((1 - w) * t_lo + w * t_hi)
        ref, at, log_t = points[0]
        return math.exp(log_t) * model_at(nodes, nbytes) / model_at(ref, at)

    def _on_curve(self, layout: tuple[int, int], nbytes: float,
                  model: Callable[[float], float]) -> float:
        sizes, times = self.curves[layout]
        if nbytes <= sizes[0]:
            return times[0] * model(nbytes) / model(sizes[0])
        if nbytes >= sizes[-1]:
            return times[-1] * model(nbytes) / model(sizes[-1])
        i = bisect_left(sizes, nbytes)
        if sizes[i] == nbytes:
            return times[i]
        x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
        w = (math.log(nbytes) - x0) / (x1 - x0)
        return math.exp((1 - w) * math.log(times[i - 1]) + w * math.log(times[i]))

    # -- file form ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ``calibration.collectives`` section."""
        s = self.scales
        return {
            "library": self.library,
            "scales": {"intra_bw": s.intra_bw, "net_bw": s.net_bw, "intra_lat": s.intra_lat,
                       "net_lat": s.net_lat, "plateau": s.plateau, "threshold": s.threshold},
            "curves": [{"nodes": n, "gpus_per_node": k, "nbytes": [float(x) for x in sizes],
                        "time_s": [float(t) for t in times]}
                       for (n, k), (sizes, times) in sorted(self.curves.items())],
            "size_exponent": float(self.size_exponent),
            "provenance": _plain(self.provenance),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> "CollectiveFit":
        """The value from its file form; every problem names its field."""
        where = "calibration.collectives"
        if not isinstance(raw, Mapping):
            raise SpecError(where, raw, "a mapping")
        unknown = set(raw) - {"library", "scales", "curves", "size_exponent", "provenance"}
        if unknown:
            raise SpecError(f"{where}.{sorted(unknown)[0]}", raw[sorted(unknown)[0]],
                            "one of the keys library, scales, curves, size_exponent, provenance")
        exponent = raw.get("size_exponent", 1.0)
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
            raise SpecError(f"{where}.size_exponent", exponent, "a number from 0 to 1")
        scales = raw.get("scales") or {}
        if not isinstance(scales, Mapping) or set(scales) - set(NcclScales.__dataclass_fields__):
            raise SpecError(f"{where}.scales", scales,
                            "a mapping of intra_bw, net_bw, intra_lat, net_lat, plateau, threshold")
        curves = {}
        for i, entry in enumerate(raw.get("curves") or []):
            if not isinstance(entry, Mapping) or {"nodes", "gpus_per_node", "nbytes",
                                                  "time_s"} - set(entry):
                raise SpecError(f"{where}.curves[{i}]", entry,
                                "a mapping with nodes, gpus_per_node, nbytes, time_s")
            layout = (int(entry["nodes"]), int(entry["gpus_per_node"]))
            curves[layout] = (tuple(float(x) for x in entry["nbytes"]),
                              tuple(float(t) for t in entry["time_s"]))
        return cls(str(raw.get("library")), NcclScales(**scales), curves,
                   dict(raw.get("provenance") or {}), float(exponent))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
