"""Fit the NCCL collective model to nccl-tests/OSU logs: ``python -m calibration.collfit``.

:func:`fit_collectives` takes the tidy table of :func:`calibration.collbench.read_collective_logs`
and a base cluster (its node graph, NICs and fabric) and fits, jointly over every rank layout
(nodes x GPUs per node) in the table, the multipliers of the NCCL closed form
(:class:`~hwmodels.collectives.nccl.NcclScales`: achieved bandwidth of the node's rings and of
the network, latency of intra-node and network steps, the Simple ring's plateau factor), by
least squares on ``log(model / measured)`` over the allreduce sizes from
:data:`MIN_FIT_BYTES`. The measured curves are kept too (they take precedence over the closed
form, :mod:`hwmodels.collectives.measured`), with provenance: files, sizes and residuals.
Between measured node counts the curves are read at matching sizes; how a size maps from one
node count to another (:func:`fit_size_exponent`) is chosen by predicting each fitted interior
node count from its neighbours.

``python -m calibration.collfit --check`` prints the two checks of issue 11 with per-size
errors: ABCI fitted on 1, 2, 8, 32 nodes predicting 4 and 16; the DGX-1 P100 preset (no fit)
under the era of each Tartan log, by size and by GPU count; and the Hopper presets under their
default era (``nccl2.20``, NVLS) against published H100 and H200 bus bandwidths by GPU count
(:data:`HOPPER_BUSBW`).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from calibration.collbench import busbw_factor, read_collective_logs
from hwmodels.calibration import Calibration
from hwmodels.cluster import load_cluster, with_changes
from hwmodels.collectives.eras import ERAS
from hwmodels.collectives.measured import CollectiveFit, Curves
from hwmodels.collectives.nccl import NcclCosts, NcclScales
from hwmodels.commmodel import CommModel, default_library
from hwmodels.specs import Cluster
from vocab.argtypes import OneLineParser, report_errors
from vocab.errors import GradsyncError, SpecError
from vocab.files import check_path, read_csv

#: The fit and the checks start here: below it every layout is latency alone.
MIN_FIT_BYTES = 64 << 10
#: The size exponents :func:`fit_size_exponent` tries (0: same message; 1: same bytes per rank).
SIZE_EXPONENTS = tuple(i / 20 for i in range(21))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nccl-tests"
#: Logs kept in the package because the shared folder lacks them (see its SOURCES.md).
PACKAGE_DATA = Path(__file__).with_name("data")
#: Published H100 / H200 allreduce bus bandwidths (one row each, its source in the row).
HOPPER_BUSBW = PACKAGE_DATA / "hopper-busbw.csv"
_PARAMS = ("intra_bw", "net_bw", "intra_lat", "net_lat", "plateau", "threshold", "tree_bw",
           "tree_lat")


def allreduce_curves(table: pd.DataFrame) -> dict[tuple[int, int], pd.DataFrame]:
    """Per layout, the allreduce's median time by size (out-of-place where both are given)."""
    rows = table[table["op"] == "allreduce"].copy()
    # A summary CSV states only the bandwidth: the time is nbytes / algbw.
    algbw = rows["algbw_Bps"].astype(float)
    derived = rows["nbytes"].astype(float) / algbw.where(algbw > 0)
    rows["time_s"] = rows["time_s"].astype(float).fillna(derived)
    rows = rows.dropna(subset=["time_s"])
    if (rows["placement"] == "out_of_place").any():
        rows = rows[rows["placement"] != "in_place"]
    curves = {}
    for (nodes, k), group in rows.groupby(["nodes", "gpus_per_node"]):
        curve = group.groupby("nbytes", as_index=False)["time_s"].median()
        curves[(int(nodes), int(k))] = curve[curve["nbytes"] > 0].sort_values("nbytes")
    if not curves:
        raise GradsyncError("no allreduce rows with times among the collective logs; "
                            "expected all_reduce_perf or osu_allreduce output")
    return curves


def _model(base: Cluster, layout: tuple[int, int], library: str,
           scales: NcclScales | None) -> NcclCosts:
    nodes, k = layout
    return NcclCosts(base.with_devices_per_node(k).with_nodes(nodes), library, scales)


def _scales(x: np.ndarray) -> NcclScales:
    return NcclScales(*(float(v) for v in np.exp(x)))


