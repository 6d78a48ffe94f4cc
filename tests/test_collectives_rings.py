"""Ring bandwidth on link graphs with known answers, and on the DGX-1 meshes.

Convention: a ring is directional; the effective ring bandwidth is the sum of each ring's
bottleneck share, and an undirected Hamiltonian cycle run both ways counts as two rings.
"""

from __future__ import annotations

from itertools import combinations, pairwise

import networkx as nx
import pytest

from hwmodels.collectives.rings import find_rings, ring_bandwidth
from vocab.errors import SpecError

GB = 1e9


def device_graph(pairs: dict[tuple[int, int], int], per_link_Bps: float = 10 * GB) -> nx.Graph:
    g = nx.Graph()
    for a, b in pairs:
        g.add_node(a, kind="device")
        g.add_node(b, kind="device")
    for (a, b), links in pairs.items():
        g.add_edge(a, b, kind="nvlink", links=links, bandwidth_Bps=links * per_link_Bps,
                   latency_s=1e-6)
    return g


def complete(n: int) -> dict[tuple[int, int], int]:
    return {pair: 1 for pair in combinations(range(n), 2)}


def dgx1_p100_pairs() -> dict[tuple[int, int], int]:
    pairs = {**{(a, b): 1 for q in (range(4), range(4, 8)) for a, b in combinations(q, 2)}}
    return {**pairs, **{(i, i + 4): 1 for i in range(4)}}


def dgx1_v100_pairs() -> dict[tuple[int, int], int]:
    two = [(0, 3), (0, 4), (1, 2), (1, 5), (2, 3), (4, 7), (5, 6), (6, 7)]
    one = [(0, 1), (0, 2), (1, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7)]
    return {**{e: 2 for e in two}, **{e: 1 for e in one}}


def test_four_cycle_is_one_ring_each_way() -> None:
    g = device_graph({(0, 1): 1, (1, 2): 1, (2, 3): 1, (3, 0): 1})
    rings = find_rings(g, range(4))
    assert sorted(r.order for r in rings) == [(0, 1, 2, 3), (0, 3, 2, 1)]
    assert ring_bandwidth(g, range(4)) == pytest.approx(20 * GB)


def test_doubled_four_cycle_uses_both_links() -> None:
    # one cycle per direction gets both links of every edge (or two cycles one link each)
    g = device_graph({(0, 1): 2, (1, 2): 2, (2, 3): 2, (3, 0): 2})
    assert ring_bandwidth(g, range(4)) == pytest.approx(40 * GB)


def test_one_doubled_edge_does_not_make_a_second_ring() -> None:
    g = device_graph({(0, 1): 2, (1, 2): 1, (2, 3): 1, (3, 0): 1})
    assert ring_bandwidth(g, range(4)) == pytest.approx(20 * GB)   # bottleneck: single links


def test_complete_graphs() -> None:
    # K4: every two Hamiltonian cycles share edges, so one cycle (the spare matching idles);
    # K5 splits into two edge-disjoint Hamiltonian cycles
    assert ring_bandwidth(device_graph(complete(4)), range(4)) == pytest.approx(20 * GB)
    assert ring_bandwidth(device_graph(complete(5)), range(5)) == pytest.approx(40 * GB)


def test_dense_graphs() -> None:
    # K8 (2,520 cycles, searched exhaustively): 3 disjoint cycles; K9 (more cycles than the
    # search enumerates): greedy peeling still finds its 4 disjoint cycles (Walecki).
    # How fast: benchmarks/bench_micro.py (goal < 0.5 s each).
    for n, expected in ((8, 60 * GB), (9, 80 * GB)):
        assert ring_bandwidth(device_graph(complete(n)), range(n)) == pytest.approx(expected)


def test_two_devices_and_one() -> None:
    g = device_graph({(0, 1): 3})
    assert ring_bandwidth(g, [0, 1]) == pytest.approx(30 * GB)
    assert ring_bandwidth(g, [0]) == float("inf")
    assert find_rings(g, [0]) == []


