"""What-if: a fitted machine on hardware it never ran on, keeping what was fitted.

From a fitted cluster file, :func:`what_if` replaces the inter-node fabric, the device, or the
node count (and ranks per node), and returns a :class:`Scenario`: the calibrated machine so
changed, which :func:`simulator.api.simulate` runs as it runs any cluster (its calibration
supplies the figures at the ranks per node, the compute and its noise). What was fitted stays:
the intra-node link, the per-collective overhead, the compute interference and the measured
compute, unless the device is replaced (a new device brings its own roofline profile; fitted
compute belongs to the old one).

Example: the fitted 2-core machine's compute over EDR InfiniBand at 64 nodes::

    s = what_if("fitted.yaml", fabric="ib-edr", nodes=64, model="resnet18-ci", batch=16)
    s.simulate("delayed")      # = simulate(cluster=s.cluster, model=s.model, batch=s.batch, ...)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from hwmodels.cluster import cluster_from_dict, cluster_to_spec, load_cluster
from hwmodels.devices import device_to_spec, get_device
from hwmodels.fabrics import get_fabric
from hwmodels.specs import Cluster, Device, Fabric
from simulator.api import simulate
from simulator.results import SimResult
from vocab.errors import SpecError
from vocab.profile import ComputeProfile


@dataclass(frozen=True)
class Scenario:
    """A calibrated machine changed as asked, the model and batch to run on it, and what was
    changed."""

    cluster: Cluster
    model: str | None
    batch: int | None
    changes: tuple[str, ...]

    @property
    def profile(self) -> ComputeProfile | None:
        """The calibrated compute profile a simulation of this scenario uses (None: the
        device's roofline estimate, e.g. on a replaced device)."""
        calibration = self.cluster.calibration
        if calibration is None or self.model is None or self.batch is None:
            return None
        compute = calibration.compute(self.model, self.batch, self.cluster.devices_per_node)
        return compute.profile if compute is not None else None

    def simulate(self, strategy: str = "sync", **kwargs) -> SimResult:
        """Simulate ``strategy`` in this scenario (keywords go to :func:`simulate`)."""
        model = {"model": self.model} if self.model is not None else {}  # else simulate's own
        return simulate(cluster=self.cluster, batch=self.batch, strategy=strategy,
                        **model, **kwargs)


def what_if(fitted: str | Path | Cluster, *, fabric: str | Fabric | None = None,
            device: str | Device | None = None, nodes: int | None = None,
            ranks_per_node: int | None = None, model: str | None = None,
            batch: int | None = None, max_nodes: int | None = None) -> Scenario:
    """The fitted cluster with another fabric, device or scale; see the module docstring."""
    cluster = fitted if isinstance(fitted, Cluster) else load_cluster(fitted)
    changes = []
    if ranks_per_node is not None and ranks_per_node != cluster.devices_per_node:
        cluster = cluster.with_devices_per_node(ranks_per_node)
        changes.append(f"ranks per node {ranks_per_node}")
    if fabric is not None:
        new = get_fabric(fabric) if isinstance(fabric, str) else fabric
        # with_fabric drops a fitted inter-node link: it described the old network.
        cluster = cluster.with_fabric(new)
        changes.append(f"fabric {new.name}")
    if nodes is not None:
        cluster = replace(cluster, max_nodes=max(max_nodes or nodes, cluster.max_nodes))
        cluster = cluster.with_nodes(nodes)
        changes.append(f"{nodes} nodes")
    if device is not None:
        cluster = _with_device(cluster, device)
        changes.append(f"device {cluster.device.name}")
    calibration = cluster.calibration
    if model is not None and calibration is not None and calibration.profiles:
        batches = calibration.batches(model)
        if not batches:
            raise calibration.missing_compute(model, batch or 0, cluster.devices_per_node)
        if batch is not None and batch not in batches:
            raise SpecError("batch", batch, f"a calibrated batch of {model}: {batches}")
        batch = batches[0] if batch is None else batch
        if calibration.compute(model, batch, cluster.devices_per_node) is None:
            raise SpecError("ranks_per_node", cluster.devices_per_node,
                            f"a rank count with a calibrated profile of {model}: "
                            f"{calibration.occupancies(model, batch)} (or a one-rank profile)")
    return Scenario(cluster, model, batch, tuple(changes))


def _with_device(cluster: Cluster, device: str | Device) -> Cluster:
    """The cluster with another device, rebuilt by its topology (a CPU node splits the device
    among its ranks), fitted links, overheads and collective scales kept; the calibrated compute
    dropped (it belongs to the old device: the new one is estimated by its roofline)."""
    spec = cluster_to_spec(cluster)
    spec.pop("calibration", None)
    spec["node"] = {**spec["node"], "device": device_to_spec(
        get_device(device) if isinstance(device, str) else device)}
    calibration = cluster.calibration
    rebuilt = replace(cluster_from_dict(spec), provenance=cluster.provenance)
    if calibration is None:
        return rebuilt
    return replace(calibration, profiles={}, noise_cv={}, compute_scales={}).adapt(rebuilt)
