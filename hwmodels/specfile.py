"""Reading hardware spec files: YAML whose figures carry units and sources.

A figure in a file is either a bare value (``25 GB/s``, ``0.5``) or a mapping
``{value: 25 GB/s, source: "NVIDIA DGX-1 white paper"}``. These helpers unwrap figures, parse
them with :mod:`vocab.units`, and turn every problem into a :class:`SpecError` that names the
field (``node.options.nvlink_bandwidth``), the value and what was expected. They are shared by
the device, fabric and cluster loaders, which add the file name to the error.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from vocab.errors import SpecError
from vocab.registry import Registry
from vocab.units import PLAUSIBLE_MAX
# Re-exported: the device, fabric and cluster loaders import them from here.
from vocab.yamlfile import dump_yaml as dump_yaml
from vocab.yamlfile import read_mapping as read_mapping
from vocab.yamlfile import read_yaml as read_yaml

Parser = Callable[[object, str], float]
#: ``build(name, figures, field, base)`` makes a spec from a file entry; ``base`` is the
#: registry entry the figures override, or None.
Builder = Callable[[str, Mapping[str, Any], str, Any], Any]


def unwrap(raw: Any) -> tuple[Any, str]:
    """``{value: v, source: s}`` -> ``(v, s)``; a bare value -> ``(value, "")``."""
    if isinstance(raw, Mapping) and "value" in raw and set(raw) <= {"value", "source"}:
        return raw["value"], str(raw.get("source") or "")
    return raw, ""


def require_mapping(raw: Any, field: str) -> Mapping[str, Any]:
    """``raw`` itself, if it is a mapping with string keys."""
    if not isinstance(raw, Mapping):
        raise SpecError(field or "file", raw, "a mapping of keys to values")
    return raw


def check_keys(raw: Mapping[str, Any], prefix: str, required: Iterable[str],
               optional: Iterable[str]) -> None:
    """Reject a missing required key, or an unknown key (a typo) with the closest valid one."""
    required, optional = tuple(required), tuple(optional)
    valid = required + optional
    for key in raw:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SpecError(join(prefix, str(key)), raw[key],
                            f"one of the keys {', '.join(valid)}{hint}")
    for key in required:
        if key not in raw:
            raise SpecError(join(prefix, key), None, f"a value: {key!r} is required")


def join(prefix: str, key: str) -> str:
    """Dotted field name: ``join("node", "device") == "node.device"``."""
    return f"{prefix}.{key}" if prefix else key


_NOUNS = {"parse_bandwidth": "bandwidth", "parse_time": "time", "parse_bytes": "size",
          "parse_flops": "FLOP rate"}


def quantity(raw: Any, field: str, parser: Parser, *, allow_zero: bool = False,
             at_most: float | None = None) -> float:
    """Parse a figure with ``parser`` and require it to be positive (or >= 0)."""
    value, _ = unwrap(raw)
    parsed = parser(value, field)
    noun = _NOUNS.get(getattr(parser, "__name__", ""), "number")
    if parsed < 0 or (parsed == 0 and not allow_zero) or not math.isfinite(parsed):
        raise SpecError(field, value, f"a finite, non-negative {noun}" if allow_zero
                        else f"a finite, positive {noun}")
    plausible = PLAUSIBLE_MAX.get(noun)
    if at_most is None and plausible is not None and parsed > plausible:
        raise SpecError(field, value, f"a {noun} of at most {plausible:g} in SI units (a larger "
                        "one is a typo or a unit prefix too many)")
    if at_most is not None and parsed > at_most:
        raise SpecError(field, value, f"at most {at_most:g}")
    return parsed


def number(value: object, field: str) -> float:
    """A plain number (a parser for dimensionless figures such as ratios)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise SpecError(field, value, "a finite number")
    return float(value)