def test_dgx1_p100_holds_two_cycles() -> None:
    g = device_graph(dgx1_p100_pairs(), 20 * GB)
    rings = find_rings(g, range(8))
    assert len(rings) == 4                                   # 2 cycles, both directions
    assert ring_bandwidth(g, range(8)) == pytest.approx(80 * GB)
    cycles = {frozenset(frozenset(e) for e in pairwise((*r.order, r.order[0]))) for r in rings}
    first, second = cycles                                   # two distinct cycles...
    assert not first & second                                # ...sharing no edge


def test_dgx1_v100_holds_three_cycles_over_its_six_links() -> None:
    # how fast (goal < 0.1 s): benchmarks/bench_micro.py
    g = device_graph(dgx1_v100_pairs(), 25 * GB)
    assert ring_bandwidth(g, range(8)) == pytest.approx(150 * GB)   # 6 rings x 25 GB/s
    assert all(r.bandwidth_Bps == pytest.approx(25 * GB) for r in find_rings(g, range(8)))


def pcie_box(qpi_Bps: float) -> nx.Graph:
    """8 devices, 2 per PCIe switch (16 GB/s), switches 0-1 on cpu0, 2-3 on cpu1."""
    g = nx.Graph()
    for d in range(8):
        g.add_node(d, kind="device")
        g.add_edge(d, f"sw{d // 2}", kind="pcie", links=1, bandwidth_Bps=16 * GB, latency_s=1e-6)
    for s in range(4):
        g.add_edge(f"sw{s}", f"cpu{s // 2}", kind="pcie", links=1, bandwidth_Bps=16 * GB,
                   latency_s=1e-6)
    g.add_edge("cpu0", "cpu1", kind="qpi", links=1, bandwidth_Bps=qpi_Bps, latency_s=1e-6)
    return g


def test_pcie_tree_is_limited_by_its_narrowest_cut() -> None:
    # a ring must cross QPI once each way, whichever order: QPI bounds it
    assert ring_bandwidth(pcie_box(10 * GB), range(8)) == pytest.approx(10 * GB)
    # with a wide QPI the switch uplinks (crossed once each way) are the bottleneck
    assert ring_bandwidth(pcie_box(100 * GB), range(8)) == pytest.approx(16 * GB)
    rings = find_rings(pcie_box(10 * GB), range(8))
    assert all(r.routed for r in rings)
    assert rings[0].latency_s == pytest.approx(5e-6)          # 1 -> sw0 -> cpu0 -> cpu1 -> ...


def test_switch_star_gives_per_device_bandwidth() -> None:
    g = nx.Graph()
    for d in range(8):
        g.add_node(d, kind="device")
        for s in range(6):        # six identical switches: traffic spreads over all of them
            g.add_edge(d, f"nvs{s}", kind="nvswitch", links=2, bandwidth_Bps=50 * GB,
                       latency_s=1e-6)
    assert ring_bandwidth(g, range(8)) == pytest.approx(300 * GB)


def test_bad_graphs() -> None:
    g = device_graph({(0, 1): 1, (2, 3): 1})
    with pytest.raises(SpecError, match="graph"):
        ring_bandwidth(g, range(4))
    with pytest.raises(SpecError, match="devices"):
        ring_bandwidth(device_graph({(0, 1): 1}), [0, 1, 7])


cluster = pytest.importorskip("hwmodels.cluster")


def per_link(graph: nx.Graph) -> float:
    rates = {d["bandwidth_Bps"] / d["links"] for _, _, d in graph.edges(data=True)
             if d["kind"] == "nvlink"}
    assert len(rates) == 1
    return rates.pop()


@pytest.mark.parametrize("preset, rings", [("dgx1-p100", 4), ("dgx1-v100", 6)])
def test_presets(preset: str, rings: int) -> None:
    node = cluster.load_cluster(preset).node
    found = find_rings(node.graph, node.device_ids)
    assert len(found) == rings and not any(r.routed for r in found)
    assert ring_bandwidth(node.graph, node.device_ids) == pytest.approx(
        rings * per_link(node.graph))