def fit_collectives(table: pd.DataFrame, base: Cluster, library: str | None = None,
                    min_bytes: int = MIN_FIT_BYTES) -> CollectiveFit:
    """The fitted model and the measured curves of ``table`` on ``base``'s hardware."""
    library = library or default_library(base)
    if library not in ERAS:
        raise SpecError("cluster", base.name, "a GPU cluster with device transport: collective "
                        f"logs fit an NCCL era ({', '.join(ERAS)}), not the {library} model "
                        "(fit CPU clusters from bench-net directories)")
    curves = allreduce_curves(table)
    fit_points = {layout: c[c["nbytes"] >= min_bytes] for layout, c in curves.items()}
    fit_points = {layout: c for layout, c in fit_points.items() if len(c) and layout[0] * layout[1] > 1}
    if not fit_points:
        raise GradsyncError(f"no allreduce sizes >= {min_bytes} B on two or more GPUs in the "
                            "collective logs: nothing to fit")

    def residuals(x: np.ndarray) -> np.ndarray:
        scales = _scales(x)
        out = []
        for layout, c in fit_points.items():
            model = _model(base, layout, library, scales)
            pred = [model.choose(n).cost.at(n) for n in c["nbytes"]]
            out.append(np.log(np.array(pred) / c["time_s"].to_numpy()))
        return np.concatenate(out)

    era_plateau = math.log(NcclCosts(base, library).era.ring_plateau)
    start = np.array([-0.1, -0.1, 0.0, 0.0, era_plateau, 0.0, -0.1, 0.0])
    result = least_squares(residuals, start, diff_step=0.05,
                           bounds=(np.log([0.2, 0.2, 0.1, 0.1, 1.0, 0.05, 0.1, 0.1]),
                                   np.log([1.0, 1.0, 20.0, 20.0, 4.0, 50.0, 1.0, 20.0])))
    scales = _scales(result.x)
    rms = {}
    for layout, c in fit_points.items():
        model = _model(base, layout, library, scales)
        err = [model.choose(n).cost.at(n) / t - 1 for n, t in zip(c["nbytes"], c["time_s"])]
        rms[f"{layout[0]}x{layout[1]}"] = float(np.sqrt(np.mean(np.square(err))))
    provenance = {
        "files": sorted({str(f) for f in table["file"].unique()}),
        "fit_sizes": [int(min_bytes), int(max(c["nbytes"].max() for c in fit_points.values()))],
        "layouts": sorted(f"{n}x{k}" for n, k in curves),
        "closed_form_rms_rel": rms,
        "fitted": dict(zip(_PARAMS, (float(v) for v in np.exp(result.x)))),
    }
    stored = {layout: (tuple(float(v) for v in c["nbytes"]), tuple(float(v) for v in c["time_s"]))
              for layout, c in curves.items()}
    exponent, held_out = fit_size_exponent(stored, _model_at(base, library, scales), library,
                                          min_bytes)
    provenance["size_exponent"] = {"value": exponent, "held_out_rms_log": held_out}
    return CollectiveFit(library, scales, stored, provenance, exponent)


def _model_at(base: Cluster, library: str,
              scales: NcclScales) -> Callable[[int, int, float], float]:
    """``(nodes, GPUs per node, nbytes) -> seconds`` of the fitted closed form (cached per layout)."""
    models: dict[tuple[int, int], NcclCosts] = {}

    def at(nodes: int, k: int, nbytes: float) -> float:
        if (nodes, k) not in models:
            models[(nodes, k)] = _model(base, (nodes, k), library, scales)
        return models[(nodes, k)].choose(nbytes).cost.at(nbytes)
    return at


