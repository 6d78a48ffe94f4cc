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

from hwmodels.cluster import load_cluster, with_changes
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


def what_if(fitted: str | Path | Cluster, *, fabric: str | Path | Fabric | None = None,
            device: str | Device | None = None, nodes: int | None = None,
            ranks_per_node: int | None = None, model: str | None = None,
            batch: int | None = None, max_nodes: int | None = None,
            nics: int | None = None, oversubscription: float | None = None,
            transport: str | None = None, progress: str | None = None) -> Scenario:
    """The fitted cluster with another fabric, device, NIC count, scale, transport or MPI
    progress rule; see the module docstring. The changes are made by
    :func:`hwmodels.cluster.with_changes`, as the ``simulate`` command's flags are (a GPU
    device on a machine fitted with a polled progress rule needs ``transport="host"`` or
    ``progress="async"`` beside it: refused otherwise)."""
    cluster = fitted if isinstance(fitted, Cluster) else load_cluster(fitted)
    before = len(cluster.provenance.get("changes", []))
    if max_nodes is not None:
        cluster = replace(cluster, max_nodes=max(max_nodes, cluster.max_nodes))
    cluster = with_changes(cluster, device=device, nics=nics, devices_per_node=ranks_per_node,
                           fabric=fabric, oversubscription=oversubscription, nodes=nodes,
                           transport=transport, progress=progress)
    changes = tuple(cluster.provenance.get("changes", [])[before:])
    batch = _calibrated_batch(cluster, model, batch)
    return Scenario(cluster, model, batch, changes)


def _calibrated_batch(cluster: Cluster, model: str | None, batch: int | None) -> int | None:
    """The batch to run ``model`` at: one the calibration measured (the first if none asked);
    ``batch`` itself on a machine without calibrated compute."""
    calibration = cluster.calibration
    if model is None or calibration is None or not calibration.profiles:
        return batch
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
    return batch
