"""How far to trust a prediction: the setup's class and the published-scaling error of that class.

``python -m benchmarks.published`` predicts published multi-GPU scaling tables (DLPerf, ABCI,
HKBU ddl-benchmarks, ...) and writes, per setup class, how far its predicted scaling efficiency
fell from the published one (``--write-bands`` -> :data:`BANDS_FILE`). Every prediction then
looks its own class up here: "expected error +-4 points of scaling efficiency, from 14
published rows of multi-node RDMA (InfiniBand, RoCE) setups", or, for a class no published row covers,
"no published rows validate this class".

A setup's class is read from the cluster's properties (device kind, node count, the links
NCCL's ring takes between a node's GPUs, their peer access, the transport NCCL runs over the
fabric), never from its name, so a user's own cluster file falls in the class of the machines
it resembles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.nccl import node_graph
from hwmodels.commmodel import default_library
from hwmodels.specs import Cluster
from vocab.files import read_json
from vocab.outpath import write_text_atomic
from vocab.errors import GradsyncError

BANDS_FILE = Path(__file__).with_name("data") / "trust_bands.json"
BANDS_SCHEMA = 1

#: Setup classes, each with the words a sentence uses for it.
SETUP_CLASSES: Mapping[str, str] = {
    "single-device": "single-device",
    "single-node-nvlink": "single-node NVLink",
    "single-node-pcie": "single-node PCIe (peer to peer)",
    "single-node-pcie-host": "single-node PCIe without peer access (through host memory)",
    "multi-node-rdma": "multi-node RDMA (InfiniBand, RoCE)",
    "multi-node-sockets": "multi-node TCP-socket (Ethernet, IPoIB)",
    "cpu": "CPU",
}
#: Links between two devices of a node that make it an NVLink node (NVSwitch nodes included).
NVLINK_KINDS = ("nvlink", "nvswitch")
#: The share of new rows of a class whose error the band should cover.
BAND_QUANTILE = 0.9
#: How unlikely the held-out coverage must be, for a band that covers BAND_QUANTILE, before
#: the trust line calls the band too narrow.
NARROW_P = 0.05


def setup_class(cluster: Cluster) -> str:
    """The class of ``cluster`` (a key of :data:`SETUP_CLASSES`), from its properties alone."""
    if cluster.device.kind == "cpu":
        return "cpu"
    if cluster.total_devices == 1:
        return "single-device"
    if cluster.nodes == 1:
        if ring_on_nvlink(cluster):
            return "single-node-nvlink"
        # GPUs without PCIe peer access (GeForce) pass every step through host memory (NCCL's
        # SHM transport), whose speed is the host platform's (sockets, NUMA, PCIe generation)
        # more than the GPUs': a class of its own, with errors of its own.
        return "single-node-pcie" if cluster.device.pcie_p2p else "single-node-pcie-host"
    # By the transport NCCL runs between nodes, not by the wire: RoCE is RDMA like InfiniBand,
    # and TCP over IPoIB pays the socket path's costs like Ethernet (the errors follow that).
    return "multi-node-sockets" if cluster.fabric.nccl_sockets else "multi-node-rdma"


def ring_on_nvlink(cluster: Cluster) -> bool:
    """Whether NCCL's ring over the node's GPUs runs on NVLink (NVSwitch included), as its
    topology search finds it under the cluster's default library. Where it does not, the
    setup runs at PCIe speed and is classed with PCIe boxes: 5 GPUs of a DGX-1 P100 (no NVLink
    ring), or four GPUs in NVLink-bridged pairs whose ring joins the pairs over PCIe. For a
    host-staged library (no NCCL ring), the node's links decide."""
    era = ERAS.get(default_library(cluster))
    if era is None:
        return has_nvlink(cluster)
    return node_graph(cluster.node, era).hw == "nvlink"


def has_nvlink(cluster: Cluster) -> bool:
    """Whether the node's devices reach each other over NVLink (directly or via NVSwitch)."""
    graph = cluster.node.graph
    devices = set(cluster.node.device_ids)
    for a, b, kind in graph.edges(data="kind"):
        if kind in NVLINK_KINDS and (a in devices or b in devices):
            return True
    return False