def fit_size_exponent(curves: Curves, model_at: Callable[[int, int, float], float],
                      library: str, min_bytes: int = MIN_FIT_BYTES,
                      candidates: Sequence[float] = SIZE_EXPONENTS) -> tuple[float, dict]:
    """The size exponent (``CollectiveFit.size_exponent``) that predicts each measured
    interior node count best from its measured neighbours alone (leave one out, RMS of the log
    error over sizes from ``min_bytes``), and that RMS per held-out layout. With no interior
    node count (fewer than three multi-node layouts of one GPU count) nothing can choose it:
    1, a ring's same bytes per rank. ``model_at(nodes, k, nbytes)`` carries curves past their
    measured sizes."""
    held_out = []
    for (nodes, k) in curves:
        others = sorted(n for n, kk in curves if kk == k and n > 1 and n != nodes)
        if nodes > 1 and any(n < nodes for n in others) and any(n > nodes for n in others):
            held_out.append((nodes, k))
    if not held_out:
        return 1.0, {}

    def errors(exponent: float) -> dict[str, float]:
        out = {}
        for nodes, k in held_out:
            rest = CollectiveFit(library, curves={lay: c for lay, c in curves.items()
                                                    if lay != (nodes, k)},
                                 size_exponent=exponent)
            sizes, times = curves[(nodes, k)]
            logs = [math.log(rest.time_s(nodes, k, n, lambda m, b, k=k: model_at(m, k, b)) / t)
                    for n, t in zip(sizes, times) if n >= min_bytes]
            out[f"{nodes}x{k}"] = float(np.sqrt(np.mean(np.square(logs))))
        return out

    scored = {exponent: errors(exponent) for exponent in candidates}
    best = min(candidates, key=lambda e: sum(v * v for v in scored[e].values()))
    return float(best), scored[best]


def attach(cluster: Cluster, fit: CollectiveFit) -> Cluster:
    """``cluster`` carrying ``fit`` in its calibration (a new one for a GPU cluster fitted from
    logs alone: nothing else measured, so cores and MPI figures stay neutral)."""
    calibration = cluster.calibration or Calibration(cores=1, fit_ranks=1, mpi_overhead_s=0.0)
    return replace(cluster, calibration=replace(calibration, collectives=fit))


# ---- the checks --------------------------------------------------------------------------------

def _errors(cluster: Cluster, library: str, sizes: Iterable[float],
            times: Iterable[float]) -> list[tuple[int, float]]:
    model = CommModel(cluster, library=library)
    return [(int(n), model.allreduce(n).at(n) / t - 1) for n, t in zip(sizes, times)]


def abci_fit(folder: Path = DATA / "abci-v100",
             fit_nodes: Sequence[int] = (1, 2, 8, 32)) -> CollectiveFit:
    """The fit of the ABCI logs of ``fit_nodes`` on the ``abci-v100`` preset under ``nccl2.8``."""
    table = read_collective_logs(folder)
    return fit_collectives(table[table["nodes"].isin(fit_nodes)], load_cluster("abci-v100"),
                           "nccl2.8")


def abci_check(folder: Path = DATA / "abci-v100", fit_nodes: Sequence[int] = (1, 2, 8, 32),
               check_nodes: Sequence[int] = (4, 16),
               fit: CollectiveFit | None = None) -> dict[int, list[tuple[int, float]]]:
    """Fit on ``fit_nodes``' logs (or take ``fit``), predict ``check_nodes``:
    {nodes: [(size, relative error)]}."""
    table = read_collective_logs(folder)
    fitted = attach(load_cluster("abci-v100"), fit or abci_fit(folder, fit_nodes))
    curves = allreduce_curves(table[table["nodes"].isin(check_nodes)])
    return {nodes: _errors(fitted.with_nodes(nodes), "nccl2.8",
                           c["nbytes"][c["nbytes"] >= MIN_FIT_BYTES],
                           c["time_s"][c["nbytes"] >= MIN_FIT_BYTES])
            for (nodes, _), c in sorted(curves.items())}


