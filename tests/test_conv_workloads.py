"""The convergence study's workloads: modular-addition data, the NQM module's gradient, and
the executor's new learning-rate options."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from executor import data as datamod  # noqa: E402
from executor.config import RunConfig, exec_strategy  # noqa: E402
from executor.models import build_model, example_batch, loss_function  # noqa: E402
from executor.models.modadd import MAX_P  # noqa: E402
from vocab.errors import SpecError  # noqa: E402


def test_modular_addition_holds_every_pair_once_labelled_by_the_sum() -> None:
    arrays = datamod.load_arrays("modadd:11", seed=3)
    x = torch.cat([arrays.x_train, arrays.x_test])
    y = torch.cat([arrays.y_train, arrays.y_test])
    assert len(x) == 121 and len({tuple(r) for r in x.tolist()}) == 121
    assert torch.equal(y, (x[:, 0] + x[:, 1]) % 11)
    assert not arrays.x_train.is_floating_point()        # tokens, not standardised


@pytest.mark.parametrize("data", ["modadd:1", "modadd:x", f"modadd:{MAX_P + 1}"])
def test_a_bad_modulus_names_the_data(data: str) -> None:
    with pytest.raises(SpecError, match="modadd:P"):
        datamod.load_arrays(data, seed=0)
    if data != f"modadd:{MAX_P + 1}":     # the bound is the model's, checked when loading
        with pytest.raises(SpecError, match="modadd:P"):
            RunConfig(nprocs=1, model="transformer-modadd", strategy=exec_strategy("sync"),
                      batch=1, steps=1, out="o", data=data)


def test_the_transformer_classifies_integer_and_float_tokens_alike() -> None:
    torch.manual_seed(0)
    model = build_model("transformer-modadd")
    ab = torch.tensor([[1, 2], [5, 7]])
    assert torch.equal(model(ab), model(ab.double().float()))
    assert model(ab).shape == (2, MAX_P)


def test_the_nqm_module_has_the_analytic_loss_and_noisy_gradient() -> None:
    model = build_model("nqm")
    z, target = example_batch("nqm", 64, seed=1)
    loss = loss_function("nqm")(model(z), target)
    h = 1.0 / torch.arange(1, 401, dtype=torch.float64)
    assert float(loss.detach()) == pytest.approx(0.5 * float(h.sum()), rel=1e-6)   # theta = 1
    loss.backward()
    grad = torch.cat([getattr(model, f"block{b}").theta.grad for b in range(1, 5)]).double()
    expected = h + h.sqrt() * z.double().mean(dim=0)
    assert torch.allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_run_config_carries_the_schedule_to_each_step() -> None:
    cfg = RunConfig(nprocs=4, model="mlp-digits", strategy=exec_strategy("sync"), batch=16,
                    steps=10, out="o", lr=0.1, warmup_steps=2, base_batch=32)
    assert [cfg.lr_at(t) for t in range(3)] == pytest.approx([0.1, 0.2, 0.2])
    with pytest.raises(SpecError, match="warmup_steps"):
        RunConfig(nprocs=1, model="mlp-digits", strategy=exec_strategy("sync"), batch=1,
                  steps=1, out="o", warmup_steps=-1)
