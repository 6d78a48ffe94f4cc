"""What-if: a fitted machine on hardware it never ran on, keeping what was fitted.

From a fitted cluster file, :func:`what_if` replaces the inter-node fabric, the device, or the
node count (and ranks per node), and returns a :class:`Scenario`: the :class:`Cluster` and the
compute profile (fitted, scaled for the ranks per node) that :func:`simulator.api.simulate`
runs. What was fitted stays: the intra-node link (``fitted.intra``), the per-collective
overhead, the compute interference and the measured compute, unless the device is replaced (a
new device brings its own roofline profile; fitted compute belongs to the old one).

Example: the fitted 2-core machine's compute over EDR InfiniBand at 64 nodes::

    s = what_if("fitted.yaml", fabric="ib-edr", nodes=64, model="resnet18-ci", batch=16)
    simulate(cluster=s.cluster, model=s.model, batch=s.batch, strategy="delayed",
             profile=s.profile)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from calibration.profiles import load_profiles
from calibration.scaling import cluster_for, profile_for
from hwmodels.cluster import cluster_from_dict, cluster_to_spec, load_cluster
from hwmodels.devices import device_to_spec, get_device
from vocab.errors import SpecError
from hwmodels.fabrics import get_fabric
from hwmodels.specs import Cluster, Device, Fabric
from simulator.api import simulate
from vocab.profile import ComputeProfile
from simulator.roofline import roofline_profile
from simulator.results import SimResult
from vocab.workload import load_workload


@dataclass(frozen=True)
class Scenario:
    """A cluster and profile ready for the simulator, and what was changed."""

    cluster: Cluster
    profile: ComputeProfile | None
    model: str | None
    batch: int | None
    changes: tuple[str, ...]

    def simulate(self, strategy: str = "sync", **kwargs) -> SimResult:
        """Simulate ``strategy`` in this scenario (keywords go to :func:`simulate`)."""
        return simulate(cluster=self.cluster, model=self.model, batch=self.batch,
                        strategy=strategy, profile=self.profile, **kwargs)


def what_if(fitted: str | Path | Cluster, *, fabric: str | Fabric | None = None,
            device: str | Device | None = None, nodes: int | None = None,
            ranks_per_node: int | None = None, model: str | None = None,
            batch: int | None = None, max_nodes: int | None = None) -> Scenario:
    """The fitted cluster with another fabric, device or scale; see the module docstring."""
    profiles = load_profiles(fitted) if not isinstance(fitted, Cluster) else {}
    base = fitted if isinstance(fitted, Cluster) else load_cluster(fitted)
    ranks = ranks_per_node or base.devices_per_node
    cluster, _ = cluster_for(base, ranks)
    changes = [f"ranks per node {ranks}"] if ranks != base.devices_per_node else []
    if fabric is not None:
        new = get_fabric(fabric) if isinstance(fabric, str) else fabric
        # with_fabric drops a fitted inter-node link: it described the old network.
        cluster = cluster.with_fabric(new)
        changes.append(f"fabric {new.name}")
    if nodes is not None:
        cluster = replace(cluster, max_nodes=max(max_nodes or nodes, cluster.max_nodes))
        cluster = cluster.with_nodes(nodes)
        changes.append(f"{nodes} nodes")
    profile = None
    if device is not None:
        cluster = _with_device(cluster, device)
        changes.append(f"device {cluster.device.name}")
    if model is not None:
        profile = _profile(cluster, base, profiles, model, batch, ranks, device is not None)
        batch = profile.batch
    return Scenario(cluster, profile, model, batch, tuple(changes))


def _with_device(cluster: Cluster, device: str | Device) -> Cluster:
    """The cluster with another device, rebuilt by its topology (a CPU node splits the device
    among its ranks), fitted links and overheads kept."""
    spec = cluster_to_spec(cluster)
    spec["node"] = {**spec["node"], "device": device_to_spec(
        get_device(device) if isinstance(device, str) else device)}
    return replace(cluster_from_dict(spec), provenance=cluster.provenance)


def _profile(cluster: Cluster, fitted: Cluster, profiles: dict, model: str, batch: int | None,
             ranks: int, new_device: bool) -> ComputeProfile:
    """The fitted profile (scaled for the ranks per node), or a roofline one on a new device."""
    if new_device:
        workload = load_workload(model)
        return roofline_profile(workload, cluster.device, batch or workload.default_batch)
    batches = sorted({b for m, b, _ in profiles if m == model})
    if not batches:
        raise SpecError("model", model, "a model with a fitted profile: "
                        + (", ".join(sorted({m for m, _, _ in profiles})) or "none"))
    if batch is not None and batch not in batches:
        raise SpecError("batch", batch, f"a fitted batch of {model}: {batches}")
    chosen = profile_for(fitted, profiles, model, batches[0] if batch is None else batch, ranks)
    if chosen is None:
        raise SpecError("ranks_per_node", ranks, f"a rank count with a fitted profile of "
                        f"{model}: {sorted({n for m, _, n in profiles if m == model})} "
                        "(or a one-rank profile)")
    return chosen[0]
