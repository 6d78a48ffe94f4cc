"""The torch model zoo against the workload files, and the introspection helpers.

Skipped where torch is absent. Full-size models are built on the ``meta`` device (shapes
only, no memory, no arithmetic); only the ``-ci`` sizes run real training steps.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from executor.introspect import (  # noqa: E402
    measure_profile,
    module_flops,
    UnusedParametersWarning,
    workload_from_module,
)
from executor.models import (  # noqa: E402
    build_model,
    example_batch,
    list_models,
    loss_function,
    model_info,
    parametric_layers,
)
from executor.models.export_workloads import workload_text  # noqa: E402
from executor.models.efficientnet import EfficientNet, EfficientNetConfig, MBConv  # noqa: E402
from executor.models.googlenet import AUX_WEIGHT  # noqa: E402
from executor.models.resnet import ResNet, ResNetConfig  # noqa: E402
from executor.models.inception import AUX_WEIGHT as INCEPTION_AUX_WEIGHT  # noqa: E402
from vocab.errors import SpecError, UnknownNameError  # noqa: E402
from vocab.workload import WORKLOAD_DIR, list_workloads, load_workload  # noqa: E402

FULL = ["alexnet", "googlenet", "inception-v3", "resnet18", "resnet50", "resnet101", "resnet152",
        "resnext101-32x4d", "se-resnext101-32x4d", "efficientnet-b0", "efficientnet-b4",
        "vgg16", "bert-base", "bert-large", "gpt2-small"]
SMALL = [name for name in list_models() if name not in FULL]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on 2 cores shared with other jobs, torch's second OpenMP thread
    makes small CPU steps 20-100x slower (measured: resnet50-ci 0.1 s -> 9 s per step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def on_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return build_model(name)


def test_every_model_has_a_workload_file_and_back() -> None:
    assert list_models() == list_workloads()


@pytest.mark.parametrize("name", FULL + SMALL)
def test_layer_names_and_parameter_counts_equal_the_workload_file(name: str) -> None:
    model = on_meta(name) if name in FULL else build_model(name)
    torch_layers = [(n, sum(p.numel() for p in ps), len(ps))
                    for n, _, ps in parametric_layers(model)]
    file_layers = [(l.name, l.params, l.param_tensors)
                   for l in load_workload(name).layers if l.params > 0]
    assert torch_layers == file_layers
    assert sum(p.numel() for p in model.parameters()) == load_workload(name).total_params


@pytest.mark.parametrize("name", list_models())
def test_the_workload_file_is_what_the_export_script_writes(name: str) -> None:
    # FLOPs, activation sizes, forward order: regenerate with
    # `python -m executor.models.export_workloads` when a model changes
    assert (WORKLOAD_DIR / f"{name}.yaml").read_text() == workload_text(name)


@pytest.mark.parametrize("name", SMALL)
def test_a_small_model_trains_a_step_and_every_parameter_gets_a_gradient(name: str) -> None:
    # how quickly (CPU seconds, goal < 1 s a step): benchmarks/bench_micro.py
    torch.manual_seed(0)
    model = build_model(name)
    inputs, targets = example_batch(name, model_info(name).default_batch)
    loss_function(name)(model(inputs), targets).backward()  # warm-up: allocator, kernels
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.zero_grad()
    loss = loss_function(name)(model(inputs), targets)
    loss.backward()
    assert math.isfinite(loss.item())


def test_alexnet_uses_caffes_grouped_convolutions() -> None:
    model = on_meta("alexnet")
    assert [model.conv2.groups, model.conv4.groups, model.conv5.groups] == [2, 2, 2]
    assert model(torch.zeros(1, 3, 227, 227, device="meta")).shape == (1, 1000)


def test_googlenet_trains_with_both_auxiliary_heads() -> None:
    model = build_model("googlenet-ci")
    inputs, targets = example_batch("googlenet-ci", 4)
    main, aux1, aux2 = model(inputs)
    ce = torch.nn.functional.cross_entropy
    expected = ce(main, targets) + AUX_WEIGHT * (ce(aux1, targets) + ce(aux2, targets))
    assert loss_function("googlenet-ci")((main, aux1, aux2), targets).item() == \
        pytest.approx(expected.item())
    model.eval()
    assert model(inputs).shape == (4, 10)


def test_inception_v3_runs_its_layers_in_registration_order_and_trains_its_aux_head() -> None:
    # forward order = parameters() order is what the workload file and the tracer assume
    model = build_model("inception-v3-ci")
    ran: list[str] = []
    for name, module, _ in parametric_layers(model):
        module.register_forward_pre_hook(lambda m, a, name=name: ran.append(name))
    inputs, targets = example_batch("inception-v3-ci", 2)
    main, aux = model(inputs)
    assert ran == [name for name, _, _ in parametric_layers(model)]
    ce = torch.nn.functional.cross_entropy
    assert loss_function("inception-v3-ci")((main, aux), targets).item() == \
        pytest.approx((ce(main, targets) + INCEPTION_AUX_WEIGHT * ce(aux, targets)).item())
    assert on_meta("inception-v3").eval()(torch.zeros(1, 3, 299, 299, device="meta")).shape \
        == (1, 1000)


def _small_resnext(se: bool) -> torch.nn.Module:
    config = ResNetConfig("bottleneck", (1, 1, 1, 1), width=16, num_classes=10,
                          image_size=32, groups=32, base_width=4, se=se)
    return ResNet(config).eval()


def test_se_resnext_is_resnext_with_a_gate_between_zero_and_one() -> None:
    # The same weights; an SE gate held open (sigmoid -> 1) gives ResNeXt's output exactly,
    # one held shut leaves each block only its shortcut.
    torch.manual_seed(0)
    plain, gated = _small_resnext(False), _small_resnext(True)
    missing = gated.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(".se." in key for key in missing)
    x = torch.randn(2, 3, 32, 32)
    block = gated.layer1[0]
    h = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        outputs = {}
        for bias in (50.0, -50.0):
            for name, module in gated.named_modules():
                if name.endswith(".se.fc2"):
                    module.weight.zero_()
                    module.bias.fill_(bias)
            outputs[bias] = gated(x), block(h)
        assert torch.allclose(outputs[50.0][0], plain(x), atol=1e-6)
        assert torch.allclose(outputs[-50.0][1], torch.relu(block.downsample(h)), atol=1e-6)
        assert not torch.allclose(outputs[50.0][1], outputs[-50.0][1], atol=1e-3)
    conv2 = dict(plain.named_modules())["layer1.0.conv2"]
    assert conv2.groups == 32 and conv2.in_channels == 32  # 32 groups of one channel each


def test_efficientnet_keeps_a_residual_only_where_the_shape_allows() -> None:
    model = EfficientNet(EfficientNetConfig(image_size=64, num_classes=10)).eval()
    blocks = [m for m in model.modules() if isinstance(m, MBConv)]
    assert len(blocks) == 16                          # B0: 1 + 2 + 2 + 3 + 3 + 4 + 1
    assert sum(b.residual for b in blocks) == 16 - 7  # every stage's first block has none
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    wide = EfficientNet(EfficientNetConfig.b4(10))
    assert wide.features[0][0].out_channels == 48 and wide.classifier[1].in_features == 1792


def test_the_language_models_tie_their_heads_to_the_embeddings() -> None:
    gpt2 = build_model("gpt2-ci")
    assert "lm_head" not in {n for n, _, _ in parametric_layers(gpt2)}
    ids, targets = example_batch("gpt2-ci", 2)
    assert gpt2(ids).shape == (2, 32, 1000) and targets.shape == (2, 32)
    assert torch.equal(ids[:, 1:], targets[:, :-1])  # next-token targets
    bert = build_model("bert-ci")
    ids, targets = example_batch("bert-ci", 2)
    mlm, pair = bert(ids)
    assert mlm.shape == (2, 32, 1000) and pair.shape == (2, 2) and targets.shape == (2, 33)


def test_build_model_rejects_bad_requests() -> None:
    with pytest.raises(UnknownNameError, match="resnet50"):
        build_model("resnet51")
    with pytest.raises(SpecError, match="num_classes"):
        build_model("gpt2-ci", num_classes=10)
    with pytest.raises(SpecError, match="batch"):
        example_batch("alexnet-ci", 0)
    assert build_model("alexnet-ci", num_classes=7).fc8.out_features == 7


# ----------------------------------------------------------------------------- introspection

class Tiny(nn.Module):
    """conv -> compute-only stage -> linear, with an unused-in-order registration."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8 * 4 * 4, 3)          # registered first, runs last
        self.conv = nn.Conv2d(2, 8, 3, padding=1, groups=2)
        self.scale = Scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.scale(self.conv(x)).flatten(1))


