"""Published multi-GPU scaling, predicted: ``python -m benchmarks.published [--csv FILE | --rows published|holdout|all] [--json]``.

Each CSV row is one published measurement: a cluster (a preset name, or a YAML file relative to
the CSV), ``nodes`` x ``gpus_per_node`` GPUs, a zoo model at ``batch`` samples per GPU, the
framework's ``precision``, software ``stack`` (a preset or release name, or a stack YAML file
relative to the CSV) and gradient ``strategy`` (``bucket_mb`` for bucketed ones), the
published one-GPU throughput ``throughput_1gpu`` and the published ``throughput`` at that
size. The compute profile is the roofline estimate scaled so that one device runs at
``throughput_1gpu`` (``ComputeProfile.scaled_to_throughput``); the simulator then predicts the
throughput at the row's size. Scaling efficiency is ``throughput / (GPUs x throughput_1gpu)``,
published and predicted; the error is predicted minus published, in points.

An optional ``baseline_gpus`` column (default 1) is for tables that publish efficiency relative
to a larger baseline (ABCI: to one node of 4 GPUs): the predicted efficiency is then the
simulated throughput per GPU over that of the simulated baseline.

An optional ``baseline_batch`` column (default: the row's ``batch``) is the per-GPU batch the
baseline was measured at, for strong-scaling tables whose per-GPU batch shrinks with the GPUs
(gradient accumulation to a fixed global batch: NVIDIA's BERT pretraining tables): the profile
is scaled so that one GPU at ``baseline_batch`` runs at ``throughput_1gpu``, and the baseline
(``baseline_gpus``) is simulated at ``baseline_batch``, the row at ``batch``. Costs paid once
per step (the allreduce, the optimizer update) are then spread over the baseline's samples as
in the published run, not over the row's.

Optional ``epoch_samples`` and ``epoch_fixed_s`` (both or neither) are for tables that time
whole epochs rather than steady steps (ABCI: the wall time of a 90-epoch run): an epoch is
``ceil(epoch_samples / GPUs) / batch`` steps (a ``DistributedSampler`` pads every rank to the
same share) plus ``epoch_fixed_s`` seconds that do not shrink with the GPUs (loaders
started again every epoch), and the throughput compared is samples per epoch over its time
(:func:`epoch_throughput`), at the row's size and at its baseline alike.

``stack`` and ``precision`` are passed to the simulator only where ``simulator.api.simulate``
accepts them (``inspect.signature``); otherwise each row says they were not applied.
``--write-bands`` writes the per-class residuals that every prediction's trust line reads
(``simulator/trust.py``). The default CSV and its machines are in ``benchmarks/published/``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from hwmodels.cluster import cluster_presets, load_cluster
from hwmodels.specs import Cluster
from hwmodels.stacks import Stack, load_stack
from simulator.api import simulate
from simulator.roofline import roofline_profile
from simulator.trust import (
    BAND_QUANTILE, BANDS_FILE, bands_document, bands_from_residuals, load_bands, setup_class,
    with_devices, with_holdout, write_bands,
)
from vocab.argtypes import OneLineParser, report_errors
from vocab.errors import GradsyncError, SpecError
from vocab.files import read_csv
from vocab.strategies import STRATEGIES
from vocab.strategies.plan import MiB
from vocab.workload import Workload, load_workload

DATA_DIR = Path(__file__).with_name("published")
DEFAULT_CSV = DATA_DIR / "published.csv"
#: Rows from sources the model and its trust bands were never fitted or tuned on: they check
#: the presets, never feed them (``benchmarks/published/README.md``).
HOLDOUT_CSV = DATA_DIR / "holdout.csv"
#: ``--rows``: the named row sets, each its CSVs in order.
ROW_SETS = {"published": (DEFAULT_CSV,), "holdout": (HOLDOUT_CSV,),
            "all": (DEFAULT_CSV, HOLDOUT_CSV)}
REQUIRED_COLUMNS = ("set", "source", "cluster", "nodes", "gpus_per_node", "model", "batch",
                    "precision", "stack", "strategy", "throughput_1gpu", "throughput")
OPTIONAL_COLUMNS = ("bucket_mb", "baseline_gpus", "epoch_samples", "epoch_fixed_s",
                    "baseline_batch")
PRECISIONS = ("fp32", "amp", "fp16", "bf16")
#: Strategy names, and the tables' labels for MG-WFBP merging (``simulator.api.label``).
ROW_STRATEGIES = (*STRATEGIES, "bucketed+mgwfbp", "crossiter+mgwfbp")
#: What the simulator computes when it is not told a precision: fp32 gradients and compute.
MODEL_PRECISION = "fp32"
WITHIN_POINTS = 5.0
#: The largest published scaling efficiency a row may state (2 = 200 % of linear). The 122
#: shipped rows (published.csv and holdout.csv) reach at most 100.3 % (hkbu-resnet50, 4
#: GPUs): superlinear scaling beyond a few percent is rare, and twice linear is past any of
#: them; a row above it has a throughput that is not the total of its GPUs (a per-GPU figure
#: in the total column, a 1000x slip: 87402 % was accepted).
MAX_EFFICIENCY = 2.0


@dataclass(frozen=True)
class PublishedRow:
    """One published measurement (a CSV row, checked)."""

    set: str
    source: str
    cluster: str
    nodes: int
    gpus_per_node: int
    model: str
    batch: int
    precision: str
    stack: str
    strategy: str
    bucket_mb: float | None
    throughput_1gpu: float
    throughput: float
    baseline_gpus: int = 1
    row: int = 0                     # 1-based data row of the CSV
    #: Whole epochs timed (both set, or neither: steady steps): samples per epoch, and the
    #: seconds of every epoch that do not shrink with the GPUs.
    epoch_samples: int | None = None
    epoch_fixed_s: float | None = None
    #: Per-GPU batch of the baseline run (None: the row's ``batch``).
    baseline_batch: int | None = None

    @property
    def base_batch(self) -> int:
        """The per-GPU batch the baseline (``throughput_1gpu``, ``baseline_gpus``) ran at."""
        return self.batch if self.baseline_batch is None else self.baseline_batch

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def published_efficiency(self) -> float:
        """Published throughput over GPUs x the published one-GPU throughput."""
        return efficiency(self.throughput, self.gpus, self.throughput_1gpu)


def efficiency(throughput: float, gpus: int, throughput_1gpu: float) -> float:
    """Scaling efficiency: ``throughput / (gpus * throughput_1gpu)``."""
    return throughput / (gpus * throughput_1gpu)


def epoch_steps(epoch_samples: int, gpus: int, batch: int) -> float:
    """Steps of one epoch: each rank's padded share ``ceil(samples / gpus)`` (a
    ``DistributedSampler`` pads every rank to the same share) over ``batch``; a partial last
    step counts as its share of a step (steps that are mostly compute)."""
    return math.ceil(epoch_samples / gpus) / batch


def epoch_throughput(step_throughput: float, gpus: int, batch: int, epoch_samples: int,
                     fixed_s: float) -> float:
    """Samples per second over whole epochs: ``epoch_samples`` over the epoch's steps at the
    steady step time ``gpus * batch / step_throughput``, plus ``fixed_s`` per epoch."""
    step_s = gpus * batch / step_throughput
    return epoch_samples / (epoch_steps(epoch_samples, gpus, batch) * step_s + fixed_s)


# ------------------------------------------------------------------------------- the CSV

class RowError(GradsyncError):
    """A bad CSV cell: names the file, the row and the column."""

    def __init__(self, path: Path, row: int, column: str, value: Any, expected: str):
        super().__init__(f"{path}: row {row} column {column}: got {value!r}, expected "
                         f"{expected}")


def load_rows(path: str | Path = DEFAULT_CSV) -> list[PublishedRow]:
    """Every row of a published-scaling CSV, checked (clusters and models resolved)."""
    path = Path(path)
    raw_rows = read_csv(path, "a published-scaling CSV", REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    return [parse_row(path, number, raw) for number, raw in enumerate(raw_rows, start=1)]


def parse_row(path: Path, number: int, raw: dict[str, str | None]) -> PublishedRow:
    """One CSV row as a :class:`PublishedRow`; a bad cell is a :class:`RowError`."""
    def cell(column: str) -> str:
        return (raw.get(column) or "").strip()

    def count(column: str, default: int | None = None) -> int:
        text = cell(column)
        if not text and default is not None:
            return default
        if not text.isdigit() or int(text) < 1:
            raise RowError(path, number, column, text, "a whole number >= 1")
        return int(text)

    def positive(column: str, zero: bool = False) -> float:
        try:
            value = float(cell(column))
        except ValueError:
            value = float("nan")
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            raise RowError(path, number, column, cell(column),
                           "a number >= 0" if zero else "a positive number")
        return value

    if bool(cell("epoch_samples")) != bool(cell("epoch_fixed_s")):
        column = "epoch_fixed_s" if cell("epoch_samples") else "epoch_samples"
        raise RowError(path, number, column, cell(column),
                       "a value beside the other epoch column (both or neither)")

    check_words(path, number, cell)
    row = PublishedRow(cell("set"), cell("source"), cell("cluster"), count("nodes"),
                       count("gpus_per_node"), cell("model"), count("batch"), cell("precision"),
                       cell("stack"), cell("strategy"),
                       positive("bucket_mb") if cell("bucket_mb") else None,
                       positive("throughput_1gpu"), positive("throughput"),
                       count("baseline_gpus", default=1), number,
                       count("epoch_samples") if cell("epoch_samples") else None,
                       positive("epoch_fixed_s", zero=True) if cell("epoch_fixed_s") else None,
                       count("baseline_batch") if cell("baseline_batch") else None)
    if row.baseline_gpus > row.gpus:
        raise RowError(path, number, "baseline_gpus", row.baseline_gpus, f"at most the row's "
                       f"{row.gpus} GPUs (nodes x gpus_per_node): the baseline is the smaller "
                       "size the efficiency is relative to")
    if not row.published_efficiency <= MAX_EFFICIENCY:
        raise RowError(path, number, "throughput", cell("throughput"), f"at most "
                       f"{MAX_EFFICIENCY:.0%} of linear scaling ({row.gpus} GPUs x "
                       f"throughput_1gpu {row.throughput_1gpu:g} = "
                       f"{row.gpus * row.throughput_1gpu:g} samples/s); this is "
                       f"{row.published_efficiency:.0%}: a total and a per-GPU figure mixed?")
    # The cluster file must load here; whether it takes the row's size is the simulator's
    # answer, per row (predict_csv).
    for column, resolve in (("cluster", lambda: base_cluster(cluster_path(row.cluster,
                                                                          path.parent))),
                            ("model", lambda: workload(row.model))):
        try:
            resolve()
        except SpecError as exc:
            # An error about the cell itself (an unknown name, a missing file) says its
            # expectation once, under the CSV's row and column; one inside a cluster file
            # keeps that file and field.
            expected = exc.expected if exc.source is None else str(exc)
            raise RowError(path, number, column, getattr(row, column), expected) from None
        except GradsyncError as exc:
            raise RowError(path, number, column, getattr(row, column), str(exc)) from None
    return row


def check_words(path: Path, number: int, cell: Callable[[str], str]) -> None:
    """The row's text cells: present, and precision and strategy from their lists."""
    for column in ("set", "source", "stack"):
        if not cell(column):
            raise RowError(path, number, column, cell(column), "a non-empty text")
    for column, valid in (("precision", PRECISIONS), ("strategy", ROW_STRATEGIES)):
        if cell(column) not in valid:
            raise RowError(path, number, column, cell(column), f"one of {', '.join(valid)}")


