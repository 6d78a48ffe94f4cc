"""Results of simulated runs: one strategy (:class:`SimResult`) and several (:class:`Comparison`).

Scalar metrics come straight from the engine's plain records (cheap, for sweeps); the trace and
the per-iteration summary become DataFrames only when first asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from vocab.outpath import atomic_write, check_output
from vocab.errors import GradsyncError
from simulator.engine import EngineOutput, EngineSetup
from vocab.runrecord import RUN_FILE, make_run_record, write_run_record
from vocab.timing import iteration_durations, iteration_time_s
from vocab.trace import TraceRecorder, write_chrome_trace, write_trace

SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = ["iteration", "start_s", "end_s", "iteration_time_s", "compute_s",
                   "update_s", "interference_s", "wait_s", "exposed_comm_s", "warmup"]
#: What :meth:`Comparison.table` shows by default, in order.
HEADLINE_COLUMNS = ("iteration_time_s", "throughput_samples_s", "speedup_vs_sync",
                    "speedup_vs_single", "compute_s", "exposed_comm_s", "interference_s",
                    "update_s", "memory_bytes_per_rank")
#: The engine's per-iteration summary tuples, in order.
ENGINE_COLUMNS = ["iteration", "start_s", "end_s", "compute_s", "update_s", "wait_s",
                  "interference_s"]


@dataclass
class SimResult:
    """One simulated run of one strategy; see the properties for the metrics."""

    strategy: str
    run_id: str
    setup: EngineSetup
    output: EngineOutput
    ranks: int
    batch: int
    specs: dict[str, Any]            # every resolved input, for run.json
    memory: dict[str, int]           # bytes per rank by component
    seed: int
    wall_s: float = 0.0

    # -- metrics ------------------------------------------------------------------------------
    @cached_property
    def _timing(self) -> pd.DataFrame:
        """Rank 0's iterations as timing rows (the analytic fidelity's one rank is paced as the
        detailed one's rank 0 advances: :func:`simulator.noise.pacing_factors`)."""
        frame = pd.DataFrame.from_records(self.output.summary, columns=ENGINE_COLUMNS)
        return frame.assign(rank=0)

    @cached_property
    def _steady(self) -> pd.DataFrame:
        """The steady iterations (after warm-up) with their durations, as vocab.timing
        defines them; compute, update and exposed communication are means over the same."""
        durations = iteration_durations(self._timing, self.setup.warmup)
        return durations.merge(
            self._timing[["iteration", "compute_s", "update_s", "interference_s"]],
            on="iteration", how="left")

    # Means, not medians (see vocab.timing): a pipelined strategy can settle into a periodic
    # pattern (delayed, communication-bound: a long wait, then none), and only the mean gives
    # its throughput.
    @property
    def iteration_time_s(self) -> float:
        """Mean iteration time over the iterations after warm-up (steady-state throughput)."""
        return iteration_time_s(self._timing, self.setup.warmup)

    @property
    def compute_s(self) -> float:
        """Mean forward + backward time (noise included, interference not)."""
        return float(self._steady["compute_s"].mean())

    @property
    def update_s(self) -> float:
        """Mean optimizer-update time."""
        return float(self._steady["update_s"].mean())

    @property
    def interference_s(self) -> float:
        """Mean time compute (and update) ran longer because a collective overlapped it."""
        return float(self._steady["interference_s"].mean())

    @property
    def exposed_comm_s(self) -> float:
        """Mean of iteration time minus compute, update and interference: communication not
        hidden."""
        m = self._steady
        return float(max((m["duration_s"] - m["compute_s"] - m["update_s"]
                          - m["interference_s"]).mean(), 0.0))

    @property
    def throughput_samples_s(self) -> float:
        """Samples per second over all ranks."""
        return self.ranks * self.batch / self.iteration_time_s

    @property
    def single_device_s(self) -> float:
        """One device, same per-device batch, no communication and no noise."""
        return self.setup.compute_s + self.setup.update_s

    @property
    def speedup_vs_single(self) -> float:
        """Throughput over that of one device running the same per-device batch."""
        return self.ranks * self.single_device_s / self.iteration_time_s

    @property
    def memory_bytes_per_rank(self) -> int:
        return int(sum(self.memory.values()))

    # -- tables ---------------------------------------------------------------------------------
    @cached_property
    def trace(self) -> pd.DataFrame:
        """The trace, schema v1, ``source="sim"`` (analytic fidelity: rank 0 is the group's pace)."""
        recorder = TraceRecorder(self.run_id, "sim")
        recorder.extend(sorted(self.output.rows, key=lambda r: (r[0], r[1], r[7], r[8])))
        return recorder.to_frame()

    @cached_property
    def summary(self) -> pd.DataFrame:
        """One row per iteration: times, compute, update, waits, exposed comm, warm-up flag."""
        frame = pd.DataFrame.from_records(self.output.summary, columns=ENGINE_COLUMNS)
        frame["iteration_time_s"] = frame["end_s"] - frame["start_s"]
        frame["exposed_comm_s"] = (frame["iteration_time_s"] - frame["compute_s"]
                                   - frame["update_s"] - frame["interference_s"]).clip(lower=0.0)
        frame["warmup"] = frame["iteration"] < self.setup.warmup
        return frame[SUMMARY_COLUMNS]

    def to_dict(self) -> dict[str, Any]:
        """The headline numbers as plain JSON-able values, with the run's cluster, nodes,
        model, fidelity, transport and progress (from :attr:`specs`)."""
        cluster = self.specs["cluster"]
        return {
            "strategy": self.strategy, "run_id": self.run_id, "ranks": self.ranks,
            "batch": self.batch, "iteration_time_s": self.iteration_time_s,
            "throughput_samples_s": self.throughput_samples_s,
            "speedup_vs_single": self.speedup_vs_single,
            "exposed_comm_s": self.exposed_comm_s, "compute_s": self.compute_s,
            "update_s": self.update_s, "interference_s": self.interference_s, "memory_bytes_per_rank": self.memory_bytes_per_rank,
            "messages": len(self.setup.plan.messages),
            "cluster": cluster["name"], "nodes": cluster["nodes"],
            "model": self.specs["workload"]["name"], "fidelity": self.specs["run"]["fidelity"],
            "transport": cluster["transport"], "progress": cluster["progress"],
            "stack": (self.specs.get("stack") or {}).get("name"),
        }

    @cached_property
    def run_record(self) -> dict[str, Any]:
        """``run.json`` content: every resolved input, versions, seed, wall time, results."""
        return make_run_record("sim", self.run_id, self.specs, self.seed,
                               wall_s=self.wall_s, results=self.to_dict())

    # -- files and plots --------------------------------------------------------------------
    def save(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """Write trace.parquet, run.json and summary.csv; never over another run's files
        unless ``overwrite`` (saving the same run again is harmless)."""
        out = Path(out_dir)
        refuse_other_run(out, self.run_id, overwrite)
        write_trace(self.trace, out)
        with atomic_write(out / SUMMARY_FILE) as tmp:
            self.summary.to_csv(tmp, index=False)
        write_run_record(self.run_record, out)
        return out

    def to_chrome_trace(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the trace as Chrome-trace JSON (open in ui.perfetto.dev); an existing file
        is replaced only with ``overwrite``."""
        return write_chrome_trace(self.trace, path, overwrite=overwrite)

    def plot_timeline(self, **kwargs: Any):
        """Timeline per rank and stream; see :func:`simulator.plots.plot_timeline`."""
        from simulator.plots import plot_timeline  # matplotlib only when plotting
        kwargs.setdefault("title", self.describe())
        return plot_timeline(self.trace, **kwargs)

    def describe(self) -> str:
        """The run in words: ``delayed: alexnet, batch 256/device, 8 ranks on dgx1-p100``."""
        cluster = self.specs["cluster"]
        return (f"{self.strategy}: {self.specs['workload']['name']}, batch {self.batch}/device,"
                f" {self.ranks} ranks on {cluster['name']} x {cluster['nodes']} "
                f"({cluster['fabric']}, {cluster['transport']} transport)")


def refuse_other_run(out: Path, run_id: str, overwrite: bool = False) -> None:
    """Raise (naming ``out`` and ``--force``) unless ``out`` can take run ``run_id``: absent,
    empty, holding that very run already, or ``overwrite``."""
    record = out / RUN_FILE
    if record.is_file() and not overwrite:
        try:
            other = json.loads(record.read_text())
            other = other.get("run_id") if isinstance(other, dict) else None
        except (OSError, ValueError):
            other = None
        if other == run_id:
            return
    check_output(out, overwrite=overwrite, kind="dir")


class Comparison:
    """Several strategies on the same cluster, model and batch."""

    def __init__(self, results: dict[str, SimResult], baseline: SimResult | None = None,
                 trust: Any = None, device_memory_bytes: float | None = None):
        if not results:
            raise GradsyncError("a comparison needs at least one strategy")
        self.results = dict(results)
        self.baseline = baseline or self.results.get("sync")
        #: How far to trust these predictions (a :class:`simulator.trust.Trust`, or None).
        self.trust = trust
        #: The memory of one device (None: unknown), against which each rank's is checked.
        self.device_memory_bytes = device_memory_bytes

    def memory_warnings(self) -> list[str]:
        """One line per strategy whose memory per rank exceeds the device's: the prediction
        is of a run that could not start."""
        limit = self.device_memory_bytes
        if not limit:
            return []
        return [f"{name}: {r.memory_bytes_per_rank / 2**30:,.1f} GiB per rank exceeds the "
                f"device's {limit / 2**30:,.1f} GiB (batch {r.batch}); this run would not fit"
                for name, r in self.results.items() if r.memory_bytes_per_rank > limit]

    def __getitem__(self, strategy: str) -> SimResult:
        return self.results[strategy]

    def __iter__(self):
        return iter(self.results.values())

    @property
    def speedup_vs_sync(self) -> dict[str, float]:
        """Iteration-time ratio sync / strategy (NaN without a sync baseline)."""
        base = self.baseline.iteration_time_s if self.baseline else float("nan")
        return {k: base / r.iteration_time_s for k, r in self.results.items()}

    def table(self, full: bool = False) -> pd.DataFrame:
        """One row per strategy: the headline metrics (SI units, the unit in each name), and
        with ``full`` also what was run (ranks, cluster, model, ...) and the run id, last."""
        speedups = self.speedup_vs_sync
        # Keyed by the comparison's labels: two variants of one strategy (bucketed and
        # bucketed+mgwfbp) must stay two rows.
        rows = [{**r.to_dict(), "strategy": k, "speedup_vs_sync": speedups[k]}
                for k, r in self.results.items()]
        frame = pd.DataFrame(rows).set_index("strategy")
        if not full:
            return frame[list(HEADLINE_COLUMNS)]
        rest = [c for c in frame.columns if c not in HEADLINE_COLUMNS and c != "run_id"]
        return frame[[*HEADLINE_COLUMNS, *rest, "run_id"]]

    def plot_breakdown(self, **kwargs: Any):
        """Stacked bars of compute, update and exposed communication per strategy."""
        from simulator.plots import plot_breakdown
        return plot_breakdown(self.table(), **kwargs)

    def save(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """One subdirectory per strategy plus ``comparison.csv``, into a new or empty
        directory (or over an earlier one with ``overwrite``); checked before any write."""
        out = check_output(out_dir, overwrite=overwrite, kind="dir")
        for name, result in self.results.items():
            result.save(out / name, overwrite=overwrite)
        with atomic_write(out / "comparison.csv") as tmp:
            self.table(full=True).to_csv(tmp)
        return out
