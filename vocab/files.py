"""The one way gradsync reads an input file's bytes: size-limited, UTF-8, named in errors.

Every file kind (cluster, workload, profile, stack and sweep YAML through
:mod:`vocab.yamlfile`; ``run.json``; bench-net tables; collective-benchmark logs) is read
with :func:`read_text`, :func:`read_json` or :func:`read_csv`, and every input path or
folder is looked at with :func:`check_path` first, so a missing file, a directory, a
symlink loop, a file too big to be what it claims, bytes that are not UTF-8, JSON of the
wrong shape or a CSV without its header is one :class:`~vocab.errors.SpecError` naming the
file, never a traceback or a parse that runs for minutes.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from vocab.errors import SpecError

__all__ = ["MAX_INPUT_BYTES", "check_path", "read_csv", "read_json", "read_text"]

#: The largest input file read: the zoo's biggest workload is ~100 kB and a nccl-tests log
#: ~1 MB. Parsing YAML runs at roughly 8 s per MB here (a 50 MB workload file took 400 s).
MAX_INPUT_BYTES = 16 * 2**20
_PARSE_S_PER_MB = 8.0


def check_path(path: str | Path, what: str = "a file",
               kind: Literal["file", "dir", "any"] = "file") -> Path:
    """``path``, checked to exist as a ``kind`` (a file, a directory, either): SpecError
    naming it when missing, of the other kind, a symlink loop or not readable.

    ``Path.is_file()`` and ``is_dir()`` say False for a symlink loop or a path they may not
    see, and a caller that then goes on (``resolve()``, a directory walk) fails with a
    traceback; this is the one place every input path is looked at first."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise SpecError("path", str(path), f"{what} (a link to a missing path)") from None
        raise SpecError("path", str(path), f"an existing {'path' if kind == 'any' else kind} "
                        f"({what})") from None
    except OSError as exc:      # a symlink loop (ELOOP), a folder we may not enter (EACCES)
        reason = "a symlink loop" if exc.errno == errno.ELOOP else exc.strerror
        raise SpecError("path", str(path), f"{what} ({reason})") from None
    is_dir = os.path.isdir(path)
    if kind == "file" and is_dir:
        raise SpecError("path", str(path), f"{what}, not a directory")
    if kind == "dir" and not is_dir:
        raise SpecError("path", str(path), f"a directory ({what}), not a file")
    if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
        raise SpecError("path", str(path), f"a readable {'directory' if is_dir else 'file'} "
                        f"({what}; permission denied)")
    return path


def read_text(path: str | Path, what: str = "a text file",
              max_bytes: int = MAX_INPUT_BYTES, errors: str = "strict") -> str:
    """The UTF-8 text of ``path``; SpecError naming it when missing, a directory, a
    symlink loop, unreadable, larger than ``max_bytes`` or (with ``errors='strict'``) not
    UTF-8. ``errors='replace'`` is for logs, where a launcher's stray bytes are not the
    file's fault."""
    path = check_path(path, what, "file")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            mb = size / 1e6
            raise SpecError("size", f"{mb:.1f} MB", f"at most {max_bytes / 1e6:.0f} MB for "
                            f"{what} (parsing it would take about {mb * _PARSE_S_PER_MB:.0f} s)",
                            str(path))
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("path", str(path), f"an existing file ({what})") from None
    except IsADirectoryError:
        raise SpecError("path", str(path), f"{what}, not a directory") from None
    except OSError as exc:      # permissions among them
        raise SpecError("path", str(path), f"a readable file ({exc.strerror})") from None
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SpecError("encoding", f"byte {data[exc.start]:#04x} on line {line}",
                        f"UTF-8 text ({what})", str(path)) from None


def read_json(path: str | Path, what: str = "a JSON file", expect: type = dict) -> Any:
    """The JSON value in ``path``, which must be an ``expect`` (an object by default)."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SpecError("json", str(exc), f"valid JSON ({what})", str(path)) from None
    if not isinstance(value, expect):
        name = "a JSON object" if expect is dict else f"a JSON {expect.__name__}"
        raise SpecError("json", type(value).__name__, f"{name} ({what})", str(path))
    return value


def read_csv(path: str | Path, what: str = "a CSV table", required: Iterable[str] = (),
             optional: Iterable[str] | None = None) -> list[dict[str, str]]:
    """The data rows of the CSV at ``path`` (read with :func:`read_text`), each a dict of
    its header's columns; SpecError naming the file when it is empty, has no header with
    the ``required`` columns, a column outside ``required`` + ``optional`` (when
    ``optional`` is given: a typo such as ``baseline_gpu`` would otherwise be dropped
    silently), no data row, or a row with more cells than the header (a row with fewer
    has its last columns empty)."""
    text = read_text(path, what)
    required = tuple(required)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise SpecError("csv", str(exc), f"CSV text ({what}) at line {reader.line_num}",
                        str(path)) from None
    rows = [r for r in rows if r]              # blank lines, as csv.DictReader skips them
    if not rows:
        raise SpecError("header", "", f"a header row naming the columns {', '.join(required)}"
                        f" ({what})" if required else f"a header row ({what})", str(path))
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise SpecError(f"column {missing[0]}", ",".join(header)[:80], "a header naming the "
                        f"columns {', '.join(required)} ({what})", str(path))
    if optional is not None:
        known = (*required, *optional)
        for name in header:
            if name not in known:
                raise SpecError(f"column {name}", name, f"one of the columns "
                                f"{', '.join(known)} ({what})", str(path))
    if len(rows) == 1:
        raise SpecError("rows", 0, f"at least one data row below the header ({what})",
                        str(path))
    out = []
    for number, cells in enumerate(rows[1:], start=1):
        if len(cells) > len(header):
            raise SpecError(f"row {number}", ",".join(cells)[:80], f"at most {len(header)} "
                            f"cells, one per header column (a shifted row?)", str(path))
        # Fewer cells: the last columns left empty (as csv.DictReader reads them); a cell
        # the caller needs is then checked as empty.
        cells = [c.strip() for c in cells] + [""] * (len(header) - len(cells))
        out.append(dict(zip(header, cells)))
    return out
