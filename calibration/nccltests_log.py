"""The nccl-tests text parser: ``*_perf`` output (and NCCL 1.x ``*_test``) to table records.

Reads each run's ``# nThread`` header, ``Using devices`` block, column header and rows, and
checks them as :mod:`calibration.collbench`'s module docstring lists (one GPU model per run,
busbw = algbw x factor within rounding, ``Avg bus bandwidth`` the mean of the busbw values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.collbench_records import (
    _OPS, _TAG, GB, CollectiveLogError, _era_from_name, _half_ulp, _is_int, _number,
    _op_from_filename, _op_from_text, _open_log, busbw_factor, normalise_device,
)

_NTHREAD = re.compile(r"^#\s*nThread\s+\d+")
_RANK2 = re.compile(
    r"^#\s*Rank\s+(\d+)\s+(?:Group\s+(\d+)\s+)?Pid\s+(\d+)\s+on\s+(\S+)\s+device\s+(\d+)\s+"
    r"\[([^\]]*)\]\s+(.*?)\s*$")
_RANK1 = re.compile(r"^#\s*Rank\s+(\d+)\s+uses\s+device\s+(\d+)\s+\[([^\]]*)\]\s+(.*?)\s*$")

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
