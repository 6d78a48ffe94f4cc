"""``gradsync demo``: the 2016 paper's comparison, simulated; then the loop, for real, here.

sync, layerwise, bucketed and delayed for AlexNet (batch 256 per device) and GoogLeNet (batch
32 per device) on a DGX-1 (P100, 8 GPUs) and on the Sandy Bridge + FDR InfiniBand cluster at 8
and 64 nodes. Tables are printed; every run is written under ``--out`` (default
``runs/demo``; a timestamped sibling is used when that directory already holds results).

Then, unless ``--no-loop``, a short version of calibration's loop on this machine: microbenchmarks
and brief real training runs on 2 local MPI ranks, a fit on one model's ``sync`` run, and the
fitted simulator's predictions of the runs it was not fitted on, against what was measured.
That part needs the executor and calibration extras (torch, mpi4py, mpich, scipy).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from gradsync.cli.simulate import format_table
from vocab.argtypes import ITERATIONS
from vocab.errors import GradsyncError
from vocab.outpath import atomic_write, check_output
from simulator.api import compare

STRATEGIES = ("sync", "layerwise", "bucketed", "delayed")
MODELS = (("alexnet", 256), ("googlenet", 32))
#: (cluster, nodes, transport, MPI progress, software stack, what it stands for). The DGX-1
#: study runs under both eras: the 2016 stacks (NCCL 1, Caffe-MPI) and today's NCCL 2.8.
SCENARIOS = (
    ("dgx1-p100", 1, "device", None, "nccl1", "2016: NCCL 1 collectives over NVLink"),
    ("dgx1-p100", 1, "device", None, "nccl2.8", "today: NCCL 2.8 over NVLink"),
    ("dgx1-p100", 1, "host", "test", "caffe-mpi-2016",
     "2016 Caffe-MPI style: host-staged MPI, progressed by polling"),
    ("cpu-sandybridge-fdr", 8, None, None, None, "CPU cluster, FDR InfiniBand"),
    ("cpu-sandybridge-fdr", 64, None, None, None, "CPU cluster, FDR InfiniBand"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser("demo", help="the paper's comparison of strategies, simulated",
                              description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory")
    p.add_argument("--iterations", type=ITERATIONS, default=3)
    p.add_argument("--no-loop", action="store_true",
                   help="skip the real runs, fit and validation on this machine")
    p.set_defaults(func=run)


def fresh_dir(out: Path) -> Path:
    """``out`` if absent or empty, else a timestamped sibling (runs are never overwritten)."""
    if not out.exists() or not any(out.iterdir()):
        return out
    return out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")


def run(args: argparse.Namespace) -> int:
    """Simulate every (cluster, model) pair, print its table, save runs and a summary."""
    # A file, a path under a file or an unwritable place is refused before any simulation;
    # a folder holding earlier results is never touched (a timestamped sibling is used).
    check_output(args.out, overwrite=True, kind="dir")
    out = fresh_dir(args.out)
    tables = []
    for cluster, nodes, transport, progress, stack, meaning in SCENARIOS:
        for model, batch in MODELS:
            comparison = compare(STRATEGIES, cluster=cluster, model=model, batch=batch,
                                 nodes=nodes, iterations=args.iterations,
                                 transport=transport, progress=progress, stack=stack)
            first = comparison["sync"]
            used = first.specs["cluster"]["transport"]
            print(f"\n{model}, batch {batch}/device, on {cluster} x {nodes} nodes "
                  f"({first.ranks} ranks, {used} transport, stack {stack or 'none'}) - "
                  f"{meaning}")
            print(format_table(comparison.table()))
            comparison.save(out / f"{cluster}-n{nodes}-{used}-{stack or 'nostack'}-{model}")
            table = comparison.table(full=True).reset_index()
            tables.append(table.assign(cluster=cluster, nodes=nodes, transport=used,
                                       progress=progress or "async", stack=stack or "",
                                       model=model))
    summary = out / "summary.csv"
    with atomic_write(summary) as tmp:
        pd.concat(tables).to_csv(tmp, index=False)
    print(f"\nsimulated runs and {summary.name} written under {out}")
    if not args.no_loop:
        run_loop(out / "loop")
    return 0


#: The loop at demo size: two small models, 2 ranks, sync and delayed, a few steps (~1-2 min).
LOOP = dict(models=("alexnet-ci", "bert-ci"), fit_model="alexnet-ci",
            strategies=("sync", "delayed"), ranks=(2,), steps=8,
            bench_sizes="1KiB..4MiB", bench_repeats=3)


def run_loop(out: Path) -> None:
    """Measure on 2 local ranks, fit on one model's sync run, predict the others."""
    try:
        from calibration.protocol import run_protocol   # optional extras: scipy, mpi4py, torch
    except ImportError as exc:
        raise GradsyncError(f"the real-run loop needs the executor and calibration extras "
                            f"(missing {exc.name}); pip install -e '.[all]' or use --no-loop") \
            from None
    print("\nThe loop on this machine: bench-net, real runs on 2 MPI ranks, fit on "
          f"{LOOP['fit_model']} sync, predict the rest (a minute or two)...")
    report = run_protocol(out, **LOOP, log=lambda line: print("  " + line))
    print(report.table())
    print(f"fitted cluster, runs and report under {out}; the full held-out protocol is "
          "'gradsync calibrate --protocol --out DIR'")
