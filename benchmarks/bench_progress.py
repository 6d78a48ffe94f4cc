"""Does a posted non-blocking allreduce progress while its rank computes? A measurement of the
MPI progress rule (``async``, ``test`` or ``wait``, :mod:`simulator.progress`) on this machine.

    mpiexec -n 2 .venv/bin/python -m benchmarks.bench_progress [--sizes-mib 1,4,16] [--repeats 5]

For each message size, on every rank:

- ``blocking``: ``Allreduce`` alone, time T;
- ``no polls``: ``Iallreduce``, then compute for about T without any MPI call, then ``Wait``;
  the time spent in ``Wait`` is what did not progress during the compute;
- ``polls``: the same compute cut into slices with an ``MPI_Test`` between slices (as
  gradsync's executor polls at layer boundaries), then ``Wait``.

Reading the ``left in Wait / T`` column: about 0 without polls means asynchronous progress (a
progress thread, or hardware offload); about 1 without polls and less with polls means the
collective advances only inside MPI calls (``test``); about 1 in both means only ``Wait``
drives it (``wait``). Rank 0 prints one table (medians over repeats, slowest rank).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from mpi4py import MPI
from vocab.argtypes import OneLineParser, whole

SLICE_N = 64     # a 64x64 float32 matmul: tens of microseconds, a fine polling granularity


def _compute(seconds: float, poll: MPI.Request | None = None) -> None:
    """Busy compute for ``seconds``, with an ``MPI_Test`` on ``poll`` between slices."""
    state = np.ones((SLICE_N, SLICE_N), dtype=np.float32)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        np.dot(state, state)
        if poll is not None:
            poll.Test()


def _slowest(comm: MPI.Comm, value: float) -> float:
    return comm.allreduce(value, op=MPI.MAX)


def measure(comm: MPI.Comm, nbytes: int, repeats: int) -> dict[str, float]:
    """Median blocking time and median time left in Wait without and with polls."""
    send = np.ones(nbytes // 4, dtype=np.float32)
    recv = np.empty_like(send)
    blocking, no_polls, polls = [], [], []
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(send, recv)
        blocking.append(_slowest(comm, time.perf_counter() - start))
    t = statistics.median(blocking)
    for samples, polled in ((no_polls, False), (polls, True)):
        for _ in range(repeats):
            comm.Barrier()
            request = comm.Iallreduce(send, recv)
            _compute(1.2 * t, request if polled else None)
            start = time.perf_counter()
            request.Wait()
            samples.append(_slowest(comm, time.perf_counter() - start))
    return {"blocking_s": t, "left_no_polls_s": statistics.median(no_polls),
            "left_polls_s": statistics.median(polls)}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.bench_progress",
                           description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mib", default="1,4,16", help="message sizes in MiB")
    parser.add_argument("--repeats", type=whole(1, 1000, what="repeats"), default=5)
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    sizes = [int(float(s) * 2**20) for s in args.sizes_mib.split(",") if s]
    rows = [(n, measure(comm, n, args.repeats)) for n in sizes]
    if comm.rank == 0:
        print(f"{MPI.Get_library_version().splitlines()[0].strip()}; {comm.size} ranks")
        print(f"{'MiB':>5} {'Allreduce ms':>13} {'left in Wait / T: no polls':>27} "
              f"{'polls':>7}")
        for n, r in rows:
            t = r["blocking_s"]
            print(f"{n / 2**20:5.0f} {1e3 * t:13.2f} {r['left_no_polls_s'] / t:27.2f} "
                  f"{r['left_polls_s'] / t:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
