"""Shared pieces of the collective-benchmark log readers (:mod:`calibration.collbench`).

The table's columns and the facts a caller may supply, the one error type
(:class:`CollectiveLogError`: ``FILE:LINE: what is wrong; expected what``), collective names
and nccl-tests' bus-bandwidth factors, and the number parsing with the rounding a printed
value carries. The nccl-tests, OSU and summary-CSV parsers all build on these.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

from vocab.files import read_text
from vocab.errors import GradsyncError
from vocab.units import MAX_BYTES, MAX_SECONDS

#: Columns of the table, in order.
COLUMNS = (
    "file", "line", "tool", "format", "run", "op", "nbytes", "count", "dtype", "redop",
    "ranks", "nodes", "gpus_per_node", "device", "placement", "time_s", "algbw_Bps",
    "busbw_Bps", "wrong", "max_error", "avg_busbw_Bps", "nccl_tests_version", "nccl_version",
    "era",
)

#: Keys a caller (``facts=``) or a sidecar ``FILE.meta.json`` may supply for what a file does
#: not state.
FACT_KEYS = ("ranks", "nodes", "gpus_per_node", "device", "nbytes", "op", "era")

SIDECAR_SUFFIX = ".meta.json"
_HEAD_BYTES = 1 << 16
GB = 1e9


class CollectiveLogError(GradsyncError):
    """A collective-benchmark log is truncated, garbled, mixed or of no known format."""

    def __init__(self, path: str | Path, line: int | None, problem: str, expected: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {problem}; expected {expected}")


# ---------------------------------------------------------------------------------------------
# collectives and their bus-bandwidth factors

_OPS = {
    "all_reduce": "allreduce", "allreduce": "allreduce",
    "reduce_scatter": "reduce_scatter", "reducescatter": "reduce_scatter",
    "all_gather": "allgather", "allgather": "allgather",
    "broadcast": "broadcast", "bcast": "broadcast",
    "reduce": "reduce", "alltoall": "alltoall", "all_to_all": "alltoall",
    "gather": "gather", "scatter": "scatter", "sendrecv": "sendrecv",
    "hypercube": "hypercube",
}
#: A binary name in a log or a file name: ``all_reduce_perf``, ``all_gather_perf_mpi``, ...
_BINARY = re.compile(
    r"(?<![A-Za-z])(all_reduce|reduce_scatter|all_gather|broadcast|reduce|alltoall|gather|"
    r"scatter|sendrecv|hypercube)_(?:perf|test)", re.IGNORECASE)
#: An op named in a file name without the _perf suffix (``allreduce_inter_vnode_job02...``).
_NAME_OP = re.compile(
    r"(?<![A-Za-z])(all_?reduce|reduce_?scatter|all_?gather|broadcast|bcast|alltoall|sendrecv)"
    r"(?![A-Za-z])", re.IGNORECASE)


def busbw_factor(op: str, ranks: int) -> float:
    """nccl-tests' bus-bandwidth factor: busbw = algbw * factor for ``op`` on ``ranks`` ranks."""
    p = int(ranks)
    if p < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    if op == "allreduce":
        return 2.0 * (p - 1) / p
    if op in ("reduce_scatter", "allgather", "alltoall", "gather", "scatter", "hypercube"):
        return (p - 1) / p
    if op in ("broadcast", "reduce", "sendrecv"):
        return 1.0
    raise ValueError(f"no bus-bandwidth factor for op {op!r}")


def _op_from_text(text: str) -> str | None:
    found = _BINARY.findall(text)
    return _OPS[found[-1].lower()] if found else None


def _op_from_filename(path: Path) -> str | None:
    name = path.name
    found = _BINARY.findall(name)
    if found:
        return _OPS[found[-1].lower()]
    found = _NAME_OP.findall(name)
    ops = {_OPS[f.lower()] for f in found}
    return ops.pop() if len(ops) == 1 else None


def normalise_device(name: str) -> str:
    """``Tesla V100-SXM2-16GB`` -> ``V100-SXM2-16GB``; ``NVIDIA A100-SXM4-80GB`` -> ``A100-SXM4-80GB``."""
    text = " ".join(name.split())
    for prefix in ("NVIDIA ", "Tesla "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text


#: Prefixes launchers put before each line: Open MPI --tag-output, srun --label.
_TAG = re.compile(r"^(?:\[\d+,\d+\]<\w+>:|\s*\d+:\s)")


def _open_log(path: Path) -> io.StringIO:
    """A log's lines, read through the one size-limited reader (stray bytes replaced)."""
    return io.StringIO(read_text(path, "a collective-benchmark log", errors="replace"))


# ---------------------------------------------------------------------------------------------
# numbers

def _number(text: str, path: Path, lineno: int, column: str, *, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise CollectiveLogError(path, lineno, f"column {column!r} is {text!r}, not {kind} "
                                 "(garbled row)", f"{kind} in every numeric column") from None
    if not math.isfinite(value) or value < 0:
        raise CollectiveLogError(path, lineno, f"column {column!r} is {text!r}",
                                 "a finite, non-negative number")
    limit = _plausible_max(column)
    if value > limit:
        raise CollectiveLogError(path, lineno, f"column {column!r} is {text!r}",
                                 f"at most {limit:g} (past any measurement: a garbled row?)")
    return value


def _plausible_max(column: str) -> float:
    """The largest value a log's ``column`` may hold, in the log's units: times and
    latencies (us) at most :data:`vocab.units.MAX_SECONDS`, sizes and counts at most
    :data:`~vocab.units.MAX_BYTES`. Bandwidths are not bounded: nccl-tests derives them from
    the time, and prints 1999891.64 GB/s for a one-GPU broadcast that moves nothing (Tartan's
    nccl2-by-gpus.csv, row 18)."""
    name = column.lower()
    if "time" in name or "latency" in name:
        return MAX_SECONDS * 1e6
    if "bw" in name or "bandwidth" in name:
        return math.inf
    return MAX_BYTES


def _half_ulp(text: str) -> float:
    """Half the last printed digit of ``text``: the rounding a printed value carries."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    scale = 10.0 ** int(exponent) if exponent else 1.0
    return 0.5 * 10.0 ** (-decimals) * scale


def _is_int(text: str) -> bool:
    return text.isdigit()


def _era_from_name(path: Path) -> str | None:
    text = path.as_posix().lower()
    m = re.search(r"nccl-?v?([12])(?![0-9])", text)
    return f"nccl{m.group(1)}" if m else None

