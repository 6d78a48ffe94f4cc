"""``gradsync calibrate``: fit the simulator to benchmarks and runs; write a cluster file."""

from __future__ import annotations

import argparse
from pathlib import Path

from calibration.calibrate import BASE_CLUSTER, calibrate
from calibration.protocol import DEFAULT_OUT, run_protocol
from hwmodels.collectives.measured import CollectiveFit
from vocab.argtypes import NODES, RANKS
from vocab.errors import SpecError
from vocab.outpath import check_output
from vocab.units import format_time
from vocab.profile import load_profile


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` subcommand."""
    parser = subparsers.add_parser(
        "calibrate", help="fit link, overhead, interference and compute parameters",
        description=("Fit the simulator to bench-net directories and executor run directories "
                     "(one-rank runs give compute profiles; multi-rank runs, normally one "
                     "model's sync runs, the executor's costs) and write one fitted cluster "
                     "file: a cluster file like any preset plus its calibration (links, "
                     "collective scales, compute profiles, noise) and provenance. 'gradsync "
                     "simulate --cluster FITTED.yaml' and 'gradsync validate' predict from it "
                     "alike. Profiles measured at the rank count you predict for ('gradsync "
                     "run -n N --local ...') beat one-rank profiles carried to N ranks. "
                     "--protocol runs the whole held-out protocol instead."))
    parser.add_argument("inputs", nargs="*", metavar="DIR",
                        help="bench-net and run directories; nccl-tests/OSU log files or "
                             "folders of them (alone for a GPU cluster, or beside the others)")
    parser.add_argument("--out", help="the fitted cluster file to write (.yaml)")
    parser.add_argument("--profile", action="append", default=[], metavar="FILE",
                        help="a compute profile file (repeatable)")
    parser.add_argument("--base", "--cluster", dest="base", default=BASE_CLUSTER,
                        help="cluster the fit starts from (a preset or file; for collective "
                             "logs the GPU cluster they ran on, e.g. dgx1-v100)")
    parser.add_argument("--osu-ranks", type=RANKS, help="ranks of the OSU logs given")
    parser.add_argument("--osu-nodes", type=NODES, help="nodes of the OSU logs given")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument("--protocol", action="store_true",
                        help="run the held-out protocol end to end (executor runs, bench-net, "
                             "fit, validation); --out is then a directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit and print the fitted figures."""
    if args.protocol:
        report = run_protocol(Path(args.out or DEFAULT_OUT), overwrite=args.force)
        print(report.table())
        return 0
    if not args.inputs:
        raise SpecError("inputs", [], "at least one bench-net or run directory")
    if not args.out:
        raise SpecError("out", None, "a path for the fitted cluster file (--out FITTED.yaml)")
    check_output(args.out, overwrite=args.force)    # before the fit, not after it
    cluster = calibrate(args.inputs, args.out, profiles=[load_profile(p) for p in args.profile],
                        base=args.base, overwrite=args.force, osu_ranks=args.osu_ranks,
                        osu_nodes=args.osu_nodes)
    calibration = cluster.calibration
    print(f"calibrate: wrote {args.out}")
    if calibration.collectives is not None:
        _print_collectives(calibration.collectives)
    if "intra" not in cluster.fitted:
        return 0
    intra = cluster.fitted["intra"]
    print(f"  intra: alpha {format_time(intra.alpha_s)}, beta {intra.beta_s_per_B:.3g} s/B "
          f"({1 / intra.beta_s_per_B / 1e9 if intra.beta_s_per_B else float('inf'):.3g} GB/s), "
          f"gamma {intra.gamma_s_per_B:.3g} s/B")
    print(f"  collective overhead {format_time(cluster.collective_overhead_s)}, "
          f"comm interference {cluster.comm_interference:.3g}")
    print("  compute profiles: " + (", ".join(
        f"{k.model} batch {k.batch} at {k.occupancy} rank(s)"
        for k in sorted(calibration.profiles)) or "none"))
    if calibration.compute_scales:
        print("  one-rank compute scale by ranks: " + ", ".join(
            f"{k}: {v:.3g}" for k, v in sorted(calibration.compute_scales.items())))
    carried = cluster.provenance.get("extrapolated_compute") or []
    if carried:
        print("  predictions that rest on extrapolated compute:")
        for line in carried:
            print(f"    {line}")
    return 0


def _print_collectives(fit: CollectiveFit) -> None:
    """The fitted collective figures, one line each."""
    scales = ", ".join(f"{k} x{v:.3g}" for k, v in fit.provenance["fitted"].items())
    print(f"  collectives ({fit.library}): {scales}")
    print("  measured layouts (nodes x GPUs): " + ", ".join(fit.provenance["layouts"]))
    print("  closed-form RMS error by layout: " + ", ".join(
        f"{k} {v * 100:.0f} %" for k, v in fit.provenance["closed_form_rms_rel"].items()))
