"""Workloads: a model's layers in forward order (parameters, gradient bytes, FLOPs).

A workload says *what* a model is, never how long it takes: per-layer seconds live in compute
profiles (:mod:`vocab.profile`), keyed by device, model and batch. Zoo workloads ship as data
files in ``vocab/workloads/``; users load their own files in the same format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from vocab.argtypes import BATCH
from vocab.outpath import check_output, write_text_atomic
from vocab.errors import SpecError, UnknownNameError
from vocab.registry import Registry
from vocab.yamlfile import read_yaml

#: Zoo workload files, one per model: ``<name>.yaml``.
WORKLOAD_DIR = Path(__file__).resolve().parent / "workloads"


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
        if not isinstance(self.default_batch, int) or not 1 <= self.default_batch <= BATCH.maximum:
            raise SpecError("default_batch", self.default_batch,
                            f"a whole number from 1 to {BATCH.maximum:.0f} (as --batch)")

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_grad_bytes(self) -> int:
        return sum(layer.grad_bytes for layer in self.layers)

    @property
    def param_tensors(self) -> int:
        return sum(layer.param_tensors for layer in self.layers)

    def with_element_bytes(self, nbytes: int) -> "Workload":
        """The same model with ``nbytes`` per parameter and gradient element (2 for fp16/bf16
        training): gradient bytes become ``params * nbytes``; FLOPs and activations stay."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
            raise SpecError("dtype_bytes", nbytes, "a whole number of bytes per element >= 1")
        layers = tuple(replace(layer, dtype_bytes=nbytes, grad_bytes=layer.params * nbytes)
                       for layer in self.layers)
        return replace(self, layers=layers)

    @property
    def grad_bytes(self) -> list[int]:
        """Gradient bytes per layer, forward order (what strategy planning takes)."""
        return [layer.grad_bytes for layer in self.layers]

    def fwd_flops_per_sample(self) -> float:
        return sum(layer.fwd_flops for layer in self.layers)


# ------------------------------------------------------------------------------- file format
#
# A workload file is YAML: top-level ``name`` and ``layers`` (required), ``description``,
# ``source``, ``default_batch`` (optional), and the derived totals ``total_params`` and
# ``param_tensors`` (optional; checked against the layers when present, so a hand edit that
# breaks a total is caught). Each layer is a mapping with ``name`` and ``params`` (required),
# ``param_tensors``, ``fwd_flops`` and ``bwd_flops`` (per sample), ``grad_bytes``,
# ``activation_bytes`` (per sample) and ``dtype_bytes`` (optional; defaults as in Layer).

TOP_KEYS = ("name", "description", "source", "default_batch", "total_params", "param_tensors",
            "fwd_flops_per_sample", "layers")
LAYER_KEYS = ("name", "params", "param_tensors", "fwd_flops", "bwd_flops", "grad_bytes",
              "activation_bytes", "dtype_bytes")
#: The largest count or FLOP figure of a workload file: 1e18 is a million times GPT-3's 175e9
#: parameters and past any per-sample FLOP count; above it a figure is a typo or overflow
#: (1e300 parameters was accepted).
MAX_COUNT = 1e18
_WHOLE_KEYS = ("params", "param_tensors", "grad_bytes", "dtype_bytes", "default_batch",
               "total_params")


def workload_zoo() -> Registry[Path]:
    """The zoo: each workload file shipped in ``vocab/workloads/`` by name, sorted."""
    files = sorted(WORKLOAD_DIR.glob("*.yaml"), key=lambda path: path.stem)
    return Registry("workload", {path.stem: path for path in files})


def list_workloads() -> list[str]:
    """Names of the zoo workloads shipped in ``vocab/workloads/``, sorted."""
    return list(workload_zoo())


