"""The MPI side of ``gradsync bench-net``: OSU-like collective timings, run under ``mpiexec``.

Run as ``mpiexec -n N python -m calibration.microbench --out DIR --sizes 4,16,... --repeats R``
(``calibration.benchnet`` builds that command). Every rank takes part; rank 0 writes the tidy
table ``DIR/bench.csv`` (``op, nranks, nbytes, repeat, seconds``) and ``DIR/run.json``.

Ops, for each message size ``nbytes`` (the whole vector, as nccl-tests counts it):

- ``allreduce``: blocking ``Allreduce``;
- ``iallreduce``: ``Iallreduce`` then, at once, ``Test`` polls that yield the core between
  them, as the executor waits (the non-blocking path's own cost, and with more ranks than
  cores the one that matters: a blocking ``Wait`` busy-polls through the peer's time slice);
- ``reduce_scatter``: ``Reduce_scatter_block``, each rank keeps ``nbytes / p``;
- ``allgather``: ``Allgather``, each rank contributes ``nbytes / p``;
- ``overlap_compute`` / ``iallreduce_overlap``: like OSU's non-blocking tests, a compute kernel
  sized to the message's allreduce time, alone and then between ``Test`` calls on a posted
  ``Iallreduce`` (what an executor does from its gradient hooks): the difference says how much
  computing and progressing a collective on the same cores slow each other;
- ``compute``: the same kernel with no communication at all, on every rank at once, which
  measures how much ``p`` ranks sharing the machine's cores slow compute (``nbytes`` = 0).

A repeat is the mean of ``inner`` back-to-back calls (more for small messages, as OSU does),
taking the slowest rank, after ``warmup`` untimed calls; ranks synchronise with a barrier first.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from mpi4py import MPI

from vocab.outpath import atomic_write
from vocab.runrecord import make_run_record, write_run_record
from vocab.argtypes import OneLineParser, real, whole

TABLE_FILE = "bench.csv"
OPS = ("allreduce", "iallreduce", "reduce_scatter", "allgather", "overlap_compute",
       "iallreduce_overlap", "compute")
#: Messages at least this large get an overlap test (smaller ones finish before any compute).
OVERLAP_MIN_BYTES = 1 << 16
_KERNEL_N = 64          # a 64x64 float32 matmul: ~20 us on one core, a fine progress granularity


def _kernel(state: np.ndarray) -> None:
    """A fixed slice of compute (single-threaded BLAS: the launcher sets the thread count)."""
    np.dot(state, state)


def _timed(comm: MPI.Comm, call: Callable[[], None], inner: int) -> float:
    """Mean seconds of ``inner`` back-to-back calls, of the slowest rank."""
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(inner):
        call()
    local = (time.perf_counter() - start) / inner
    return comm.allreduce(local, op=MPI.MAX)


def _inner_for(comm: MPI.Comm, call: Callable[[], None], budget_s: float) -> int:
    """Calls per repeat: enough to fill ``budget_s`` (1..200), agreed by all ranks."""
    estimate = _timed(comm, call, 1)
    return int(np.clip(budget_s / max(estimate, 1e-7), 1, 200))


def _poll_wait(request: MPI.Request) -> None:
    """Wait the way gradsync's executor does: ``Test``, yielding the core between polls (a
    blocking ``Wait`` busy-polls, which costs far more when ranks outnumber cores)."""
    while not request.Test():
        os.sched_yield()


def _collectives(comm: MPI.Comm, nbytes: int) -> dict[str, Callable[[], None]]:
    """The blocking-style calls of one message size, with their buffers kept alive here."""
    p = comm.Get_size()
    count = max(nbytes // 4, p)
    part = max(count // p, 1)
    send = np.ones(count, np.float32)
    recv = np.empty_like(send)
    piece = np.ones(part, np.float32)
    gathered = np.empty(part * p, np.float32)
    scattered = np.empty(part, np.float32)

    def iallreduce() -> None:
        _poll_wait(comm.Iallreduce(send, recv, op=MPI.SUM))

    return {
        "allreduce": lambda: comm.Allreduce(send, recv, op=MPI.SUM),
        "iallreduce": iallreduce,
        "reduce_scatter": lambda: comm.Reduce_scatter_block(send[: part * p], scattered,
                                                            op=MPI.SUM),
        "allgather": lambda: comm.Allgather(piece, gathered),
    }


def _overlap_calls(comm: MPI.Comm, nbytes: int, comm_s: float,
                   kernel_s: float) -> dict[str, Callable[[], None]]:
    """Compute alone, and the same compute between Test calls on a posted Iallreduce."""
    send = np.ones(max(nbytes // 4, comm.Get_size()), np.float32)
    recv = np.empty_like(send)
    state = np.ones((_KERNEL_N, _KERNEL_N), np.float32)
    chunks = max(int(comm_s / kernel_s), 1)

    def compute() -> None:
        for _ in range(chunks):
            _kernel(state)

    def overlapped() -> None:
        request = comm.Iallreduce(send, recv, op=MPI.SUM)
        for _ in range(chunks):
            _kernel(state)
            request.Test()
        _poll_wait(request)

    return {"overlap_compute": compute, "iallreduce_overlap": overlapped}


def run(comm: MPI.Comm, sizes: list[int], repeats: int, warmup: int, budget_s: float,
        ops: tuple[str, ...]) -> list[tuple]:
    """All measurements as rows ``(op, nranks, nbytes, repeat, seconds)``."""
    rows: list[tuple] = []
    p = comm.Get_size()
    state = np.ones((_KERNEL_N, _KERNEL_N), np.float32)
    kernel_s = _timed(comm, lambda: _kernel(state), 50)
    if "compute" in ops:
        # Bursts of ~20 ms: long against the scheduler's time slice, so ranks that share a
        # core really do share it (a 1 ms burst would run unpreempted and hide the slowdown).
        inner = int(np.clip(20e-3 / kernel_s, 1, 20000))
        for repeat in range(repeats):
            rows.append(("compute", p, 0, repeat, _timed(comm, lambda: _kernel(state), inner)))
    for nbytes in sizes:
        calls = {k: v for k, v in _collectives(comm, nbytes).items() if k in ops}
        comm_s = None
        for op, call in calls.items():
            for _ in range(warmup):
                call()
            inner = _inner_for(comm, call, budget_s)
            times = [_timed(comm, call, inner) for _ in range(repeats)]
            rows.extend((op, p, nbytes, r, t) for r, t in enumerate(times))
            comm_s = float(np.median(times)) if op == "iallreduce" else comm_s
        if comm_s is not None and nbytes >= OVERLAP_MIN_BYTES and "iallreduce_overlap" in ops:
            for op, call in _overlap_calls(comm, nbytes, comm_s, kernel_s).items():
                call()
                rows.extend((op, p, nbytes, r, _timed(comm, call, 1)) for r in range(repeats))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Entry point under mpiexec; rank 0 writes the table and run.json."""
    parser = OneLineParser(prog="python -m calibration.microbench")
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", required=True, help="comma-separated message sizes in bytes")
    parser.add_argument("--repeats", type=whole(1, 1000, what="repeats"), default=5)
    parser.add_argument("--warmup", type=whole(0, 1000, what="warm-up repeats"), default=3)
    parser.add_argument("--budget-s", type=real(0, 60, open_min=True, what="seconds"), default=2e-3,
                        help="target seconds per repeat (sets the inner call count)")
    parser.add_argument("--ops", default=",".join(OPS))
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    ops = tuple(o for o in args.ops.split(",") if o)
    started = time.perf_counter()
    rows = run(comm, [int(s) for s in args.sizes.split(",")], args.repeats, args.warmup,
               args.budget_s, ops)
    if comm.Get_rank() == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table = pd.DataFrame(rows, columns=["op", "nranks", "nbytes", "repeat", "seconds"])
        with atomic_write(out / TABLE_FILE) as tmp:
            table.to_csv(tmp, index=False)
        specs = {"nranks": comm.Get_size(), "sizes": args.sizes, "repeats": args.repeats,
                 "warmup": args.warmup, "budget_s": args.budget_s, "ops": list(ops),
                 "cores": os.cpu_count(), "mpi": MPI.Get_library_version().splitlines()[0],
                 "processor": MPI.Get_processor_name()}
        write_run_record(make_run_record("bench-net", out.name, specs, seed=None,
                                         wall_s=time.perf_counter() - started,
                                         table=TABLE_FILE), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
