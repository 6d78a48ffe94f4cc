"""Where the executor gets a model: the tiny test models here, or the zoo in ``executor.models``.

A :class:`ModelSource` bundles what training needs beside the module: the loss, synthetic
inputs and targets of the right shape, and the parametric layers in forward order (which map
parameters to workload layers and so to plan messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from executor import tiny
from hwmodels.errors import UnknownNameError

Layers = list[tuple[str, nn.Module, list[nn.Parameter]]]


@dataclass
class ModelSource:
    """A built model with its loss and a synthetic-batch maker."""

    name: str
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    synthetic: Callable[[torch.Generator, int], tuple[torch.Tensor, torch.Tensor]]
    classes: int

    def layers(self) -> Layers:
        """Parametric layers, forward order: ``(name, module, own params)``."""
        return parametric_layers(self.model)


def parametric_layers(model: nn.Module) -> Layers:
    """Modules owning parameters directly, in registration (forward) order; shared ones once."""
    seen: set[int] = set()
    layers = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if own:
            layers.append((name, module, own))
    return layers


def list_model_names() -> list[str]:
    """Every model name the executor accepts."""
    return sorted(tiny.TINY_MODELS)


def build_source(name: str) -> ModelSource:
    """Build model ``name`` (weights from torch's current RNG state)."""
    if name in tiny.TINY_MODELS:
        model = tiny.TINY_MODELS[name]()
        return ModelSource(name, model, nn.functional.cross_entropy, _tiny_batch, tiny.CLASSES)
    raise UnknownNameError("model", name, list_model_names())


def check_model_name(name: str) -> None:
    """Raise :class:`UnknownNameError` unless ``name`` is a model the executor can build."""
    if name not in list_model_names():
        raise UnknownNameError("model", name, list_model_names())


def _tiny_batch(gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, tiny.IN_FEATURES, generator=gen)
    return x, torch.randint(0, tiny.CLASSES, (n,), generator=gen)