def _tartan_log(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, or the package's copy where the folder lacks it."""
    path = folder / name
    return path if path.is_file() else PACKAGE_DATA / "tartan-dgx1-p100" / name


def _by_gpus(preset: Cluster, era: str, path: Path) -> list[tuple[int, float]]:
    """Model over measured - 1 for each GPU count (2..8) of a Tartan by-GPU summary: bus
    bandwidth at 1 GB, or the small-message time (8 B, ``run_test.py``'s ``-b 8 -e 8``)."""
    table = read_collective_logs(path, facts={"*": {"nodes": 1, "nbytes": 1 << 30}})
    rows = table[(table["op"] == "allreduce") & (table["ranks"] > 1)]
    out = []
    for gpus, busbw, time_s in zip(rows["ranks"], rows["busbw_Bps"], rows["time_s"]):
        model = CommModel(preset.with_devices_per_node(int(gpus)), library=era)
        if math.isnan(busbw):
            out.append((int(gpus), model.allreduce(8).at(8) / time_s - 1))
        else:
            n = float(1 << 30)
            predicted = n / model.allreduce(n).at(n) * busbw_factor("allreduce", gpus)
            out.append((int(gpus), predicted / busbw - 1))
    return out


def dgx1_check(folder: Path = DATA / "tartan-dgx1-p100") -> dict[str, list[tuple[int, float]]]:
    """The ``dgx1-p100`` preset, no fit, under each Tartan log's era (``nccl2``, ``nccl1``):
    by size on 8 GPUs, and by GPU count on GPUs 0..N-1 the busbw at 1 GB and the time at 8 B;
    {curve: [(size or GPUs, relative error)]}."""
    preset = load_cluster("dgx1-p100")
    out = {}
    for era in ("nccl2", "nccl1"):
        table = read_collective_logs(folder / f"{era}-by-size.csv",
                                     facts={"*": {"ranks": 8, "nodes": 1}})
        c = allreduce_curves(table)[(1, 8)]
        keep = c["nbytes"] >= MIN_FIT_BYTES
        out[f"{era} by size"] = _errors(preset, era, c["nbytes"][keep], c["time_s"][keep])
    for era in ("nccl2", "nccl1"):
        out[f"{era} busbw at 1 GB by GPUs"] = _by_gpus(
            preset, era, _tartan_log(folder, f"{era}-by-gpus.csv"))
        out[f"{era} time at 8 B by GPUs"] = _by_gpus(
            preset, era, _tartan_log(folder, f"{era}-latency-by-gpus.csv"))
    return out


def hopper_check(path: Path = HOPPER_BUSBW) -> list[tuple[str, float]]:
    """Each published Hopper figure against its preset at its nodes, fabric and GPUs per node,
    under the preset's default library (``nccl2.20``): [(label, relative error of the modelled
    bus bandwidth)]."""
    out = []
    columns = ("preset", "nodes", "fabric", "gpus", "algorithm", "nbytes", "busbw_GBps",
               "source")
    for row in read_csv(path, "published Hopper bus bandwidths", required=columns):
        cluster = with_changes(load_cluster(row["preset"]), fabric=row["fabric"] or None,
                               nodes=int(row["nodes"]), devices_per_node=int(row["gpus"]))
        model = CommModel(cluster, algorithm=row["algorithm"])
        n = float(row["nbytes"])
        busbw = n / model.allreduce(n).at(n) * busbw_factor("allreduce", cluster.total_devices)
        where = f"x {row['nodes']} on {row['fabric']}" if row["fabric"] else ""
        out.append((f"{row['preset']} {where:<14} {row['gpus']} GPUs {row['algorithm']:>4}",
                    busbw / (float(row["busbw_GBps"]) * 1e9) - 1))
    return out


def _print(title: str, rows: dict, size: bool = True) -> None:
    print(title)
    for name, errors in rows.items():
        print(f"  {name}:")
        for x, e in errors:
            label = f"{x / 1024:>9.0f} KiB" if size else f"{x:>3d} GPUs"
            print(f"    {label}  {e * 100:+6.1f} %")


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m calibration.collfit", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="print the issue-11 checks")
    parser.add_argument("--data", type=Path, default=DATA, help="the nccl-tests data folder")
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 0
    return report_errors(parser.prog, lambda: _check(args.data))


def _check(data: Path) -> int:
    """Print the issue-11 checks on the logs under ``data``."""
    data = check_path(data, "the nccl-tests data folder", "dir")
    fit = abci_fit(data / "abci-v100")
    abci = abci_check(data / "abci-v100", fit=fit)
    _print("ABCI V100 (fitted on 1, 2, 8, 32 nodes; between them read at size x (N_ref/N)^"
           f"{fit.size_exponent:g}, chosen by leave-one-out), model/measured - 1:",
           {f"{n} nodes": e for n, e in abci.items()})
    dgx = dgx1_check(data / "tartan-dgx1-p100")
    by_gpus = {name: dgx.pop(name) for name in list(dgx) if name.endswith("by GPUs")}
    _print("DGX-1 P100 preset (no fit), model/measured - 1:", dgx)
    _print("", by_gpus, size=False)
    print("Hopper presets (nccl2.20; NVLS efficiency fitted on the 8-GPU H100 figure), "
          "busbw at the published size, model/measured - 1:")
    for label, error in hopper_check():
        print(f"    {label}  {error * 100:+6.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
