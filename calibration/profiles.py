"""Compute profiles for calibration: from profile runs, and beside a fitted file.

A profile run is an executor run without communication: one rank, or ``p`` ranks run with
``--local`` (each trains its own replica, placed and threaded as the ranks of a real ``p``-rank
run, so it measures compute as it is when ``p`` ranks share the machine: cores, caches, memory
bandwidth). Either is measured by the executor itself, in the very code path of a training step
(hooks, data, loss, update). Its per-layer median times give the *shape* (how a step splits over
layers): the trace's forward and backward rows tile those phases of a step, non-parametric work
(activations, pooling) counted with the layer next to it (:mod:`executor.tracing`). The data
and loss rows count with the update; what no row covers (zeroing the gradients, the step
loop's own work) is charged to the layers in proportion, so that forward + backward + update
add up to the run's measured iteration time.

A profile's *occupancy* is the number of ranks that shared the machine when it was measured
(1 for a one-rank run): part of its key in the machine's
:class:`~hwmodels.calibration.Calibration` (:class:`~hwmodels.calibration.ProfileKey`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Sequence

import numpy as np

from calibration.runs import MeasuredRun, RunError
from vocab.profile import ComputeProfile
from vocab.workload import load_workload

#: The device of profiles measured by the executor on this kind of machine.
DEVICE = "local-cpu"


def profile_from_run(run: MeasuredRun) -> ComputeProfile:
    """The compute profile of ``run`` (normally a profile run) in workload layer order."""
    workload = load_workload(run.model)
    names = [layer.name for layer in workload.layers]
    missing = [n for n in names if n not in run.forward_s or n not in run.backward_s]
    if len(missing) == len(names):
        raise RunError(f"{run.path}: its trace has no per-layer forward/backward rows for "
                       f"{run.model} (was it run with --no-trace?)")
    forward = [run.forward_s.get(n, 0.0) for n in names]
    backward = [run.backward_s.get(n, 0.0) for n in names]
    update = run.update_s + run.step_overhead_s
    layers = sum(forward) + sum(backward)
    # Work outside every row (zeroing gradients, the step loop's glue) is compute too: it
    # scales with the layers, so it is spread over them rather than lumped anywhere.
    spread = max(run.iteration_s - update - _exposed_comm(run), layers) / layers
    return ComputeProfile(DEVICE, run.model, run.batch,
                          tuple(f * spread for f in forward),
                          tuple(b * spread for b in backward), update,
                          source=f"gradsync calibrate: executor run {run.path} "
                                 f"({run.ranks} rank(s){', local' if run.local else ''}, "
                                 "median of steps)",
                          layer_names=tuple(names))


def profile_from_runs(runs: Sequence[MeasuredRun]) -> ComputeProfile:
    """One profile from repeated profile runs of one setup: per layer, the median over the
    runs' profiles (a repeat taken at another time tells the machine's drift from the setup's
    cost)."""
    profiles = [profile_from_run(r) for r in runs]
    if len(profiles) == 1:
        return profiles[0]
    first = profiles[0]

    def median(values: Iterable[float]) -> float:
        return float(np.median(list(values)))

    return replace(first,
                   forward_s=tuple(median(v) for v in zip(*(p.forward_s for p in profiles))),
                   backward_s=tuple(median(v) for v in zip(*(p.backward_s for p in profiles))),
                   update_s=median(p.update_s for p in profiles),
                   source=f"gradsync calibrate: median of {len(runs)} executor runs "
                          + ", ".join(r.path for r in runs))


def _exposed_comm(run: MeasuredRun) -> float:
    """Median seconds per step spent in collectives (0 in a profile run: on one rank, or on
    a communicator of one with ``--local``, they are copies, part of the step's compute)."""
    if run.is_profile or run.allreduce.empty:
        return 0.0
    per_step = len(run.allreduce) / max(run.steps_timed * run.ranks, 1)
    return float(run.allreduce["seconds"].median()) * per_step
