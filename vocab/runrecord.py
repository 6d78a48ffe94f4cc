"""``run.json``: every run describes itself (resolved specs, versions, seed, wall time, error)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from vocab.trace import SCHEMA_VERSION

RUN_FILE = "run.json"
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


def make_run_record(kind: str, run_id: str, specs: dict[str, Any], seed: int | None,
                    wall_s: float | None = None, error: str | None = None,
                    **extra: Any) -> dict[str, Any]:
    """A run record: ``kind`` is 'simulate', 'exec', 'bench-net', ...; ``specs`` fully resolved."""
    return {
        "run_id": run_id,
        "kind": kind,
        "trace_schema_version": SCHEMA_VERSION,
        "specs": specs,
        "seed": seed,
        "wall_s": wall_s,
        "error": error,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gradsync_version": package_version(),
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        **extra,
    }


def write_run_record(record: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``record`` as ``out_dir/run.json`` (numpy scalars and paths become JSON)."""
    path = Path(out_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    return path


def read_run_record(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run_dir/run.json``."""
    return json.loads((Path(run_dir) / RUN_FILE).read_text())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (Path, set, tuple)):
        return str(value) if isinstance(value, Path) else list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
