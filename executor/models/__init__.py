"""The torch model zoo: every model the executor trains, at full size and at a small ``-ci`` size.

``build_model(name)`` returns a fresh ``nn.Module`` in training mode; ``example_batch(name,
batch)`` synthetic ``(inputs, targets)`` of the right shapes; ``loss_function(name)`` the
training loss ``loss(output, target) -> scalar``. Layer names (dotted ``named_modules`` names of
the modules that own parameters, see :func:`parametric_layers`) and per-layer parameter counts
equal those of the workload files in ``vocab/workloads/``, which
``python -m executor.models.export_workloads`` generates from these definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from executor.models import transformer as tf
from executor.models import modadd
from executor.models.alexnet import AlexNet, AlexNetConfig
from executor.models.cnn import DigitsCNN
from executor.models.common import parametric_layers
from executor.models.efficientnet import EfficientNet, EfficientNetConfig
from executor.models.googlenet import GoogLeNet, GoogLeNetConfig, googlenet_loss
from executor.models.inception import InceptionV3, InceptionV3Config, inception_loss
from executor.models.mlp import MLP
from executor.models.nqm import DIMS as NQM_DIMS
from executor.models.nqm import NoisyQuadraticModel, nqm_loss
from executor.models.resnet import resnet18, resnet50, resnet101, resnet152, resnext101_32x4d
from executor.models.vgg import VGG16, VGGConfig
from vocab.errors import SpecError
from vocab.registry import Registry

__all__ = [
    "MODELS",
    "ModelInfo",
    "build_model",
    "example_batch",
    "example_input",
    "list_models",
    "loss_function",
    "model_info",
    "parametric_layers",
]

Loss = Callable[[Any, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ModelInfo:
    """How to build, feed and train one zoo model.

    ``kind`` is ``"image"`` (inputs ``(batch, 3, size, size)``, integer class targets),
    ``"vector"`` (``(batch, features)``), ``"tokens"`` (``(batch, input_size)`` integer tokens
    below ``num_classes``), ``"bert"`` or ``"gpt"`` (token ids of ``seq_len``).
    ``num_classes`` is ``None`` for language models (their output is the vocabulary) and for
    the noisy quadratic model (its output is its loss).
    """

    name: str
    build: Callable[[int | None], nn.Module]
    kind: str
    default_batch: int
    input_size: int              # image side, feature count or sequence length
    num_classes: int | None
    loss: Loss
    description: str
    source: str


_ENTRIES: list[ModelInfo] = []  # filled by _register_zoo(), then frozen into MODELS


def _register(info: ModelInfo) -> None:
    _ENTRIES.append(info)  # a name given twice is refused when MODELS is built


def list_models() -> list[str]:
    """Names of every zoo model, sorted."""
    return sorted(MODELS)


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; unknown names list the valid ones."""
    return MODELS.lookup(name)


