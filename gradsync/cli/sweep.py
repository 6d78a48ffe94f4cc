"""``gradsync sweep``: a grid of simulations in parallel processes (or MPI ranks), one table.

Under ``mpiexec`` start it as ``mpiexec -n N python -m mpi4py.futures -m gradsync sweep ...``;
the MPI pool is used automatically (or with ``--mpi``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwmodels.cluster import save_cluster
from vocab.argtypes import ITERATIONS, JOBS
from vocab.outpath import check_output
from gradsync.cli.cluster_options import (add_cluster_arguments, add_devices_arguments,
                                          add_rule_arguments, changed_cluster, cluster_changes,
                                          devices_per_node)
from gradsync.cli.stack_options import add_stack_arguments, stack_kwargs
from simulator.sweep import GRID_AXES, expand_grid, load_grid, run_sweep, write_table


def _list(text: str) -> list:
    """'a,b' -> ['a', 'b'], with numbers as numbers."""
    values = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        try:
            values.append(int(item))
        except ValueError:
            try:
                values.append(float(item))
            except ValueError:
                values.append(item)
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser("sweep", help="simulate a grid of configurations in parallel",
                              description=__doc__)
    p.add_argument("--grid", type=Path, help="YAML grid file (axes: cluster, nodes, model, "
                   "strategy, bucket_mb, batch, stack; scalars: iterations, fidelity, "
                   "transport, seed, precision, throughput, devices_per_node)")
    p.add_argument("--clusters", type=_list, help="cluster presets or files, comma-separated")
    p.add_argument("--nodes", type=_list, help="node counts, comma-separated")
    p.add_argument("--models", type=_list, help="workloads, comma-separated")
    p.add_argument("--strategies", type=_list, help="strategies, comma-separated")
    p.add_argument("--bucket-mb", type=_list, help="bucket sizes in MiB, comma-separated")
    p.add_argument("--batch", type=_list, help="per-device batch sizes, comma-separated")
    p.add_argument("--iterations", type=ITERATIONS)
    p.add_argument("--fidelity", choices=("analytic", "detailed"))
    add_rule_arguments(p, progress=False)
    add_devices_arguments(p, "devices (ranks) per node where the node's topology allows")
    add_stack_arguments(p)
    add_cluster_arguments(p)
    p.add_argument("--jobs", type=JOBS, help="local worker processes (default: all cores)")
    p.add_argument("--mpi", action="store_true", help="run points on MPI ranks (mpi4py.futures)")
    p.add_argument("--out", type=Path, default=Path("sweep.csv"),
                   help="output table, .csv or .parquet (default sweep.csv)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Expand the grid, run it, write the table, print a one-line summary."""
    grid = load_grid(args.grid) if args.grid else {}
    flags = {"cluster": args.clusters, "nodes": args.nodes, "model": args.models,
             "strategy": args.strategies, "bucket_mb": args.bucket_mb, "batch": args.batch,
             "iterations": args.iterations, "fidelity": args.fidelity,
             "transport": args.transport, "devices_per_node": devices_per_node(args)}
    grid.update({k: v for k, v in {**flags, **stack_kwargs(args)}.items() if v is not None})
    check_output(args.out, overwrite=args.force)    # fail before the work, not after it
    if cluster_changes(args):
        grid["cluster"] = changed_cluster_files(args, grid.get("cluster", ["dgx1-p100"]))
    points = expand_grid(grid)
    table = run_sweep(points, jobs=args.jobs, mpi=args.mpi or None,
                      progress=not args.no_progress)
    path = write_table(table, args.out, overwrite=args.force)
    failed = int((table["error"] != "").sum())
    varied = [k for k in GRID_AXES if len(set(map(str, table[k]))) > 1]
    print(f"{len(table)} points (varied: {', '.join(varied) or 'nothing'}), {failed} failed; "
          f"table written to {path}")
    return 0 if failed < len(table) else 2


def changed_cluster_files(args: argparse.Namespace, clusters: object) -> list[str]:
    """Each cluster of the grid with the what-if flags applied, written as a cluster file
    beside the table (``OUT.clusters/NAME.yaml``): the table's cluster column then names a
    file that reproduces the point, and its ``provenance.changes`` says what was changed."""
    folder = args.out.with_name(f"{args.out.stem}.clusters")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in clusters if isinstance(clusters, list) else [clusters]:
        path = folder / f"{Path(str(name)).stem}.yaml"
        save_cluster(changed_cluster(args, name), path, overwrite=args.force)
        paths.append(str(path))
    return paths
