"""On the digits data every strategy ends within 1 percentage point of sync (and plots)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("mpi4py")

from executor.convergence import main  # noqa: E402


@pytest.mark.mpi
@pytest.mark.slow
def test_every_strategy_reaches_sync_accuracy_on_digits(mpiexec, tmp_path):
    assert main(["--out", str(tmp_path), "--epochs", "5"]) == 0
    assert (tmp_path / "loss-curves.png").exists()
    assert (tmp_path / "loss-delayed.png").exists()
    assert (tmp_path / "convergence.csv").exists()
