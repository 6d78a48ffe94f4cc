"""Shared test settings: headless plots, a hypothesis profile, and the MPI launcher's path."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a dev extra; tests that need it import it themselves
    pass
else:
    # Simulations take milliseconds, not microseconds: no per-example deadline; CI runs fewer.
    settings.register_profile("default", deadline=None, max_examples=40,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci" if os.environ.get("CI") else "default")

ROOT = Path(__file__).resolve().parent.parent


def find_mpiexec() -> str | None:
    """mpiexec beside this interpreter (the pip ``mpich`` wheel puts it there), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@pytest.fixture(scope="session")
def mpiexec() -> str:
    """Path of mpiexec; MPI tests skip (loudly, with the reason) where there is none."""
    path = find_mpiexec()
    if path is None:
        pytest.skip("no mpiexec: install the executor extra (pip install -e '.[executor]')")
    return path
