"""Compute profiles: per-layer forward and backward seconds of one model on one device.

A profile is keyed by (device, model, batch) and kept apart from the workload (what the model
*is*). It comes from a roofline estimate on a device model (:func:`simulator.roofline.roofline_profile`), from a
table the executor measured (``vocab/profiles/``, :func:`find_profile`), or from either one
scaled to a measured single-device throughput (:meth:`ComputeProfile.scaled_to_throughput`).

Files are YAML (``.yaml``/``.yml``)::

    device: v100-sxm2
    model: alexnet
    batch: 256
    update_s: 0.0012
    source: measured by ...
    layers:
      - {name: conv1, forward_s: 0.0031, backward_s: 0.0052}

or CSV (``.csv``), a long table with one row per layer, in forward order, and the profile's
keys repeated on every row: ``device,model,batch,update_s,source,layer,forward_s,backward_s``.
Layer names are optional (empty ``layer`` cells); when present they are checked against the
workload by :meth:`ComputeProfile.check_workload`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from vocab.files import read_text
from vocab.outpath import check_output, write_text_atomic
from vocab.errors import SpecError
from vocab.units import MAX_SECONDS
from vocab.workload import Workload
from vocab.yamlfile import read_yaml

#: Shipped profiles (measured by the executor, or calibrated), one file per (device, model, batch).
PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
CSV_COLUMNS = ("device", "model", "batch", "update_s", "source", "layer", "forward_s",
               "backward_s")


def nonnegative_seconds(field: str, value: Any) -> float:
    """``value`` as float seconds, or SpecError naming ``field`` unless finite, >= 0 and at
    most :data:`~vocab.units.MAX_SECONDS` (no layer or update of a step lasts a day)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and 0 <= value <= MAX_SECONDS
    if not ok:
        raise SpecError(field, value, f"seconds from 0 to {MAX_SECONDS:g}")
    return float(value)


