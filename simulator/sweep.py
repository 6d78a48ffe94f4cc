"""Grid sweeps: clusters x node counts x models x strategies x bucket sizes, in parallel.

Points run in local processes (``concurrent.futures``) or, when started under ``mpiexec``, on
MPI ranks through ``mpi4py.futures.MPIPoolExecutor``. The simulator must never import mpi4py
(a user who only simulates has no MPI, and ``tests/test_dependency_direction.py`` checks every
import statement), so the MPI executor is looked up by name with ``importlib`` only on that code
path. Under MPI, start it as ``mpiexec -n N python -m mpi4py.futures -m gradsync sweep ...``.
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from tqdm import tqdm

from vocab.outpath import atomic_write, check_output
from vocab.errors import GradsyncError, SpecError
from vocab.yamlfile import read_mapping
from simulator.api import RunSettings, cached_context, run_strategy, strategy_spec
from vocab.strategies.plan import MiB

#: Grid axes (lists) and their defaults; scalars apply to every point.
GRID_AXES = {"cluster": ["dgx1-p100"], "nodes": [None], "model": ["alexnet"],
             "strategy": ["sync", "layerwise", "bucketed", "delayed"], "bucket_mb": [None],
             "batch": [None], "stack": [None]}
SCALARS = {"iterations": 2, "fidelity": "analytic", "transport": None, "seed": 0,
           "merge": None, "precision": None, "throughput": None,
           "devices_per_node": None}
#: The point's entries that resolve its context (``simulator.api.cached_context``), in order.
CONTEXT_KEYS = ("cluster", "model", "batch", "nodes", "transport", "stack", "precision",
                "throughput", "devices_per_node")
ALIASES = {"clusters": "cluster", "models": "model", "strategies": "strategy",
           "bucket_mbs": "bucket_mb", "batches": "batch", "stacks": "stack"}
RESULT_COLUMNS = ["ranks", "iteration_time_s", "throughput_samples_s", "speedup_vs_single",
                  "speedup_vs_sync", "exposed_comm_s", "compute_s", "update_s",
                  "interference_s", "memory_bytes_per_rank", "messages"]
MPI_ENV_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALRANKID",
                "HYDRA_CONTROL_FD")


def load_grid(path: str | Path) -> dict[str, Any]:
    """A grid from YAML: axis names (plural or singular) mapped to a value or a list."""
    raw = read_mapping(path, "a sweep grid: axis names mapped to values")
    grid = {ALIASES.get(key, key): value for key, value in raw.items()}
    try:
        expand_grid(grid)       # the file's own axes, checked here so that errors name it
    except SpecError as exc:
        raise exc.with_source(str(path)) from None
    return grid


#: The largest grid run in one sweep, and the rough cost of one analytic point (a zoo model
#: on a preset, a few iterations) used to say what a larger one would take.
MAX_POINTS = 100_000
POINT_S = 0.05


def expand_grid(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's axes, each a point dict (validated cheaply here)."""
    unknown = set(grid) - set(GRID_AXES) - set(SCALARS)
    if unknown:
        raise SpecError("grid", sorted(unknown)[0], "axes " + ", ".join([*GRID_AXES, *SCALARS]))
    axes = {k: _as_list(grid.get(k, default)) for k, default in GRID_AXES.items()}
    scalars = {k: grid.get(k, default) for k, default in SCALARS.items()}
    for name in axes["strategy"]:
        strategy_spec(name)
    for mb in axes["bucket_mb"]:
        if mb is not None and not (isinstance(mb, (int, float)) and not isinstance(mb, bool)
                                   and math.isfinite(mb) and mb * MiB >= 1):
            raise SpecError("bucket_mb", mb, "a finite bucket size > 0 MiB")
    for name in ("nodes", "batch"):
        for value in axes[name]:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise SpecError(name, value, "a whole number >= 1")
    points = math.prod(len(values) for values in axes.values())
    if points > MAX_POINTS:         # refused before a minute of silent expansion
        raise SpecError("grid", f"{points:,} points", f"at most {MAX_POINTS:,} (at about "
                        f"{POINT_S:g} s a point per core that is "
                        f"{points * POINT_S / 3600:,.0f} core-hours; split the grid)")
    RunSettings(scalars["iterations"], scalars["fidelity"], scalars["seed"])
    return [{**dict(zip(axes, values)), **scalars}
            for values in itertools.product(*axes.values())]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def run_point(point: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate one grid point; returns the point with its result columns (or its error)."""
    try:
        ctx = cached_context(*context_key(point))
        bucket = None if point["bucket_mb"] is None else int(point["bucket_mb"] * MiB)
        spec = strategy_spec(point["strategy"], bucket_bytes=bucket, merge=point["merge"],
                             stack=ctx.stack)
        settings = RunSettings(point["iterations"], point["fidelity"], point["seed"])
        result = run_strategy(ctx, spec, settings).to_dict()
        return {**point, **{k: result.get(k) for k in RESULT_COLUMNS}, "error": ""}
    except GradsyncError as exc:   # one bad point must not sink the sweep; it is reported
        return {**point, "error": str(exc)}


def under_mpi() -> bool:
    """True when this process was started by mpiexec (Hydra, Open MPI or PMI env vars)."""
    return any(var in os.environ for var in MPI_ENV_VARS)


def make_executor(jobs: int | None, mpi: bool) -> Executor | None:
    """MPIPoolExecutor under MPI, a process pool for ``jobs > 1``, else None (in-process)."""
    if mpi:
        try:
            futures = importlib.import_module("mpi4py.futures")
        except ImportError:
            raise GradsyncError("--mpi needs mpi4py (pip install -e '.[executor]')") from None
        return futures.MPIPoolExecutor()
    jobs = jobs or os.cpu_count() or 1
    return ProcessPoolExecutor(jobs) if jobs > 1 else None


def run_sweep(points: Sequence[Mapping[str, Any]], jobs: int | None = None,
              mpi: bool | None = None, progress: bool = True) -> pd.DataFrame:
    """Run ``points`` (see :func:`expand_grid`) and return one tidy table."""
    validate_contexts(points)
    executor = make_executor(jobs, under_mpi() if mpi is None else mpi)
    chunk = max(1, len(points) // (8 * (jobs or os.cpu_count() or 1)))
    rows: Iterable[dict[str, Any]]
    with tqdm(total=len(points), disable=not progress, unit="point") as bar:
        if executor is None:
            rows = map(run_point, points)
        else:
            rows = executor.map(run_point, points, chunksize=chunk)
        collected = []
        for row in rows:
            collected.append(row)
            bar.update()
        if executor is not None:
            executor.shutdown()
    return with_speedup_vs_sync(pd.DataFrame(collected))


def validate_contexts(points: Sequence[Mapping[str, Any]]) -> None:
    """Resolve each distinct cluster/model/batch once, so bad input fails before the sweep."""
    seen = {context_key(p) for p in points}
    for key in sorted(seen, key=str):
        cached_context(*key)


def context_key(point: Mapping[str, Any]) -> tuple:
    """The arguments of ``cached_context`` for a point (defaults for keys it lacks)."""
    defaults = {**{k: v[0] for k, v in GRID_AXES.items()}, **SCALARS}
    return tuple(point.get(k, defaults.get(k)) for k in CONTEXT_KEYS)


def with_speedup_vs_sync(table: pd.DataFrame) -> pd.DataFrame:
    """Fill ``speedup_vs_sync`` from the sync point of the same configuration, if swept."""
    if "iteration_time_s" not in table or not (table["strategy"] == "sync").any():
        return table
    keys = [k for k in ("cluster", "nodes", "model", "batch", "stack", "transport", "precision",
                        "throughput", "devices_per_node", "iterations", "fidelity", "seed")
            if k in table]
    # Keys as strings: axes left at None are all-None columns that pandas will not merge on.
    config = pd.Series(["|".join(map(str, row)) for row in table[keys].itertuples(index=False)],
                       index=table.index)
    is_sync = table["strategy"] == "sync"
    sync_s = pd.Series(table["iteration_time_s"][is_sync].to_numpy(),
                       index=config[is_sync]).groupby(level=0).first()
    table = table.copy()
    table["speedup_vs_sync"] = config.map(sync_s).to_numpy() / table["iteration_time_s"]
    return table


def write_table(table: pd.DataFrame, path: str | Path, overwrite: bool = False) -> Path:
    """CSV, or Parquet for a ``.parquet`` path; never over an existing file unless asked."""
    path = check_output(path, overwrite=overwrite)
    with atomic_write(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path
