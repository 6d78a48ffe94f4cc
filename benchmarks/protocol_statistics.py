"""A stored protocol's fit and validation redone under two iteration-time statistics.

Run: ``python -m benchmarks.protocol_statistics DIR`` (``DIR``: a finished
``python -m calibration.protocol --out DIR``; nothing is measured again).

The issue-10 redesign changed the statistic of a run's iteration time from the *median* of
the step gaps (measured runs, profiles) and of the simulated iterations (predictions) to the
*mean* (:mod:`vocab.timing`), and the warm-up of ``delayed`` from 2 steps to 2 + staleness.
Recomputing one protocol's ``calibrate`` + ``validate`` on the very same measurements under
both tells how much of a change in its figures the statistic explains, and how much the
machine (which a rerun measures anew). ``median`` here is the earlier definition: median
step gap after 2 warm-up steps on the measured side, median of the steady simulated
iterations on the predicted side; the noise CV (robust) is the same under both.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

import calibration.runs as runs
import calibration.scaling as scaling
from calibration.calibrate import calibrate
from calibration.validate import Report, validate
from vocab.argtypes import OneLineParser, report_errors
from vocab.errors import SpecError
from vocab.files import check_path, read_json
from vocab.timing import BASE_WARMUP, iteration_durations
from vocab.trace import read_trace

STATISTICS = ("mean", "median")


@contextlib.contextmanager
def median_statistic() -> Iterator[None]:
    """Within the block, runs are read and predictions made with the pre-redesign median."""
    read_run, simulate = runs.read_run, scaling.simulate

    def median_run(path, warmup=None):  # noqa: ANN001, ANN202  (read_run's signature)
        run = read_run(path, BASE_WARMUP)
        gaps = iteration_durations(read_trace(path), BASE_WARMUP)["duration_s"]
        return replace(run, iteration_s=float(np.median(gaps.to_numpy(float))))

    def median_simulate(**kwargs):  # noqa: ANN003, ANN202
        summary = simulate(**kwargs).summary
        steady = summary.loc[~summary["warmup"], "iteration_time_s"]
        return _Median(float(steady.median()))

    runs.read_run, scaling.simulate = median_run, median_simulate
    try:
        yield
    finally:
        runs.read_run, scaling.simulate = read_run, simulate


class _Median:
    """What :func:`calibration.scaling.simulate_run` reads of a result."""

    def __init__(self, seconds: float):
        self.iteration_time_s = seconds


def revalidate(protocol_dir: Path, statistic: str, work: Path) -> Report:
    """The protocol's fit and validation, from its stored runs, under ``statistic``."""
    path = check_path(protocol_dir, "a folder written by calibration.protocol", "dir") \
        / "report.json"
    summary = read_json(path, "the protocol's report")
    for key in ("fit_set", "held_out"):
        value = summary.get(key)
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise SpecError(key, value, "a list of run directories (the protocol's report)",
                            str(path))
    fitted = work / f"fitted-{statistic}.yaml"
    with median_statistic() if statistic == "median" else contextlib.nullcontext():
        calibrate(summary["fit_set"], fitted, overwrite=True)
        return validate(fitted, summary["held_out"])


def main(argv: Sequence[str] | None = None) -> int:
    """Print the validation table of ``DIR`` under each statistic."""
    parser = OneLineParser(prog="python -m benchmarks.protocol_statistics")
    parser.add_argument("protocol_dir", type=Path)
    args = parser.parse_args(argv)

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="gradsync-restat-") as work:
            for statistic in STATISTICS:
                report = revalidate(args.protocol_dir, statistic, Path(work))
                print(f"\n== iteration time: {statistic} ==")
                print(report.table())
        return 0
    return report_errors(parser.prog, body)


if __name__ == "__main__":
    raise SystemExit(main())
