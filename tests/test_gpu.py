"""GPU tier: runs only where CUDA is present (never on CI). Select with ``pytest -m gpu``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")]


def test_a_profile_measured_on_the_gpu_covers_every_layer() -> None:
    from executor.introspect import measure_profile
    from executor.models import build_model, example_batch, loss_function
    from vocab.workload import load_workload

    model = build_model("resnet18-ci").cuda()
    x, y = example_batch("resnet18-ci", 32, device="cuda")
    profile = measure_profile(model, x, loss_function("resnet18-ci"), "cuda", repeats=3,
                              target=y, model_name="resnet18-ci")
    workload = load_workload("resnet18-ci")
    profile.check_workload(workload)
    assert len(profile.forward_s) == len(workload.layers)
    assert profile.compute_s > 0 and all(t >= 0 for t in profile.backward_s)