@dataclass(frozen=True)
class ComputeProfile:
    """Seconds per layer (forward order) for one iteration of ``batch`` samples on ``device``."""

    device: str
    model: str
    batch: int
    forward_s: tuple[float, ...]
    backward_s: tuple[float, ...]
    update_s: float
    source: str = ""
    layer_names: tuple[str, ...] = ()    # optional; empty when the table had no names

    def __post_init__(self) -> None:
        for key in ("device", "model"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise SpecError(key, getattr(self, key), "a non-empty string")
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise SpecError("batch", self.batch, "a whole number >= 1")
        for key in ("forward_s", "backward_s"):
            values = getattr(self, key)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SpecError(key, values, "a sequence of seconds, one per layer")
            object.__setattr__(self, key, tuple(nonnegative_seconds(f"{key}[{i}]", v)
                                                for i, v in enumerate(values)))
        if not self.forward_s:
            raise SpecError("forward_s", (), "at least one layer")
        if len(self.backward_s) != len(self.forward_s):
            raise SpecError("backward_s", f"{len(self.backward_s)} layers",
                            f"{len(self.forward_s)} layers, as forward_s")
        object.__setattr__(self, "update_s", nonnegative_seconds("update_s", self.update_s))
        object.__setattr__(self, "layer_names", tuple(self.layer_names))
        if self.layer_names and len(self.layer_names) != len(self.forward_s):
            raise SpecError("layer_names", f"{len(self.layer_names)} names",
                            f"{len(self.forward_s)} names, one per layer, or none")

    @property
    def compute_s(self) -> float:
        """Forward plus backward seconds of one iteration."""
        return sum(self.forward_s) + sum(self.backward_s)

    @property
    def iteration_s(self) -> float:
        """One iteration on one device: compute plus the update."""
        return self.compute_s + self.update_s

    @property
    def samples_per_s(self) -> float:
        """Single-device throughput this profile implies."""
        return self.batch / self.iteration_s if self.iteration_s > 0 else math.inf

    def scaled(self, factor: float) -> ComputeProfile:
        """Every time multiplied by ``factor`` (> 0)."""
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise SpecError("factor", factor, "a positive number")
        return replace(self, forward_s=tuple(t * factor for t in self.forward_s),
                       backward_s=tuple(t * factor for t in self.backward_s),
                       update_s=self.update_s * factor,
                       source=f"{self.source} (scaled x{factor:.6g})".strip())

    def scaled_to_throughput(self, samples_per_s: float) -> ComputeProfile:
        """Scaled so that one iteration of ``batch`` samples runs at ``samples_per_s``.

        The shape (how time splits over layers) is kept; only the level changes. This is how a
        measured single-device throughput, often the one number a user knows, calibrates a
        roofline estimate.
        """
        if not (isinstance(samples_per_s, (int, float)) and math.isfinite(samples_per_s)
                and samples_per_s > 0):
            raise SpecError("samples_per_s", samples_per_s, "a positive throughput")
        if self.iteration_s <= 0:
            raise SpecError("iteration_s", 0.0, "a profile with some time to scale")
        scaled = self.scaled(self.batch / samples_per_s / self.iteration_s)
        return replace(scaled, source=f"{self.source} (scaled to {samples_per_s:.6g} "
                                      "samples/s)".strip())

    def check_workload(self, workload: Workload) -> None:
        """Raise SpecError unless this profile has one entry per layer of ``workload``."""
        if len(self.forward_s) != len(workload.layers):
            raise SpecError("profile layers", len(self.forward_s),
                            f"{len(workload.layers)}, the layers of workload {workload.name}")
        names = tuple(layer.name for layer in workload.layers)
        if self.layer_names and self.layer_names != names:
            bad = next(a for a, b in zip(self.layer_names, names) if a != b)
            raise SpecError("profile layer_names", bad,
                            f"the layer names of workload {workload.name}, in order")


# ------------------------------------------------------------------------------- files

def profile_to_dict(profile: ComputeProfile) -> dict[str, Any]:
    """The YAML form of a profile."""
    names = profile.layer_names or (None,) * len(profile.forward_s)
    layers = []
    for name, fwd, bwd in zip(names, profile.forward_s, profile.backward_s):
        entry = {"name": name} if name is not None else {}
        layers.append({**entry, "forward_s": fwd, "backward_s": bwd})
    return {"device": profile.device, "model": profile.model, "batch": profile.batch,
            "update_s": profile.update_s, "source": profile.source, "layers": layers}


def profile_from_dict(data: Any) -> ComputeProfile:
    """A profile from its YAML form; errors name the field."""
    if not isinstance(data, dict):
        raise SpecError("profile", data, "a mapping with device, model, batch, update_s, layers")
    valid = ("device", "model", "batch", "update_s", "source", "layers")
    for key in data:
        if key not in valid:
            raise SpecError("profile key", key, "one of " + ", ".join(valid))
    for key in ("device", "model", "batch", "update_s", "layers"):
        if key not in data:
            raise SpecError(key, None, "a value (required)")
    layers = data["layers"]
    if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise SpecError("layers", layers, "a list of {name, forward_s, backward_s}")
    for i, layer in enumerate(layers):
        for key in ("forward_s", "backward_s"):
            if key not in layer:
                raise SpecError(f"layers[{i}].{key}", None, "a value (required)")
    names = [layer.get("name") for layer in layers]
    return ComputeProfile(
        device=data["device"], model=data["model"], batch=data["batch"],
        forward_s=[x["forward_s"] for x in layers], backward_s=[x["backward_s"] for x in layers],
        update_s=data["update_s"], source=str(data.get("source") or ""),
        layer_names=tuple(names) if all(isinstance(n, str) and n for n in names) else ())


def _to_csv(profile: ComputeProfile) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    names = profile.layer_names or ("",) * len(profile.forward_s)
    for name, fwd, bwd in zip(names, profile.forward_s, profile.backward_s):
        writer.writerow([profile.device, profile.model, profile.batch, repr(profile.update_s),
                         profile.source, name, repr(fwd), repr(bwd)])
    return out.getvalue()


def _from_csv(text: str) -> ComputeProfile:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise SpecError("rows", 0, "a header and one row per layer")
    missing = [c for c in CSV_COLUMNS if c not in rows[0]]
    if missing:
        raise SpecError("columns", missing[0], "columns " + ", ".join(CSV_COLUMNS))
    first = rows[0]
    for i, row in enumerate(rows):
        for key in ("device", "model", "batch", "update_s", "source"):
            if row[key] != first[key]:
                raise SpecError(f"rows[{i}].{key}", row[key], f"{first[key]!r}, as on row 0")
    layers = [{"name": row["layer"] or None,
               "forward_s": _csv_float(row["forward_s"], f"rows[{i}].forward_s"),
               "backward_s": _csv_float(row["backward_s"], f"rows[{i}].backward_s")}
              for i, row in enumerate(rows)]
    return profile_from_dict({
        "device": first["device"], "model": first["model"],
        "batch": int(first["batch"]) if first["batch"].isdigit() else first["batch"],
        "update_s": _csv_float(first["update_s"], "update_s"),
        "source": first["source"], "layers": layers})


def _csv_float(text: str, field: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise SpecError(field, text, "a number") from None


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise SpecError("path", str(path), "a .yaml, .yml or .csv file")


def load_profile(path: str | Path) -> ComputeProfile:
    """Read a profile from a YAML or CSV file (by suffix); errors name the file and field."""
    path = Path(path)
    kind = _format_of(path)
    if not path.is_file():
        raise SpecError("path", str(path), "an existing profile file")
    try:
        if kind == "csv":
            return _from_csv(read_text(path, "a profile CSV"))
        return profile_from_dict(read_yaml(path))
    except SpecError as exc:
        raise exc.with_source(str(path)) from None


def save_profile(profile: ComputeProfile, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``profile`` as YAML or CSV (by suffix); refuses to overwrite unless asked."""
    path = Path(path)
    kind = _format_of(path)
    check_output(path, overwrite=overwrite, field="path")
    text = _to_csv(profile) if kind == "csv" else yaml.safe_dump(
        profile_to_dict(profile), sort_keys=False, width=100)
    return write_text_atomic(path, text)


def list_profiles(directory: str | Path = PROFILE_DIR) -> list[ComputeProfile]:
    """Every profile file (``*.yaml``, ``*.yml``, ``*.csv``) in ``directory``, by file name."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*") if p.suffix.lower() in (".yaml", ".yml", ".csv"))
    return [load_profile(p) for p in files]


def find_profile(device: str, model: str, batch: int,
                 directory: str | Path = PROFILE_DIR) -> ComputeProfile | None:
    """The shipped profile for (device, model, batch), or None when there is none."""
    for profile in list_profiles(directory):
        if (profile.device, profile.model, profile.batch) == (device, model, batch):
            return profile
    return None
