"""Workloads: a model's layers in forward order (parameters, gradient bytes, FLOPs).

A workload says *what* a model is, never how long it takes: per-layer seconds live in compute
profiles (:mod:`simulator.profile`), keyed by device, model and batch. Zoo workloads ship as data
files in ``simulator/workloads/``; users load their own files in the same format.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.errors import SpecError


@dataclass(frozen=True)
class Layer:
    """One layer with parameters (or a compute-only stage when ``params == 0``).

    ``fwd_flops`` and ``bwd_flops`` are per sample; ``bwd_flops`` defaults to twice the forward
    (gradients w.r.t. inputs and weights). ``param_tensors`` counts the layer's parameter tensors
    (weight and bias are two), which is what per-tensor hooks in the executor see.
    """

    name: str
    params: int
    fwd_flops: float = 0.0
    bwd_flops: float = -1.0
    param_tensors: int = 1
    grad_bytes: int = -1
    activation_bytes: float = 0.0   # bytes of this layer's output per sample (memory model)
    dtype_bytes: int = 4

    def __post_init__(self) -> None:
        where = f"layers[{self.name}]"
        if not isinstance(self.name, str) or not self.name:
            raise SpecError("layers[].name", self.name, "a non-empty string")
        if not isinstance(self.params, int) or isinstance(self.params, bool) or self.params < 0:
            raise SpecError(f"{where}.params", self.params, "a whole number >= 0")
        if not isinstance(self.fwd_flops, (int, float)) or self.fwd_flops < 0:
            raise SpecError(f"{where}.fwd_flops", self.fwd_flops, "a number >= 0")
        if self.bwd_flops == -1.0:
            object.__setattr__(self, "bwd_flops", 2.0 * float(self.fwd_flops))
        if not isinstance(self.bwd_flops, (int, float)) or self.bwd_flops < 0:
            raise SpecError(f"{where}.bwd_flops", self.bwd_flops, "a number >= 0")
        if not isinstance(self.param_tensors, int) or self.param_tensors < (1 if self.params else 0):
            raise SpecError(f"{where}.param_tensors", self.param_tensors,
                            "a whole number >= 1 for a layer with parameters")
        if self.grad_bytes == -1:
            object.__setattr__(self, "grad_bytes", self.params * self.dtype_bytes)
        if not isinstance(self.grad_bytes, int) or self.grad_bytes < 0:
            raise SpecError(f"{where}.grad_bytes", self.grad_bytes, "a whole number >= 0")


@dataclass(frozen=True)
class Workload:
    """A model as gradsync sees it: layers in forward order (backward runs them in reverse)."""

    name: str
    layers: tuple[Layer, ...]
    default_batch: int = 32
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not self.layers:
            raise SpecError("layers", [], "at least one layer")
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SpecError("layers[].name", duplicates[0], "unique layer names")
        if not isinstance(self.default_batch, int) or self.default_batch < 1:
            raise SpecError("default_batch", self.default_batch, "a whole number >= 1")

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_grad_bytes(self) -> int:
        return sum(layer.grad_bytes for layer in self.layers)

    @property
    def param_tensors(self) -> int:
        return sum(layer.param_tensors for layer in self.layers)

    @property
    def grad_bytes(self) -> list[int]:
        """Gradient bytes per layer, forward order (what strategy planning takes)."""
        return [layer.grad_bytes for layer in self.layers]

    def fwd_flops_per_sample(self) -> float:
        return sum(layer.fwd_flops for layer in self.layers)
