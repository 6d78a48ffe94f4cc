"""Heterogeneous clusters in the detailed fidelity: node groups, slow nodes, degraded links,
leaf switches and placement; and the analytic fidelity refusing what it cannot represent."""

from __future__ import annotations

from dataclasses import replace

import pytest
import simpy
from test_sim_helpers import ToyComm, toy_cluster, toy_context, toy_node

from hwmodels.cluster import cluster_from_dict
from hwmodels.hetero import Degraded, NodeGroup, Variation
from simulator.api import RunSettings, run_strategy, strategy_spec
from simulator.detailed import DetailedNetwork
from vocab.errors import SpecError
from vocab.strategies import Message

STRATEGIES = ["sync", "layerwise", "bucketed", "delayed", "crossiter"]
GRADS = [400_000, 2_000_000, 8_000_000, 120_000, 30_000_000]
FWD = [1e-3, 1.5e-3, 1e-3, 5e-4, 2e-3]
BWD = [2e-3, 3e-3, 2e-3, 1e-3, 4e-3]


def iteration(cluster, strategy, fidelity="detailed", placement="packed", alpha_s=2e-6):
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster, alpha_s))
    settings = RunSettings(2, fidelity=fidelity, placement=placement)
    return run_strategy(ctx, strategy_spec(strategy), settings).iteration_time_s


def one_allreduce(cluster, nbytes, ordering="serial", placement="packed"):
    env, rows = simpy.Environment(), []
    network = DetailedNetwork(env, cluster, ToyComm(cluster, 1e-6), ordering, rows,
                              variation=cluster.variation, placement=placement)
    network.post(0, Message(0, (0,), nbytes), 0, 0, weight=cluster.total_devices)
    env.run()
    return env.now


def with_variation(cluster, **fields):
    return replace(cluster, variation=Variation(**fields))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_identical_node_groups_are_the_plain_cluster(strategy):
    plain = toy_cluster(4)
    groups = with_variation(plain, groups=(NodeGroup("a", 3, toy_node()),
                                           NodeGroup("b", 1, toy_node())))
    for fidelity in ("analytic", "detailed"):
        assert iteration(groups, strategy, fidelity) == pytest.approx(
            iteration(plain, strategy, fidelity), rel=1e-12)


def test_identical_groups_from_a_file_are_the_plain_preset():
    node = {"topology": "dgx1-v100"}
    plain = cluster_from_dict({"name": "c", "node": node, "nodes": 4, "fabric": "ib-edr"})
    grouped = cluster_from_dict({"name": "c", "fabric": "ib-edr", "groups": [
        {"name": "a", "nodes": 2, "node": node}, {"name": "b", "nodes": 2, "node": node}]})
    assert grouped.nodes == 4 and grouped.variation.is_uniform
    from simulator.api import simulate
    for strategy in ("sync", "bucketed", "delayed"):
        runs = [simulate(c, "resnet50-ci", 8, strategy, iterations=1, fidelity="detailed")
                for c in (plain, grouped)]
        assert runs[1].iteration_time_s == pytest.approx(runs[0].iteration_time_s, rel=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_slow_node_never_makes_a_strategy_faster(strategy):
    plain = toy_cluster(4)
    times = [iteration(with_variation(plain, slow_nodes={2: slow}) if slow > 1 else plain,
                       strategy) for slow in (1.0, 1.1, 1.5, 3.0)]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(times, times[1:]))
    assert times[-1] > times[0]      # three times slower compute on one node is seen


def test_a_slow_node_paces_sync_by_its_compute():
    # sync waits for every rank: a node slowed s-fold adds (s - 1) x its compute to the
    # iteration, plus nothing else when communication is negligible (10 TB/s links).
    fast = toy_cluster(2, intra_Bps=1e13, inter_Bps=1e13)
    slow = with_variation(fast, slow_nodes={1: 2.0})
    compute = sum(FWD) + sum(BWD) + 1e-3
    base = iteration(fast, "sync", alpha_s=0.0)
    assert iteration(slow, "sync", alpha_s=0.0) - base == pytest.approx(compute, rel=1e-3)