def whole(raw: Any, field: str, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (``4``; not ``4.5``, ``"four"`` or ``True``)."""
    value, _ = unwrap(raw)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(field, value, f"a whole number >= {minimum}")
    return value


def text(raw: Any, field: str) -> str:
    """A non-empty string."""
    value, _ = unwrap(raw)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, value, "a non-empty string")
    return value


_PREFIXES = {"B/s": (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)),
             "B": (("T", 1e12), ("G", 1e9), ("M", 1e6), ("Gi", 2.0**30), ("Mi", 2.0**20)),
             "FLOP/s": (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)),
             "s": (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9))}


def figure(value: float, unit: str, source: str = "") -> Any:
    """How a saved file writes an SI figure: readable, exact, with its source if it has one.

    ``figure(25e9, "B/s") == "25 GB/s"``. A prefix is used only if parsing the string back gives
    the very same float; otherwise the plain SI number is written.
    """
    exact = [f"{value / scale:.15g} {prefix}{unit}" for prefix, scale in _PREFIXES.get(unit, ())
             if abs(value) >= scale and float(f"{value / scale:.15g}") * scale == value]
    written: Any = min(exact, key=len) if exact else float(value)
    return {"value": written, "source": source} if source else written


def load_registry(path: Path, build: Builder, field: str) -> Registry[Any]:
    """Read a data file of named entries (``name: {figures}``) into a read-only registry.

    ``field`` names what the entries are (``"device"``) in the errors of a failed lookup.
    """
    data = read_mapping(path, f"a file of {field} entries")
    entries: dict[str, Any] = {}
    for name, raw in data.items():
        try:
            entries[str(name)] = build(str(name), require_mapping(raw, str(name)), str(name), None)
        except SpecError as exc:
            raise exc.with_source(str(path)) from None
    return Registry(field, entries)


def resolve_named(raw: Any, field: str, registry: Registry[Any], build: Builder) -> Any:
    """A registry entry named by ``raw``, or one described inline in a file.

    ``raw`` is a name (``"ib-edr"``), or a mapping with ``name`` plus figures. When the name is
    in the registry the figures override its entry (``{name: ib-edr, bandwidth: 11 GB/s}``);
    otherwise the mapping must give every figure itself.
    """
    raw, _ = unwrap(raw)
    if isinstance(raw, str):
        return registry.lookup(raw, field)
    mapping = require_mapping(raw, field)
    name = text(mapping.get("name"), join(field, "name"))
    rest = {k: v for k, v in mapping.items() if k != "name"}
    base = registry.get(name)
    if base is None and not set(rest) - {"source"}:
        registry.lookup(name, join(field, "name"))  # raises: a new entry needs its figures
    return build(name, rest, field, base)


def sources(raw: Mapping[str, Any], base_source: str, names: Iterable[str]) -> str:
    """One source string: the entry's own ``source`` and each figure's, labelled."""
    parts = [str(raw.get("source") or base_source)]
    parts += [f"{name}: {src}" for name in names if name in raw for src in [unwrap(raw[name])[1]]
              if src]
    return "; ".join(p for p in parts if p)


def entry_kind(raw: Mapping[str, Any], field: str, base: Any, figures: tuple[str, ...],
               n_required: int, kinds: Iterable[str]) -> str:
    """Check an entry's keys and return its ``kind``, taken from ``base`` when not given.

    A new entry (``base`` None) must give the first ``n_required`` of ``figures``; an override
    of a known one may change any figure, or none. ``kinds`` are the valid kinds.
    """
    required = () if base else figures[:n_required]
    check_keys(raw, field, required, tuple(k for k in figures if k not in required) + ("source",))
    kind = text(raw["kind"], join(field, "kind")) if "kind" in raw else base.kind
    kinds = tuple(kinds)
    if kind not in kinds:
        raise SpecError(join(field, "kind"), kind, f"one of {', '.join(kinds)}")
    return kind


class Catalogue:
    """The built-in entries of one data file (devices, fabrics), read on first use.

    ``build`` makes an entry from its figures (:data:`Builder`); ``field`` names what the
    entries are (``"device"``) in lookup errors. The file is read once: it is part of the
    package and never changes while running.
    """

    def __init__(self, path: Path, build: Builder, field: str) -> None:
        self.path, self.build, self.field = path, build, field
        self._registry: Registry[Any] | None = None

    def registry(self) -> Registry[Any]:
        """Every entry of the file, by name, in file order."""
        if self._registry is None:
            self._registry = load_registry(self.path, self.build, self.field)
        return self._registry

    def names(self) -> list[str]:
        """Names of the entries, in file order."""
        return list(self.registry())

    def resolve(self, raw: Any, field: str) -> Any:
        """An entry named by ``raw``, or described inline (see :func:`resolve_named`)."""
        return resolve_named(raw, field, self.registry(), self.build)

    def is_builtin(self, spec: Any) -> bool:
        """Whether ``spec`` is exactly the entry of its name (so a file may write the name)."""
        return bool(self.registry().get(spec.name) == spec)