def cluster_path(name: str, csv_dir: Path) -> str:
    """A preset name as it is; a YAML file relative to the CSV's folder."""
    if name in cluster_presets():
        return name
    if not is_yaml(name):
        cluster_presets().lookup(name)          # raises, listing the presets
    return str((csv_dir / name).resolve())


def stack_path(name: str, csv_dir: Path) -> str:
    """A stack name (a preset or a release such as ``horovod-0.20.3``) as it is; a YAML file
    relative to the CSV's folder, as a cluster file is."""
    return str((csv_dir / name).resolve()) if is_yaml(name) else name


def is_yaml(name: str) -> bool:
    """Whether a cluster or stack cell names a file (beside the CSV) rather than a preset."""
    return name.endswith((".yaml", ".yml"))


def row_stack(row: PublishedRow, csv_dir: Path) -> Stack:
    """The row's software stack (a preset, a release or a file beside the CSV). An unknown
    one fails its row, not the CSV (:func:`predict_csv`): a stack this version does not
    model leaves the other rows to run."""
    return base_stack(stack_path(row.stack, csv_dir))


@lru_cache(maxsize=64)
def base_stack(name: str) -> Stack:
    """A stack preset, release or file, loaded once per run of the benchmark."""
    return load_stack(name)


@lru_cache(maxsize=64)
def base_cluster(name: str) -> Cluster:
    """A cluster file or preset, loaded once per run of the benchmark."""
    return load_cluster(name)


