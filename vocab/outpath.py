"""The one guard for every output path, and the one atomic write.

Every writer (CLI and API) of run directories, tables, YAML, plots, Chrome traces and
checkpoints asks :func:`check_output` first, before any work starts, and writes through
:func:`atomic_write` (or :func:`write_text_atomic`). So:

- a path that exists is refused with a line naming it and ``--force`` (``overwrite=True`` in
  the API), unless the caller said to replace it;
- a path that lies under a file, or whose directory cannot be written, is refused up front,
  not after an hour of simulation;
- a write goes to a temporary name in the same directory and is renamed into place
  (``os.replace``, atomic on POSIX), so an interrupted write never leaves half a file under
  the real name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vocab.errors import SpecError

__all__ = ["FORCE_HINT", "atomic_write", "check_output", "check_writable", "write_text_atomic"]

#: How to say "replace it" on either side.
FORCE_HINT = "pass --force to replace it (overwrite=True in the API)"


def check_output(path: str | Path, *, overwrite: bool = False, kind: str = "file",
                 field: str = "--out") -> Path:
    """``path`` as a Path, once it is safe to write; SpecError naming ``field`` otherwise.

    ``kind`` ``'file'``: refused when it exists (unless ``overwrite``) or is a directory.
    ``kind`` ``'dir'``: refused when it is a file, or a directory that is not empty (unless
    ``overwrite``). Either way refused when it lies under a file or cannot be created.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise SpecError(field, str(path), f"a {'directory' if kind == 'dir' else 'file'} path")
    wrong_kind = path.is_dir() if kind == "file" else path.exists() and not path.is_dir()
    if wrong_kind:
        noun, found = ("file", "a directory") if kind == "file" else ("directory", "a file")
        raise SpecError(field, str(path), f"a {noun} path (it is {found})")
    exists = path.exists() and (kind == "file" or any(path.iterdir()))
    if exists and not overwrite:
        held = "exists" if kind == "file" else "is not empty"
        raise SpecError(field, str(path), f"a path that does not exist yet (it {held}; "
                        f"{FORCE_HINT})")
    check_writable(path, field)
    return path


def check_writable(path: str | Path, field: str = "--out") -> None:
    """SpecError unless ``path`` (or the directories it needs) can be created here.

    The nearest existing ancestor must be a directory that takes a new file: probed by
    creating one, since permission bits lie to root and to read-only mounts.
    """
    path = Path(path).absolute()
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SpecError(field, str(path), f"a path that can be created (it lies under the "
                        f"file {probe})")
    try:
        handle, name = tempfile.mkstemp(prefix=".gradsync-probe-", dir=probe)
    except OSError as exc:
        raise SpecError(field, str(path), f"a writable location ({probe}: "
                        f"{exc.strerror or exc})") from None
    os.close(handle)
    os.unlink(name)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any failure (or interrupt) the temporary file is removed and ``path`` is untouched.
    The parent directory is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, and with the real suffix: writers that pick a format by suffix (savefig,
    # to_parquet) pick the right one, and globs of the real names never match it.
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp",
                                    dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp's 0600 is not what a user expects
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
