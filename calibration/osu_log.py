"""The OSU latency-test parser: ``osu_allreduce`` and kin to table records.

OSU output states neither ranks nor nodes; they come from the caller's facts (or a sidecar),
else a :class:`~calibration.collbench_records.CollectiveLogError`. Per-peer sizes (allgather,
alltoall, gather, scatter) are multiplied by the rank count to match nccl-tests' ``size``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calibration.collbench_records import (
    _TAG, SIDECAR_SUFFIX, CollectiveLogError, _is_int, _number, _open_log, busbw_factor,
)

_OSU_TITLE = re.compile(r"^#\s*OSU\s+MPI\S*\s+(.+?)\s+Latency\s+Test(?:\s+v?(\S+))?", re.I)

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