@lru_cache(maxsize=32)
def workload(name: str) -> Workload:
    """A zoo workload (or file), loaded once."""
    return load_workload(name)


def row_cluster(row: PublishedRow, csv_dir: Path, gpus: int | None = None) -> Cluster:
    """The row's cluster at ``gpus`` GPUs (default the row's own size)."""
    gpus = row.gpus if gpus is None else gpus
    per_node = min(row.gpus_per_node, gpus)
    if gpus % per_node:
        raise GradsyncError(f"row {row.row}: {gpus} GPUs do not fill nodes of {per_node}")
    cluster = base_cluster(cluster_path(row.cluster, csv_dir))
    return cluster.with_nodes(gpus // per_node).with_devices_per_node(per_node)


# ------------------------------------------------------------------------------- predicting

@dataclass(frozen=True)
class RowResult:
    """A row's published and predicted scaling efficiency (fractions) and its setup class."""

    row: PublishedRow
    setup_class: str
    predicted_efficiency: float | None         # None: the simulator refused the row
    not_applied: tuple[str, ...] = field(default=())
    failure: str = ""                          # why the simulator refused it

    @property
    def published_efficiency(self) -> float:
        return self.row.published_efficiency

    @property
    def error_points(self) -> float | None:
        """Predicted minus published efficiency, in points (percent of perfect scaling)."""
        if self.predicted_efficiency is None:
            return None
        return 100 * (self.predicted_efficiency - self.published_efficiency)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self.row).items()}, "gpus": self.row.gpus,
                "setup_class": self.setup_class,
                "published_efficiency": self.published_efficiency,
                "predicted_efficiency": self.predicted_efficiency,
                "error_points": self.error_points, "not_applied": list(self.not_applied),
                "failure": self.failure}