@dataclass(frozen=True)
class Band:
    """The published-scaling error of one setup class, in points of scaling efficiency.

    ``points`` is the band (:func:`band_rank`: the split-conformal order statistic of the
    absolute errors, which covers :data:`BAND_QUANTILE` of new rows of the class);
    ``bias_points`` the mean signed error (predicted minus published: positive means the model
    is optimistic). ``holdout_rows`` and ``holdout_within`` say how the band held on
    published rows it was not made from (the benchmark's holdout): about ``BAND_QUANTILE`` of
    them should fall inside; far fewer means the band is too narrow for that class, and the
    trust line says so rather than letting the band speak alone.
    """

    setup_class: str
    rows: int
    points: float
    median_points: float
    max_points: float
    bias_points: float
    holdout_rows: int = 0
    holdout_within: int = 0
    #: The GPUs the class's rows ran on (device names): a prediction on another GPU is
    #: validated by its setup's class, not by its device generation, and the line says so.
    devices: tuple[str, ...] = ()

    @property
    def too_narrow(self) -> bool:
        """Whether the held-out rows say the band covers less than it promises: as few of them
        inside it as that would happen by chance less than :data:`NARROW_P` of the time if it
        covered :data:`BAND_QUANTILE` (a one-sided binomial test)."""
        n, k = self.holdout_rows, self.holdout_within
        # The binomial CDF by hand: scipy.stats would add ~0.4 s of import to every
        # `gradsync simulate`, which prints this line.
        tail = sum(math.comb(n, i) * BAND_QUANTILE ** i * (1 - BAND_QUANTILE) ** (n - i)
                   for i in range(k + 1))
        return n > 0 and tail < NARROW_P


def band_of(setup: str, errors_points: Iterable[float]) -> Band:
    """The band of one class from its rows' signed errors (predicted - published, points)."""
    errors = [float(e) for e in errors_points]
    if not errors:
        raise GradsyncError(f"no rows to make a trust band of class {setup!r} from")
    absolute = sorted(abs(e) for e in errors)
    n = len(absolute)
    middle = n // 2
    median = absolute[middle] if n % 2 else (absolute[middle - 1] + absolute[middle]) / 2
    quantile = absolute[band_rank(n) - 1]
    return Band(setup, n, quantile, median, absolute[-1], sum(errors) / n)


def band_rank(rows: int, coverage: float = BAND_QUANTILE) -> int:
    """Which absolute error (1 = the smallest) of ``rows`` is the band.

    The split-conformal rank ``ceil((rows + 1) * coverage)``: if a new row's error is
    exchangeable with the class's, it falls inside that order statistic with probability at
    least ``coverage``. The plain percentile (``ceil(rows * coverage)``) covers less on new
    rows, by about one rank in a class of a few dozen. Past ``rows`` (under 9 rows at 90 %)
    no order statistic promises the coverage; the largest error is taken, and covers less.
    """
    return min(rows, math.ceil((rows + 1) * coverage - 1e-9))


def bands_from_residuals(residuals: Iterable[tuple[str, float]]) -> dict[str, Band]:
    """Bands by class from ``(setup_class, signed error in points)`` pairs."""
    by_class: dict[str, list[float]] = {}
    for setup, error in residuals:
        if setup not in SETUP_CLASSES:
            raise GradsyncError(f"unknown setup class {setup!r} (known: "
                                f"{', '.join(SETUP_CLASSES)})")
        by_class.setdefault(setup, []).append(error)
    return {setup: band_of(setup, errors) for setup, errors in sorted(by_class.items())}


def with_holdout(bands: Mapping[str, Band],
                 holdout: Iterable[tuple[str, float]]) -> dict[str, Band]:
    """``bands`` with each class's held-out check: how many of the held-out rows of that class
    (``(setup_class, signed error in points)``) fall inside its band."""
    checked = {setup: [0, 0] for setup in bands}
    for setup, error in holdout:
        if setup in checked:
            checked[setup][0] += 1
            checked[setup][1] += abs(error) <= bands[setup].points
    return {setup: replace(band, holdout_rows=checked[setup][0],
                           holdout_within=checked[setup][1])
            for setup, band in bands.items()}


def with_devices(bands: Mapping[str, Band],
                 devices: Iterable[tuple[str, str]]) -> dict[str, Band]:
    """``bands`` with the devices their rows ran on, from ``(setup_class, device name)``."""
    seen: dict[str, set[str]] = {setup: set() for setup in bands}
    for setup, device in devices:
        if setup in seen:
            seen[setup].add(device)
    return {setup: replace(band, devices=tuple(sorted(seen[setup])))
            for setup, band in bands.items()}


