"""Zoo workloads: published totals, FLOPs, file format, validation of bad files, the CLI.

None of these tests needs torch: the simulator reads the YAML files, which
``python -m executor.models.export_workloads`` generates (tests/test_models.py checks them
against the torch definitions when torch is installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradsync.cli.main import main as gradsync
from vocab.errors import SpecError, UnknownNameError
from vocab.workload import (
    Layer,
    Workload,
    list_workloads,
    load_workload,
    save_workload,
    workload_from_dict,
    workload_to_dict,
    workload_to_yaml,
)

BAD = Path(__file__).resolve().parent / "data" / "bad_workloads"

#: (parameters, parameter tensors): Caffe BVLC prototxts, torchvision, Hugging Face.
PUBLISHED = {
    "alexnet": (60_965_224, 16),
    "googlenet": (13_378_280, 128),
    "inception-v3": (27_161_264, 292),
    "resnet18": (11_689_512, 62),
    "resnet50": (25_557_032, 161),
    "resnet101": (44_549_160, 314),
    "resnet152": (60_192_808, 467),
    "resnext101-32x4d": (44_177_704, 314),       # timm / Cadene pretrainedmodels
    "se-resnext101-32x4d": (48_955_416, 446),    # Cadene pretrainedmodels se_resnext101_32x4d
    "efficientnet-b0": (5_288_548, 213),         # torchvision efficientnet_b0
    "efficientnet-b4": (19_341_616, 418),        # torchvision efficientnet_b4
    "vgg16": (138_357_544, 32),
    "bert-base": (109_482_240, 199),
    "bert-large": (335_141_888, 391),
    "gpt2-small": (124_439_808, 148),
}
FULL_TO_CI = {"alexnet": "alexnet-ci", "googlenet": "googlenet-ci",
              "inception-v3": "inception-v3-ci", "resnet18": "resnet18-ci",
              "resnet50": "resnet50-ci", "vgg16": "vgg16-ci", "bert-base": "bert-ci",
              "gpt2-small": "gpt2-ci"}


def gmac(workload: Workload, prefix_excluded: tuple[str, ...] = ()) -> float:
    """Forward multiply-accumulates per sample, in billions (FLOPs are 2 x MACs)."""
    flops = sum(l.fwd_flops for l in workload.layers if not l.name.startswith(prefix_excluded))
    return flops / 2e9


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_zoo_totals_match_the_published_models(name: str) -> None:
    workload = load_workload(name)
    assert (workload.total_params, workload.param_tensors) == PUBLISHED[name]
    assert workload.total_grad_bytes == 4 * workload.total_params


def test_the_zoo_lists_every_model_and_its_ci_size() -> None:
    names = set(list_workloads())
    assert set(PUBLISHED) | set(FULL_TO_CI.values()) | {"mlp-digits"} <= names


@pytest.mark.parametrize("name", list_workloads())
def test_every_zoo_file_says_where_it_comes_from(name: str) -> None:
    workload = load_workload(name)
    assert workload.name == name
    assert workload.source and workload.description
    for layer in workload.layers:
        assert layer.fwd_flops >= 0 and layer.activation_bytes > 0
        if layer.params == 0:  # compute-only: nothing to communicate
            assert layer.param_tensors == 0 and layer.grad_bytes == 0 and layer.fwd_flops > 0


def test_caffe_batches_are_the_defaults() -> None:
    assert load_workload("alexnet").default_batch == 256
    assert load_workload("googlenet").default_batch == 32


def test_alexnet_keeps_96_percent_of_its_parameters_in_fc6_to_fc8() -> None:
    workload = load_workload("alexnet")
    fc = sum(l.params for l in workload.layers if l.name in ("fc6", "fc7", "fc8"))
    assert [l.name for l in workload.layers][-3:] == ["fc6", "fc7", "fc8"]  # ready first
    assert fc / workload.total_params == pytest.approx(0.9617, abs=5e-4)


def test_googlenet_without_its_auxiliary_heads_is_the_inference_net() -> None:
    layers = [l for l in load_workload("googlenet").layers
              if not l.name.startswith(("loss1.", "loss2."))]
    assert sum(l.params for l in layers) == 6_998_552
    assert sum(l.param_tensors for l in layers) == 116  # 58 layers, weight + bias
    names = [l.name for l in load_workload("googlenet").layers]
    # heads sit in forward order right after the inception block they branch from
    assert names.index("loss1.conv") == names.index("inception_4a.pool_proj") + 1
    assert names.index("loss2.conv") == names.index("inception_4d.pool_proj") + 1


# Published forward multiply-accumulates per image. The figures are quoted to 2-3 significant
# digits and count convolutions and fully connected layers only; our files also count 5 FLOPs
# per element for batch norm (ResNets), which adds about 0.7 % to ResNet-50. A 1.5 % tolerance
# covers both the rounding and that convention, while still catching a wrong stride, a
# missing group or a head counted twice (each of which moves the total by 5 % or more).
PUBLISHED_GMAC = {"alexnet": 0.72, "googlenet": 1.59, "resnet50": 4.09, "vgg16": 15.47,
                  "resnet18": 1.81,
                  # Hu et al. 2018 (SENet), Table 2: 7.99 and 8.00 GFLOPs (multiply-adds)
                  "resnext101-32x4d": 7.99, "se-resnext101-32x4d": 8.00}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMAC))
def test_forward_flops_are_near_the_published_figures(name: str) -> None:
    assert gmac(load_workload(name)) == pytest.approx(PUBLISHED_GMAC[name], rel=0.015)


@pytest.mark.parametrize("name, published", [("efficientnet-b0", 0.39),
                                             ("efficientnet-b4", 4.39)])
def test_efficientnet_convolutions_match_torchvisions_multiply_adds(name: str,
                                                                   published: float) -> None:
    # torchvision's figures (0.39 and 4.39 GFLOPS, multiply-adds) count convolutions and the
    # classifier; batch norm (the ".1" of every conv-bn pair) adds 3 % to these BN-heavy
    # nets under our convention, so it is left out here
    workload = load_workload(name)
    batch_norms = tuple(l.name for l in workload.layers
                        if l.name.endswith(".1") and not l.name.startswith("classifier"))
    assert gmac(workload, batch_norms) == pytest.approx(published, rel=0.015)


def test_googlenet_heads_add_little_compute() -> None:
    workload = load_workload("googlenet")
    assert gmac(workload, ("loss1.", "loss2.")) == pytest.approx(1.58, rel=0.01)


def test_inception_v3_without_its_auxiliary_head_is_torchvisions_inference_net() -> None:
    # torchvision's inception_v3 without aux_logits: 23,834,568 parameters and 5.71 GFLOPS
    # (its docs count multiply-accumulates) at 299x299; every convolution has its batch norm
    workload = load_workload("inception-v3")
    main = [l for l in workload.layers if not l.name.startswith("AuxLogits.")]
    assert sum(l.params for l in main) == 23_834_568
    assert gmac(workload, ("AuxLogits.",)) == pytest.approx(5.71, rel=0.015)
    convs = [l.name for l in main if l.name.endswith(".conv")]
    assert [l.name for l in main if l.name.endswith(".bn")] == \
        [name[:-len("conv")] + "bn" for name in convs]
    names = [l.name for l in workload.layers]
    assert names.index("AuxLogits.conv0.conv") == names.index("Mixed_6e.branch_pool.bn") + 1
    assert names[-1] == "fc"  # the classifier's gradient is ready first


def test_transformer_flops_follow_the_closed_form() -> None:
    # per sequence of T tokens: 2 T x (4 d^2 attention + 8 d^2 feed-forward weights) per layer,
    # the pooler on one token, 4 T^2 d for the score matmuls per layer, the tied decoder
    # 2 T d V, and 5 FLOPs per element for each of the 2 L + 1 LayerNorms
    bert = load_workload("bert-base")
    t, d, layers, vocab = 128, 768, 12, 30522
    expected = 2 * t * layers * (4 * d * d + 8 * d * d) + 2 * d * d \
        + layers * 4 * t * t * d + 2 * t * d * vocab + 5 * t * d * (1 + 2 * layers)
    assert bert.fwd_flops_per_sample() == pytest.approx(expected, rel=1e-12)


def test_gpt2_ties_its_head_to_the_embedding() -> None:
    gpt2 = load_workload("gpt2-small")
    head = gpt2.layers[-1]
    assert (head.name, head.params) == ("lm_head", 0)
    assert head.fwd_flops == 2 * 1024 * 768 * 50257
    assert gpt2.layers[0].name == "wte" and gpt2.layers[0].params == 50257 * 768


# ----------------------------------------------------------------------------- file format

def test_a_workload_survives_a_round_trip_through_its_dict_and_file(tmp_path: Path) -> None:
    for name in ("alexnet", "bert-ci"):
        workload = load_workload(name)
        assert workload_from_dict(workload_to_dict(workload)) == workload
        path = save_workload(workload, tmp_path / f"{name}.yaml")
        assert load_workload(path) == workload
        assert load_workload(str(path)) == workload


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    workload = Workload("tiny", (Layer("fc", 10, 20.0),))
    path = save_workload(workload, tmp_path / "tiny.yaml")
    with pytest.raises(SpecError, match="overwrite"):
        save_workload(workload, path)
    save_workload(workload, path, overwrite=True)
    assert load_workload(path).layers[0].bwd_flops == 40.0


def test_a_minimal_file_gets_the_layer_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nlayers:\n  - {name: fc1, params: 100}\n"
                    "  - {name: attn, params: 0, fwd_flops: 1e6}\n")
    workload = load_workload(path)
    fc1, attn = workload.layers
    assert (fc1.param_tensors, fc1.grad_bytes, fc1.bwd_flops) == (1, 400, 0.0)
    assert (attn.param_tensors, attn.grad_bytes, attn.bwd_flops) == (0, 0, 2e6)
    assert workload.default_batch == 32


def test_the_yaml_has_one_line_per_layer() -> None:
    text = workload_to_yaml(load_workload("alexnet"), "a comment")
    assert text.startswith("# a comment\n")
    assert sum(line.startswith("  - {name:") for line in text.splitlines()) == 8


def test_unknown_names_list_the_zoo() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_workload("alexnett")
    assert "alexnet" in str(err.value) and "googlenet" in str(err.value)


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="existing workload file"):
        load_workload(tmp_path / "nope.yaml")


#: bad file -> the field its error must name
BAD_FILES = {
    "missing_layers.yaml": "layers",
    "empty_layers.yaml": "layers",
    "negative_params.yaml": "layers[fc1].params",
    "duplicate_names.yaml": "layers[].name",
    "nonnumeric_flops.yaml": "layers[fc1].fwd_flops",
    "bool_flops.yaml": "layers[fc1].bwd_flops",
    "nan_flops.yaml": "layers[fc1].fwd_flops",
    "layer_key_typo.yaml": "layers[0] key",
    "top_key_typo.yaml": "workload key",
    "empty.yaml": "workload",
    "syntax_error.yaml": "yaml",
    "bad_default_batch.yaml": "default_batch",
    "zero_tensors.yaml": "layers[fc1].param_tensors",
    "fractional_params.yaml": "layers[fc1].params",
    "layers_not_list.yaml": "layers",
    "layer_without_name.yaml": "layers[0].name",
    "missing_name.yaml": "name",
    "not_a_mapping.yaml": "workload",
    "wrong_total.yaml": "total_params",
    "negative_activation_bytes.yaml": "layers[fc1].activation_bytes",
}


def test_every_bad_file_is_tested() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(BAD_FILES)


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_a_bad_file_is_rejected_naming_the_file_and_field(filename: str) -> None:
    path = BAD / filename
    with pytest.raises(SpecError) as err:
        load_workload(path)
    assert err.value.field == BAD_FILES[filename]
    assert err.value.source == str(path)
    assert str(err.value).startswith(f"{path}: {BAD_FILES[filename]}: got ")


def test_the_typo_error_lists_the_valid_keys() -> None:
    with pytest.raises(UnknownNameError, match="'parms', expected one of .*params"):
        load_workload(BAD / "layer_key_typo.yaml")


# ----------------------------------------------------------------------------- CLI

def test_workload_list_prints_a_table(capsys: pytest.CaptureFixture) -> None:
    assert gradsync(["workload", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "layers", "params", "tensors", "GFLOP/sample", "batch"]
    alexnet = next(line.split() for line in out if line.startswith("alexnet "))
    assert alexnet[:4] == ["alexnet", "8", "60,965,224", "16"]


@pytest.mark.parametrize("name,total", [("alexnet", 60_965_224), ("googlenet", 13_378_280)])
def test_workload_show_json(name: str, total: int, capsys: pytest.CaptureFixture) -> None:
    assert gradsync(["workload", "show", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == name and data["total_params"] == total
    assert sum(layer["params"] for layer in data["layers"]) == total
    assert all({"name", "params", "fwd_flops"} <= set(layer) for layer in data["layers"])


def test_workload_show_reads_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = save_workload(Workload("tiny", (Layer("fc", 10, 20.0),)), tmp_path / "t.yaml")
    assert gradsync(["workload", "show", str(path)]) == 0
    assert "tiny" in capsys.readouterr().out


@pytest.mark.parametrize("arg,message", [("nope", "expected one of alexnet"),
                                         (str(BAD / "negative_params.yaml"), "params: got -10")])
def test_workload_show_bad_input_exits_2(arg: str, message: str,
                                         capsys: pytest.CaptureFixture) -> None:
    assert gradsync(["workload", "show", arg]) == 2
    assert message in capsys.readouterr().err
