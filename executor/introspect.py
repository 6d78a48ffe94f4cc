"""Turn any torch model into gradsync's vocabulary: a :class:`Workload` and a measured profile.

*Layers* are the modules that own parameters (:func:`parametric_layers`) plus compute-only
modules that declare their arithmetic with a ``flop_count(inputs, output)`` method (attention
cores, tied language-model heads); their order is the order in which their forward passes end.

FLOPs per layer are counted from the shapes seen by forward hooks, as ``2 * MACs``:
convolutions ``2 * out_elements * in_channels / groups * kernel_area``, linear layers
``2 * out_elements * in_features``, normalisation ``5 * elements`` (mean, variance, normalise,
scale, shift), embedding lookups 0; biases are not counted, as in published MAC figures. Any
other module with parameters is counted as ``2 * params`` per sample (one multiply-add per
weight), a lower bound that a ``flop_count`` method overrides. The forward can run on the
``meta`` device, so full-size models are described without allocating memory.

:func:`measure_profile` times one training step per repeat: each layer's forward is the time
from the end of the previous layer's forward to the end of its own (so the non-parametric ops
between layers are charged to the next layer and the layer times add up to the whole forward);
each layer's backward ends when the last of its gradients is accumulated (post-accumulate-grad
hooks; full backward hooks for compute-only layers). CUDA is timed with events, the CPU with
``time.perf_counter``.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from executor.models.common import parametric_layers
from vocab.errors import SpecError
from vocab.profile import ComputeProfile
from vocab.workload import Layer, Workload

NORM_FLOPS_PER_ELEMENT = 5
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def module_flops(module: nn.Module, inputs: tuple, output: Any) -> float:
    """Forward FLOPs of one call of ``module`` for the whole batch (rules in the module doc)."""
    if hasattr(module, "flop_count"):
        return float(module.flop_count(inputs, output))
    out = output if isinstance(output, torch.Tensor) else None
    if isinstance(module, _CONVS) and out is not None:
        fan_in = module.in_channels // module.groups * _prod(module.kernel_size)
        return 2.0 * out.numel() * fan_in
    if isinstance(module, nn.Linear) and out is not None:
        return 2.0 * out.numel() * module.in_features
    if isinstance(module, _NORMS) and out is not None:
        return float(NORM_FLOPS_PER_ELEMENT * out.numel())
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return 0.0
    if isinstance(module, nn.MultiheadAttention):
        return _attention_flops(module, inputs, output)
    if isinstance(module, nn.RNNBase):
        # Each weight is one multiply-add per token and direction (the weights of both
        # directions are the module's parameters); biases are not counted.
        tokens = _tensors(inputs)[0].numel() / module.input_size
        weights = sum(p.numel() for n, p in module.named_parameters() if "weight" in n)
        return 2.0 * tokens * weights
    tensors = _tensors(inputs)
    batch = tensors[0].shape[0] if tensors and tensors[0].dim() else 1
    return 2.0 * batch * sum(p.numel() for p in module.parameters(recurse=False))


def _attention_flops(module: nn.MultiheadAttention, inputs: tuple, output: Any) -> float:
    """Q/K/V and output projections (``2 * 4 E^2`` per token) plus the two attention matmuls
    (``4 * S * E`` per query token, S the key length)."""
    attn = _tensors(output)[0]
    embed = module.embed_dim
    tokens = attn.numel() / embed
    key = _tensors(inputs)[1] if len(_tensors(inputs)) > 1 else _tensors(inputs)[0]
    source_len = key.shape[1] if module.batch_first and key.dim() == 3 else key.shape[0]
    weights = sum(p.numel() for n, p in module.named_parameters() if "weight" in n)
    return 2.0 * tokens * weights + 4.0 * tokens * source_len * embed


def layer_modules(model: nn.Module) -> dict[str, tuple[nn.Module, list[nn.Parameter]]]:
    """Name -> (module, owned parameters) of every layer: parametric plus compute-only."""
    layers = {name: (module, params) for name, module, params in parametric_layers(model)}
    for name, module in model.named_modules():
        if name not in layers and hasattr(module, "flop_count"):
            layers[name] = (module, [])
    return layers


def workload_from_module(model: nn.Module, example_input: Any, name: str, *,
                         default_batch: int | None = None, description: str = "",
                         source: str = "") -> Workload:
    """The workload of ``model``: one :class:`Layer` per layer, in forward order.

    ``example_input`` is a tensor, a tuple of positional tensors or a dict of keyword tensors;
    its first dimension is the batch, and FLOPs and activation bytes are divided by it.

    Every parameter is counted once (``set(model.parameters())``), whatever the module graph:

    - a module whose parameters its parent uses through a functional call (the ``out_proj``
      of :class:`nn.MultiheadAttention`) never runs its own forward: its parameters join the
      nearest enclosing layer that ran, or, if that module owns none, stay a layer of their own
      placed where that module's forward ended;
    - a tied weight belongs to its first owner; a module that reuses it (a tied LM head) is a
      compute-only layer, so its FLOPs are counted;
    - a module called several times sums its FLOPs over the calls and takes its place at its
      first call (its gradient is complete when backward passes that call);
    - parameters that no forward uses are a warning, not an error: they are kept as a layer
      at the end of the forward order (the first gradient ready: DDP marks unused ones so).
    """
    layers = _with_tied_users(model, layer_modules(model))
    records, ends = _trace(model, example_input, layers)
    placed = _place_uncalled(layers, records, ends, model, example_input)
    batch = _batch_of(example_input)
    out = []
    for layer_name, (flops, act_bytes) in records.items():
        params = placed.get(layer_name, [])
        # The model itself owns parameters (nn.LSTM as the whole model): name it by its class.
        out.append(Layer(name=layer_name or type(model).__name__.lower(), params=sum(p.numel() for p in params),
                         param_tensors=len(params), fwd_flops=_whole(flops / batch),
                         activation_bytes=_whole(act_bytes / batch),
                         dtype_bytes=params[0].element_size() if params else 4))
    return Workload(name=name, layers=tuple(out), default_batch=default_batch or batch,
                    description=description, source=source)


def _with_tied_users(model: nn.Module, layers: dict[str, tuple[nn.Module, list]]
                     ) -> dict[str, tuple[nn.Module, list]]:
    """``layers`` plus, as compute-only layers, modules whose every parameter another layer
    owns (a tied head): they compute, so their FLOPs belong in the workload."""
    out = dict(layers)
    for name, module in model.named_modules():
        if name not in out and any(True for _ in module.parameters(recurse=False)):
            out[name] = (module, [])
    return out


def _place_uncalled(layers: dict[str, tuple[nn.Module, list]],
                    records: dict[str, list[float]], ends: dict[str, int], model: nn.Module,
                    example_input: Any) -> dict[str, list]:
    """Layer name -> parameters, with the parameters of layers that never ran placed (rules in
    :func:`workload_from_module`); ``records`` gains entries for layers placed on their own."""
    placed = {n: list(params) for n, (_, params) in layers.items() if n in records}
    uncalled = [n for n, (_, params) in layers.items() if params and n not in records]
    unused_ids = _unused_parameter_ids(model, example_input) if uncalled else set()
    leftovers: list[tuple[float, str]] = []
    for layer_name in uncalled:
        params = layers[layer_name][1]
        parent = _called_ancestor(layer_name, ends)
        if parent is None or all(id(p) in unused_ids for p in params):
            warnings.warn(f"{layer_name}: {sum(p.numel() for p in params):,} parameters that "
                          "no forward uses; kept as the last layer (their gradients are zero)",
                          UnusedParametersWarning, stacklevel=3)
            leftovers.append((float("inf"), layer_name))
        elif parent in placed:
            placed[parent].extend(params)
        else:
            leftovers.append((ends[parent] + 0.5, layer_name))
    order = {n: float(ends[n]) for n in records}
    for position, layer_name in leftovers:
        order[layer_name] = position
        records[layer_name] = [0.0, 0.0]
        placed[layer_name] = list(layers[layer_name][1])
    ranked = sorted(records, key=lambda n: order[n])
    records_sorted = {n: records[n] for n in ranked}
    records.clear()
    records.update(records_sorted)
    return placed


class UnusedParametersWarning(UserWarning):
    """A model has parameters that its forward never uses."""


def _called_ancestor(layer_name: str, ends: dict[str, int]) -> str | None:
    """The nearest enclosing module (by dotted name) whose forward ran, or None."""
    parts = layer_name.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        candidate = ".".join(parts[:cut])
        if candidate in ends:
            return candidate
    return None


def _unused_parameter_ids(model: nn.Module, example_input: Any) -> set[int]:
    """Ids of parameters that get no gradient from one forward (empty if autograd cannot
    tell, e.g. an output that needs no gradient)."""
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        outputs = [t for t in _tensors(_call(model, example_input))
                   if t.requires_grad and t.is_floating_point()]
        if not outputs or not params:
            return set()
        total = sum(t.sum() for t in outputs)
        grads = torch.autograd.grad(total, params, allow_unused=True)
    return {id(p) for p, g in zip(params, grads) if g is None}


def _trace(model: nn.Module, example_input: Any, layers: dict[str, tuple[nn.Module, list]]
           ) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Layer records (:func:`_trace_forward`) and, for every module that ran, the index of
    its first forward end."""
    ends: dict[str, int] = {}

    def ended(name: str) -> Callable:
        def hook(*_: Any) -> None:   # returns None: a forward hook's result replaces the output
            ends.setdefault(name, len(ends))
        return hook

    handles = [module.register_forward_hook(ended(n)) for n, module in model.named_modules()]
    try:
        records = _trace_forward(model, example_input, layers)
    finally:
        for handle in handles:
            handle.remove()
    return records, ends


