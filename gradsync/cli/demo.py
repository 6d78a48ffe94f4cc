"""``gradsync demo``: the 2016 paper's comparison, simulated.

sync, layerwise, bucketed and delayed for AlexNet (batch 256 per device) and GoogLeNet (batch
32 per device) on a DGX-1 (P100, 8 GPUs) and on the Sandy Bridge + FDR InfiniBand cluster at 8
and 64 nodes. Tables are printed; every run is written under ``--out`` (default
``runs/demo``; a timestamped sibling is used when that directory already holds results).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from gradsync.cli.simulate import format_table
from simulator.api import compare

STRATEGIES = ("sync", "layerwise", "bucketed", "delayed")
MODELS = (("alexnet", 256), ("googlenet", 32))
#: (cluster, nodes, transport, MPI progress, what it stands for)
SCENARIOS = (
    ("dgx1-p100", 1, "device", None, "NCCL-style collectives over NVLink"),
    ("dgx1-p100", 1, "host", "test", "2016 Caffe+MPI style: host-staged MPI, progressed by polling"),
    ("cpu-sandybridge-fdr", 8, None, None, "CPU cluster, FDR InfiniBand"),
    ("cpu-sandybridge-fdr", 64, None, None, "CPU cluster, FDR InfiniBand"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser("demo", help="the paper's comparison of strategies, simulated",
                              description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory")
    p.add_argument("--iterations", type=int, default=3)
    p.set_defaults(func=run)


def fresh_dir(out: Path) -> Path:
    """``out`` if absent or empty, else a timestamped sibling (runs are never overwritten)."""
    if not out.exists() or not any(out.iterdir()):
        return out
    return out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")


def run(args: argparse.Namespace) -> int:
    """Simulate every (cluster, model) pair, print its table, save runs and a summary."""
    out = fresh_dir(args.out)
    tables = []
    for cluster, nodes, transport, progress, meaning in SCENARIOS:
        for model, batch in MODELS:
            comparison = compare(STRATEGIES, cluster=cluster, model=model, batch=batch,
                                 nodes=nodes, iterations=args.iterations,
                                 transport=transport, progress=progress)
            first = comparison["sync"]
            used = first.extra["transport"]
            print(f"\n{model}, batch {batch}/device, on {cluster} x {nodes} nodes "
                  f"({first.ranks} ranks, {used} transport) - {meaning}")
            print(format_table(comparison.table()))
            comparison.save(out / f"{cluster}-n{nodes}-{used}-{model}")
            table = comparison.table().reset_index()
            tables.append(table.assign(cluster=cluster, nodes=nodes, transport=used,
                                       progress=progress or "async", model=model))
    summary = out / "summary.csv"
    pd.concat(tables).to_csv(summary, index=False)
    print(f"\nruns and {summary.name} written under {out}")
    return 0