def test_degraded_nic_by_hand():
    # Flat ring over 2 toy nodes (one NIC each): every step moves n/p out of node 0's NIC and
    # n/p into it. At a quarter of 10 GB/s that NIC is the bottleneck of all 2(p-1) steps.
    cluster = toy_cluster(2)
    degraded = with_variation(cluster, degraded=(Degraded(0, 0.25, nic="nic0"),))
    p, n = cluster.total_devices, 64 << 20
    expected = 2 * (p - 1) * (1e-6 + n / p / (0.25 * 10e9))
    for ordering in ("serial", "concurrent"):
        assert one_allreduce(degraded, n, ordering) == pytest.approx(expected, rel=1e-9)


def test_two_node_groups_by_hand():
    # Node 1's PCIe at 2 GB/s: the ring's exit from node 1 (device -> switch -> NIC) and its
    # entry carry n/p per step at 2 GB/s, slower than the 10 GB/s fabric: 2(p-1) such steps.
    cluster = toy_cluster(2)
    groups = with_variation(cluster, groups=(NodeGroup("fast", 1, toy_node()),
                                             NodeGroup("slow", 1, toy_node(pcie_Bps=2e9))))
    p, n = cluster.total_devices, 64 << 20
    expected = 2 * (p - 1) * (1e-6 + n / p / 2e9)
    assert one_allreduce(groups, n) == pytest.approx(expected, rel=1e-9)


def test_degraded_intra_link_never_faster():
    cluster = toy_cluster(1)
    base = one_allreduce(cluster, 64 << 20)
    for factor in (0.5, 0.1):
        slow = with_variation(cluster, degraded=(Degraded(0, factor, link=(0, 1)),))
        assert one_allreduce(slow, 64 << 20) >= base


def test_placement_on_oversubscribed_leaves_by_hand():
    # 8 one-NIC nodes, leaves of 2 ports at 4:1: a leaf's uplink serves 2 x 10 / 4 = 5 GB/s.
    # Packed (nodes 0-1, 2-3, ... share a leaf): one ring hop per leaf crosses the spine, n/p
    # per step. Spread (node n on leaf n % 4): both of a leaf's nodes send across, 2 n/p.
    cluster = replace(toy_cluster(8), oversubscription=4.0)
    leaves = with_variation(cluster, leaf_radix=2)
    p, n = cluster.total_devices, 64 << 20
    for placement, hops in (("packed", 1), ("spread", 2)):
        expected = 2 * (p - 1) * (1e-6 + hops * n / p / 5e9)
        assert one_allreduce(leaves, n, placement=placement) == pytest.approx(expected,
                                                                                rel=1e-9)
    # a non-blocking fabric (radix >= nodes: one leaf) is the plain core at ratio 1
    flat = with_variation(replace(cluster, oversubscription=1.0), leaf_radix=8)
    assert one_allreduce(flat, n) == pytest.approx(
        one_allreduce(replace(cluster, oversubscription=1.0), n), rel=1e-12)


def test_analytic_refuses_heterogeneity_naming_detailed():
    cluster = with_variation(toy_cluster(2), slow_nodes={1: 1.5})
    with pytest.raises(SpecError, match="fidelity='detailed'"):
        iteration(cluster, "sync", "analytic")
    with pytest.raises(SpecError, match="placement"):
        iteration(toy_cluster(2), "sync", "analytic", placement="spread")


