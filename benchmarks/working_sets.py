"""Why compute slows differently per model when ranks share cores: working sets and caches.

    python -m benchmarks.working_sets models     # each -ci model's largest layer working set
    python -m benchmarks.working_sets stream     # a streaming pass on 2 vs 4 ranks, by size

``models``: per layer of each model the protocol measures, at its per-rank batch
(``calibration.protocol.BATCH``), the bytes one forward of the layer touches: its weights plus
its output activations, each twice for forward and backward (the gradients have the same
sizes; ``executor.introspect.workload_from_module``); the largest layer is the working set
that has to stay in cache for the layer to run at full speed.

``stream``: every rank of a ``mpiexec -n P`` job adds one array of N MiB into another, over and
over, for two seconds of wall time; it prints the time per pass at 4 ranks over that at 2 ranks. On a
machine with 2 cores, 4 ranks share each core, so 2.0x is pure time sharing and more than that
is cache and memory contention, which grows once 4 working sets no longer fit the shared L3.
These are the figures calibration/README.md quotes for the 2.1-2.4x that 4-rank ``--local``
profiles cost over 2-rank ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from vocab.argtypes import OneLineParser
from vocab.mpiexec import find_mpiexec, mpi_flavour, mpiexec_command, python_argv

MODELS = {"resnet18-ci": 96, "alexnet-ci": 32, "bert-ci": 32}   # calibration.protocol.BATCH
SIZES_MIB = (1, 2, 8, 16, 32)


def largest_layer_mib(model: str, batch: int) -> tuple[str, float]:
    """The layer of ``model`` whose weights and output activations (with their gradients) at
    ``batch`` are largest."""
    from executor.introspect import workload_from_module   # torch: only for this subcommand
    from executor.models import build_model, example_batch
    x, _ = example_batch(model, batch, 0)
    workload = workload_from_module(build_model(model), x, model)
    # Forward and backward of a layer touch its weights and their gradients, its output
    # activations and their gradients: twice weights plus activations.
    sizes = {layer.name: 2 * (layer.grad_bytes + layer.activation_bytes * batch) / 2**20
             for layer in workload.layers}
    name = max(sizes, key=sizes.get)
    return name, sizes[name]


def stream_pass_s(mib: float, seconds: float = 2.0) -> float:
    """Wall seconds per ``a += b`` pass over two arrays of ``mib`` MiB each, over ``seconds``
    of wall time: a rank that shares its core is charged the time it waits for it, as a
    rank's step is."""
    a = np.ones(int(mib * 2**20 / 8))
    b = np.ones_like(a)
    passes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or passes < 5:
        np.add(a, b, out=a)
        passes += 1
    return (time.perf_counter() - start) / passes


def _rank_main(sizes: list[float]) -> None:
    """One rank of the stream job: print its pass times as JSON (rank 0's line is used)."""
    from mpi4py import MPI   # only inside the mpiexec job
    comm = MPI.COMM_WORLD
    result = {}
    for mib in sizes:
        comm.Barrier()
        result[mib] = comm.allreduce(stream_pass_s(mib), op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps(result))


def stream(sizes: list[float]) -> dict[int, dict[float, float]]:
    """Pass time per size on 2 and on 4 ranks (the slowest rank)."""
    mpiexec = find_mpiexec()
    out = {}
    for ranks in (2, 4):
        argv = python_argv("benchmarks.working_sets", "_rank", "--sizes-mib",
                           ",".join(map(str, sizes)))
        done = subprocess.run(mpiexec_command(ranks, argv, mpiexec=mpiexec,
                                              flavour=mpi_flavour(mpiexec)),
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        line = [s for s in done.stdout.splitlines() if s.startswith("{")][-1]
        out[ranks] = {float(k): v for k, v in json.loads(line).items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.working_sets",
                           description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("models", "stream", "_rank"))
    parser.add_argument("--sizes-mib", default=",".join(map(str, SIZES_MIB)))
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes_mib.split(",") if s]
    if args.what == "_rank":
        _rank_main(sizes)
    elif args.what == "models":
        for model, batch in MODELS.items():
            name, mib = largest_layer_mib(model, batch)
            print(f"{model:12} batch {batch:3}: largest layer {name} {mib:.1f} MiB "
                  "(weights, output activations and their gradients)")
    else:
        times = stream(sizes)
        print(f"{'MiB per rank':>12} {'2 ranks (ms)':>13} {'4 ranks (ms)':>13} {'4 / 2':>6}")
        for mib in sizes:
            two, four = times[2][mib], times[4][mib]
            print(f"{mib:12g} {1e3 * two:13.3f} {1e3 * four:13.3f} {four / two:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
