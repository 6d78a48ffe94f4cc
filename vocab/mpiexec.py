"""The one ``mpiexec`` command line: found once, with the flags its MPI needs.

The launcher (``gradsync run``), ``gradsync bench-net``, the calibration protocol and the
tests all start jobs as ``mpiexec -n N python -m ...``. They build that command here, so each
gets the same launcher (the one the ``mpich`` wheel puts beside this interpreter, else the
first on ``PATH``) and the same Open MPI flags: ``--oversubscribe`` (Open MPI refuses 4 ranks
on 2 cores otherwise) and ``--allow-run-as-root`` when running as root (in containers).
MPICH's Hydra needs neither. This module only builds argv lists: it imports neither torch nor
mpi4py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from vocab.errors import GradsyncError

__all__ = ["INSTALL_HINT", "MpiexecError", "find_mpiexec", "is_open_mpi", "locate_mpiexec",
           "mpi_flavour", "mpiexec_command", "python_argv"]

#: How to get an MPI launcher into the active environment.
INSTALL_HINT = "pip install mpi4py mpich"


class MpiexecError(GradsyncError):
    """No usable ``mpiexec``."""


def locate_mpiexec() -> str | None:
    """``mpiexec`` beside this interpreter (the ``mpich`` wheel installs it there), else on
    ``PATH``; None when there is none."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


def find_mpiexec() -> str:
    """The path of ``mpiexec`` (see :func:`locate_mpiexec`); raises MpiexecError saying how to
    install one when there is none."""
    found = locate_mpiexec()
    if found is None:
        raise MpiexecError("no mpiexec beside the Python interpreter or on PATH; install one "
                           f"into this environment ({INSTALL_HINT}) or put an MPI launcher "
                           "on PATH")
    return found


@cache
def mpi_flavour(mpiexec: str) -> str:
    """``'openmpi'``, ``'mpich'`` or ``'unknown'``, from ``mpiexec --version`` (asked once)."""
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = out.stdout + out.stderr
    if "Open MPI" in text or "OpenRTE" in text or "open-mpi" in text:
        return "openmpi"
    if "HYDRA" in text or "MPICH" in text or "Intel(R) MPI" in text:
        return "mpich"
    return "unknown"


def is_open_mpi(mpiexec: str | Path) -> bool:
    """True when ``mpiexec`` is Open MPI's (its ``--version`` says so; cached per path)."""
    return mpi_flavour(str(mpiexec)) == "openmpi"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def python_argv(module: str, *args: str) -> list[str]:
    """``[this python, -m, module, *args]``: what each rank runs."""
    return [sys.executable, "-m", module, *args]


def mpiexec_command(nprocs: int, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                    mpiexec: str | None = None, flavour: str | None = None,
                    oversubscribe: bool = True) -> list[str]:
    """``mpiexec [flags] -n NPROCS ARGV...``, with the flags the launcher's MPI needs.

    ``mpiexec`` defaults to :func:`find_mpiexec`, ``flavour`` (``'openmpi'``, ``'mpich'`` or
    ``'unknown'``) to :func:`mpi_flavour` of it. Open MPI gets ``--oversubscribe`` (unless
    ``oversubscribe`` is False) and ``--allow-run-as-root`` as root. ``env`` is exported to
    every rank: ``-x NAME=VALUE`` for Open MPI, ``-genv NAME VALUE`` for MPICH's Hydra (an
    unknown launcher with ``env`` is an MpiexecError: set it in mpiexec's own environment).
    """
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"nprocs must be a whole number >= 1, got {nprocs!r}")
    if isinstance(argv, str) or not argv:
        raise ValueError(f"argv must be a non-empty list of arguments, got {argv!r}")
    path = mpiexec if mpiexec is not None else find_mpiexec()
    kind = flavour if flavour is not None else mpi_flavour(path)
    flags: list[str] = []
    if kind == "openmpi":
        if oversubscribe:
            flags.append("--oversubscribe")
        if _is_root():
            flags.append("--allow-run-as-root")
    for name, value in (env or {}).items():
        if kind == "openmpi":
            flags += ["-x", f"{name}={value}"]
        elif kind == "mpich":
            flags += ["-genv", name, str(value)]
        else:
            raise MpiexecError(f"{path} is neither Open MPI nor MPICH, so env cannot be passed "
                               "on its command line; set it in the environment mpiexec runs in")
    return [path, *flags, "-n", str(nprocs), *argv]