def build_model(name: str, num_classes: int | None = None) -> nn.Module:
    """A freshly initialised zoo model (training mode) on the current default device.

    ``num_classes`` overrides the image models' class count (default: 1000 at full size, 10 at
    ``-ci`` size and for ``mlp-digits``); language models take none. Build inside
    ``with torch.device("meta"):`` to get shapes without allocating memory.
    """
    info = model_info(name)
    if num_classes is not None:
        if info.num_classes is None:
            raise SpecError("num_classes", num_classes, f"None for language model {name}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise SpecError("num_classes", num_classes, "a whole number >= 1")
    return info.build(num_classes if num_classes is not None else info.num_classes)


def example_batch(name: str, batch: int, seed: int = 0,
                  device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic ``(inputs, targets)`` for ``batch`` samples, deterministic given ``seed``."""
    info = model_info(name)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError("batch", batch, "a whole number >= 1")
    gen = torch.Generator().manual_seed(seed)
    if info.kind == "bert":
        inputs, targets = tf.bert_batch(_transformer_config(name), batch, gen)
    elif info.kind == "gpt":
        inputs, targets = tf.gpt2_batch(_transformer_config(name), batch, gen)
    elif info.kind == "tokens":
        inputs = torch.randint(0, info.num_classes, (batch, info.input_size), generator=gen)
        targets = torch.randint(0, info.num_classes, (batch,), generator=gen)
    else:
        shape = (3, info.input_size, info.input_size) if info.kind == "image" \
            else (info.input_size,)
        inputs = torch.randn(batch, *shape, generator=gen)
        targets = torch.randint(0, info.num_classes or 1, (batch,), generator=gen)
    return inputs.to(device), targets.to(device)


def example_input(name: str, batch: int, seed: int = 0,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Synthetic inputs only (see :func:`example_batch`)."""
    return example_batch(name, batch, seed, device)[0]


def loss_function(name: str) -> Loss:
    """The training loss ``loss(output, target)`` of ``name``."""
    return model_info(name).loss


def _transformer_config(name: str) -> tf.TransformerConfig:
    return {"bert-base": tf.BERT_BASE, "bert-ci": tf.BERT_CI, "bert-large": tf.BERT_LARGE,
            "gpt2-small": tf.GPT2_SMALL, "gpt2-ci": tf.GPT2_CI}[name]


def _image(name: str, build: Callable[[int], nn.Module], batch: int, size: int, classes: int,
           loss: Loss, description: str, source: str) -> None:
    _register(ModelInfo(name, build, "image", batch, size, classes, loss, description, source))


def _register_zoo() -> None:
    ce = F.cross_entropy
    caffe = "BVLC Caffe model zoo, models/{}/train_val.prototxt"
    tv = "torchvision.models.{} layout and names (He et al. 2016, v1.5 bottleneck)"
    _image("alexnet", lambda n: AlexNet(AlexNetConfig(num_classes=n)), 256, 227, 1000, ce,
           "AlexNet as trained in Caffe: grouped conv2/4/5, LRN, 227x227 crops",
           caffe.format("bvlc_alexnet"))
    _image("alexnet-ci", lambda n: AlexNet(AlexNetConfig.ci(n)), 32, 32, 10, ce,
           "AlexNet's layers at small width for 32x32 images (CI)", "gradsync CI size")
    effnet = "Tan and Le 2019; torchvision.models.{} layout and names"
    _image("efficientnet-b0", lambda n: EfficientNet(EfficientNetConfig.b0(n)), 32, 224, 1000,
           ce, "EfficientNet-B0: MBConv blocks with squeeze-and-excitation, 224x224 images",
           effnet.format("efficientnet_b0"))
    _image("efficientnet-b4", lambda n: EfficientNet(EfficientNetConfig.b4(n)), 32, 380, 1000,
           ce, "EfficientNet-B4: B0 with widths x1.4 and blocks x1.8, 380x380 images",
           effnet.format("efficientnet_b4"))
    _image("googlenet", lambda n: GoogLeNet(GoogLeNetConfig(num_classes=n)), 32, 224, 1000,
           googlenet_loss, "GoogLeNet training net with both auxiliary heads (loss weight 0.3)",
           caffe.format("bvlc_googlenet"))
    _image("googlenet-ci", lambda n: GoogLeNet(GoogLeNetConfig.ci(n)), 16, 32, 10,
           googlenet_loss, "GoogLeNet with both auxiliary heads, channels / 8, 32x32 images (CI)",
           "gradsync CI size")
    _image("inception-v3", lambda n: InceptionV3(InceptionV3Config(num_classes=n)), 32, 299,
           1000, inception_loss,
           "Inception-v3 training net with its auxiliary head (loss weight 0.4), 299x299 images",
           "torchvision.models.inception_v3 layout and names (Szegedy et al. 2016)")
    _image("inception-v3-ci", lambda n: InceptionV3(InceptionV3Config.ci(n)), 16, 75, 10,
           inception_loss, "Inception-v3 with its auxiliary head, channels / 8, 75x75 images "
           "(CI)", "gradsync CI size")
    _image("resnet18", lambda n: resnet18(n), 32, 224, 1000, ce,
           "ResNet-18 (basic blocks 2-2-2-2)", tv.format("resnet18"))
    _image("resnet18-ci", lambda n: resnet18(n, width=16, image_size=32), 32, 32, 10, ce,
           "ResNet-18 with width 16, 32x32 images (CI)", "gradsync CI size")
    _image("resnet50", lambda n: resnet50(n), 32, 224, 1000, ce,
           "ResNet-50 (bottleneck blocks 3-4-6-3)", tv.format("resnet50"))
    _image("resnet101", lambda n: resnet101(n), 32, 224, 1000, ce,
           "ResNet-101 (bottleneck blocks 3-4-23-3)", tv.format("resnet101"))
    _image("resnet152", lambda n: resnet152(n), 32, 224, 1000, ce,
           "ResNet-152 (bottleneck blocks 3-8-36-3)", tv.format("resnet152"))
    _image("resnext101-32x4d", lambda n: resnext101_32x4d(n), 32, 224, 1000, ce,
           "ResNeXt-101 32x4d (bottleneck blocks 3-4-23-3, 3x3 convolutions in 32 groups)",
           "Xie et al. 2017; torchvision.models.resnet ResNeXt layout and names")
    _image("se-resnext101-32x4d", lambda n: resnext101_32x4d(n, se=True), 32, 224, 1000, ce,
           "SE-ResNeXt-101 32x4d: ResNeXt-101 32x4d with squeeze-and-excitation (reduction "
           "16) after each bottleneck's last batch norm",
           "Hu et al. 2018; Cadene pretrainedmodels senet.py se_resnext101_32x4d, "
           "torchvision module names")
    _image("resnet50-ci", lambda n: resnet50(n, width=8, image_size=32), 16, 32, 10, ce,
           "ResNet-50 with width 8, 32x32 images (CI)", "gradsync CI size")
    _image("vgg16", lambda n: VGG16(VGGConfig(num_classes=n)), 32, 224, 1000, ce,
           "VGG-16 (configuration D), Caffe layer names", "Simonyan and Zisserman 2015; "
           "Caffe model zoo VGG_ILSVRC_16_layers")
    _image("vgg16-ci", lambda n: VGG16(VGGConfig.ci(n)), 32, 32, 10, ce,
           "VGG-16 with widths / 8, 32x32 images (CI)", "gradsync CI size")
    _register(ModelInfo("mlp-digits", lambda n: MLP(64, (128, 64), n), "vector", 32, 64, 10, ce,
                        "MLP 64-128-64-10 for scikit-learn's 8x8 digits",
                        "gradsync; sklearn.datasets.load_digits"))
    # The convergence study's workloads: all train on data made or shipped locally.
    _register(ModelInfo("cnn-digits", lambda n: DigitsCNN(n), "vector", 32, 64, 10, ce,
                        "CNN conv16-conv32-pool-fc64 on scikit-learn's 8x8 digits (as images)",
                        "gradsync; sklearn.datasets.load_digits"))
    _register(ModelInfo("transformer-modadd", lambda n: modadd.ModAddTransformer(),
                        "tokens", 64, 2, modadd.MAX_P, ce,
                        f"2-layer pre-LN transformer, hidden 64, 4 heads, for (a + b) mod P, "
                        f"P <= {modadd.MAX_P} (--data modadd:P)",
                        "gradsync; Power et al. 2022 (grokking) task"))
    _register(ModelInfo("nqm", lambda n: NoisyQuadraticModel(), "vector", 256, NQM_DIMS, None,
                        nqm_loss, f"noisy quadratic model, h_i = c_i = 1/i, {NQM_DIMS} dims in "
                        "4 layers (--data synthetic: a sample is a gradient-noise draw)",
                        "Zhang et al. 2019 (NeurIPS), convergence/nqm.py"))
    hf = "Hugging Face transformers {} ({}) module names and sizes"
    _language("bert-base", tf.BERT_BASE, 32, hf.format("BertModel", "bert-base-uncased"))
    _language("bert-ci", tf.BERT_CI, 16, "gradsync CI size")
    _language("bert-large", tf.BERT_LARGE, 8, hf.format("BertModel", "bert-large-uncased"))
    _language("gpt2-small", tf.GPT2_SMALL, 8, hf.format("GPT2LMHeadModel", "gpt2"))
    _language("gpt2-ci", tf.GPT2_CI, 16, "gradsync CI size")


def _language(name: str, config: tf.TransformerConfig, batch: int, source: str) -> None:
    """Register a BERT (``bert-*``) or GPT-2 (``gpt2-*``) model of size ``config``."""
    bert = name.startswith("bert")
    model_class = tf.Bert if bert else tf.GPT2
    # BertForPreTraining's untied heads: the MLM transform (h*h + h), its LayerNorm (2h), the
    # decoder bias (vocab) and the next-sentence classifier (2h + 2).
    untied = config.hidden ** 2 + 5 * config.hidden + config.vocab + 2
    what = ("BERT encoder with pooler; masked-LM and sentence-pair heads tied to the word "
            "and token-type embeddings, so no parameters beyond BertModel (Hugging Face's "
            f"untied BertForPreTraining heads would add {untied:,})" if bert
            else "GPT-2 decoder; LM head tied to wte (counted once)")

    def build(_: int | None) -> nn.Module:
        return model_class(config)

    description = (f"{what}; {config.layers} layers, hidden {config.hidden}, {config.heads} "
                   f"heads, vocab {config.vocab}; one sample = {config.seq_len} tokens")
    _register(ModelInfo(name, build, "bert" if bert else "gpt", batch, config.seq_len, None,
                        tf.bert_loss if bert else tf.next_token_loss, description, source))


_register_zoo()
#: Every zoo model by name, in registration order.
MODELS: Registry[ModelInfo] = Registry("model", ((info.name, info) for info in _ENTRIES))
