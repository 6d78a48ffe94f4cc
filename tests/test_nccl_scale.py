"""NCCL's closed form across many nodes, unfitted, against the ABCI nccl-tests logs.

The ABCI V-node logs (4 V100 per node, 2 EDR, NCCL 2.8; 1 to 32 nodes) are measurements of
the machine the ``abci-v100`` preset describes. Without any fit, the closed form should follow
the measured allreduce times at scale where Horovod's and DDP's messages live (1 MB up): a
check that latency and bandwidth grow with the node count as NCCL's do. Smaller messages are
left to the fitted model (``python -m calibration.collfit --check``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from calibration.collbench import read_collective_logs
from calibration.collfit import allreduce_curves
from hwmodels.cluster import load_cluster
from hwmodels.commmodel import CommModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nccl-tests" / "abci-v100"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"no public nccl-tests logs at {DATA}")
MiB = 1 << 20


@needs_data
@pytest.mark.parametrize("nodes", [8, 16, 32])
def test_unfitted_closed_form_follows_abci_from_one_megabyte(nodes: int) -> None:
    curves = allreduce_curves(read_collective_logs(DATA))
    curve = curves[(nodes, 4)]
    model = CommModel(load_cluster("abci-v100").with_nodes(nodes), library="nccl2.8")
    errors = [model.allreduce(n).at(n) / t - 1
              for n, t in zip(curve["nbytes"], curve["time_s"]) if n >= MiB]
    assert len(errors) >= 5
    assert max(abs(e) for e in errors) < 0.2
