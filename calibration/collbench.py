"""Collective-benchmark logs (nccl-tests, OSU) read into one tidy table, for calibration.

:func:`read_collective_logs` reads files and folders of benchmark output into a DataFrame with
one row per (file, run, op, size, dtype, redop, placement) in SI units; :func:`read_collective_log`
reads one file; :func:`is_collective_log` tells such a file apart from bench-net and executor run
directories. Formats read:

``nccl-tests`` text (``all_reduce_perf``, ``reduce_scatter_perf``, ``all_gather_perf``,
  ``broadcast_perf``, ``reduce_perf``, ``alltoall_perf``, ...): the ``# nThread ... nGpus ...
  minBytes ... maxBytes ...`` header, the ``# Using devices`` block (one ``#  Rank r [Group g] Pid p
  on HOST device d [bus] MODEL`` line per rank: ranks, hosts, so nodes and GPUs per node, and the
  GPU model), the column-header row from which the columns are read (``redop`` and ``root`` come and
  go between versions and collectives; the check column is ``error`` (max error, ``1e-07``),
  ``#wrong`` (a count) or ``N/A``), the units row (``(us)``), the data rows, ``# Avg bus bandwidth``.
  The NCCL 1.x tests (``all_reduce_test`` in NVIDIA/nccl 1.x: ``#   Rank  0 uses device  0 [0x04]
  MODEL``, columns ``bytes N type op time algbw busbw res``, time in ms, one process on one node)
  are read too. MPI noise (UCX warnings, ``[1,0]<stdout>:`` tags, ``NCCL INFO`` lines, script
  banners) is skipped; ``NCCL version X`` in an INFO line and ``# nccl-tests version X`` are kept.
``OSU`` latency tests (``# OSU MPI Allreduce Latency Test v5.6.2``, ``# Size  Avg Latency(us)``
  with or without ``Min Latency(us)  Max Latency(us)  Iterations``; Reduce_scatter, Allgather,
  Broadcast, Reduce, Alltoall likewise): the output states neither ranks nor nodes, so they come
  from ``osu_ranks=``/``osu_nodes=``, ``facts=`` or a sidecar ``FILE.meta.json``, else an error.
``nccl-tests summary CSV`` (``OP,Packet,Bandwidth`` = busbw GB/s by size; ``OP,GPU,Bandwidth`` =
  busbw by rank count; ``OP,GPU,Latency`` = time in ms by rank count, as the Tartan suite stores
  them): what the CSV does not state (ranks of a by-size file, the size of a by-GPU file, the
  device) comes from ``facts=`` or a sidecar; placement is ``unspecified``, and only the measured
  quantity is filled (busbw, with algbw from nccl-tests' factor; or time).

Conventions (nccl-tests'): ``nbytes`` is nccl-tests' ``size`` (allreduce: the buffer; allgather:
the gathered output; reduce_scatter: the input; alltoall: one rank's whole send buffer; OSU sizes
of allgather and alltoall, which are per peer, are multiplied by the rank count to match);
``algbw_Bps = nbytes / time_s``; ``busbw_Bps = algbw_Bps * factor`` with factor ``2(p-1)/p`` for
allreduce, ``(p-1)/p`` for reduce_scatter, allgather, alltoall, gather, scatter, and 1 for
broadcast, reduce and sendrecv. Zero-byte rows (nccl-tests prints them when a size rounds down
to no element per rank) measure nothing and are dropped.

What is an error (:class:`CollectiveLogError`, one line ``FILE:LINE: what is wrong; expected
what``) and what is several runs:

- several runs in one file are legitimate when each begins with its own header (``# nThread`` or,
  for NCCL 1.x, its ``Using devices`` block): each gets its own ``run`` index and its own ranks,
  hosts and GPU model, which may differ between runs;
- one run whose devices block names two GPU models, lists a rank twice or skips one is an error
  (a curve belongs to one kind of device; a repeated rank means two runs' blocks were merged);
- a second column-header row inside one run, a data row after the run's ``Avg bus bandwidth``
  line, or sizes that go down within a run are an error: rows of another run presented as this
  one, whose rank count the table could not know;
- every row must satisfy busbw = algbw * factor(op, ranks) within the rounding of the printed
  digits, and the ``Avg bus bandwidth`` line must be the mean of the run's busbw values within
  rounding: a mismatch means the rank count or the collective is not what the log says, or rows
  were removed;
- a table header with no rows, a row with too few fields, a run without ``Avg bus bandwidth``
  (the log was cut), a non-numeric field, and a file that is none of the formats are errors.
"""

from __future__ import annotations

import fnmatch
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vocab.files import read_text
from vocab.errors import GradsyncError

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


# ---------------------------------------------------------------------------------------------
# telling formats apart

