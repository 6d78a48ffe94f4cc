"""``run.json``: every run describes itself (resolved specs, versions, seed, wall time, error).

One schema on both sides: the simulator and the executor write the same top-level fields
(:data:`RECORD_FIELDS`) and the same ``specs`` sections (:data:`RUN_SECTIONS`): ``cluster`` (the
machine: a preset and its figures, or the host the executor ran on, with its ranks),
``workload`` (name, layers, total_grad_bytes), ``batch`` (per rank), ``strategy`` (a
StrategySpec, bucket sizes in bytes) and ``run`` (how: iterations or steps, seed, warm-up, ...).
:func:`write_run_record` refuses a record that breaks it and :func:`read_run_record` one that
does not follow it, with a :class:`~vocab.errors.SpecError` naming the field.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from dataclasses import asdict, fields, is_dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from vocab.errors import SpecError, UnknownNameError
from vocab.files import read_json
from vocab.outpath import write_text_atomic
from vocab.strategies.plan import StrategySpec
from vocab.trace import SCHEMA_VERSION

RUN_FILE = "run.json"
#: Version of the run record's own schema (the trace has its own, ``trace_schema_version``).
RUN_SCHEMA_VERSION = 1
#: Who wrote the record: the simulator, the executor, or ``gradsync bench-net``.
SOURCES = ("sim", "exec", "bench-net")
#: ``running`` from a run's start (a crashed run still claims its directory), then ok / failed
#: / interrupted (a forwarded SIGINT, SIGTERM or SIGHUP; the record's ``interrupted`` says
#: which and the step reached).
STATUSES = ("running", "ok", "failed", "interrupted")
_NUMBER = (int, float)
#: Every record's fields: (JSON types, what is expected).
RECORD_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "schema_version": ((int,), "a schema version"),
    "run_id": ((str,), "a run id"),
    "source": ((str,), "one of " + ", ".join(SOURCES)),
    "status": ((str,), "one of " + ", ".join(STATUSES)),
    "trace_schema_version": ((int,), "a trace schema version"),
    "specs": ((dict,), "an object of resolved specs"),
    "seed": ((int, type(None)), "an integer seed or null"),
    "wall_s": ((*_NUMBER, type(None)), "seconds or null"),
    "error": ((str, type(None)), "an error message or null"),
    "created_utc": ((str,), "an ISO time"),
    "versions": ((dict,), "an object of versions (gradsync, git_revision, python, ...)"),
    "host": ((str,), "a host name"),
    "platform": ((str,), "a platform string"),
}
#: The ``specs`` sections of a simulated or executed run: (JSON types, what is expected).
RUN_SECTIONS: dict[str, tuple[tuple[type, ...], str]] = {
    "cluster": ((dict,), "the machine (an object)"),
    "workload": ((dict,), "the model (an object with name, layers, total_grad_bytes)"),
    "batch": ((int,), "a per-rank batch (a whole number >= 1)"),
    "strategy": ((dict,), "a strategy spec (name, bucket_bytes, first_bucket_bytes, merge, "
                 "staleness)"),
    "run": ((dict,), "the run settings (an object)"),
}
_REPO_ROOT = Path(__file__).resolve().parent.parent


def package_version() -> str:
    """The installed gradsync version, or 'unknown' when running from a bare checkout."""
    try:
        return metadata.version("gradsync")
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git revision of the source tree gradsync runs from, if it is a git checkout.

    Asked once per process: sweeps write thousands of records.
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


#: What a run id may hold: letters, digits, '.', '_' and '-', the characters every file
#: system takes in a name (POSIX's portable filename set); anything else becomes '_'.
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")
#: Longest a run id's part (a model's name) may be: a factory path can be long, and the
#: id names directories; the record's specs keep the whole name.
RUN_ID_PART_MAX = 48


def make_run_id(source: str, *parts: Any) -> str:
    """The one way a run id is made: ``source`` and ``parts`` joined by '-', each part in
    the portable filename set (a factory model ``pkg.mod:make`` becomes ``pkg.mod_make``, a
    file ``models/net.py:build`` ``models_net.py_build``), no part starting with '.' or
    longer than :data:`RUN_ID_PART_MAX`, so that an id is a file or directory name anywhere."""
    safe = [_UNSAFE_ID.sub("_", str(part)).strip("._-")[:RUN_ID_PART_MAX] or "_"
            for part in (source, *parts)]
    return "-".join(safe)


def make_run_record(source: str, run_id: str, specs: dict[str, Any], seed: int | None,
                    wall_s: float | None = None, error: str | None = None, status: str = "ok",
                    versions: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A run record (see :data:`RECORD_FIELDS`): ``source`` is 'sim', 'exec' or 'bench-net';
    ``specs`` fully resolved; ``versions`` adds to gradsync's, git's and Python's."""
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": run_id,
        "source": source,
        "status": status,
        "trace_schema_version": SCHEMA_VERSION,
        "specs": specs,
        "seed": seed,
        "wall_s": wall_s,
        "error": error,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"gradsync": package_version(), "git_revision": git_revision(),
                     "python": sys.version.split()[0], **(versions or {})},
        "platform": platform.platform(),
        "host": platform.node(),
        **extra,
    }


