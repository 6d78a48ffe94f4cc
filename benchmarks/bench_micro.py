"""Hot helpers of the cost models, and one training step of the small torch models.

These goals were wall-clock asserts in the fast tests (tests/test_collectives_rings.py,
tests/test_commmodel.py, tests/test_models.py); the tests keep what they check functionally.
"""

from __future__ import annotations

import time
from itertools import combinations

import networkx as nx

from hwmodels.cluster import load_cluster
from hwmodels.collectives.rings import ring_bandwidth
from hwmodels.commmodel import CommModel


def complete_graph(n: int, per_link_Bps: float = 10e9) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(n), kind="device")
    for a, b in combinations(range(n), 2):
        g.add_edge(a, b, kind="nvlink", links=1, bandwidth_Bps=per_link_Bps, latency_s=1e-6)
    return g


def bench_dense_ring_search() -> list[dict]:
    """K8 (2,520 Hamiltonian cycles, searched exhaustively) and K9 (greedy peeling)."""
    rows = []
    for n in (8, 9):
        graph = complete_graph(n)
        start = time.perf_counter()
        ring_bandwidth(graph, range(n))
        rows.append({"name": f"ring bandwidth of K{n} (complete graph)",
                     "seconds": time.perf_counter() - start, "goal_s": 0.5})
    return rows


def bench_dgx1_rings() -> dict:
    """Ring embedding on the DGX-1 V100 hybrid cube-mesh (8 devices, 6 NVLinks each)."""
    cluster = load_cluster("dgx1-v100")
    devices = [n for n, d in cluster.node.graph.nodes(data=True) if d["kind"] == "device"]
    start = time.perf_counter()
    ring_bandwidth(cluster.node.graph, devices)
    return {"name": "ring bandwidth of the DGX-1 V100 mesh, 8 devices",
            "seconds": time.perf_counter() - start, "goal_s": 0.1}


def bench_allreduce_calls() -> dict:
    """56,000 CommModel.allreduce(n).at(n) calls over 28 sizes (the engines' inner call)."""
    model = CommModel(load_cluster("dgx1-v100", nodes=4))
    sizes = [float(4 << i) for i in range(28)]
    start = time.perf_counter()
    for _ in range(2000):
        for n in sizes:
            model.allreduce(n).at(n)
    return {"name": "CommModel.allreduce, 56,000 calls (4 nodes)",
            "seconds": time.perf_counter() - start, "goal_s": 1.0}


def bench_small_model_steps() -> list[dict]:
    """CPU seconds of one forward + backward of each ``-ci`` model at its default batch, after
    a warm-up step (process time: not inflated by other jobs on shared cores). Needs torch."""
    try:
        import torch

        from executor.models import (build_model, example_batch, list_models, loss_function,
                                     model_info)
    except ImportError:
        return []
    from vocab.workload import load_workload

    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # as the test did: one rank's share of the machine
    rows = []
    # the small models (the -ci sizes, the digits and convergence models): full-size ones
    # (ResNet-152, BERT-Large, Inception-v3, ...) would take minutes a step on a CPU
    small = [n for n in list_models() if load_workload(n).total_params < SMALL_PARAMS]
    for name in small:
        torch.manual_seed(0)
        model = build_model(name)
        inputs, targets = example_batch(name, model_info(name).default_batch)
        loss_function(name)(model(inputs), targets).backward()
        model.zero_grad()
        start = time.process_time()
        loss_function(name)(model(inputs), targets).backward()
        rows.append({"name": f"{name}: one training step, CPU seconds",
                     "seconds": time.process_time() - start, "goal_s": 1.0})
    torch.set_num_threads(threads)
    return rows


#: Models below this many parameters count as small (the largest -ci size has under 1 M).
SMALL_PARAMS = 2_000_000

BENCHMARKS = [bench_dense_ring_search, bench_dgx1_rings, bench_allreduce_calls,
              bench_small_model_steps]