_NTHREAD = re.compile(r"^#\s*nThread\s+\d+")
_RANK2 = re.compile(
    r"^#\s*Rank\s+(\d+)\s+(?:Group\s+(\d+)\s+)?Pid\s+(\d+)\s+on\s+(\S+)\s+device\s+(\d+)\s+"
    r"\[([^\]]*)\]\s+(.*?)\s*$")
_RANK1 = re.compile(r"^#\s*Rank\s+(\d+)\s+uses\s+device\s+(\d+)\s+\[([^\]]*)\]\s+(.*?)\s*$")
_OSU_TITLE = re.compile(r"^#\s*OSU\s+MPI\S*\s+(.+?)\s+Latency\s+Test(?:\s+v?(\S+))?", re.I)
_SUMMARY_HEADER = re.compile(r"^\s*OP\s*,\s*(Packet|GPU)\s*,\s*(Bandwidth|Latency)\s*$", re.I)
#: Prefixes launchers put before each line: Open MPI --tag-output, srun --label.
_TAG = re.compile(r"^(?:\[\d+,\d+\]<\w+>:|\s*\d+:\s)")


def _open_log(path: Path) -> io.StringIO:
    """A log's lines, read through the one size-limited reader (stray bytes replaced)."""
    return io.StringIO(read_text(path, "a collective-benchmark log", errors="replace"))


def _head(path: Path) -> str:
    with open(path, "rb") as fh:
        return fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")


def _sniff(path: Path) -> str | None:
    """'nccl-tests', 'osu', 'summary-csv' or None, from the start of the file."""
    try:
        text = _head(path)
    except OSError:
        return None
    lines = [_TAG.sub("", ln) for ln in text.splitlines()]
    first = next((ln for ln in lines if ln.strip()), "")
    if _SUMMARY_HEADER.match(first):
        return "summary-csv"
    if any(_OSU_TITLE.match(ln) for ln in lines):
        return "osu"
    has_table = any(ln.startswith("#") and "busbw" in ln for ln in lines)
    if has_table and any(_NTHREAD.match(ln) or _RANK2.match(ln) or _RANK1.match(ln)
                         for ln in lines):
        return "nccl-tests"
    return None


def is_collective_log(path: str | Path) -> bool:
    """True for a file of nccl-tests, OSU or nccl-tests summary-CSV output.

    False for directories (bench-net and executor run directories hold ``bench.csv``/
    ``trace.parquet`` and ``run.json``), sidecars, and any other file.
    """
    p = Path(path)
    if not p.is_file() or p.name.endswith(SIDECAR_SUFFIX):
        return False
    return _sniff(p) is not None


# ---------------------------------------------------------------------------------------------
# facts a file does not state

def _facts_for(path: Path, facts: Mapping[str, Mapping[str, Any]] | None,
               osu_ranks: int | None, osu_nodes: int | None, tool: str) -> dict[str, Any]:
    """Caller's facts for ``path``: explicit arguments, then ``facts`` patterns, then sidecar."""
    out: dict[str, Any] = {}
    if tool == "osu":
        if osu_ranks is not None:
            out["ranks"] = int(osu_ranks)
        if osu_nodes is not None:
            out["nodes"] = int(osu_nodes)
    for pattern, values in (facts or {}).items():
        if (fnmatch.fnmatch(path.name, pattern) or fnmatch.fnmatch(str(path), pattern)
                or fnmatch.fnmatch(path.as_posix(), f"*/{pattern}")):
            for key, value in values.items():
                out.setdefault(key, value)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.is_file():
        try:
            values = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise CollectiveLogError(sidecar, None, f"unreadable sidecar ({exc})",
                                     "a JSON object such as {\"ranks\": 64, \"nodes\": 16}") from None
        if not isinstance(values, dict):
            raise CollectiveLogError(sidecar, None, "sidecar is not a JSON object",
                                     "a JSON object such as {\"ranks\": 64, \"nodes\": 16}")
        for key, value in values.items():
            out.setdefault(key, value)
    unknown = sorted(set(out) - set(FACT_KEYS))
    if unknown:
        raise CollectiveLogError(path, None, f"unknown fact(s) {', '.join(unknown)}",
                                 "facts among " + ", ".join(FACT_KEYS))
    return out


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
    return value