def check_run_record(record: Any, where: str | None = None) -> None:
    """Raise SpecError, naming the field, unless ``record`` is a run record of this schema.

    Every record has the fields of :data:`RECORD_FIELDS` with those types; a run of the
    simulator or the executor (``source`` 'sim' or 'exec') also has the sections of
    :data:`RUN_SECTIONS` in its ``specs``, its ``strategy`` one StrategySpec in bytes.
    ``where`` (a path) is named in the error.
    """
    if not isinstance(record, dict):
        raise SpecError("run record", type(record).__name__, "a JSON object", where)
    version = record.get("schema_version")
    if version != RUN_SCHEMA_VERSION:
        raise SpecError("schema_version", version, f"{RUN_SCHEMA_VERSION} (a run record of "
                        "this gradsync; older records are not read)", where)
    for name, (types, expected) in RECORD_FIELDS.items():
        if name not in record:
            raise SpecError(name, None, f"{expected} (a required field)", where)
        value = record[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise SpecError(name, value, expected, where)
    if record["source"] not in SOURCES:
        raise UnknownNameError("source", record["source"], SOURCES, where)
    if record["trace_schema_version"] != SCHEMA_VERSION:
        raise SpecError("trace_schema_version", record["trace_schema_version"],
                        f"{SCHEMA_VERSION} (traces of another schema are not read)", where)
    if record["status"] not in STATUSES:
        raise UnknownNameError("status", record["status"], STATUSES, where)
    if record["source"] in ("sim", "exec"):
        _check_run_specs(record["specs"], record["source"], where)


def _check_run_specs(specs: dict[str, Any], source: str, where: str | None) -> None:
    for name, (types, expected) in RUN_SECTIONS.items():
        field = f"specs.{name}"
        if name not in specs:
            raise SpecError(field, None, f"{expected} (a required section)", where)
        value = specs[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise SpecError(field, value, expected, where)
    if specs["batch"] < 1:
        raise SpecError("specs.batch", specs["batch"], "a whole number >= 1", where)
    if not isinstance(specs["workload"].get("name"), str):
        raise SpecError("specs.workload.name", specs["workload"].get("name"), "a model name",
                        where)
    strategy_from_record(specs, where)
    check_stack_section(specs.get("stack"), where)
    if source == "exec":
        ranks = specs["cluster"].get("ranks")
        if not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1:
            raise SpecError("specs.cluster.ranks", ranks, "a whole number of ranks >= 1", where)
        steps = specs["run"].get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise SpecError("specs.run.steps", steps, "a whole number of steps >= 1", where)


#: ``specs.stack`` (optional; null for a run without a software stack): field -> (JSON types,
#: what is expected). Written by ``hwmodels.stacks.stack_record``.
STACK_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a stack name"),
    "library": ((str,), "a collective library name"),
    "launch_s": (_NUMBER, "seconds >= 0 per call"),
    "copies": ((str,), "never, fused or always"),
    "cycle_s": (_NUMBER, "seconds >= 0 (Horovod's cycle; 0 for none)"),
    "bucket_bytes": ((int, type(None)), "a whole number of bytes or null"),
    "per_variable": ((bool,), "true or false"),
    "overlap_interference": ((*_NUMBER, type(None)), "a factor >= 0 or null"),
}
#: Stack fields added later: a record written before them reads as their default.
OPTIONAL_STACK_FIELDS: dict[str, tuple[str, ...]] = {
    "fusion": ("size", "cycle"),        # how messages are grouped (hwmodels.stacks)
    "after_backward": (False, True),    # collectives start after the backward pass
    "compression": ("none", "fp16", "bf16"),   # gradients cast to 2 bytes for the wire
}


def check_stack_section(stack: Any, where: str | None = None) -> None:
    """``specs.stack``: null, or an object with exactly :data:`STACK_FIELDS`, each well typed."""
    if stack is None:
        return
    if not isinstance(stack, dict):
        raise SpecError("specs.stack", stack, "a stack (an object) or null", where)
    for key in stack:
        if key in OPTIONAL_STACK_FIELDS:
            if stack[key] not in OPTIONAL_STACK_FIELDS[key]:
                raise SpecError(f"specs.stack.{key}", stack[key],
                                " or ".join(map(str, OPTIONAL_STACK_FIELDS[key])), where)
        elif key not in STACK_FIELDS:
            raise SpecError(f"specs.stack.{key}", stack[key], "one of the fields "
                            f"{', '.join([*STACK_FIELDS, *OPTIONAL_STACK_FIELDS])}", where)
    for key, (types, expected) in STACK_FIELDS.items():
        value = stack.get(key, ...)
        bad_bool = isinstance(value, bool) and bool not in types
        if value is ... or not isinstance(value, types) or bad_bool or \
                (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0):
            raise SpecError(f"specs.stack.{key}", None if value is ... else value, expected,
                            where)
    if stack["copies"] not in ("never", "fused", "always"):
        raise SpecError("specs.stack.copies", stack["copies"], "never, fused or always", where)


def strategy_from_record(specs: dict[str, Any], where: str | None = None) -> StrategySpec:
    """``specs.strategy`` of a run record as the StrategySpec it was written from."""
    raw = specs.get("strategy")
    if not isinstance(raw, dict):
        raise SpecError("specs.strategy", raw, "a strategy spec (name, bucket_bytes, "
                        "first_bucket_bytes, merge, staleness)", where)
    known = {f.name for f in fields(StrategySpec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"specs.strategy.{unknown[0]}", raw[unknown[0]],
                        "one of the fields " + ", ".join(sorted(known)), where)
    try:
        return StrategySpec(**raw)
    except SpecError as exc:
        raise SpecError(f"specs.strategy.{exc.field}", exc.value, exc.expected, where) from None
    except TypeError:
        raise SpecError("specs.strategy.name", None, "a strategy name", where) from None


def write_run_record(record: dict[str, Any], out_dir: str | Path) -> Path:
    """Check ``record`` and write it as ``out_dir/run.json`` (numpy scalars and paths become
    JSON); a malformed record is refused (SpecError) before anything is written."""
    path = Path(out_dir) / RUN_FILE
    record = json.loads(json.dumps(record, default=_jsonable))   # what a reader will see
    check_run_record(record, str(path))
    return write_text_atomic(path, json.dumps(record, indent=2) + "\n")


def read_run_record(run_dir: str | Path) -> dict[str, Any]:
    """Read and check ``run_dir/run.json`` (ValueError for bad JSON, SpecError naming the
    field for a record of another schema)."""
    path = Path(run_dir) / RUN_FILE
    record = read_json(path, "a run record")
    check_run_record(record, str(path))
    return record


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (Path, set, tuple)):
        return str(value) if isinstance(value, Path) else list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
