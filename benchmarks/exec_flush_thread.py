"""What the trace writer thread saves in wall time where a core is idle.

Run: ``python -m benchmarks.exec_flush_thread [--model resnet18-ci] [--batch 16]
[--cycles 40]`` (one process, about a minute on resnet18-ci).

Torch runs on one thread, so one of the machine's cores is left to the writer (as on the host
of a GPU run). Three copies of the model, built as the executor builds them
(:func:`benchmarks.exec_overhead._side`): untraced, traced with a synchronous flush, traced
with the training loop's background flush. Each cycle runs ``flush_every`` (10) steps of every
copy, then its flush, in a random order per cycle, timed in wall seconds as a whole (steps and
flush, so the write lands on the copy that caused it or on the next one). Prints, for both
traced copies, the median over cycles of (cycle / untraced cycle of the same round - 1).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmarks.exec_overhead import Config, _side
from executor.comm import MPI, Clock
from executor.train import run_step
from vocab.argtypes import OneLineParser, whole

SIDES = ("untraced", "sync", "background")


def measure(model: str, batch: int, cycles: int, seed: int = 1) -> dict[str, float]:
    """Paired median overhead in % of the ``sync`` and ``background`` copies (first two
    cycles left out as warm-up)."""
    comm, clock = MPI.COMM_WORLD, Clock()
    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp(prefix="gradsync-flush-thread-"))
    cfg = Config(model, batch, 1)
    sides = {n: _side(cfg, "sync", 10 * cycles, out / n, n != "untraced", comm, clock)
             for n in SIDES}
    seconds: dict[str, list[float]] = {n: [] for n in SIDES}
    rng = np.random.default_rng(seed)
    for cycle in range(cycles):
        for name in rng.permutation(SIDES):
            run, source, strategy, state = sides[name]
            t0 = time.perf_counter()
            for k in range(run.flush_every):
                run_step(run, comm, cycle * run.flush_every + k, source, strategy,
                         state.tracer, None, torch.device("cpu"), state)
            state.flush(background=name == "background")
            seconds[name].append(time.perf_counter() - t0)
    base = np.array(seconds["untraced"][2:])
    return {n: float(100 * np.median(np.array(seconds[n][2:]) / base - 1))
            for n in ("sync", "background")}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the two overheads."""
    parser = OneLineParser(prog="python -m benchmarks.exec_flush_thread")
    parser.add_argument("--model", default="resnet18-ci")
    parser.add_argument("--batch", type=whole(1, 65536, what="samples per step"), default=16)
    parser.add_argument("--cycles", type=whole(3, 100000, what="cycles of 10 steps"),
                        default=40)
    args = parser.parse_args(argv)
    result = measure(args.model, args.batch, args.cycles)
    print(f"{args.model} b{args.batch}, {args.cycles} cycles of 10 steps, torch on 1 thread: "
          f"traced, synchronous flush {result['sync']:+.2f} %, background flush "
          f"{result['background']:+.2f} % (paired medians, wall time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
