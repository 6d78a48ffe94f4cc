"""The trace, schema v1: one row per interval, written by the simulator and the executor alike.

Engines append plain tuples to a :class:`TraceRecorder` (cheap in hot loops) and turn them into
one pandas DataFrame at the end. Traces are stored as Parquet (``trace.parquet``) with the schema
version in the file's metadata, beside the run's ``run.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vocab.outpath import atomic_write, check_output, write_text_atomic
from vocab.errors import GradsyncError, UnknownNameError

SCHEMA_VERSION = 1
TRACE_FILE = "trace.parquet"
_META_KEY = b"gradsync.trace_schema_version"

#: Column names in order, with their pandas dtypes.
COLUMNS: dict[str, str] = {
    "run_id": "string",
    "source": "string",      # "sim" | "exec"
    "iteration": "int64",
    "rank": "int64",
    "stream": "string",      # "compute" | "comm" | "host"
    "op": "string",          # forward, backward, allreduce, wait, update, ...
    "name": "string",        # layer name, message name, ...
    "bucket": "int64",       # message/bucket index, -1 where none
    "nbytes": "int64",       # bytes communicated, 0 where none
    "start_s": "float64",
    "end_s": "float64",
}
SOURCES = ("sim", "exec")
STREAMS = ("compute", "comm", "host")
OPS = ("forward", "backward", "allreduce", "wait", "update", "copy", "reduce", "idle",
       "data", "loss", "checkpoint")


class TraceError(GradsyncError):
    """A trace file is missing, unreadable or of another schema version."""


class TraceRecorder:
    """Collects intervals of one run as tuples; :meth:`to_frame` builds the DataFrame once."""

    def __init__(self, run_id: str, source: str):
        if source not in SOURCES:
            raise UnknownNameError("trace source", source, SOURCES)
        self.run_id = run_id
        self.source = source
        self.rows: list[tuple] = []

    def extend(self, rows: Iterable[tuple]) -> None:
        """Append rows ``(iteration, rank, stream, op, name, bucket, nbytes, start_s, end_s)``:
        the v1 columns after ``run_id`` and ``source``."""
        self.rows.extend(rows)

    def to_frame(self) -> pd.DataFrame:
        """The trace as a DataFrame with the v1 columns and dtypes; streams and ops checked
        against :data:`STREAMS` and :data:`OPS`."""
        names = [c for c in COLUMNS if c not in ("run_id", "source")]
        frame = pd.DataFrame.from_records(self.rows, columns=names)
        frame.insert(0, "source", self.source)
        frame.insert(0, "run_id", self.run_id)
        return check_vocabulary(conform(frame))


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the v1 columns, in order, with the v1 dtypes."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise TraceError(f"trace is missing columns {missing}; schema v{SCHEMA_VERSION} has "
                         f"{list(COLUMNS)}")
    return frame[list(COLUMNS)].astype(COLUMNS).reset_index(drop=True)


#: The closed vocabularies of the trace: column -> the values a row may hold there.
VOCABULARY: dict[str, tuple[str, ...]] = {"source": SOURCES, "stream": STREAMS, "op": OPS}


def check_vocabulary(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` unchanged if every ``source``, ``stream`` and ``op`` is a declared one
    (:data:`SOURCES`, :data:`STREAMS`, :data:`OPS`); otherwise raise :class:`UnknownNameError`
    naming the column, the first unknown value and the valid ones."""
    for column, valid in VOCABULARY.items():
        if column not in frame.columns:
            continue
        values = frame[column]
        bad = values[~values.isin(valid)]
        if len(bad):
            raise UnknownNameError(f"trace {column}", bad.iloc[0], valid)
    return frame


def write_trace(frame: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write ``frame`` as ``out_dir/trace.parquet`` tagged with the schema version; refuses
    (:func:`check_vocabulary`) a stream or op outside :data:`STREAMS` / :data:`OPS`."""
    table = pa.Table.from_pandas(check_vocabulary(conform(frame)), preserve_index=False)
    path = Path(out_dir) / TRACE_FILE
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = str(SCHEMA_VERSION).encode()
    with atomic_write(path) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
    return path


def read_trace(path: str | Path) -> pd.DataFrame:
    """Read a trace file (or a run directory holding ``trace.parquet``), checking its version."""
    path = Path(path)
    if path.is_dir():
        path = path / TRACE_FILE
    if not path.exists():
        raise TraceError(f"{path}: no trace here (expected a {TRACE_FILE} written by gradsync)")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise TraceError(f"{path}: not a readable Parquet trace ({exc})") from None
    version = (table.schema.metadata or {}).get(_META_KEY)
    if version is None or version.decode() != str(SCHEMA_VERSION):
        found = version.decode() if version else "none"
        raise TraceError(f"{path}: trace schema version {found}, expected {SCHEMA_VERSION}")
    frame = conform(table.to_pandas())
    for column in ("start_s", "end_s"):       # NaN compares false: the check below misses it
        bad = frame[~np.isfinite(frame[column].to_numpy(dtype=float))]
        if len(bad):
            first = bad.iloc[0]
            raise TraceError(f"{path}: {len(bad)} interval(s) with a {column} that is not a "
                             f"finite time (first: rank {first['rank']}, iteration "
                             f"{first['iteration']}, {first['op']} {column} {first[column]})")
    backwards = frame[frame["end_s"] < frame["start_s"]]
    if len(backwards):      # every duration downstream would be negative
        first = backwards.iloc[0]
        raise TraceError(f"{path}: {len(backwards)} interval(s) end before they start (first: "
                         f"rank {first['rank']}, iteration {first['iteration']}, {first['op']} "
                         f"{first['start_s']:.6g} s -> {first['end_s']:.6g} s)")
    return frame


def to_chrome_trace(frame: pd.DataFrame) -> dict:
    """Chrome-trace / Perfetto JSON: one process per rank, one thread per stream, times in us."""
    tids = {stream: i for i, stream in enumerate(STREAMS)}
    events = []
    for row in frame.itertuples(index=False):
        events.append({
            "name": row.name or row.op, "cat": row.op, "ph": "X",
            "ts": row.start_s * 1e6, "dur": max(row.end_s - row.start_s, 0.0) * 1e6,
            "pid": int(row.rank), "tid": tids.get(row.stream, len(tids)),
            "args": {"iteration": int(row.iteration), "bucket": int(row.bucket),
                     "nbytes": int(row.nbytes), "op": row.op},
        })
    for rank in sorted(frame["rank"].unique()) if len(frame) else []:
        events.append({"name": "process_name", "ph": "M", "pid": int(rank),
                       "args": {"name": f"rank {rank}"}})
        for stream, tid in tids.items():
            events.append({"name": "thread_name", "ph": "M", "pid": int(rank), "tid": tid,
                           "args": {"name": stream}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(frame: pd.DataFrame, path: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`to_chrome_trace` to ``path`` (open it in ui.perfetto.dev); an existing
    file is replaced only with ``overwrite``."""
    path = check_output(path, overwrite=overwrite, field="path")
    return write_text_atomic(path, json.dumps(to_chrome_trace(frame)))
