"""How one strategy run is simulated: :class:`RunSettings` and the defaults a context gives it.

Iterations, fidelity, seed, noise, collective ordering, warm-up, the detailed fidelity's rank
bound and node placement, each checked when the settings are made (the API's bounds are the
CLI's). :func:`settings_for` fills what is not asked from a resolved
:class:`~simulator.api.Context` (a calibrated profile's compute noise, more iterations under
noise); :func:`default_ordering` and :func:`speed_spread` are the cluster's defaults a run pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwmodels.hetero import PLACEMENTS
from hwmodels.specs import Cluster
from simulator.engine import ORDERINGS
from simulator.noise import NoiseSpec, as_noise
from vocab.argtypes import ITERATIONS, MAX_ITERATIONS
from vocab.errors import SpecError, UnknownNameError

if TYPE_CHECKING:  # the API module imports this one; only the annotation needs Context
    from simulator.api import Context

FIDELITIES = ("analytic", "detailed")


@dataclass(frozen=True)
class RunSettings:
    """How to simulate: iterations, fidelity, seed, noise, collective ordering."""

    iterations: int = 5
    fidelity: str = "analytic"
    seed: int = 0
    noise: NoiseSpec = NoiseSpec()
    ordering: str | None = None      # None: serial for device transport, concurrent for host
    warmup: int | None = None        # None: vocab.timing.warmup_iterations(spec)
    max_ranks: int | None = None     # detailed: bound on ranks (None: api.MAX_DETAILED_RANKS)
    placement: str = "packed"        # nodes on leaf switches (hwmodels.hetero.PLACEMENTS)

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise UnknownNameError("placement", self.placement, PLACEMENTS)
        if self.max_ranks is not None and (not isinstance(self.max_ranks, int)
                                           or self.max_ranks < 1):
            raise SpecError("max_ranks", self.max_ranks, "a whole number of ranks >= 1")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise SpecError("iterations", self.iterations, "a whole number >= 1")
        if self.iterations > ITERATIONS.maximum:    # the CLI's bound, for the API too
            raise SpecError("iterations", self.iterations, f"at most {MAX_ITERATIONS} "
                            f"({ITERATIONS.why_max})")
        if self.fidelity not in FIDELITIES:
            raise UnknownNameError("fidelity", self.fidelity, FIDELITIES)
        if self.ordering is not None and self.ordering not in ORDERINGS:
            raise UnknownNameError("ordering", self.ordering, ORDERINGS)
        if self.warmup is not None and (not isinstance(self.warmup, int) or self.warmup < 0):
            raise SpecError("warmup", self.warmup, "a whole number >= 0")
        if not isinstance(self.seed, (int, np.integer)):
            raise SpecError("seed", self.seed, "an integer")


#: Iterations simulated (after warm-up) when none are asked for: the steady state of symmetric
#: ranks repeats itself, so a few suffice; with noise, enough for the mean to settle.
DEFAULT_ITERATIONS = 5
NOISY_ITERATIONS = 40


def default_ordering(cluster: Cluster) -> str:
    """How concurrent collectives share the network unless asked: as calibrated on a fitted
    machine; else NCCL-like serial streams for device transport, MPI's concurrent progress for
    host-staged collectives."""
    if cluster.calibration is not None:
        return cluster.calibration.ordering
    return "serial" if cluster.transport == "device" else "concurrent"


def settings_for(ctx: Context, iterations: int | None = None, fidelity: str = "analytic",
                 seed: int = 0, noise: NoiseSpec | dict | float | None = None,
                 ordering: str | None = None, warmup: int | None = None,
                 max_ranks: int | None = None, placement: str = "packed") -> RunSettings:
    """Run settings with the context's defaults: a calibrated profile's compute noise unless
    ``noise`` is given, and ``NOISY_ITERATIONS`` when there is noise unless ``iterations``
    is given."""
    if noise is None and ctx.compute is not None and ctx.compute.noise_cv > 0:
        noise = ctx.compute.noise_cv
    spec = as_noise(noise)
    if iterations is None:
        iterations = DEFAULT_ITERATIONS if spec.is_zero else NOISY_ITERATIONS
    return RunSettings(iterations, fidelity, seed, spec, ordering, warmup, max_ranks, placement)


def speed_spread(cluster: Cluster) -> float:
    """The spread of speed between the cluster's GPUs that a run pays (the device's sourced
    default); none on a fitted cluster, whose calibration measured its own ranks."""
    return 0.0 if cluster.calibration is not None else cluster.device.speed_spread
