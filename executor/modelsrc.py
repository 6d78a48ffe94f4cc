"""Where the executor gets a model: the zoo in ``executor.models``, the tiny test models, or a
user's factory (``PKG.MODULE:FACTORY`` or ``FILE.py:FACTORY``, see :mod:`executor.usermodel`).

A :class:`ModelSource` bundles what training needs beside the module: the loss, synthetic
inputs and targets of the right shape, and the parametric layers in forward order (which map
parameters to workload layers and so to plan messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from executor import models as zoo
from executor import tiny
from executor import usermodel
from vocab.errors import SpecError, UnknownNameError

Layers = list[tuple[str, nn.Module, list[nn.Parameter]]]


@dataclass
class ModelSource:
    """A built model with its loss and a synthetic-batch maker."""

    name: str
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    synthetic: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]   # (seed, n) -> x, y

    def layers(self) -> Layers:
        """Parametric layers, forward order: ``(name, module, own params)``."""
        return zoo.parametric_layers(self.model)


def list_model_names() -> list[str]:
    """Every model name the executor accepts: the zoo and the tiny test models."""
    return sorted(zoo.list_models() + list(tiny.TINY_MODELS))


def build_source(name: str) -> ModelSource:
    """Build model ``name`` (weights from torch's current RNG state)."""
    if name in tiny.TINY_MODELS:
        model = tiny.TINY_MODELS[name]()
        return ModelSource(name, model, nn.functional.cross_entropy, _tiny_batch)
    if usermodel.is_factory_spec(name):
        model, factory = usermodel.build_user_model(name)
        return ModelSource(name, model, usermodel.surrogate_loss, lambda seed, n: (
            usermodel.example_input(model, factory, n, seed), torch.zeros(n)))
    check_model_name(name)
    return ModelSource(name, zoo.build_model(name), zoo.loss_function(name),
                       lambda seed, n: zoo.example_batch(name, n, seed))


def check_model_name(name: str) -> None:
    """Raise :class:`UnknownNameError` unless ``name`` is a model the executor can build."""
    if usermodel.is_factory_spec(name):
        model, factory = usermodel.build_user_model(name)
        usermodel.example_input(model, factory, 1)   # its input shape is known
        return
    if name not in list_model_names():
        raise UnknownNameError("model", name, list_model_names())


def check_features(name: str, features: int) -> None:
    """A dataset of ``features``-long vectors needs a model that takes such vectors."""
    if usermodel.is_factory_spec(name):
        raise SpecError("data", "arrays", "synthetic data for a user's model (its inputs come "
                        "from its factory)")
    if name in tiny.TINY_MODELS:
        expected = tiny.IN_FEATURES
    else:
        info = zoo.model_info(name)
        expected = info.input_size if info.kind in ("vector", "tokens") else None
    if expected != features:
        raise SpecError("model", name, f"a model taking {features}-feature vectors for this "
                        "data (e.g. mlp-digits, cnn-digits, tiny-mlp, tiny-cnn for digits; "
                        "transformer-modadd for modadd:P)")


def check_labels(name: str, labels) -> None:
    """Labels must be classes of the model: ``0 <= y < classes`` (else every rank fails
    inside the loss with an IndexError)."""
    classes = tiny.CLASSES if name in tiny.TINY_MODELS else zoo.model_info(name).num_classes
    if classes is None or not len(labels):
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise SpecError("data", f"labels {low}..{high}", f"labels 0..{classes - 1} (the "
                        f"{classes} classes of {name})")


def _tiny_batch(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, tiny.IN_FEATURES, generator=gen)
    return x, torch.randint(0, tiny.CLASSES, (n,), generator=gen)