def _half_ulp(text: str) -> float:
    """Half the last printed digit of ``text``: the rounding a printed value carries."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    scale = 10.0 ** int(exponent) if exponent else 1.0
    return 0.5 * 10.0 ** (-decimals) * scale


# ---------------------------------------------------------------------------------------------
# nccl-tests text

_LEAD_NAMES = {"size": "size", "bytes": "size", "count": "count", "n": "count",
               "type": "type", "redop": "redop", "op": "redop", "root": "root"}
_CHECK_NAMES = ("error", "#wrong", "wrong", "res")


@dataclass
class _Table:
    line: int
    lead: list[str]
    groups: list[list[str]]
    unit_s: float
    width: int


@dataclass
class _Run:
    start: int
    ncclv1: bool = False
    header: dict[str, str] = field(default_factory=dict)
    op: str | None = None
    tests_version: str | None = None
    nccl_version: str | None = None
    ranks: dict[int, tuple[int, str | None, str]] = field(default_factory=dict)
    devices_line: int | None = None
    table: _Table | None = None
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    avg_busbw: float | None = None
    avg_line: int | None = None
    last_line: int = 0


def _parse_table_header(path: Path, lineno: int, line: str, ncclv1: bool) -> _Table:
    tokens = line.lstrip("#").split()
    lowered = [t.lower() for t in tokens]
    if "time" not in lowered:
        raise CollectiveLogError(path, lineno, "column header without a 'time' column",
                                 "size, count, type, [redop], [root], then time, algbw, busbw, "
                                 "error|#wrong for out-of-place and in-place")
    first = lowered.index("time")
    lead = []
    for tok in lowered[:first]:
        if tok not in _LEAD_NAMES:
            raise CollectiveLogError(path, lineno, f"unknown column {tok!r} before 'time'",
                                     "leading columns among size, count, type, redop, root")
        lead.append(_LEAD_NAMES[tok])
    if "size" not in lead:
        raise CollectiveLogError(path, lineno, "column header without a size column",
                                 "a 'size' (or NCCL 1.x 'bytes') column")
    groups: list[list[str]] = []
    for tok in lowered[first:]:
        if tok == "time":
            groups.append([])
        groups[-1].append(tok)
    for group in groups:
        if "algbw" not in group or "busbw" not in group:
            raise CollectiveLogError(path, lineno, f"column group {' '.join(group)!r} lacks "
                                     "algbw or busbw", "time, algbw, busbw, error|#wrong")
    groups = groups[:2]  # out-of-place, in-place
    width = len(lead) + sum(len(g) for g in groups)
    return _Table(lineno, lead, groups, 1e-3 if ncclv1 else 1e-6, width)


def _is_int(text: str) -> bool:
    return text.isdigit()


def _read_nccl_tests(path: Path, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    with _open_log(path) as fh:
        lines = [_TAG.sub("", ln.rstrip("\r\n")) for ln in fh]
    runs: list[_Run] = []
    run: _Run | None = None
    pending_op: str | None = None
    pending_version: str | None = None
    pending_nccl: str | None = None

    def new_run(lineno: int, ncclv1: bool = False) -> _Run:
        nonlocal pending_op, pending_version, pending_nccl
        made = _Run(start=lineno, ncclv1=ncclv1, op=pending_op, tests_version=pending_version,
                    nccl_version=pending_nccl)
        pending_op = pending_version = pending_nccl = None
        runs.append(made)
        return made

    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            if _NTHREAD.match(line):
                run = new_run(lineno)
                tokens = body.split()
                run.header = {tokens[i].rstrip(":"): tokens[i + 1]
                              for i in range(0, len(tokens) - 1, 2)}
                continue
            m = re.match(r"nccl-tests version\s+(\S+)", body)
            if m:
                pending_version = m.group(1)
                continue
            if body.lower().startswith("using devices"):
                if run is None or run.rows or run.table is not None or run.ranks:
                    run = new_run(lineno, ncclv1=False)
                run.devices_line = lineno
                continue
            m2, m1 = _RANK2.match(line), _RANK1.match(line)
            if m2 or m1:
                if run is None or run.rows or run.table is not None:
                    run = new_run(lineno, ncclv1=bool(m1))
                    run.devices_line = lineno
                if m1:
                    run.ncclv1 = True
                    rank, host, model = int(m1.group(1)), None, m1.group(4)
                else:
                    rank, host, model = int(m2.group(1)), m2.group(4), m2.group(7)
                if rank in run.ranks:
                    raise CollectiveLogError(
                        path, lineno, f"rank {rank} listed twice in one devices block "
                        "(two runs' blocks merged?)", "each run to begin with its own "
                        "'# nThread' header and list each rank once")
                model = normalise_device(model)
                if run.ranks:
                    first_rank = min(run.ranks)
                    first_model = run.ranks[first_rank][2]
                    if model != first_model:
                        raise CollectiveLogError(
                            path, lineno, f"mixed GPU models in one run: rank {rank} is "
                            f"{model!r} but rank {first_rank} is {first_model!r}",
                            "one GPU model per run (split the log, one file per cluster)")
                run.ranks[rank] = (lineno, host, model)
                continue
            if "busbw" in body and "time" in body.lower():
                if run is None:
                    run = new_run(lineno)
                if run.table is not None:
                    raise CollectiveLogError(
                        path, lineno, "a second results table inside one run (rows of another "
                        "run presented as this one?)", "each run to begin with its own "
                        "'# nThread' header and 'Using devices' block")
                ncclv1 = run.ncclv1 or body.split()[0].lower() == "bytes"
                run.ncclv1 = ncclv1
                run.table = _parse_table_header(path, lineno, line, ncclv1)
                continue
            if run is not None and run.table is not None and body.startswith("("):
                if "(ms)" in body:
                    run.table.unit_s = 1e-3
                elif "(us)" in body:
                    run.table.unit_s = 1e-6
                elif "(s)" in body:
                    run.table.unit_s = 1.0
                continue
        # not a '#' line, or a '#' line with nothing for the parser: data, summary or noise
        avg = re.match(r"#?\s*Avg bus bandwidth\s*:\s*(\S+)", line)
        if avg:
            if run is None or run.table is None:
                raise CollectiveLogError(path, lineno, "'Avg bus bandwidth' without a results "
                                         "table before it", "a '# nThread' header, a devices "
                                         "block and a results table first")
            run.avg_busbw = _number(avg.group(1), path, lineno, "Avg bus bandwidth")
            run.avg_line = lineno
            run.last_line = lineno
            continue
        if line.startswith("#"):
            op = _op_from_text(line)
            if op:
                pending_op = _mention(run, op, line, pending_op)
            continue
        m = re.search(r"NCCL version\s+(\d+\.\d+\.\d+)", line)
        if m:
            if run is not None and run.avg_busbw is None:
                run.nccl_version = run.nccl_version or m.group(1)
            else:
                pending_nccl = pending_nccl or m.group(1)
            continue
        tokens = line.split()
        table = run.table if run is not None else None
        # a row starts with two integers (size, count) or is cut after its size; a line of the
        # table's width is a row even when its size is garbled; anything else is noise
        looks_like_row = _is_int(tokens[0]) and (len(tokens) == 1 or _is_int(tokens[1]))
        if table is not None and run.avg_busbw is None and len(tokens) == table.width:
            looks_like_row = True
        if not looks_like_row:
            op = _op_from_text(line)
            if op:
                pending_op = _mention(run, op, line, pending_op)
            continue
        if table is None:
            if _is_int(tokens[0]) and len(tokens) >= 8:
                raise CollectiveLogError(path, lineno, "data row before any column-header row",
                                         "the '#  size  count  type ...' header before the rows")
            continue
        if run.avg_busbw is not None:
            if len(tokens) < 8:
                continue
            raise CollectiveLogError(
                path, lineno, "data row after the run's 'Avg bus bandwidth' line (rows of "
                "another run without its header?)", "each run to begin with its own "
                "'# nThread' header and 'Using devices' block")
        if len(tokens) < table.width:
            raise CollectiveLogError(
                path, lineno, f"row cut short: {len(tokens)} fields (truncated log?)",
                f"{table.width} fields as the header at line {table.line} names")
        if len(tokens) > table.width:
            raise CollectiveLogError(
                path, lineno, f"row has {len(tokens)} fields (garbled row?)",
                f"{table.width} fields as the header at line {table.line} names")
        run.rows.append((lineno, tokens))
        run.last_line = lineno

    if not runs:
        raise CollectiveLogError(path, None, "no nccl-tests run found",
                                 "a '# nThread' header, a 'Using devices' block and a table")
    records: list[dict[str, Any]] = []
    for index, r in enumerate(runs):
        records.extend(_finish_run(path, index, r, facts, len(lines)))
    return records


def _mention(run: _Run | None, op: str, line: str, pending: str | None) -> str | None:
    """A collective named outside the table; returns the op pending for the next run.

    ``# Collective test concluded: X`` names the run just finished; a mention between a run's
    header and its first row names that run; any other (a command line, ``# Collective test
    starting: X``, a script's banner) names the next run.
    """
    if "concluded" in line.lower():
        if run is not None and run.op is None:
            run.op = op
        return pending
    if run is not None and not run.rows and run.avg_busbw is None:
        run.op = run.op or op
        return pending
    return op


def _finish_run(path: Path, index: int, run: _Run, facts: Mapping[str, Any],
                nlines: int) -> list[dict[str, Any]]:
    table = run.table
    if table is None:
        raise CollectiveLogError(path, run.start, "run header without a results table "
                                 "(truncated log?)", "a column-header row and data rows")
    if not run.rows:
        raise CollectiveLogError(path, table.line, "results table header but no data rows "
                                 "(truncated log?)", "rows of size, count, type, ..., time, "
                                 "algbw, busbw")
    if run.avg_busbw is None:
        raise CollectiveLogError(path, run.last_line, "run ends without the '# Avg bus "
                                 "bandwidth' line (truncated log?)", "the complete output of "
                                 "the run, down to '# Avg bus bandwidth'")
    if not run.ranks:
        raise CollectiveLogError(path, table.line, "no 'Using devices' block before the "
                                 "results", "the '#  Rank r ... on HOST device d [..] MODEL' "
                                 "lines from which ranks, hosts and GPU model are read")
    ranks = len(run.ranks)
    missing = sorted(set(range(ranks)) - set(run.ranks))
    if missing:
        raise CollectiveLogError(path, run.devices_line, f"devices block lists {ranks} ranks "
                                 f"but not rank {missing[0]}", f"ranks 0..{ranks - 1}, each once")
    hosts: dict[str | None, int] = {}
    for _, host, _ in run.ranks.values():
        hosts[host] = hosts.get(host, 0) + 1
    if run.ncclv1 or None in hosts:
        nodes, per_node = 1, ranks
    else:
        nodes = len(hosts)
        counts = set(hosts.values())
        per_node = counts.pop() if len(counts) == 1 else None
    device = run.ranks[0][2]

    op = run.op or _op_from_filename(path) or facts.get("op")
    if op is not None:
        op = _OPS.get(str(op).lower(), str(op).lower())
    parsed = [_parse_row(path, table, lineno, tokens) for lineno, tokens in run.rows]
    if op is None:
        op = _infer_op(path, parsed, ranks, table.line)
    try:
        factor = busbw_factor(op, ranks)
    except ValueError:
        raise CollectiveLogError(path, table.line, f"collective {op!r} has no known "
                                 "bus-bandwidth factor", "one of " + ", ".join(
                                     sorted(set(_OPS.values())))) from None
    # sizes never go down inside one run (nccl-tests steps up; NCCL 1.x repeats one size)
    previous = -1
    for row in parsed:
        if row["nbytes"] < previous:
            raise CollectiveLogError(
                path, row["line"], f"size {row['nbytes']} after {previous} inside one run "
                "(rows of another run presented as this one?)", "sizes that grow within a run, "
                "each run beginning with its own '# nThread' header and 'Using devices' block")
        previous = row["nbytes"]
    # busbw = algbw * factor, within the printed rounding
    for row in parsed:
        for placement, values in row["placements"].items():
            tol = values["busbw_tol"] + factor * values["algbw_tol"] + 1e-12
            if abs(values["busbw"] - values["algbw"] * factor) > tol:
                raise CollectiveLogError(
                    path, row["line"], f"{placement} busbw {values['busbw']:g} GB/s is not "
                    f"algbw {values['algbw']:g} x {factor:.4g} ({op} on {ranks} ranks as the "
                    "devices block says)", "busbw = algbw x nccl-tests' factor: the ranks or "
                    "the collective of this table differ from the log's header")
    # Avg bus bandwidth = mean of every busbw printed (zero-byte rows included)
    busbws = [v["busbw"] for row in parsed for v in row["placements"].values()]
    tol_avg = max(v["busbw_tol"] for row in parsed for v in row["placements"].values())
    mean = sum(busbws) / len(busbws)
    if abs(mean - run.avg_busbw) > tol_avg + 1e-3 * run.avg_busbw + 1e-4:
        raise CollectiveLogError(
            path, run.avg_line, f"'Avg bus bandwidth' {run.avg_busbw:g} GB/s is not the mean "
            f"{mean:.4g} GB/s of the run's {len(busbws)} busbw values (rows removed or "
            "edited?)", "the run's rows as nccl-tests printed them")

    era = facts.get("era")
    if run.ncclv1:
        era = "nccl1"
    elif run.nccl_version:
        era = "nccl" + run.nccl_version.split(".")[0]
    elif era is None:
        era = _era_from_name(path)
    common = {
        "file": str(path), "tool": "nccl-tests", "format": "nccl1-test" if run.ncclv1
        else "nccl-tests", "run": index, "op": op, "ranks": ranks, "nodes": nodes,
        "gpus_per_node": per_node, "device": device, "avg_busbw_Bps": run.avg_busbw * GB,
        "nccl_tests_version": run.tests_version, "nccl_version": run.nccl_version, "era": era,
    }
    records = []
    for row in parsed:
        if row["nbytes"] == 0:
            continue
        for placement, values in row["placements"].items():
            records.append({
                **common, "line": row["line"], "nbytes": row["nbytes"], "count": row["count"],
                "dtype": row["dtype"], "redop": row["redop"], "placement": placement,
                "time_s": values["time"] * table.unit_s, "algbw_Bps": values["algbw"] * GB,
                "busbw_Bps": values["busbw"] * GB, "wrong": values["wrong"],
                "max_error": values["max_error"],
            })
    return records


def _parse_row(path: Path, table: _Table, lineno: int, tokens: list[str]) -> dict[str, Any]:
    lead = dict(zip(table.lead, tokens))
    nbytes = int(_number(lead["size"], path, lineno, "size", integer=True))
    count = (int(_number(lead["count"], path, lineno, "count", integer=True))
             if "count" in lead else None)
    if "root" in lead:
        _number(lead["root"].lstrip("-"), path, lineno, "root", integer=True)
    redop = lead.get("redop")
    if redop is not None and redop.lower() == "none":
        redop = None
    placements: dict[str, dict[str, Any]] = {}
    pos = len(table.lead)
    names = ("out_of_place", "in_place")
    for gi, group in enumerate(table.groups):
        values: dict[str, Any] = {"wrong": None, "max_error": None}
        for name in group:
            text = tokens[pos]
            pos += 1
            if name in ("time", "algbw", "busbw"):
                values[name] = _number(text, path, lineno, name)
                if name != "time":
                    values[name + "_tol"] = _half_ulp(text)
            elif name in _CHECK_NAMES:
                if text.upper() == "N/A":
                    continue
                check = _number(text, path, lineno, name)
                if name in ("#wrong", "wrong"):
                    values["wrong"] = int(check)
                else:
                    values["max_error"] = check
            else:  # per-iteration statistics of newer versions: checked, not kept
                _number(text, path, lineno, name)
        placements[names[gi]] = values
    return {"line": lineno, "nbytes": nbytes, "count": count, "dtype": lead.get("type"),
            "redop": redop, "placements": placements}


def _infer_op(path: Path, parsed: list[dict[str, Any]], ranks: int, line: int) -> str:
    """The collective from busbw/algbw when nothing names it: only allreduce is unambiguous."""
    ratios = [v["busbw"] / v["algbw"] for row in parsed for v in row["placements"].values()
              if v["algbw"] >= 1.0]
    if ratios and ranks > 2:
        target = busbw_factor("allreduce", ranks)
        if all(abs(r - target) <= 0.02 * target for r in ratios):
            return "allreduce"
    raise CollectiveLogError(path, line, "the log does not say which collective it measured",
                             "the binary's name in the log or the file name (e.g. "
                             "all_gather_perf.log), or facts={'op': ...}")


def _era_from_name(path: Path) -> str | None:
    text = path.as_posix().lower()
    m = re.search(r"nccl-?v?([12])(?![0-9])", text)
    return f"nccl{m.group(1)}" if m else None


# ---------------------------------------------------------------------------------------------
# OSU

_OSU_OPS = {"allreduce": "allreduce", "reduce_scatter": "reduce_scatter",
            "reduce scatter": "reduce_scatter", "allgather": "allgather",
            "broadcast": "broadcast", "bcast": "broadcast", "reduce": "reduce",
            "all-to-all personalized exchange": "alltoall", "alltoall": "alltoall",
            "all-to-all": "alltoall", "gather": "gather", "scatter": "scatter"}
_OSU_PER_PEER = ("allgather", "alltoall", "gather", "scatter")


def _read_osu(path: Path, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    with _open_log(path) as fh:
        lines = [_TAG.sub("", ln.rstrip("\r\n")) for ln in fh]
    runs: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        title = _OSU_TITLE.match(line)
        if title:
            name = title.group(1).strip().lower()
            op = _OSU_OPS.get(name)
            if op is None:
                raise CollectiveLogError(path, lineno, f"OSU test {title.group(1)!r} is not a "
                                         "collective gradsync reads", "an OSU Allreduce, "
                                         "Reduce_scatter, Allgather, Broadcast, Reduce or "
                                         "Alltoall latency test")
            current = {"line": lineno, "op": op, "version": title.group(2), "columns": None,
                       "rows": []}
            runs.append(current)
            continue
        if current is None:
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            if body.lower().startswith("size"):
                if current["columns"] is not None:
                    raise CollectiveLogError(path, lineno, "a second column header inside one "
                                             "OSU run", "one '# OSU MPI ... Latency Test' title "
                                             "per table")
                columns = [c.strip().lower() for c in re.split(r"\s{2,}|\t", body) if c.strip()]
                if "avg latency(us)" not in columns:
                    raise CollectiveLogError(path, lineno, f"OSU columns {columns}",
                                             "'Size' and 'Avg Latency(us)' columns")
                current["columns"] = (lineno, columns)
            continue
        tokens = line.split()
        if current["columns"] is None:
            if _is_int(tokens[0]):
                raise CollectiveLogError(path, lineno, "data row before the OSU column header",
                                         "'# Size  Avg Latency(us)' before the rows")
            continue
        header_line, columns = current["columns"]
        if not _is_int(tokens[0]) and len(tokens) != len(columns):
            continue  # MPI noise between rows
        if len(tokens) < len(columns):
            raise CollectiveLogError(path, lineno, f"row cut short: {len(tokens)} fields "
                                     "(truncated log?)", f"{len(columns)} fields as the header "
                                     f"at line {header_line} names")
        if len(tokens) > len(columns):
            raise CollectiveLogError(path, lineno, f"row has {len(tokens)} fields (garbled "
                                     "row?)", f"{len(columns)} fields as the header at line "
                                     f"{header_line} names")
        values = {}
        for name, text in zip(columns, tokens):
            values[name] = _number(text, path, lineno, name, integer=(name in ("size",
                                                                                 "iterations")))
        current["rows"].append((lineno, values))
    if not runs:
        raise CollectiveLogError(path, None, "no OSU latency test found",
                                 "a '# OSU MPI ... Latency Test' title")
    ranks, nodes = facts.get("ranks"), facts.get("nodes")
    if ranks is None or nodes is None:
        missing = " and ".join(k for k, v in (("rank", ranks), ("node", nodes)) if v is None)
        raise CollectiveLogError(path, runs[0]["line"], f"OSU output does not state the "
                                 f"{missing} count", "osu_ranks= and osu_nodes= (gradsync "
                                 "calibrate --osu-ranks N --osu-nodes M) or a sidecar "
                                 f"{path.name}{SIDECAR_SUFFIX} with {{\"ranks\": N, "
                                 "\"nodes\": M}")
    ranks, nodes = int(ranks), int(nodes)
    if ranks < 1 or nodes < 1 or nodes > ranks:
        raise CollectiveLogError(path, None, f"ranks {ranks} on nodes {nodes}",
                                 "1 <= nodes <= ranks")
    per_node = facts.get("gpus_per_node")
    if per_node is None:
        per_node = ranks // nodes if ranks % nodes == 0 else None
    records = []
    for index, r in enumerate(runs):
        if r["columns"] is None or not r["rows"]:
            raise CollectiveLogError(path, r["columns"][0] if r["columns"] else r["line"],
                                     "OSU test without data rows (truncated log?)",
                                     "rows of size and average latency")
        factor = busbw_factor(r["op"], ranks)
        for lineno, values in r["rows"]:
            size = int(values["size"])
            nbytes = size * ranks if r["op"] in _OSU_PER_PEER else size
            if nbytes == 0:
                continue
            time_s = values["avg latency(us)"] * 1e-6
            algbw = nbytes / time_s if time_s > 0 else math.nan
            records.append({
                "file": str(path), "line": lineno, "tool": "osu", "format": "osu", "run": index,
                "op": r["op"], "nbytes": nbytes, "count": None, "dtype": None, "redop": None,
                "ranks": ranks, "nodes": nodes, "gpus_per_node": per_node,
                "device": facts.get("device"), "placement": "out_of_place", "time_s": time_s,
                "algbw_Bps": algbw, "busbw_Bps": algbw * factor, "wrong": None,
                "max_error": None, "avg_busbw_Bps": None, "nccl_tests_version": None,
                "nccl_version": None, "era": facts.get("era"),
            })
    return records


# ---------------------------------------------------------------------------------------------
# nccl-tests summary CSV (OP,Packet,Bandwidth / OP,GPU,Bandwidth / OP,GPU,Latency)

def _read_summary_csv(path: Path, facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    with _open_log(path) as fh:
        lines = [ln.rstrip("\r\n") for ln in fh]
    header_at = next(i for i, ln in enumerate(lines) if ln.strip())
    m = _SUMMARY_HEADER.match(lines[header_at])
    key, quantity = m.group(1).lower(), m.group(2).lower()
    by_size = key == "packet"
    if by_size and facts.get("ranks") is None:
        raise CollectiveLogError(path, header_at + 1, "a by-size summary does not state the "
                                 "rank count", f"facts={{'{path.name}': {{'ranks': N}}}} or a "
                                 f"sidecar {path.name}{SIDECAR_SUFFIX} with {{\"ranks\": N}}")
    era = facts.get("era") or _era_from_name(path)
    records = []
    for lineno, raw in enumerate(lines[header_at + 1:], start=header_at + 2):
        if not raw.strip():
            continue
        cells = [c.strip() for c in raw.split(",")]
        if len(cells) != 3:
            raise CollectiveLogError(path, lineno, f"row has {len(cells)} fields "
                                     "(truncated or garbled row?)", "3 fields: OP, "
                                     f"{m.group(1)}, {m.group(2)}")
        name, x_text, y_text = cells
        op = _op_from_text(name) or _OPS.get(name.lower())
        if op is None:
            raise CollectiveLogError(path, lineno, f"OP {name!r} is no nccl-tests binary",
                                     "a name such as all_reduce_perf")
        x = int(_number(x_text, path, lineno, m.group(1), integer=True))
        y = _number(y_text, path, lineno, m.group(2))
        if by_size:
            nbytes, ranks = x, int(facts["ranks"])
        else:
            nbytes, ranks = facts.get("nbytes"), x
            nbytes = None if nbytes is None else int(nbytes)
        if nbytes == 0 or ranks < 1:
            continue
        factor = busbw_factor(op, ranks)
        time_s = algbw = busbw = math.nan
        if quantity == "bandwidth":
            busbw = y * GB
            algbw = busbw / factor if factor > 0 else math.nan
        else:
            time_s = y * 1e-3
        nodes = facts.get("nodes")
        per_node = facts.get("gpus_per_node")
        if per_node is None and nodes is not None and ranks % int(nodes) == 0:
            per_node = ranks // int(nodes)
        records.append({
            "file": str(path), "line": lineno, "tool": "nccl-tests", "format": "summary-csv",
            "run": 0, "op": op, "nbytes": nbytes, "count": None, "dtype": None, "redop": None,
            "ranks": ranks, "nodes": nodes, "gpus_per_node": per_node,
            "device": facts.get("device"), "placement": "unspecified", "time_s": time_s,
            "algbw_Bps": algbw, "busbw_Bps": busbw, "wrong": None, "max_error": None,
            "avg_busbw_Bps": None, "nccl_tests_version": None, "nccl_version": None,
            "era": era,
        })
    if not records:
        raise CollectiveLogError(path, header_at + 1, "summary header but no data rows "
                                 "(truncated log?)", "rows of OP, size or GPU count, value")
    return records


# ---------------------------------------------------------------------------------------------
# public entry points

def _table(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for name in ("line", "run", "nbytes", "count", "ranks", "nodes", "gpus_per_node", "wrong"):
        frame[name] = frame[name].astype("Int64")
    for name in ("time_s", "algbw_Bps", "busbw_Bps", "max_error", "avg_busbw_Bps"):
        frame[name] = frame[name].astype(float)
    return frame


def read_collective_log(path: str | Path, *, osu_ranks: int | None = None,
                        osu_nodes: int | None = None,
                        facts: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One file of nccl-tests, OSU or summary-CSV output as the tidy table (see module doc)."""
    p = Path(path)
    if not p.is_file():
        raise CollectiveLogError(p, None, "no such file", "a collective-benchmark log")
    kind = _sniff(p)
    if kind is None:
        raise CollectiveLogError(p, 1, "neither nccl-tests nor OSU output",
                                 "nccl-tests text ('# nThread' header, 'Using devices' block, "
                                 "results table), '# OSU MPI ... Latency Test' output, or an "
                                 "'OP,Packet|GPU,Bandwidth|Latency' summary CSV")
    known = _facts_for(p, facts, osu_ranks, osu_nodes, "osu" if kind == "osu" else kind)
    reader = {"nccl-tests": _read_nccl_tests, "osu": _read_osu,
              "summary-csv": _read_summary_csv}[kind]
    return _table(reader(p, known))


def read_collective_logs(paths: str | Path | Iterable[str | Path], *,
                         osu_ranks: int | None = None, osu_nodes: int | None = None,
                         facts: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Files and folders of collective-benchmark output as one tidy table.

    A folder contributes every file below it that :func:`is_collective_log` accepts (others,
    such as ``SOURCES.md`` or sidecars, are skipped); a folder with none is an error, and so is
    a file named explicitly that is no such log. ``osu_ranks``/``osu_nodes`` give OSU files
    their rank and node counts; ``facts`` maps file-name patterns (``fnmatch``, on the name or
    the path) to what a file does not state (``ranks``, ``nodes``, ``gpus_per_node``,
    ``device``, ``nbytes``, ``op``, ``era``); a sidecar ``FILE.meta.json`` does the same for one
    file. What a file states always wins over facts.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for entry in paths:
        p = Path(entry)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if is_collective_log(f))
            if not found:
                raise CollectiveLogError(p, None, "folder holds no nccl-tests or OSU log",
                                         "files of nccl-tests or OSU output")
            files.extend(found)
        else:
            files.append(p)
    frames = [read_collective_log(f, osu_ranks=osu_ranks, osu_nodes=osu_nodes, facts=facts)
              for f in files]
    if not frames:
        return _table([])
    return pd.concat(frames, ignore_index=True)
