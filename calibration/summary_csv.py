"""The nccl-tests summary-CSV parser (``OP,Packet,Bandwidth``, ``OP,GPU,Bandwidth``,
``OP,GPU,Latency``, as the Tartan suite stores them) to table records.

What the CSV does not state (ranks of a by-size file, the size of a by-GPU file, the device)
comes from the caller's facts or a sidecar; only the measured quantity is filled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calibration.collbench_records import (
    _OPS, GB, SIDECAR_SUFFIX, CollectiveLogError, _era_from_name, _number, _op_from_text,
    _open_log, busbw_factor,
)

_SUMMARY_HEADER = re.compile(r"^\s*OP\s*,\s*(Packet|GPU)\s*,\s*(Bandwidth|Latency)\s*$", re.I)

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
