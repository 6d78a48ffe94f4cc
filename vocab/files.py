"""The one way gradsync reads an input file's bytes: size-limited, UTF-8, named in errors.

Every file kind (cluster, workload, profile, stack and sweep YAML through
:mod:`vocab.yamlfile`; ``run.json``; bench-net tables; collective-benchmark logs) is read
with :func:`read_text` or :func:`read_json`, so a missing file, a directory, a file too big
to be what it claims, bytes that are not UTF-8 or JSON of the wrong shape is one
:class:`~vocab.errors.SpecError` naming the file, never a traceback or a parse that runs
for minutes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vocab.errors import SpecError

__all__ = ["MAX_INPUT_BYTES", "read_json", "read_text"]

#: The largest input file read: the zoo's biggest workload is ~100 kB and a nccl-tests log
#: ~1 MB. Parsing YAML runs at roughly 8 s per MB here (a 50 MB workload file took 400 s).
MAX_INPUT_BYTES = 16 * 2**20
_PARSE_S_PER_MB = 8.0


def read_text(path: str | Path, what: str = "a text file",
              max_bytes: int = MAX_INPUT_BYTES, errors: str = "strict") -> str:
    """The UTF-8 text of ``path``; SpecError naming it when missing, a directory,
    unreadable, larger than ``max_bytes`` or (with ``errors='strict'``) not UTF-8.
    ``errors='replace'`` is for logs, where a launcher's stray bytes are not the file's
    fault."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise IsADirectoryError
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
