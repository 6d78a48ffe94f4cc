"""A user's own torch model, named ``PKG.MODULE:FACTORY`` or ``FILE.py:FACTORY``.

``FACTORY`` is a function of no arguments that returns an :class:`torch.nn.Module`. Its inputs
come from, in order: an ``--input-shape`` given on the command line (``workload from-torch``);
a method ``example_input(batch, generator)`` of the model; or attributes of the factory,
``input_shape`` (one sample's shape, without the batch) and optionally ``input_dtype``
(``"float32"`` or ``"int64"``) and ``input_high`` (integer inputs are drawn below it; default
2, valid for any embedding). For instance::

    def make():                      # mymodels.py
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 4, batch_first=True), 4)
    make.input_shape = (128, 256)    # 128 tokens of width 256 per sample

    gradsync workload from-torch mymodels.py:make --out encoder.yaml
    gradsync run --model mymodels.py:make --strategy bucketed -n 2 --batch 8 --steps 20 --out r

Training a user model uses a surrogate loss, the mean square of the output: the gradients
have the model's shapes and the strategies' timing does not depend on what the loss means.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from executor.introspect import workload_from_module
from vocab.errors import SpecError
from vocab.files import check_path

EXPECTED = "PKG.MODULE:FACTORY or FILE.py:FACTORY naming a function that returns an nn.Module"
DTYPES = {"float32": torch.float32, "int64": torch.int64}


def is_factory_spec(name: str) -> bool:
    """Whether ``name`` names a factory (``X:Y``) rather than a zoo model."""
    return ":" in name


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """The factory function that ``spec`` names (its module imported, or its file loaded)."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise SpecError("model", spec, EXPECTED)
    try:
        if where.endswith(".py"):
            try:
                path = check_path(where, "a Python file")
            except SpecError as exc:
                raise SpecError("model", spec, f"{EXPECTED} (no file {where}: expected "
                                f"{exc.expected})") from None
            loader = importlib.util.spec_from_file_location(f"gradsync_user_{path.stem}", path)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise SpecError("model", spec, f"{EXPECTED} (importing {where}: {exc})") from None
    except SyntaxError as exc:      # a user's file that does not parse (or is not UTF-8)
        at = f"{Path(exc.filename or where).name}, line {exc.lineno}" if exc.lineno else where
        raise SpecError("model", spec, f"{EXPECTED} (importing {where}: {exc.msg} at "
                        f"{at})") from None
    except Exception as exc:   # the user's module raised while importing: one line, as bad input
        raise SpecError("model", spec, f"{EXPECTED} (importing {where} raised "
                        f"{type(exc).__name__}: {_first_line(exc)})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise SpecError("model", spec, f"{EXPECTED} ({where} has no function {attr})")
    return factory


def build_user_model(spec: str) -> tuple[nn.Module, Callable[[], nn.Module]]:
    """The model that ``spec``'s factory returns, and the factory."""
    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as exc:   # the user's code: report it in one line, as bad input
        raise SpecError("model", spec, f"a factory that builds without arguments (it raised "
                        f"{type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(model, nn.Module):
        raise SpecError("model", spec, f"{EXPECTED} (it returned {type(model).__name__})")
    return model, factory


def parse_shape(text: str) -> tuple[int, ...]:
    """``"8,128"`` -> ``(8, 128)``: a whole input shape, batch first."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise SpecError("--input-shape", text, "comma-separated sizes >= 1, batch first "
                        "(e.g. 8,128,256)")
    return shape


def example_input(model: nn.Module, factory: Any, batch: int, seed: int = 0,
                  shape: tuple[int, ...] | None = None, dtype: str | None = None) -> Any:
    """``batch`` samples of the model's input (sources in the module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    if shape is None and hasattr(model, "example_input"):
        return model.example_input(batch, generator)
    if shape is None:
        sample = getattr(factory, "input_shape", None)
        if sample is None:
            raise SpecError("input_shape", None, "--input-shape, a model.example_input(batch, "
                            "generator) method, or FACTORY.input_shape (one sample's shape)")
        shape = (batch, *tuple(sample))
    kind = dtype or getattr(factory, "input_dtype", "float32")
    if kind not in DTYPES:
        raise SpecError("input_dtype", kind, f"one of {', '.join(DTYPES)}")
    if DTYPES[kind].is_floating_point:
        return torch.randn(shape, generator=generator)
    return torch.randint(0, int(getattr(factory, "input_high", 2)), shape, generator=generator)


def surrogate_loss(output: Any, target: Any = None) -> torch.Tensor:
    """Mean square of every floating-point output tensor (the target is ignored)."""
    tensors = [output] if isinstance(output, torch.Tensor) else [
        t for t in (output if isinstance(output, (tuple, list)) else output.values())
        if isinstance(t, torch.Tensor)]
    return sum(t.float().pow(2).mean() for t in tensors if t.is_floating_point())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def describe(model: nn.Module, example: Any, spec: str, **kwargs: Any) -> Any:
    """:func:`executor.introspect.workload_from_module` on a user's model, a forward that
    fails on the example input reported as bad input (one line) rather than a traceback."""
    try:
        return workload_from_module(model, example, **kwargs)
    except (RuntimeError, TypeError, ValueError, IndexError, AssertionError) as exc:
        shape = tuple(example.shape) if isinstance(example, torch.Tensor) else type(example)
        raise SpecError("--input-shape", shape, f"an input {spec} accepts (forward raised "
                        f"{type(exc).__name__}: {_first_line(exc)})") from None