class Scale(nn.Module):
    """A parameter-free module that declares its FLOPs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    @staticmethod
    def flop_count(inputs: tuple, output: torch.Tensor) -> float:
        return float(output.numel())


def test_workload_from_module_counts_flops_in_forward_order() -> None:
    workload = workload_from_module(Tiny(), torch.zeros(5, 2, 4, 4), "tiny")
    conv, scale, fc = workload.layers
    assert [conv.name, scale.name, fc.name] == ["conv", "scale", "fc"]
    assert conv.fwd_flops == 2 * (8 * 4 * 4) * (1 * 3 * 3)  # out elements x fan-in, per sample
    assert (scale.params, scale.fwd_flops) == (0, 128)
    assert (fc.params, fc.param_tensors, fc.fwd_flops) == (128 * 3 + 3, 2, 2 * 3 * 128)
    assert conv.activation_bytes == 8 * 16 * 4 and workload.default_batch == 5


def test_a_module_with_parameters_that_never_runs_is_a_warning_and_still_counted() -> None:
    model = Tiny()
    model.spare = nn.Linear(2, 2)
    with pytest.warns(UnusedParametersWarning, match="spare"):
        workload = workload_from_module(model, torch.zeros(1, 2, 4, 4), "tiny")
    assert workload.layers[-1].name == "spare" and workload.layers[-1].params == 2 * 2 + 2
    assert workload.total_params == sum(p.numel() for p in model.parameters())


def test_norm_and_embedding_flop_rules() -> None:
    x = torch.zeros(2, 6)
    assert module_flops(nn.LayerNorm(6), (x,), x) == 5 * 12
    assert module_flops(nn.Embedding(10, 6), (torch.zeros(2, dtype=torch.long),), x) == 0


def test_measure_profile_times_every_layer_and_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    model = build_model("gpt2-ci")
    before = [p.detach().clone() for p in model.parameters()]
    ids, targets = example_batch("gpt2-ci", 4)
    prof = measure_profile(model, ids, loss_function("gpt2-ci"), "cpu", repeats=2,
                           target=targets, model_name="gpt2-ci")
    workload = load_workload("gpt2-ci")
    prof.check_workload(workload)
    assert prof.layer_names == tuple(l.name for l in workload.layers)
    assert (prof.device, prof.model, prof.batch) == ("cpu", "gpt2-ci", 4)
    assert prof.compute_s > 0 and prof.update_s > 0
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert "perf_counter" in prof.source


def test_measure_profile_skips_the_backward_of_frozen_layers() -> None:
    model = Tiny()
    model.conv.requires_grad_(False)
    prof = measure_profile(model, torch.randn(3, 2, 4, 4), lambda out: out.sum(), "cpu",
                           repeats=1)
    assert prof.layer_names == ("conv", "scale", "fc")
    assert prof.backward_s[0] == 0.0 and prof.forward_s[0] > 0
