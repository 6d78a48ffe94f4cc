"""Running the project's entry points in-process for the bad-input tests, and proving that a
refused command left the user's files as they were (tests/test_bad_inputs.py and
tests/test_bad_input_battery.py)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import signal
from pathlib import Path


def tree_digest(root: Path) -> str:
    """One hash of every path, mode and byte under ``root``; links as links (a loop too)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)} {info.st_mode:o}".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file() and info.st_mode & 0o444:
            digest.update(path.read_bytes())
    return digest.hexdigest()


# -- running an entry point in-process ------------------------------------------------------
def run_entry(main: str, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``main(argv)`` in ``cwd``: (exit status, stdout, stderr); signal handlers restored."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    module = importlib.import_module("gradsync.cli.main" if main == "gradsync" else
                                     main + (".__main__" if main == "executor" else ""))
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = module.main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except Exception:       # noqa: BLE001 - a traceback is what the test looks for
                import traceback
                traceback.print_exc()
                rc = 1
    finally:
        os.chdir(here)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return rc, out.getvalue(), err.getvalue()
