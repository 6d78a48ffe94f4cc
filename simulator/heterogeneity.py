"""Heterogeneous clusters in a run: per-node compute factors and what the run record says.

The link side of a :class:`~hwmodels.hetero.Variation` (node groups' graphs, degraded links,
leaf switches) lives in :class:`simulator.linkmap.LinkMap`; this module is its compute side.
A rank's compute factor per iteration is the run's noise times its node's slow-down times its
node group's device ratio: the group's roofline iteration time over the cluster's first
device's, at the same workload and batch (a P100 node in a V100 cluster computes about 1.5x
longer). Equal factors make ranks one rank class again, so a slow node costs one more
process in the engine, not one per rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwmodels.hetero import Variation
from hwmodels.specs import Cluster, NodeSpec
from hwmodels.variationfile import variation_to_spec
from simulator.noise import NoiseSpec, rank_factors
from simulator.roofline import roofline_profile
from vocab.workload import Workload


def device_ratios(cluster: Cluster, workload: Workload, batch: int,
                  precision: str | None) -> np.ndarray:
    """Per node: its group's roofline compute time over the cluster device's."""
    variation = cluster.variation
    if variation is None or not variation.groups:
        return np.ones(cluster.nodes)

    def seconds(device) -> float:
        prof = roofline_profile(workload, device, batch, precision=precision or "fp32")
        return float(sum(prof.forward_s) + sum(prof.backward_s))

    base = seconds(cluster.device)
    ratios = [seconds(g.node.device) / base if g.node.device.name != cluster.device.name
              else 1.0 for g in variation.groups]
    return np.array([ratios[i] for i in variation.node_of_group(cluster.nodes)])


def node_factors(cluster: Cluster, workload: Workload, batch: int, precision: str | None,
                 noise: NoiseSpec, rng: np.random.Generator,
                 factors: np.ndarray) -> np.ndarray:
    """The run's per-rank factors with the variation's node effects applied."""
    variation = cluster.variation
    if variation is None:
        return factors
    k = cluster.devices_per_node
    if variation.noise_per_node:
        factors = np.repeat(rank_factors(noise, rng, factors.shape[0], cluster.nodes), k,
                            axis=1)
    scale = device_ratios(cluster, workload, batch, precision)
    for node, slow in variation.slow_nodes.items():
        scale[node] *= slow
    return factors * np.repeat(scale, k)[None, :]


def variation_summary(variation: Variation | None) -> str:
    """What makes the nodes differ, in words ('' when nothing does)."""
    return "" if variation is None else variation.describe()


def variation_record(variation: Variation | None) -> dict[str, Any] | None:
    """The variation for the run record: its cluster-file form, each group's node summarised.

    One serialisation (:func:`hwmodels.variationfile.variation_to_spec`) serves both the
    cluster file and ``run.json``; the record names each group's node and device instead of
    spelling out its topology, and its node indices are strings, as JSON keys are.
    """
    if variation is None:
        return None
    record = variation_to_spec(variation, _node_summary)
    if "slow_nodes" in record:
        record["slow_nodes"] = {str(k): v for k, v in record["slow_nodes"].items()}
    return record


def _node_summary(node: NodeSpec) -> dict[str, Any]:
    return {"name": node.name, "device": node.device.name}