def bands_document(bands: Mapping[str, Band], *, command: str, date: str, csv: str,
                   rows: int) -> dict[str, Any]:
    """The band file's content: the bands and how they were made (command, date, rows)."""
    return {"schema": BANDS_SCHEMA, "command": command, "date": date, "csv": csv, "rows": rows,
            "quantile": BAND_QUANTILE,
            "bands": {setup: {k: round(v, 3) if isinstance(v, float) else v
                              for k, v in asdict(band).items() if k != "setup_class"}
                      for setup, band in bands.items()}}


def write_bands(path: str | Path, document: Mapping[str, Any]) -> Path:
    """Write a band file (see :func:`bands_document`)."""
    # The shipped band file is regenerated in place (benchmarks.published --write-bands).
    return write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def load_bands(path: str | Path = BANDS_FILE) -> dict[str, Any]:
    """A band file as written by :func:`write_bands`; an absent file has no bands."""
    path = Path(path)
    if not path.is_file():
        return {"schema": BANDS_SCHEMA, "bands": {}}
    # Every compare() reads it: cached, keyed by the file's modification time so that a file
    # rewritten by --write-bands is read afresh.
    return _read_bands(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _read_bands(path: Path, _mtime_ns: int) -> dict[str, Any]:
    document = read_json(path, "a trust band file")
    if document.get("schema") != BANDS_SCHEMA or not isinstance(document.get("bands"), dict):
        raise GradsyncError(f"{path}: schema {document.get('schema')!r}, expected a trust "
                            f"band file of schema {BANDS_SCHEMA}")
    return document


@dataclass(frozen=True)
class Trust:
    """How far to trust one prediction: its setup class and that class's band (or None)."""

    setup_class: str
    band: Band | None
    source: str = ""                 # the benchmark command and date the band came from
    device: str = ""                 # the prediction's GPU (device name)

    @property
    def device_validated(self) -> bool:
        """Whether the class's published rows include this GPU (True where the band file
        does not record devices)."""
        b = self.band
        return b is not None and (not b.devices or not self.device or self.device in b.devices)

    @property
    def line(self) -> str:
        """The sentence shown under a prediction."""
        what = SETUP_CLASSES[self.setup_class]
        if self.band is None:
            return f"trust: no published rows validate this class ({what} setups)"
        b = self.band          # mean: the signed error, + where the model is optimistic
        rows = "row" if b.rows == 1 else "rows"
        held = (f"; held-out rows: {b.holdout_within} of {b.holdout_rows} within it"
                + (", too narrow for this class" if b.too_narrow else "")
                if b.holdout_rows else "")
        if not self.device_validated:
            held += f"; none of them ran on {self.device} GPUs"
        return (f"trust: expected error +-{b.points:.1f} points of scaling efficiency, from "
                f"{b.rows} published {rows} of {what} setups (median {b.median_points:.1f}, "
                f"max {b.max_points:.1f}, mean {b.bias_points:+.1f}{held}; {self.source})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the ``trust`` entry of ``--json``)."""
        band = None if self.band is None else {
            k: v for k, v in asdict(self.band).items() if k != "setup_class"}
        return {"setup_class": self.setup_class, "validated": self.band is not None,
                "device_validated": self.device_validated, "band": band,
                "source": self.source, "line": self.line}


def trust_for(cluster: Cluster, bands_file: str | Path = BANDS_FILE) -> Trust:
    """The trust band of a prediction on ``cluster`` (at its nodes and devices per node)."""
    setup = setup_class(cluster)
    document = load_bands(bands_file)
    raw = document["bands"].get(setup)
    source = (f"{document.get('command', '?')}, {document.get('date', '?')}"
              if raw is not None else "")
    band = None if raw is None else Band(setup, int(raw["rows"]), float(raw["points"]),
                                         float(raw["median_points"]),
                                         float(raw["max_points"]), float(raw["bias_points"]),
                                         int(raw.get("holdout_rows", 0)),
                                         int(raw.get("holdout_within", 0)),
                                         tuple(raw.get("devices", ())))
    return Trust(setup, band, source, cluster.device.name)
