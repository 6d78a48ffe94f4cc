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
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

# The parsers live one format a module; the shared names are re-exported here so that
# ``calibration.collbench`` stays the one entry point callers import from.
from calibration.collbench_records import (
    _TAG,
    COLUMNS as COLUMNS,
    FACT_KEYS as FACT_KEYS,
    GB as GB,
    SIDECAR_SUFFIX as SIDECAR_SUFFIX,
    CollectiveLogError as CollectiveLogError,
    busbw_factor as busbw_factor,
    normalise_device as normalise_device,
)
from calibration.nccltests_log import _NTHREAD, _RANK1, _RANK2, _read_nccl_tests
from calibration.osu_log import _OSU_TITLE, _read_osu
from calibration.summary_csv import _SUMMARY_HEADER, _read_summary_csv
from vocab.files import check_path

_HEAD_BYTES = 1 << 16


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
        p = check_path(entry, "a collective-benchmark log or a folder of them", "any")
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