@pytest.mark.parametrize("raw,field", [
    ({"slow_nodes": {5: 1.5}}, "node"),
    ({"slow_nodes": {1: 0.5}}, "slow_nodes.1"),
    ({"degraded": [{"node": 0, "nic": "nic9", "factor": 0.5}]}, "degraded.nic"),
    ({"degraded": [{"node": 0, "nic": "nic0", "factor": 2}]}, "degraded.factor"),
    ({"fabric_leaves": {"radix": 0}}, "fabric_leaves.radix"),
])
def test_bad_variation_names_the_field(raw, field):
    with pytest.raises(SpecError, match=field):
        cluster = cluster_from_dict({"name": "c", "node": {"topology": "dgx1-v100"},
                                     "nodes": 2, "fabric": "ib-edr", **raw})
        iteration(cluster, "sync")


def test_a_heterogeneous_file_saves_and_loads_back(tmp_path):
    from hwmodels.cluster import load_cluster, save_cluster
    from simulator.api import simulate
    raw = {"name": "mixed", "fabric": "ib-edr",
           "groups": [{"name": "v100", "nodes": 3, "node": {"topology": "dgx1-v100"}},
                      {"name": "p100", "nodes": 1, "node": {"topology": "dgx1-p100"},
                       "nics": 2}],
           "slow_nodes": {1: 1.5}, "degraded": [{"node": 0, "nic": "nic1", "factor": 0.5},
                                                {"node": 2, "link": [0, 1], "factor": 0.5}],
           "fabric_leaves": {"radix": 8}, "noise_per_node": True}
    cluster = cluster_from_dict(raw)
    assert [len(g.node.nics) for g in cluster.variation.groups] == [4, 2]
    again = load_cluster(save_cluster(cluster, tmp_path / "mixed.yaml"))
    runs = [simulate(c, "resnet50-ci", 8, "bucketed", iterations=2, fidelity="detailed",
                     noise=0.05) for c in (cluster, again)]
    assert runs[0].iteration_time_s == runs[1].iteration_time_s


def test_per_node_noise_makes_one_rank_class_per_node():
    # Every rank of a node shares its node's factor: the engine runs one process per node,
    # and the trace has the node leaders' rows (ranks 0, 4, 8, 12 of four 4-GPU nodes).
    from simulator.noise import NoiseSpec
    cluster = with_variation(toy_cluster(4), noise_per_node=True)
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster, 2e-6))
    result = run_strategy(ctx, strategy_spec("sync"), RunSettings(
        3, fidelity="detailed", noise=NoiseSpec(cv=0.2)))
    assert set(result.trace["rank"]) == {0, 4, 8, 12}


def test_concurrent_collectives_share_their_bottleneck():
    # Processor sharing between collectives is kept: two equal allreduces posted together on
    # the same links each take twice as long as one alone (no latency terms here).
    cluster = toy_cluster(2)
    env, rows = simpy.Environment(), []
    network = DetailedNetwork(env, cluster, ToyComm(cluster, 0.0), "concurrent", rows)
    p, n = cluster.total_devices, 32 << 20
    ends = [network.post(0, Message(i, (0,), n), 0, 0, weight=p) for i in range(2)]
    env.run()
    alone = 2 * (p - 1) * n / p / 10e9            # fabric-bound ring, 10 GB/s NIC
    assert all(e.processed for e in ends)
    assert env.now == pytest.approx(2 * alone, rel=1e-9)


def test_estimate_is_shown_before_a_long_run_and_the_record_names_the_variation(
        capsys, monkeypatch):
    import simulator.api as api
    monkeypatch.setattr(api, "ESTIMATE_NOTICE_S", 0.0)   # every run counts as long here
    cluster = with_variation(toy_cluster(2), slow_nodes={1: 1.5})
    ctx = toy_context(GRADS, FWD, BWD, 1e-3, cluster, ToyComm(cluster, 2e-6))
    result = run_strategy(ctx, strategy_spec("sync"), RunSettings(1, fidelity="detailed"))
    err = capsys.readouterr().err
    assert "8 ranks in 2 rank classes: estimated" in err and "MiB" in err
    assert result.specs["variation"]["slow_nodes"] == {"1": 1.5}