def api_accepts(name: str) -> bool:
    """Whether ``simulator.api.simulate`` takes the keyword ``name`` (stack, precision)."""
    return name in inspect.signature(simulate).parameters


def unapplied_settings(row: PublishedRow) -> tuple[str, ...]:
    """The row's software fields that ``simulator.api.simulate`` cannot take."""
    not_applied = [] if api_accepts("stack") else [f"stack={row.stack}"]
    if not api_accepts("precision") and row.precision != MODEL_PRECISION:
        not_applied.append(f"precision={row.precision}")
    return tuple(not_applied)


def row_settings(row: PublishedRow, csv_dir: Path) -> dict[str, Any]:
    """The simulate keywords from the row's software fields (:func:`unapplied_settings`: those
    the API cannot take)."""
    keywords: dict[str, Any] = {}
    if api_accepts("stack"):
        keywords["stack"] = row_stack(row, csv_dir)
    if api_accepts("precision"):
        keywords["precision"] = row.precision
    if row.bucket_mb is not None:
        keywords["bucket_bytes"] = int(row.bucket_mb * MiB)
    if row.strategy.endswith("+mgwfbp"):
        keywords["merge"] = "mgwfbp"
    return keywords


def simulated_throughput(row: PublishedRow, csv_dir: Path, gpus: int,
                         batch: int | None = None) -> float:
    """Samples/s of the row's setup at ``gpus`` GPUs and ``batch`` per GPU (default the row's),
    the profile scaled so that one GPU at the baseline's batch runs at the one-GPU rate (over
    whole epochs, :func:`epoch_throughput`, when the row times epochs)."""
    batch = row.batch if batch is None else batch
    cluster = row_cluster(row, csv_dir, gpus)
    model = workload(row.model)
    # One level for both batches: what one GPU measured at the baseline's batch.
    at_base = roofline_profile(model, cluster.device, row.base_batch)
    level = at_base.scaled_to_throughput(row.throughput_1gpu).iteration_s / at_base.iteration_s
    profile = roofline_profile(model, cluster.device, batch).scaled(level)
    keywords = row_settings(row, csv_dir)
    strategy = row.strategy.split("+")[0]
    result = simulate(cluster, model, batch, strategy, profile=profile, **keywords)
    if row.epoch_samples is None:
        return result.throughput_samples_s
    return epoch_throughput(result.throughput_samples_s, gpus, batch, row.epoch_samples,
                            row.epoch_fixed_s or 0.0)


