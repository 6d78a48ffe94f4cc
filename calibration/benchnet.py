"""Launch the collective microbenchmarks under ``mpiexec`` and read their tables back.

``run_bench_net`` is what ``gradsync bench-net`` calls: it builds the ``mpiexec`` command for
:mod:`calibration.microbench`, runs it with a timeout and returns the tidy table. A bench
directory holds ``bench.csv`` (``op, nranks, nbytes, repeat, seconds``) and ``run.json``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from vocab.argtypes import RANKS
from vocab.outpath import check_output
from vocab.errors import GradsyncError, SpecError
from vocab.files import read_csv
from vocab.jobs import check_ranks, run_checked
from vocab.mpiexec import mpiexec_command, python_argv
from vocab.units import MAX_BYTES, MAX_SECONDS, parse_bytes
from vocab.runrecord import RUN_FILE, read_run_record

TABLE_FILE = "bench.csv"
TABLE_COLUMNS = ("op", "nranks", "nbytes", "repeat", "seconds")
#: The most ranks a bench-net row may state (``gradsync run -n``'s bound).
MAX_RANKS = RANKS.maximum
DEFAULT_SIZES = "4B..64MiB"


class BenchError(GradsyncError):
    """A microbenchmark could not run, or its table is missing or malformed."""


#: Fewest message sizes a benchmark needs for 'gradsync calibrate' to fit its links.
MIN_BENCH_SIZES = 4


def parse_sizes(text: str, factor: int = 2) -> list[int]:
    """``"4B..64MiB"`` -> powers of ``factor`` from 4 B to 64 MiB; ``"1KiB,1MiB"`` -> a list.

    Both ends of a range must be powers of two; every size is a whole number of float32s.
    """
    if ".." in text:
        low_text, high_text = text.split("..", 1)
        low = int(parse_bytes(low_text, "sizes"))
        high = int(parse_bytes(high_text, "sizes"))
        if low < 4 or high < low:
            raise SpecError("sizes", text, "a range LOW..HIGH with 4 B <= LOW <= HIGH")
        sizes, size = [], low
        while size <= high:
            sizes.append(size)
            size *= factor
        return sizes
    sizes = [int(parse_bytes(part, "sizes")) for part in re.split(r"[,\s]+", text.strip()) if part]
    if not sizes or any(s < 4 or s % 4 for s in sizes):
        raise SpecError("sizes", text, "sizes of at least 4 B, multiples of 4 B")
    return sorted(set(sizes))


def bench_command(nranks: int, out_dir: Path, sizes: list[int], repeats: int,
                  ops: tuple[str, ...] | None = None) -> list[str]:
    """The ``mpiexec ... python -m calibration.microbench`` command line."""
    args = ["--out", str(out_dir), "--sizes", ",".join(map(str, sizes)), "--repeats", str(repeats)]
    if ops:
        args += ["--ops", ",".join(ops)]
    return mpiexec_command(nranks, python_argv("calibration.microbench", *args))


def run_bench_net(nranks: int, out_dir: str | Path, sizes: str = DEFAULT_SIZES,
                  repeats: int = 5, timeout_s: float = 300.0,
                  ops: tuple[str, ...] | None = None, overwrite: bool = False) -> pd.DataFrame:
    """Run the microbenchmarks on ``nranks`` local ranks; returns the table it wrote.

    ``out_dir`` must be new or empty (earlier measurements are replaced only with
    ``overwrite``)."""
    if not isinstance(nranks, int) or nranks < 2:
        raise SpecError("nranks", nranks, "a whole number >= 2 (collectives need two ranks)")
    if not isinstance(repeats, int) or repeats < 1:
        raise SpecError("repeats", repeats, "a whole number >= 1")
    out = check_output(out_dir, overwrite=overwrite, kind="dir")
    if len(parse_sizes(sizes)) < MIN_BENCH_SIZES:
        raise SpecError("sizes", sizes, f"at least {MIN_BENCH_SIZES} message sizes (calibrate "
                        "fits latency and bandwidth over them), e.g. 4B..4MiB")
    check_ranks(nranks, flag="--ranks")     # a warning is not shown: bench-net measures sharing
    command = bench_command(nranks, out, parse_sizes(sizes), repeats, ops)
    # One BLAS thread per rank: the compute kernel must measure core sharing, not threading.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    done = run_checked(command, f"bench-net on {nranks} ranks", timeout_s=timeout_s, env=env)
    if done.timed_out:
        raise BenchError(f"bench-net on {nranks} ranks took longer than {timeout_s:.0f} s "
                         "(fewer sizes or repeats?)")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"bench-net on {nranks} ranks failed (exit {done.returncode}): "
                         f"{tail[0]}")
    return read_bench(out)


def read_bench(bench_dir: str | Path) -> pd.DataFrame:
    """The tidy table of one bench directory, checked for its columns."""
    path = Path(bench_dir) / TABLE_FILE
    if not (path.exists() or path.is_symlink()):
        raise BenchError(f"{bench_dir}: no {TABLE_FILE} here (run 'gradsync bench-net' first)")
    records = read_csv(path, "a bench-net table", TABLE_COLUMNS, optional=())
    return pd.DataFrame([_bench_row(path, number, rec) for number, rec in
                         enumerate(records, start=1)], columns=list(TABLE_COLUMNS))


def _bench_row(path: Path, number: int, rec: dict[str, str]) -> tuple[str, int, int, int, float]:
    """One measurement, checked: a time of a collective (or of the compute loop) that is
    finite, positive and under :data:`~vocab.units.MAX_SECONDS`, at whole rank and byte
    counts."""
    def bad(column: str, expected: str) -> SpecError:
        return SpecError(f"row {number} column {column}", rec[column], expected, str(path))

    def count(column: str, low: int, high: float) -> int:
        text = rec[column]
        if not text.isdigit() or not low <= int(text) <= high:
            raise bad(column, f"a whole number from {low} to {high:.0e}")
        return int(text)

    if not rec["op"]:
        raise bad("op", "the name of the operation timed")
    try:
        seconds = float(rec["seconds"])
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise bad("seconds", f"a time in seconds > 0 and at most {MAX_SECONDS:g}")
    return (rec["op"], count("nranks", 1, MAX_RANKS), count("nbytes", 0, MAX_BYTES),
            count("repeat", 0, MAX_BYTES), seconds)


def is_bench_dir(path: str | Path) -> bool:
    """True for a directory written by bench-net (its run.json says source 'bench-net')."""
    path = Path(path)
    if not (path / RUN_FILE).exists():
        return (path / TABLE_FILE).exists()
    try:
        return read_run_record(path).get("source") == "bench-net"
    except ValueError:
        return False


def bench_cores(bench_dir: str | Path) -> int | None:
    """Cores of the machine the benchmark ran on, from its run.json."""
    try:
        return int(read_run_record(bench_dir)["specs"]["cores"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
