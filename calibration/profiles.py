"""Compute profiles for calibration: from profile runs, and beside a fitted file.

A profile run is an executor run without communication: one rank, or ``p`` ranks run with
``--local`` (each trains its own replica, placed and threaded as the ranks of a real ``p``-rank
run, so it measures compute as it is when ``p`` ranks share the machine: cores, caches, memory
bandwidth). Either is measured by the executor itself, in the very code path of a training step
(hooks, data, loss, update). Its per-layer median times give the *shape* (how a step splits over
layers); the time between layers (and anything the layer hooks do not cover) is charged to the
layers in proportion, so that forward + backward + update add up to the run's measured
iteration time.

A profile's *occupancy* is the number of ranks that shared the machine when it was measured
(1 for a one-rank run). It is part of the profile's device label (``local-cpu`` for 1,
``local-cpu shared by 4 ranks`` for 4) and of its file name (``MODEL-bBATCH.yaml``,
``MODEL-bBATCH-n4.yaml``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from calibration.runs import MeasuredRun, RunError
from vocab.profile import ComputeProfile, list_profiles, save_profile
from vocab.workload import load_workload

DEVICE = "local-cpu"
_SHARED = re.compile(r" shared by (\d+) ranks$")
#: Profiles by (model, batch, occupancy).
ProfileKey = tuple[str, int, int]


def device_label(occupancy: int) -> str:
    """The device label of a profile measured with ``occupancy`` ranks on the machine."""
    return DEVICE if occupancy == 1 else f"{DEVICE} shared by {occupancy} ranks"


def occupancy_of(profile: ComputeProfile) -> int:
    """How many ranks shared the machine when ``profile`` was measured (1 unless labelled)."""
    found = _SHARED.search(profile.device)
    return int(found.group(1)) if found else 1


def profile_key(profile: ComputeProfile) -> ProfileKey:
    return profile.model, profile.batch, occupancy_of(profile)


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
    # Work between the hooked layers (activations, pooling, the optimizer's glue) is compute
    # too: it scales with the layers, so it is spread over them rather than lumped anywhere.
    spread = max(run.iteration_s - update - _exposed_comm(run), layers) / layers
    occupancy = run.ranks if run.is_profile else 1
    return ComputeProfile(device_label(occupancy), run.model, run.batch,
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


def profiles_dir(cluster_file: str | Path) -> Path:
    """Where a fitted cluster file's profiles live: ``FITTED.profiles/`` beside it."""
    path = Path(cluster_file)
    return path.with_name(path.stem + ".profiles")


def profile_file(directory: Path, model: str, batch: int, occupancy: int = 1) -> Path:
    suffix = "" if occupancy == 1 else f"-n{occupancy}"
    return Path(directory) / f"{model}-b{batch}{suffix}.yaml"


def save_profiles(profiles: Iterable[ComputeProfile], directory: Path,
                  overwrite: bool = False) -> list[Path]:
    """Write each profile as ``MODEL-bBATCH[-nOCCUPANCY].yaml`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return [save_profile(p, profile_file(directory, *profile_key(p)), overwrite=overwrite)
            for p in profiles]


def load_profiles(cluster_file: str | Path) -> dict[ProfileKey, ComputeProfile]:
    """The profiles beside a fitted cluster file, by (model, batch, occupancy); empty if none."""
    directory = profiles_dir(cluster_file)
    if not directory.is_dir():
        return {}
    return {profile_key(p): p for p in list_profiles(directory)}