def load_workload(name_or_path: str | Path) -> Workload:
    """A zoo workload by name (``"alexnet"``) or a workload file by path.

    Anything that looks like a path (a ``Path``, a ``.yaml``/``.yml`` suffix, a directory
    separator, or an existing file) is read as a file; otherwise it is a zoo name, and an
    unknown name raises :class:`UnknownNameError` listing the zoo.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text \
            or Path(text).is_file():
        return _load_file(Path(text))
    workload_zoo().lookup(text)
    return _load_zoo(text)


@cache
def _load_zoo(name: str) -> Workload:
    # Workloads are immutable, so sharing one instance between callers is safe.
    return _load_file(WORKLOAD_DIR / f"{name}.yaml")


def _load_file(path: Path) -> Workload:
    if not path.is_file():
        raise SpecError("workload", str(path), "an existing workload file (or a zoo name: "
                        + ", ".join(list_workloads()) + ")")
    data = read_yaml(path)
    try:
        return workload_from_dict(data)
    except UnknownNameError as exc:  # keep the subclass (with_source returns a SpecError)
        raise UnknownNameError(exc.field, exc.value, exc.valid, str(path)) from None
    except SpecError as exc:
        raise exc.with_source(str(path)) from None


def workload_from_dict(data: Any) -> Workload:
    """A :class:`Workload` from the parsed YAML form; errors name the field."""
    if not isinstance(data, dict):
        raise SpecError("workload", data, "a mapping with name and layers (the file is empty)"
                        if data is None else "a mapping with name and layers")
    _check_keys(data, TOP_KEYS, "workload key")
    for key in ("name", "layers"):
        if key not in data:
            raise SpecError(key, None, "a value (required)")
    if not isinstance(data["name"], str) or not data["name"].strip():
        raise SpecError("name", data["name"], "a non-empty string")
    layers = data["layers"]
    if not isinstance(layers, list):
        raise SpecError("layers", layers, "a list of layers")
    fields = {k: data[k] for k in ("description", "source") if data.get(k) is not None}
    for key, value in fields.items():
        if not isinstance(value, str):
            raise SpecError(key, value, "a string")
    if "default_batch" in data:
        fields["default_batch"] = _number(data["default_batch"], "default_batch")
    workload = Workload(name=data["name"], layers=tuple(_layer(i, spec)
                                                        for i, spec in enumerate(layers)),
                        **fields)
    _check_totals(workload, data)
    return workload


def _layer(index: int, spec: Any) -> Layer:
    if not isinstance(spec, dict):
        raise SpecError(f"layers[{index}]", spec, "a mapping with name and params")
    _check_keys(spec, LAYER_KEYS, f"layers[{index}] key")
    for key in ("name", "params"):
        if key not in spec:
            raise SpecError(f"layers[{index}].{key}", None, "a value (required)")
    if not isinstance(spec["name"], str) or not spec["name"]:
        raise SpecError(f"layers[{index}].name", spec["name"], "a non-empty string")
    where = f"layers[{spec['name']}]"
    values = {k: _number(v, f"{where}.{k}") for k, v in spec.items() if k != "name"}
    if values["params"] == 0 and "param_tensors" not in values:
        values["param_tensors"] = 0  # a compute-only layer owns no tensors
    return Layer(name=spec["name"], **values)


def _number(value: Any, field: str) -> int | float:
    """A finite number >= 0 (whole where the field counts things)."""
    whole = field.rsplit(".", 1)[-1] in _WHOLE_KEYS
    if isinstance(value, str):  # PyYAML reads 1e6 (no dot) as a string: accept numeric text
        try:
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and 0 <= value <= MAX_COUNT
    if ok and whole and isinstance(value, float):
        ok = value.is_integer()
        value = int(value)
    if not ok:
        raise SpecError(field, value, f"a whole number from 0 to {MAX_COUNT:.0e}" if whole
                        else f"a number from 0 to {MAX_COUNT:.0e}")
    return value


def _check_keys(data: dict, valid: tuple[str, ...], field: str) -> None:
    for key in data:
        if key not in valid:
            raise UnknownNameError(field, key, valid)


def _check_totals(workload: Workload, data: dict) -> None:
    for key, actual in (("total_params", workload.total_params),
                        ("param_tensors", workload.param_tensors)):
        if key in data and data[key] != actual:
            raise SpecError(key, data[key], f"the sum over the layers, {actual}")
    stated = data.get("fwd_flops_per_sample")
    actual = workload.fwd_flops_per_sample()
    if stated is not None and not (isinstance(stated, (int, float)) and
                                   math.isclose(stated, actual, rel_tol=1e-9, abs_tol=1e-6)):
        raise SpecError("fwd_flops_per_sample", stated, f"the sum over the layers, {actual:g}")


def workload_to_dict(workload: Workload) -> dict[str, Any]:
    """The file form of ``workload`` with its totals (what ``gradsync workload show --json``
    prints); :func:`workload_from_dict` reads it back to an equal workload."""
    return {
        "name": workload.name,
        "description": workload.description,
        "source": workload.source,
        "default_batch": workload.default_batch,
        "total_params": workload.total_params,
        "param_tensors": workload.param_tensors,
        "fwd_flops_per_sample": _plain(workload.fwd_flops_per_sample()),
        "layers": [{
            "name": layer.name, "params": layer.params, "param_tensors": layer.param_tensors,
            "fwd_flops": _plain(layer.fwd_flops), "bwd_flops": _plain(layer.bwd_flops),
            "grad_bytes": layer.grad_bytes, "activation_bytes": _plain(layer.activation_bytes),
            "dtype_bytes": layer.dtype_bytes,
        } for layer in workload.layers],
    }


def workload_to_yaml(workload: Workload, comment: str = "") -> str:
    """The YAML text of a workload file: one line per layer, ``comment`` as ``#`` lines on top."""
    data = workload_to_dict(workload)
    layers = data.pop("layers")
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines.append(yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True).rstrip())
    lines.append("layers:")
    for layer in layers:
        flow = yaml.safe_dump(layer, default_flow_style=True, sort_keys=False, width=10**6)
        lines.append(f"  - {flow.strip()}")
    return "\n".join(lines) + "\n"


def save_workload(workload: Workload, path: str | Path, overwrite: bool = False,
                  comment: str = "") -> Path:
    """Write ``workload`` as a YAML file; refuses to replace a file unless ``overwrite``."""
    path = check_output(path, overwrite=overwrite, field="path")
    return write_text_atomic(path, workload_to_yaml(workload, comment))


def _plain(value: float) -> int | float:
    """Whole floats as ints, so files read ``fwd_flops: 210830400`` rather than ``2.1e8``."""
    return int(value) if float(value).is_integer() else float(value)