def predict_row(row: PublishedRow, csv_dir: Path) -> RowResult:
    """Predict one row's scaling efficiency (relative to its baseline's GPUs)."""
    throughput = simulated_throughput(row, csv_dir, row.gpus)
    if row.baseline_gpus == 1:
        predicted = efficiency(throughput, row.gpus, row.throughput_1gpu)
    else:
        base = simulated_throughput(row, csv_dir, row.baseline_gpus, row.base_batch)
        predicted = (throughput / row.gpus) / (base / row.baseline_gpus)
    return RowResult(row, setup_class(row_cluster(row, csv_dir)), predicted,
                     unapplied_settings(row))


def predict_csv(path: str | Path = DEFAULT_CSV) -> list[RowResult]:
    """Every row of the CSV, predicted. A CSV that does not parse raises; a well-formed row
    that the simulator refuses (a node count past ``max_nodes``, a GPU count the node's
    topology cannot take) is kept as a failed row, so that one row never hides the others."""
    path = Path(path)
    results = []
    for row in load_rows(path):
        try:
            results.append(predict_row(row, path.parent))
        except GradsyncError as exc:
            try:
                setup = setup_class(row_cluster(row, path.parent))
            except GradsyncError:
                setup = "unknown"
            results.append(RowResult(row, setup, None, unapplied_settings(row), str(exc)))
    return results


def summary(results: list[RowResult]) -> dict[str, Any]:
    """Rows, how many within 5 points (a failed row is not), median and max absolute error
    over the predicted rows (points)."""
    errors = [abs(r.error_points) for r in results if r.error_points is not None]
    return {"rows": len(results), "failed": len(results) - len(errors),
            "within_5_points": sum(e <= WITHIN_POINTS for e in errors),
            "median_abs_error_points": statistics.median(errors) if errors else None,
            "max_abs_error_points": max(errors) if errors else None}


def by_class(results: list[RowResult],
             bands_file: str | Path = BANDS_FILE) -> dict[str, dict[str, Any]]:
    """:func:`summary` per setup class (``simulator.trust.setup_class``), plus the mean signed
    error (which kind of machine the model is wrong on, and in which direction) and how many
    rows fall inside the class's shipped trust band: on rows the bands were not fitted on,
    about ``BAND_QUANTILE`` of them should."""
    bands = load_bands(bands_file)["bands"]
    classes: dict[str, list[RowResult]] = {}
    for r in results:
        classes.setdefault(r.setup_class, []).append(r)
    out = {}
    for name, members in sorted(classes.items()):
        signed = [r.error_points for r in members if r.error_points is not None]
        band = bands.get(name)
        out[name] = {**summary(members),
                     "mean_signed_error_points": statistics.fmean(signed) if signed else None,
                     "band_points": None if band is None else float(band["points"]),
                     "within_band": None if band is None else
                     sum(abs(e) <= float(band["points"]) for e in signed)}
    return out


# ------------------------------------------------------------------------------- output

def format_report(results: list[RowResult]) -> str:
    """The human table: one line per row, then the counts."""
    lines = [f"{'set':<20} {'GPUs':>5} {'model':<10} {'strategy':<15} {'stack':<18} "
             f"{'published':>9} {'predicted':>9} {'error':>7}  class"]
    for r in results:
        size = f"{r.row.nodes}x{r.row.gpus_per_node}"
        start = (f"{r.row.set:<20} {size:>5} {r.row.model:<10} {r.row.strategy:<15} "
                 f"{r.row.stack:<18} {100 * r.published_efficiency:>8.1f}% ")
        lines.append(start + (f"{'-':>9} {'-':>7}  not predicted: {r.failure}"
                              if r.predicted_efficiency is None else
                              f"{100 * r.predicted_efficiency:>8.1f}% {r.error_points:>+7.1f}  "
                              f"{r.setup_class}"))
    s = summary(results)
    failed = f" ({s['failed']} rows not predicted)" if s["failed"] else ""
    spread = ("" if s["median_abs_error_points"] is None else
              f"; median error {s['median_abs_error_points']:.1f}, max "
              f"{s['max_abs_error_points']:.1f} points")
    lines.append(f"\n{s['within_5_points']} of {s['rows']} rows within {WITHIN_POINTS:g} points "
                 f"of published scaling efficiency{failed}{spread}")
    for name, c in by_class(results).items():
        if c["median_abs_error_points"] is not None:
            lines.append(f"  {name:<24} {c['within_5_points']:>3} of {c['rows']:<3} within "
                         f"{WITHIN_POINTS:g}; median {c['median_abs_error_points']:.1f}, max "
                         f"{c['max_abs_error_points']:.1f}, mean signed "
                         f"{c['mean_signed_error_points']:+.1f} points"
                         + ("; no trust band" if c["band_points"] is None else
                            f"; {c['within_band']} within its trust band "
                            f"+-{c['band_points']:.1f} (expected {BAND_QUANTILE:.0%})"))
    unapplied = sorted({item.split("=")[0] for r in results for item in r.not_applied})
    if unapplied:
        rows = sum(1 for r in results if r.not_applied)
        lines.append(f"not applied by the current simulator API (recorded only): "
                     f"{', '.join(unapplied)} ({rows} rows)")
    return "\n".join(lines)


