"""Collective-library eras: which algorithms and protocols a library had, and its cost terms.

An *era* is what a "software stack" names as its collective library (``library=`` of
:class:`~hwmodels.commmodel.CommModel`). The NCCL eras carry the terms of NCCL's own cost model
(``src/graph/tuning.cc`` and ``src/graph/topo.h``, NVIDIA/nccl at commit 01afd20a, the 2.7/2.8
line, which the research notes as v2.8.4-1): base latency per (algorithm, protocol), latency per
step on NVLink, PCIe and the network, per-protocol bandwidth caps. ``mpi`` is not an NCCL era:
it selects the MPICH-style alpha-beta model that CPU ranks and host-staged GPUs always had.

Eras (names fixed; other parts pass them by name):

``nccl1``   open-source NCCL 1.x of 2016-17: one ring within one node, in device order, each hop
            peer to peer (over NVLink where the two GPUs share one) or through host memory
            (``src/core.cu``). "Not optimized for NVLink" (NVIDIA/nccl#49, #91: the NVLink
            ring search shipped in DGX containers only), but peer copies take NVLink: GPUs
            0-3 of a DGX-1 P100 run at NVLink speed, 5-8 GPUs at the cross-socket hop's.
``nccl2``   NCCL 2.0-2.3: rings inside and across nodes, the Simple protocol (LL arrived in
            2.3.5, the last release of this line; the measured 2.x curve on a DGX-1 P100 has
            Simple's latency, 47 us at 8 B, not LL's ~10 us).
``nccl2.4`` NCCL 2.4-2.7: trees across nodes (NVIDIA/nccl#211), LL and Simple.
``nccl2.8`` NCCL 2.8: LL128 too (from 2.5; enabled on Volta/Ampere NVLink).
``nccl2.20`` NCCL 2.17-2.2x (2023-25, what PyTorch 2.1+ wheels bundle): NCCL's re-tuned latency
            terms (``tuning.cc`` @b6475625), per-link speeds that are already what nccl-tests
            measures (the H100 ring at 365-370 of NCCL's 370.8 GB/s), and NVLS (NVLink SHARP:
            the NVSwitch reduces) for an allreduce inside one NVSwitch node of Hopper GPUs.
``mpi``     MPICH-style algorithms on alpha-beta links (see :mod:`hwmodels.collectives.tuner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from vocab.registry import Registry

PROTOCOLS = ("LL", "LL128", "Simple")
ALGORITHMS = ("ring", "tree", "nvls")
HW = ("nvlink", "pcie", "net")

_TUNING = "NVIDIA/nccl src/graph/tuning.cc @01afd20a (2.7/2.8)"

#: NCCL 2.8 baseLat (us): Tree {LL, LL128, Simple}, Ring {LL, LL128, Simple}.
_BASE_LAT_28 = {("tree", "LL"): 4.4, ("tree", "LL128"): 4.4, ("tree", "Simple"): 0.0,
                ("ring", "LL"): 3.6, ("ring", "LL128"): 10.0, ("ring", "Simple"): 8.4}
#: NCCL 2.8 hwLat (us) per hardware, algorithm, protocol.
_HW_LAT_28 = {
    "nvlink": {("tree", "LL"): .52, ("tree", "LL128"): 1.2, ("tree", "Simple"): 28.0,
               ("ring", "LL"): .47, ("ring", "LL128"): 1.9, ("ring", "Simple"): 3.4},
    "pcie": {("tree", "LL"): 1.0, ("tree", "LL128"): 1.9, ("tree", "Simple"): 28.0,
             ("ring", "LL"): 1.0, ("ring", "LL128"): 2.5, ("ring", "Simple"): 5.7},
    "net": {("tree", "LL"): 5.0, ("tree", "LL128"): 8.5, ("tree", "Simple"): 50.0,
            ("ring", "LL"): 2.7, ("ring", "LL128"): 4.0, ("ring", "Simple"): 9.6},
}

_TUNING_220 = "NVIDIA/nccl src/graph/tuning.cc @b6475625 (2.19/2.20 line)"
#: The same tables in NCCL's 2.19/2.20 line (NVLS has no base latency: its time is its hwLat).
_BASE_LAT_220 = {("tree", "LL"): 6.8, ("tree", "LL128"): 14.0, ("tree", "Simple"): 0.0,
                 ("ring", "LL"): 6.6, ("ring", "LL128"): 14.0, ("ring", "Simple"): 8.4,
                 ("nvls", "Simple"): 0.0}
_HW_LAT_220 = {
    "nvlink": {("tree", "LL"): .6, ("tree", "LL128"): 1.25, ("tree", "Simple"): 28.0,
               ("ring", "LL"): .6, ("ring", "LL128"): 1.9, ("ring", "Simple"): 3.4,
               ("nvls", "Simple"): 23.0},
    "pcie": {("tree", "LL"): 1.0, ("tree", "LL128"): 1.9, ("tree", "Simple"): 28.0,
             ("ring", "LL"): 1.0, ("ring", "LL128"): 2.5, ("ring", "Simple"): 5.7},
    "net": {("tree", "LL"): 5.0, ("tree", "LL128"): 8.5, ("tree", "Simple"): 28.0,
            ("ring", "LL"): 2.7, ("ring", "LL128"): 4.0, ("ring", "Simple"): 14.0},
}

#: NCCL 2.8 treeCorrectionFactor, per protocol, by log2(nbytes / 64) (0..21): "Trees are not
#: perfectly sticking to the model for medium sizes" -- the tree's bandwidth at mid sizes.
TREE_CORRECTION = {
    "LL": (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0,
           1.0, 1.0),
    "LL128": (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .5, .6, .6, .7, .7, .8, .9,
              .9, 1.0),
    "Simple": (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .5, .5, .6, .6, .7,
               .8, .9),
}


def _us(table: Mapping) -> Mapping:
    return MappingProxyType({k: v * 1e-6 for k, v in table.items()})


@dataclass(frozen=True)
class Era:
    """One library era: what it runs and the figures it is priced with (seconds, bytes/s).

    ``ring_plateau`` multiplies the per-step latency of Simple rings once a message reaches
    ``ranks / 16 * 64 KiB`` (NCCL's "plateau effect of ring", ``ncclTopoGetAlgoTime``): the
    mid-size regime where a ring of Simple steps pays each step's handshake twice over. NCCL's
    model applies it across nodes; the measured single-node curves show it too, so it is
    applied wherever Simple rings run. ``achieved`` is the fraction of NCCL's graph bandwidth
    (channels x per-channel speed) that nccl-tests measures at large sizes.
    """

    name: str
    description: str
    protocols: tuple[str, ...]
    trees: bool
    nvlink: bool
    base_lat_s: Mapping[tuple[str, str], float]
    hw_lat_s: Mapping[str, Mapping[tuple[str, str], float]]
    ring_plateau: float
    tree_correction: bool
    achieved: float
    qpi_Bps: float | None
    sources: Mapping[str, str] = field(default_factory=dict)
    #: Bytes per thread below which a collective runs on fewer channels (None: all
    #: channels at every size), and threads per channel, per protocol.
    thread_threshold: Mapping[str, int] | None = None
    threads: Mapping[str, int] = field(default_factory=lambda: MappingProxyType(
        {"LL": 512, "LL128": 640, "Simple": 512}))
    #: Channels NCCL runs per ring of its graph (2.x duplicates its rings onto more SMs).
    channels_per_ring: int = 1
    #: What a step takes as measured over NCCL's own per-step estimate (``hwLat``), inside a
    #: node and across the network: NCCL's tuner prices with its estimate; what runs, with
    #: this (1: the estimate holds).
    step_latency_measured: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"intra": 1.0, "net": 1.0}))
    #: How the library packs rings onto a node's NVLinks: ``"graph"`` (2.5+ topology search,
    #: ``src/graph/search.cc``: channels may share a link at a lower speed each, the fractional
    #: optimum), ``"p2p"`` (2.0-2.4, ``src/transport/p2p.cu``: each ring takes whole links;
    #: only up to 4 GPUs may put two rings on one link) or ``"order"`` (1.x, ``src/core.cu``:
    #: no search, one ring in device order, each hop on its direct NVLink where there is one,
    #: else over PCIe and through the sockets). See ``hwmodels.collectives.nccl``.
    ring_search: str = "graph"
    #: The most one ring carries, as NCCL's figure (before ``achieved``); None: the links
    #: alone decide. Measured for NCCL 1.x, whose one ring on an NVLink stays below the link.
    ring_cap_Bps: float | None = None
    #: NVLS (NVLink SHARP) allreduce inside one NVSwitch node of :data:`NVLS_DEVICES`, from
    #: ``nvls_min_gpus`` GPUs: what it runs at is ``nvls_efficiency`` of the traffic bound
    #: (each GPU moves ``1 + 1/k`` times the message each way, see
    #: :mod:`hwmodels.collectives.nccl`).
    nvls: bool = False
    nvls_efficiency: float = 1.0
    nvls_min_gpus: int = 4
    #: ``achieved`` of the network's NICs where it differs from the node's rings' (None: the
    #: same fraction).
    achieved_net: float | None = None

    @property
    def achieved_network(self) -> float:
        """The fraction of NCCL's network figure that nccl-tests measures."""
        return self.achieved if self.achieved_net is None else self.achieved_net


def _nccl28(name: str, description: str, protocols: tuple[str, ...], trees: bool) -> Era:
    return Era(name, description, protocols, trees, True, _us(_BASE_LAT_28),
               MappingProxyType({hw: _us(t) for hw, t in _HW_LAT_28.items()}),
               ring_plateau=1.9, tree_correction=True, achieved=0.9, qpi_Bps=None,
               thread_threshold=MappingProxyType({"LL": 8, "LL128": 8, "Simple": 64}),
               channels_per_ring=2,
               step_latency_measured=MappingProxyType({"intra": 2.7, "net": 3.0}),
               sources=MappingProxyType({
                   "channels": "NVIDIA/nccl src/enqueue.cc getAlgoInfo: channels dropped "
                               "while nBytes < nChannels x nThreads x threadThreshold "
                               "(LL 8 B/thread, x ranks for rings; LL128 8; Simple 64); "
                               "tuning.cc: LL 512 threads, LL128 640; rings duplicated "
                               "(graph/connect.cc ncclTopoPostset)",
                   "latency": f"{_TUNING}: baseLat, hwLat",
                   "caps": f"{_TUNING}: LL x1/4, LL128 x0.92 <= 16.7 GB/s per channel, "
                           "tree x0.9 <= 80 GB/s (110 on 2 nodes), tree LL x1/3.8",
                   "ring_plateau": f"{_TUNING} ncclTopoGetAlgoTime: lat *= 1.9 (plateau "
                                   "effect of ring) from ranks/16*64 KiB",
                   "tree_correction": f"{_TUNING}: treeCorrectionFactor",
                   "achieved": "nccl-tests busbw at 1 GB over NCCL's graph bandwidth on a "
                               "DGX-1 P100 (uuudown/Tartan, 2-8 GPUs): 0.86-0.96",
                   "step_latency_measured": "python -m calibration.collfit fitted to the "
                               "ABCI V100 nccl-tests logs, 1-32 nodes x 4 GPUs, NCCL 2.8 "
                               "(aistabci/abci2.0benchmark): steps take 2.7x (NVLink) and 3.0x "
                               "(network) NCCL's hwLat; the research notes NCCL's terms ~2x "
                               "optimistic at 64 KB-1 MB",
               }))


def _nccl220() -> Era:
    """NCCL 2.17-2.2x: the 2.8 mechanisms with the 2.19/2.20 tables, measured-speed links, NVLS."""
    base = _nccl28("nccl2.20", "NCCL 2.17-2.2x: rings and trees; LL, LL128 and Simple; NVLS "
                   "inside NVSwitch nodes of Hopper GPUs", ("LL", "LL128", "Simple"), trees=True)
    sources = dict(base.sources)
    sources.update({
        "latency": f"{_TUNING_220}: baseLat, hwLat (NVLS: latency = hwLat, 23 us on NVLink)",
        "achieved": "nccl#1455 (8x H100 SXM, NCCL_ALGO=RING, 2-4 GB): busbw 365-370 GB/s from 2 "
                    "to 8 GPUs, and sjeaugey in nccl-tests#212: 'NCCL can get an effective "
                    "NVLink bandwidth of 370GB/s' = NCCL's own 18 x 20.6 GB/s (topo.h SM90): "
                    "0.99 of it, inside a node. Across nodes 0.9 as nccl2.8 (no measured curve of "
                    "this era on InfiniBand here; nccl#1221, 8x H100 with 8x 400G RoCE, NCCL "
                    "2.19.3, NVLS off: 320-330 GB/s busbw on 2-4 nodes, 0.83-0.86 of 8 x 48)",
        "nvls": "nccl#1455 (8x H100 SXM, NCCL_ALGO=NVLS, 2-4 GB): busbw 370 at 2-4 GPUs (the "
                "ring's), 420 / 440 / 460 / 480 at 5 / 6 / 7 / 8 (algbw 258 to 273); sjeaugey, "
                "nccl-tests#212: 'On 8 GPUs ... a peak busBw of ~480GB/s (algbw ~275GB/s)'; "
                "nccl#1442: 'a 30% improvement using NVLink SHARP'. Efficiency 0.84 = 274 / "
                "(0.99 x 370.8 / (1 + 1/8)), the 8-GPU figure; at 5-7 GPUs the same efficiency "
                "gives 257 / 264 / 270 GB/s algbw against the measured 258 / 265 / 270",
        "nvls_min_gpus": "nccl#1455: forced NVLS on 2-4 GPUs measures the ring's bus bandwidth; "
                         "at 4 the traffic bound ties the ring",
        "step_latency_measured": "as nccl2.8 (ABCI V100 fit): no measured curve of this era here",
    })
    return replace(base, base_lat_s=_us(_BASE_LAT_220),
                   hw_lat_s=MappingProxyType({hw: _us(t) for hw, t in _HW_LAT_220.items()}),
                   achieved=0.99, achieved_net=0.9, nvls=True, nvls_efficiency=0.84,
                   nvls_min_gpus=4,
                   sources=MappingProxyType(sources))


def _measured_era(name: str, description: str, base_us: float, step_us: float,
                  plateau: float, nvlink: bool, qpi_Bps: float | None,
                  sources: Mapping[str, str], ring_search: str = "p2p",
                  ring_cap_Bps: float | None = None) -> Era:
    """An era older than NCCL's cost model: one ring protocol with measured latency terms,
    rings on whole NVLinks (``ring_search="p2p"``) unless told otherwise."""
    lat = {("ring", "Simple"): step_us}
    return Era(name, description, ("Simple",), False, nvlink,
               _us({("ring", "Simple"): base_us}),
               MappingProxyType({hw: _us(lat) for hw in HW}), ring_plateau=plateau,
               tree_correction=False, achieved=0.9, qpi_Bps=qpi_Bps,
               sources=MappingProxyType(dict(sources)), ring_search=ring_search,
               ring_cap_Bps=ring_cap_Bps)


_TARTAN = "uuudown/Tartan microbenchmark/scale_up_cl (DGX-1 P100)"

ERAS: Registry[Era] = Registry("library", {
    "nccl1": _measured_era(
        "nccl1", "open-source NCCL 1.x (2016-17): one ring in device order inside one node, "
        "peer copies over NVLink where GPUs share one",
        base_us=8.7, step_us=4.7, plateau=1.35, nvlink=True, qpi_Bps=8.5e9,
        ring_search="order", ring_cap_Bps=16.2e9, sources={
            "latency": f"{_TARTAN} nccl-v1/latency.txt: 18 us at 2 GPUs to 74 us at 8, "
                       "i.e. 8.7 us + 4.7 us per ring step",
            "ring_plateau": f"{_TARTAN} nccl-v1/packet.txt: 64 KB-1 MB run ~1.35x the "
                            "small-message step latency",
            "qpi": f"{_TARTAN} nccl-v1/packet.txt: 7.69 GB/s busbw plateau on 8 GPUs, the "
                   "ring's hops 3->4 and 7->0 through host memory across the sockets "
                   "(7.69 / 0.9 achieved); nccl-v1/bandwidth.txt: 7.1-7.6 at 5-8 GPUs",
            "ring_search": "NVIDIA/nccl src/core.cu (v1.x, commit 93183bca): orderRanks sorts "
                           "the ranks by NVML index and commBuildMaps links each to the next "
                           "in that order, one ring (NVIDIA/nccl#666); a neighbour is reached "
                           "by P2P device memory where cudaDeviceCanAccessPeer, else through "
                           "host memory",
            "ring_cap": f"{_TARTAN} nccl-v1/bandwidth.txt, all_reduce at 1 GB on GPUs 0-1, "
                        "0-2, 0-3 (all NVLink peers): 14.55, 15.81, 14.25 GB/s busbw, 0.79-0.88 "
                        "of NCCL's 18 GB/s per NVLink 1.0 link where NCCL 2.x gets 0.96 "
                        "(17.28); the median 14.55 / 0.9 achieved = 16.2 GB/s. Whether the "
                        "link or 1.x's one-ring kernel sets it these logs cannot tell; as a "
                        "per-ring ceiling it leaves PCIe hops (12 GB/s) as they are",
            "nvlink": "NVIDIA/nccl#49 and #91 (NVIDIA, 2016-17): the GitHub 1.x is 'not "
                      "optimized for NVLink', 'focused on PCIe'; NVLink-optimized 1.6 only in "
                      "DGX containers (#76). Its peer copies still take NVLink: Tartan's 2-4 "
                      "GPU figures are above what PCIe carries (12 GB/s), though Tartan's README "
                      "says its 1.x build used PCIe only"}),
    "nccl2": _measured_era(
        "nccl2", "NCCL 2.0-2.3: NVLink/PCIe rings inside and across nodes, Simple protocol",
        base_us=15.5, step_us=2.25, plateau=1.9, nvlink=True, qpi_Bps=6e9, sources={
            "latency": f"{_TARTAN} nccl-v2/latency.txt: 20 us at 2 GPUs to 47 us at 8, "
                       "i.e. 15.5 us + 2.25 us per ring step",
            "ring_plateau": f"{_TUNING} ncclTopoGetAlgoTime (x1.9); the Tartan 2.x curve "
                            "steps from 47 to ~75 us at 32 KB on 8 GPUs",
            "qpi": "NVIDIA/nccl src/graph/topo.h: QPI 6 GB/s (Broadwell)",
            "ring_search": "NVIDIA/nccl src/transport/p2p.cu (2.0-2.4, e.g. commit "
                           "01d7a243): computeRingsRec packs rings on whole NVLinks, "
                           "oversubscribing links only when nranks <= 4 and it more than "
                           "doubles the rings; Tartan nccl-v2 by GPUs: 7 GPUs 34.7 GB/s "
                           "(2 rings), 4 GPUs 52.1 (6 half-speed rings)",
            "protocols": "LL from 2.3.5, LL128 from 2.5 (research notes, gpu-fidelity.md s2)"}),
    "nccl2.4": _nccl28("nccl2.4", "NCCL 2.4-2.7: rings, and trees across nodes; LL and Simple",
                       ("LL", "Simple"), trees=True),
    "nccl2.8": _nccl28("nccl2.8", "NCCL 2.8: rings and trees; LL, LL128 and Simple",
                       ("LL", "LL128", "Simple"), trees=True),
    "nccl2.20": _nccl220(),
})
#: GPUs whose NVSwitch nodes run NVLS (NVLink SHARP needs the third-generation NVSwitch of
#: Hopper systems), by device-name prefix.
NVLS_DEVICES = ("h100", "h200", "h800")
#: The oldest era that drives a device, by device-name prefix: NCCL 2.8 predates Hopper
#: (SM90 support came with NCCL 2.12, its NVLink speed in ``topo.h`` with it).
MIN_ERA = {"h100": "nccl2.20", "h200": "nccl2.20", "h800": "nccl2.20"}



def by_device(table: Mapping[str, object], device_name: str, default=None):
    """The entry of ``table`` (keyed by device-name prefix) for ``device_name``, else
    ``default``: how :data:`NVLINK_Bps` and :data:`MIN_ERA` are read."""
    name = device_name.lower()
    return next((value for prefix, value in table.items() if name.startswith(prefix)), default)


#: Not an NCCL era: the MPICH-style alpha-beta model (CPU ranks, host-staged GPUs).
MPI = "mpi"
LIBRARIES = (*ERAS, MPI)

#: NCCL's per-link NVLink speed by GPU generation (``topo.h`` ``ncclTopoNVLinkSpeed``: SM60
#: 18 GB/s, SM70 21, SM80 20; SM90 20.6 from NCCL 2.12; SM86, the NVLink bridges of GA102
#: boards, 12: ``SM86_NVLINK_BW 12.0``), keyed by the device-name prefix. The A30 is SM80;
#: the A40, RTX 3090 and RTX A6000 are SM86; the H200 is SM90. GPUs without NVLink need no entry.
NVLINK_Bps = {"p100": 18e9, "v100": 21e9, "a100": 20e9, "h100": 20.6e9, "h200": 20.6e9,
              "a30": 20e9,
              "a40": 12e9, "rtx-3090": 12e9, "rtx-a6000": 12e9}
#: ``topo.h``: PCIe 12 GB/s (PCI_WIDTH), QPI 6 (Broadwell), network 12 per 100 Gb/s NIC.
PCIE_Bps = 12e9
QPI_Bps = 6e9
#: What one hop of NCCL's SHM transport carries when the ring runs both ways at once, as
#: nccl-tests measures it (bus bandwidth): GPUs without peer access (``Device.pcie_p2p``
#: false) pass each step through host memory, a copy in and a copy out through the socket's
#: memory and PCIe path, and a ring sends and receives at once. NVIDIA/nccl#384 (NCCL 2.4.8,
#: PCIe 3.0 x16, 2 GPUs, NCCL_P2P_DISABLE=1, one channel): all_reduce_perf 3.9 GB/s busbw
#: (all_gather and reduce_scatter 3.17) where the one-way broadcast and reduce reach 10.31
#: and 9.62; sjeaugey there: "some components (in particular some CPUs) do not handle
#: bidirectional traffic well". It is a measured figure: the ring model prices the hop at it
#: over the era's ``achieved`` fraction, so what it predicts nccl-tests to measure is 3.9.
SHM_DUPLEX_BUSBW = 3.9e9
