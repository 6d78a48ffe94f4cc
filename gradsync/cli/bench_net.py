"""``gradsync bench-net``: OSU-like collective microbenchmarks on local MPI ranks."""

from __future__ import annotations

import argparse

from calibration.benchnet import DEFAULT_SIZES, run_bench_net
from calibration.fitting import fit_piecewise, medians
from vocab.argtypes import REPEATS, SECONDS, whole
from vocab.units import format_bytes, format_time


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench-net`` subcommand."""
    parser = subparsers.add_parser(
        "bench-net", help="measure allreduce, reduce-scatter and allgather times under mpiexec",
        description=("Run allreduce (blocking and Iallreduce+Wait), reduce-scatter and allgather "
                     "over message sizes on N local MPI ranks, with warm-up and repeats like the "
                     "OSU micro-benchmarks; writes DIR/bench.csv (op, nranks, nbytes, repeat, "
                     "seconds) and DIR/run.json, for 'gradsync calibrate'."))
    parser.add_argument("-n", "--ranks", type=whole(2, 4096, what="MPI ranks"), required=True, help="MPI ranks (>= 2)")
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    parser.add_argument("--force", action="store_true", help="replace earlier measurements")
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"LOW..HIGH (powers of two) or a list (default {DEFAULT_SIZES})")
    parser.add_argument("--repeats", type=REPEATS, default=5, help="timed repeats per size")
    parser.add_argument("--timeout", type=SECONDS, default=300.0, help="seconds before giving up")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the allreduce segments it found."""
    table = run_bench_net(args.ranks, args.out, args.sizes, args.repeats, args.timeout,
                          overwrite=args.force)
    points = medians(table, "allreduce")
    print(f"bench-net: {len(table)} measurements on {args.ranks} ranks -> {args.out}")
    if points["nbytes"].nunique() >= 2:
        for seg in fit_piecewise(points["nbytes"], points["seconds"]):
            bandwidth = 1.0 / seg.per_byte_s if seg.per_byte_s > 0 else float("inf")
            print(f"  allreduce {format_bytes(seg.lo_bytes):>9} .. {format_bytes(seg.hi_bytes):>9}:"
                  f" {format_time(seg.fixed_s):>9} + n / {bandwidth / 1e9:.3g} GB/s"
                  f"  (rms {seg.rms_rel:.1%})")
    return 0