def command_line(csv_path: Path) -> str:
    """How the figures were made, as a user would retype it."""
    tail = "" if csv_path.resolve() == DEFAULT_CSV.resolve() else f" --csv {csv_path}"
    return f"python -m benchmarks.published{tail}"


def predict_sets(paths: tuple[Path, ...]) -> list[RowResult]:
    """Every row of each CSV in turn (``--rows all`` is the published rows, then the holdout)."""
    return [result for path in paths for result in predict_csv(path)]


def write_band_file(results: list[RowResult], csv_path: Path, out: Path,
                    holdout: list[RowResult] = ()) -> Path:
    """The per-class residual bands (``simulator/trust.py``'s file) from these results, each
    checked on the ``holdout`` results (rows the bands are not made from)."""
    predicted = [r for r in results if r.error_points is not None]
    bands = bands_from_residuals((r.setup_class, r.error_points) for r in predicted)
    bands = with_holdout(bands, ((r.setup_class, r.error_points) for r in holdout
                                 if r.error_points is not None))
    bands = with_devices(bands, ((r.setup_class, row_cluster(r.row, csv_path.parent).device.name)
                                 for r in predicted))
    document = bands_document(bands, command=command_line(csv_path),
                              date=datetime.now(timezone.utc).date().isoformat(),
                              csv=csv_path.name, rows=len(predicted))
    return write_bands(out, document)


def main(argv: list[str] | None = None) -> int:
    """Predict every row, print the table (or JSON), optionally write the trust bands."""
    parser = OneLineParser(prog="python -m benchmarks.published",
                           description=__doc__.splitlines()[0])
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument("--csv", type=Path, default=None, help="a CSV of published rows")
    rows.add_argument("--rows", choices=tuple(ROW_SETS), default=None,
                      help="the shipped rows: published (default; the trust bands come from "
                           "them), holdout (sources never tuned on) or all")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--write-bands", nargs="?", type=Path, const=BANDS_FILE, metavar="FILE",
                        help=f"write the per-class error bands (default {BANDS_FILE.name} "
                             "under simulator/data/)")
    args = parser.parse_args(argv)
    paths = (args.csv,) if args.csv is not None else ROW_SETS[args.rows or "published"]
    if args.write_bands and args.rows in ("holdout", "all"):
        # Bands fitted on the holdout would make it one more training set.
        print(f"{parser.prog}: error: --write-bands: got --rows {args.rows}, expected the "
              "published rows "
              "(the holdout checks the bands, never feeds them)", file=sys.stderr)
        return 2
    return report_errors(parser.prog, lambda: _run(args, paths))


def _run(args: argparse.Namespace, paths: tuple[Path, ...]) -> int:
    results = predict_sets(paths)
    # The shipped bands are checked on the holdout; a band from another CSV has none.
    holdout = predict_sets(ROW_SETS["holdout"]) if args.write_bands and \
        args.csv is None else []
    written = write_band_file(results, paths[0], args.write_bands, holdout) \
        if args.write_bands else None
    if args.json:
        print(json.dumps({"csv": [str(p) for p in paths] if len(paths) > 1 else str(paths[0]),
                          "summary": summary(results), "by_class": by_class(results),
                          "rows": [r.to_dict() for r in results]}, indent=1))
    else:
        print(format_report(results))
    if written is not None:
        print(f"trust bands written to {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
