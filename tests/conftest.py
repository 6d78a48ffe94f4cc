"""Shared test settings: headless plots, a hypothesis profile, and the MPI launcher's path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vocab.mpiexec import INSTALL_HINT, locate_mpiexec

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


@pytest.fixture(scope="session")
def mpiexec() -> str:
    """Path of mpiexec; MPI tests skip (loudly, with the reason) where there is none."""
    path = locate_mpiexec()
    if path is None:
        pytest.skip(f"no mpiexec: install one ({INSTALL_HINT}) or the executor extra "
                    "(pip install -e '.[executor]')")
    return path