def _trace_forward(model: nn.Module, example_input: Any,
                   layers: dict[str, tuple[nn.Module, list]]) -> dict[str, list[float]]:
    """Layer name -> [flops, activation bytes] for the whole batch, in forward-end order."""
    records: dict[str, list[float]] = {}

    def hook_for(layer_name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            entry = records.setdefault(layer_name, [0.0, 0.0])
            entry[0] += module_flops(module, inputs, output)
            entry[1] += sum(t.numel() * t.element_size() for t in _tensors(output))
        return hook

    handles = [module.register_forward_hook(hook_for(n)) for n, (module, _) in layers.items()]
    try:
        with torch.no_grad():
            _call(model, example_input)
    finally:
        for handle in handles:
            handle.remove()
    return records


def measure_profile(model: nn.Module, example_input: Any, loss_fn: Callable[..., torch.Tensor],
                    device_name: str, repeats: int = 5, *, target: Any = None, warmup: int = 1,
                    model_name: str | None = None) -> ComputeProfile:
    """Median per-layer forward and backward seconds of ``repeats`` training steps.

    ``loss_fn(output, target)`` (or ``loss_fn(output)`` when ``target`` is None) gives the
    scalar loss. The update is timed as an SGD-with-momentum step with learning rate 0, so the
    weights are left as they were; gradients are cleared after each step.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise SpecError("repeats", repeats, "a whole number >= 1")
    layers = layer_modules(model)
    order = list(_trace_forward(model, example_input, layers))
    clock = _Clock(next(model.parameters()).device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    steps = []
    for i in range(warmup + repeats):
        step = _timed_step(model, example_input, loss_fn, target, layers, optimizer, clock)
        if i >= warmup:
            steps.append(step)
    forward = tuple(statistics.median(s[0].get(n, 0.0) for s in steps) for n in order)
    backward = tuple(statistics.median(s[1].get(n, 0.0) for s in steps) for n in order)
    return ComputeProfile(
        device=device_name, model=model_name or type(model).__name__,
        batch=_batch_of(example_input), forward_s=forward, backward_s=backward,
        update_s=statistics.median(s[2] for s in steps),
        source=(f"measured by executor.introspect.measure_profile (torch {torch.__version__}, "
                f"{clock.kind} timing, median of {repeats})"),
        layer_names=tuple(order))


def _timed_step(model: nn.Module, example_input: Any, loss_fn: Callable, target: Any,
                layers: dict[str, tuple[nn.Module, list]], optimizer: torch.optim.Optimizer,
                clock: _Clock) -> tuple[dict[str, float], dict[str, float], float]:
    """One forward, backward and update with stamps at every layer's end."""
    fwd: list[tuple[str, Any]] = []
    bwd: list[tuple[str, Any]] = []
    handles = _install_timing_hooks(layers, fwd, bwd, clock)
    try:
        start = clock.stamp()
        output = _call(model, example_input)
        loss = loss_fn(output) if target is None else loss_fn(output, target)
        fwd_end = clock.stamp()
        loss.backward()
        bwd_end = clock.stamp()
        optimizer.step()
        update_end = clock.stamp()
        clock.sync()
    finally:
        for handle in handles:
            handle.remove()
    optimizer.zero_grad(set_to_none=True)
    return (_intervals(clock, start, fwd, fwd_end), _intervals(clock, fwd_end, bwd, bwd_end),
            clock.seconds(bwd_end, update_end))


def _install_timing_hooks(layers: dict[str, tuple[nn.Module, list]], fwd: list, bwd: list,
                          clock: _Clock) -> list:
    handles = []
    for name, (module, owned) in layers.items():
        handles.append(module.register_forward_hook(
            lambda *_, n=name: fwd.append((n, clock.stamp()))))
        params = [p for p in owned if p.requires_grad]  # frozen tensors get no gradient
        if owned and not params:
            continue
        if not params:
            handles.append(module.register_full_backward_hook(
                lambda *_, n=name: bwd.append((n, clock.stamp()))))
            continue
        pending = {"left": len(params)}

        def ready(_p: torch.Tensor, n: str = name, state: dict = pending, k: int = len(params)):
            state["left"] -= 1
            if state["left"] == 0:  # the layer's last gradient: the layer is ready
                bwd.append((n, clock.stamp()))
                state["left"] = k
        handles.extend(p.register_post_accumulate_grad_hook(ready) for p in params)
    return handles


def _intervals(clock: _Clock, start: Any, stamps: list[tuple[str, Any]],
               end: Any) -> dict[str, float]:
    """Charge each interval between consecutive stamps to the layer whose stamp ends it.

    The time after the last stamp (the loss, or the end of backward) goes to the last layer,
    so the per-layer times add up to the whole phase.
    """
    out: dict[str, float] = {}
    previous = start
    for name, stamp in stamps:
        out[name] = out.get(name, 0.0) + clock.seconds(previous, stamp)
        previous = stamp
    if stamps:
        last = stamps[-1][0]
        out[last] += clock.seconds(previous, end)
    return out


class _Clock:
    """``perf_counter`` on the CPU; CUDA events (read after a synchronise) on a GPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.kind = "cuda-event" if self.cuda else "perf_counter"

    def stamp(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def seconds(self, a: Any, b: Any) -> float:
        if self.cuda:
            return max(a.elapsed_time(b) / 1e3, 0.0)
        return max(b - a, 0.0)


def _call(model: nn.Module, example_input: Any) -> Any:
    if isinstance(example_input, dict):
        return model(**example_input)
    if isinstance(example_input, (tuple, list)):
        return model(*example_input)
    return model(example_input)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _batch_of(example_input: Any) -> int:
    tensors = _tensors(example_input)
    if not tensors or tensors[0].dim() == 0:
        raise SpecError("example_input", type(example_input).__name__,
                        "a tensor (or tuple/dict of tensors) whose first dimension is the batch")
    return int(tensors[0].shape[0])


def _prod(values: Any) -> int:
    out = 1
    for v in values if isinstance(values, tuple) else (values,):
        out *= v
    return out


def _whole(value: float) -> float:
    """Round float noise away so whole numbers print as whole numbers."""
    return float(round(value)) if abs(value - round(value)) < 1e-6 else value
