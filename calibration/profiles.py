"""Compute profiles for calibration: from one-rank executor runs, and beside a fitted file.

A one-rank executor run is a compute profile measured by the executor itself, in the very code
path of a training step (hooks, data, loss, update) and without communication. Its per-layer
median times give the *shape* (how a step splits over layers); the time between layers (and
anything the layer hooks do not cover) is charged to the layers in proportion, so that forward
+ backward + update add up to the run's measured iteration time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from calibration.runs import MeasuredRun, RunError
from simulator.profile import ComputeProfile, list_profiles, save_profile
from simulator.workload import load_workload

DEVICE = "local-cpu"


def profile_from_run(run: MeasuredRun) -> ComputeProfile:
    """The compute profile of ``run`` (normally a one-rank run) in workload layer order."""
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
    return ComputeProfile(DEVICE, run.model, run.batch, tuple(f * spread for f in forward),
                          tuple(b * spread for b in backward), update,
                          source=f"gradsync calibrate: executor run {run.path} "
                                 f"({run.ranks} rank(s), median of steps)",
                          layer_names=tuple(names))


def _exposed_comm(run: MeasuredRun) -> float:
    """Median seconds per step spent in collectives (0 on one rank)."""
    if run.ranks == 1 or run.allreduce.empty:
        return 0.0
    per_step = len(run.allreduce) / max(run.steps_timed * run.ranks, 1)
    return float(run.allreduce["seconds"].median()) * per_step


def profiles_dir(cluster_file: str | Path) -> Path:
    """Where a fitted cluster file's profiles live: ``FITTED.profiles/`` beside it."""
    path = Path(cluster_file)
    return path.with_name(path.stem + ".profiles")


def profile_file(directory: Path, model: str, batch: int) -> Path:
    return Path(directory) / f"{model}-b{batch}.yaml"


def save_profiles(profiles: Iterable[ComputeProfile], directory: Path,
                  overwrite: bool = False) -> list[Path]:
    """Write each profile as ``MODEL-bBATCH.yaml`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return [save_profile(p, profile_file(directory, p.model, p.batch), overwrite=overwrite)
            for p in profiles]


def load_profiles(cluster_file: str | Path) -> dict[tuple[str, int], ComputeProfile]:
    """The profiles beside a fitted cluster file, by (model, batch); empty if none."""
    directory = profiles_dir(cluster_file)
    if not directory.is_dir():
        return {}
    return {(p.model, p.batch): p for p in list_profiles(directory)}
