"""The software stack: the collective library and the training framework's costs.

A :class:`Stack` is its own input beside cluster, workload, strategy and run settings: the same
DGX-1 ran NCCL 1 in 2016 and NCCL 2.8 in 2021, under Caffe-MPI, TensorFlow, Horovod or PyTorch
DDP, and each adds its own costs to every collective. Presets live in ``data/stacks.yaml``, each
figure with its source; a user's file (``gradsync simulate --stack my-stack.yaml``) has the same
keys plus ``name``::

    name: my-horovod
    library: nccl2.8            # nccl1 | nccl2 | nccl2.4 | nccl2.8 | nccl2.20 | mpi (host-staged)
    launch: 20 us               # per collective call: framework dispatch and kernel launch
    copies: fused               # never | fused | always: gradients copied into a buffer and back
    cycle: 1 ms                 # Horovod: a collective waits for the next background cycle
    after_backward: false       # collectives start only after the backward pass (TF 1.x)
    fusion: cycle               # size (buckets filled to `bucket`) | cycle (Horovod: what is
                                #   ready each cycle, up to `bucket`)
    bucket: 128 MiB             # the framework's default bucket (DDP bucket_cap, fusion buffer)
    per_variable: false         # TensorFlow-2017 replicated: one call per parameter tensor
    overlap_interference: 0.3   # compute and overlapped collective both stretched by (1 + f)
    compression: fp16           # none | fp16 | bf16: gradients cast to 2 bytes for the wire

Every figure may be written ``{value: ..., source: ...}``. What each cost does to one call is
here, as plain functions of the call (:meth:`Stack.call_s`, :meth:`Stack.start_s`); the
simulator's engines apply them (``simulator.engine``, ``simulator.detailed``).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vocab.outpath import check_output, write_text_atomic
from vocab.errors import SpecError
from hwmodels.collectives.eras import LIBRARIES   # the eras CommModel prices
from vocab.registry import Registry
from vocab.runrecord import OPTIONAL_STACK_FIELDS   # the run record's names for these choices
from hwmodels.specfile import (
    check_keys, dump_yaml, figure, load_registry, number, quantity, read_mapping, text, unwrap,
)
from vocab.units import parse_bytes, parse_time

DATA_FILE = Path(__file__).with_name("data") / "stacks.yaml"
#: When gradients are copied into a communication buffer and back: never (in place, DDP's
#: gradient_as_bucket_view), when a call fuses several tensors (Horovod), or always (DDP).
COPY_MODES = ("never", "fused", "always")
#: A copy in reads the gradient and writes the buffer, a copy out the reverse: four passes of
#: the message's bytes over device memory per call.
COPY_PASSES = 4
#: How a framework groups gradients into messages: buckets filled to a size (DDP), or what
#: became ready during one background cycle, up to the fusion threshold (Horovod's Tensor
#: Fusion, :mod:`vocab.strategies.cycle`).
FUSION_MODES = OPTIONAL_STACK_FIELDS["fusion"]
#: Gradient compression for the wire (Horovod's ``Compression.fp16``, DDP's
#: ``fp16_compress_hook`` / ``bf16_compress_hook``): wider gradients are cast to 2-byte
#: elements before the collective and back after it.
COMPRESSIONS = OPTIONAL_STACK_FIELDS["compression"]
COMPRESSED_BYTES = 2
FIGURES = ("library", "launch", "copies", "cycle", "bucket", "per_variable",
           "overlap_interference", "fusion", "after_backward", "compression")


@dataclass(frozen=True)
class Stack:
    """A collective library and a framework's per-call costs (SI units; validated)."""

    name: str
    library: str
    launch_s: float = 0.0
    copies: str = "never"
    cycle_s: float = 0.0
    bucket_bytes: int | None = None
    per_variable: bool = False
    overlap_interference: float | None = None
    fusion: str = "size"
    #: Whether collectives wait for the compute queued before them, so that in practice they
    #: start only once the backward pass has run (TensorFlow 1.x's NcclManager).
    after_backward: bool = False
    #: Gradients cast to 2-byte elements for the collective (:data:`COMPRESSIONS`).
    compression: str = "none"
    source: str = ""
    #: The source of each figure, keyed as in the file (``"cycle"``), so a saved file keeps them.
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError("stack.name", self.name, "a non-empty name")
        if self.library not in LIBRARIES:
            raise SpecError("stack.library", self.library, f"one of {', '.join(LIBRARIES)}")
        if self.copies not in COPY_MODES:
            raise SpecError("stack.copies", self.copies, f"one of {', '.join(COPY_MODES)}")
        for name in ("launch_s", "cycle_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value < 0:
                raise SpecError(f"stack.{name}", value, "a time >= 0 seconds")
        if self.bucket_bytes is not None and (isinstance(self.bucket_bytes, bool) or not
                                              isinstance(self.bucket_bytes, int)
                                              or self.bucket_bytes < 1):
            raise SpecError("stack.bucket_bytes", self.bucket_bytes, "a whole number of bytes > 0")
        if self.fusion not in FUSION_MODES:
            raise SpecError("stack.fusion", self.fusion, f"one of {', '.join(FUSION_MODES)}")
        if self.compression not in COMPRESSIONS:
            raise SpecError("stack.compression", self.compression,
                            f"one of {', '.join(COMPRESSIONS)}")
        if self.fusion == "cycle" and not self.cycle_s:
            raise SpecError("stack.fusion", self.fusion, "size, or a cycle time > 0 for cycle")
        for name in ("per_variable", "after_backward"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"stack.{name}", getattr(self, name), "true or false")
        f = self.overlap_interference
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float))
                              or not math.isfinite(f) or f < 0):
            raise SpecError("stack.overlap_interference", f, "a fraction >= 0")
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def transport(self) -> str:
        """Host-staged collectives for MPI (buffers copied through host memory), else device."""
        return "host" if self.library == "mpi" else "device"

    @property
    def fuses_by_cycle(self) -> bool:
        """Whether a message is what became ready in one cycle (Horovod), not a filled bucket."""
        return self.fusion == "cycle"

    def wire_element_bytes(self, element_bytes: int) -> int:
        """Bytes per gradient element on the wire: compression casts wider ones to 2."""
        if self.compression == "none":
            return element_bytes
        return min(element_bytes, COMPRESSED_BYTES)

    def calls(self, tensors: int) -> int:
        """Collective calls for one message of ``tensors`` parameter tensors."""
        return max(1, tensors) if self.per_variable else 1

    def copies_message(self, tensors: int) -> bool:
        """Whether this message is copied into a buffer and back."""
        return self.copies == "always" or (self.copies == "fused" and tensors > 1)

    def call_s(self, nbytes: int, tensors: int, mem_bandwidth_Bps: float,
               fixed_s_of: Any = None, element_bytes: int = COMPRESSED_BYTES) -> float:
        """Seconds the framework adds to one message's collective of ``nbytes`` on the wire.

        ``launch_s`` per call; ``COPY_PASSES * nbytes / mem_bandwidth`` for the copies in and
        out when the message is copied; one call per tensor (``per_variable``) also pays the
        collective's fixed cost again for every call after the first: ``fixed_s_of(bytes of one
        call)`` (the library's latency and launch), a call of ``nbytes / calls`` each. Under
        compression, gradients of ``element_bytes`` (their own width; the default 2 casts
        nothing) wider than the wire's are cast down before the call and back after it: each
        pass reads one width and writes the other, twice.
        """
        calls = self.calls(tensors)
        extra = self.launch_s * calls
        if self.copies_message(tensors) and nbytes:
            extra += COPY_PASSES * nbytes / mem_bandwidth_Bps
        wire = self.wire_element_bytes(element_bytes)
        if wire < element_bytes and nbytes:
            elements = nbytes / wire
            extra += elements * 2 * (element_bytes + wire) / mem_bandwidth_Bps
        if calls > 1 and fixed_s_of is not None:
            extra += (calls - 1) * float(fixed_s_of(max(1, nbytes // calls)))
        return extra

    def start_s(self, posted_s: float) -> float:
        """When a collective posted at ``posted_s`` starts: the next Horovod cycle, if any.

        Horovod's background thread wakes every ``cycle_s`` (a tick at each multiple of it) and
        runs the tensors that became ready since; a tensor ready at ``t`` starts at the first
        tick at or after ``t``.
        """
        if not self.cycle_s:
            return posted_s
        ticks = math.ceil(posted_s / self.cycle_s - 1e-9)
        return max(posted_s, ticks * self.cycle_s)


# ---- files ------------------------------------------------------------------------------------

def _flag(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field_name, value, "true or false")
    return value


def build_stack(name: str, raw: Mapping[str, Any], field_name: str = "",
                base: Stack | None = None) -> Stack:
    """A :class:`Stack` from a file entry (figures with units and sources)."""
    check_keys(raw, field_name, ("library",), FIGURES[1:] + ("source",))

    def key(k: str) -> str:
        return f"{field_name}.{k}" if field_name else k

    bucket = raw.get("bucket")
    f = raw.get("overlap_interference")
    stack = Stack(
        name=name, library=text(raw["library"], key("library")),
        launch_s=quantity(raw.get("launch", 0.0), key("launch"), parse_time, allow_zero=True),
        copies=text(raw.get("copies", "never"), key("copies")),
        cycle_s=quantity(raw.get("cycle", 0.0), key("cycle"), parse_time, allow_zero=True),
        bucket_bytes=None if bucket is None else int(quantity(bucket, key("bucket"),
                                                              parse_bytes)),
        per_variable=_flag(unwrap(raw.get("per_variable", False))[0], key("per_variable")),
        overlap_interference=None if f is None else quantity(f, key("overlap_interference"),
                                                             number, allow_zero=True),
        fusion=text(raw.get("fusion", "size"), key("fusion")),
        after_backward=_flag(unwrap(raw.get("after_backward", False))[0], key("after_backward")),
        compression=text(raw.get("compression", "none"), key("compression")),
        source=str(raw.get("source") or ""),
        sources={k: src for k in FIGURES if k in raw for src in [unwrap(raw[k])[1]] if src})
    if stack.library not in LIBRARIES:
        raise SpecError(key("library"), stack.library, f"one of {', '.join(LIBRARIES)}")
    if stack.copies not in COPY_MODES:
        raise SpecError(key("copies"), stack.copies, f"one of {', '.join(COPY_MODES)}")
    return stack


@lru_cache(maxsize=1)
def stack_presets() -> Registry[Stack]:
    """The built-in stacks (``data/stacks.yaml``) by name."""
    presets = load_registry(DATA_FILE, build_stack, "stack")
    return Registry("stack", dict(presets), also_valid=("a path to a .yaml file",))


def list_stacks() -> list[str]:
    """Names of the built-in stacks, in file order."""
    return list(stack_presets())


def load_stack(name_or_path: str | Path) -> Stack:
    """A preset by name, or a user's stack file (one stack, with ``name``)."""
    text_form = str(name_or_path)
    if not (isinstance(name_or_path, Path) or text_form.endswith((".yaml", ".yml"))
            or "/" in text_form):
        return release_stack(text_form) or stack_presets().lookup(text_form)
    raw = read_mapping(name_or_path, "a stack file")
    try:
        name = text(raw.get("name"), "name")
        return build_stack(name, {k: v for k, v in raw.items() if k != "name"})
    except SpecError as exc:
        raise exc.with_source(str(name_or_path)) from None


def resolve_stack(stack: "str | Path | Stack | None") -> Stack | None:
    """A Stack from a name, a file or a Stack; None stays None (no stack: today's model)."""
    if stack is None or isinstance(stack, Stack):
        return stack
    if isinstance(stack, (str, Path)):
        return load_stack(stack)
    raise SpecError("stack", stack, "a stack name, a YAML file or a Stack")


def stack_to_dict(stack: Stack) -> dict[str, Any]:
    """The file form of ``stack`` (``load_stack`` reads it back to an equal Stack)."""
    def fig(k: str, value: Any) -> Any:
        src = stack.sources.get(k, "")
        return {"value": value, "source": src} if src else value

    spec: dict[str, Any] = {"name": stack.name, "library": fig("library", stack.library),
                            "launch": fig("launch", figure(stack.launch_s, "s")),
                            "copies": fig("copies", stack.copies),
                            "cycle": fig("cycle", figure(stack.cycle_s, "s")),
                            "per_variable": fig("per_variable", stack.per_variable)}
    if stack.bucket_bytes is not None:
        spec["bucket"] = fig("bucket", figure(float(stack.bucket_bytes), "B"))
    if stack.overlap_interference is not None:
        spec["overlap_interference"] = fig("overlap_interference", stack.overlap_interference)
    if stack.fusion != "size":
        spec["fusion"] = fig("fusion", stack.fusion)
    if stack.after_backward:
        spec["after_backward"] = fig("after_backward", True)
    if stack.compression != "none":
        spec["compression"] = fig("compression", stack.compression)
    if stack.source:
        spec["source"] = stack.source
    return spec


def save_stack(stack: Stack, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``stack`` as a YAML file; an existing file is kept unless ``overwrite``."""
    path = check_output(path, overwrite=overwrite, field="path")
    return write_text_atomic(path, dump_yaml(stack_to_dict(stack)))


def overlap_interference(cluster: Any, stack: Stack | None) -> tuple[float, str]:
    """The one overlap interference factor f of a run, and where it came from.

    The cluster file's ``comm_interference`` when it sets one (what calibration fits, so a
    measurement wins), else the stack's ``overlap_interference``, else the device's default
    (``data/devices.yaml``, from the measured range) when collectives run on the device (the
    default measures NCCL kernels sharing SMs and HBM with compute; host-staged collectives
    run on the host), else 0.
    """
    if cluster.comm_interference is not None:
        return float(cluster.comm_interference), "cluster"
    if stack is not None and stack.overlap_interference is not None:
        return float(stack.overlap_interference), f"stack {stack.name}"
    if cluster.transport != "device":
        return 0.0, "none (host-staged collectives)"
    return float(cluster.device.overlap_interference), f"device {cluster.device.name}"


def stack_record(stack: Stack | None) -> dict[str, Any] | None:
    """The run record's ``specs.stack``: every figure in SI units (None without a stack)."""
    if stack is None:
        return None
    return {"name": stack.name, "library": stack.library, "launch_s": stack.launch_s,
            "copies": stack.copies, "cycle_s": stack.cycle_s, "bucket_bytes": stack.bucket_bytes,
            "per_variable": stack.per_variable,
            "overlap_interference": stack.overlap_interference, "fusion": stack.fusion,
            "after_backward": stack.after_backward, "compression": stack.compression}


# ---- releases between presets -----------------------------------------------------------------

#: The Horovod releases whose defaults each preset stands for: a release resolves to the preset
#: of the newest span it falls in. Tensor Fusion from v0.9.3; cycle 5 ms and a 64 MB fusion
#: buffer up to v0.20, 1 ms and 128 MB from v0.21 (horovod/horovod ``operations.cc`` history,
#: research/gpu-fidelity.md section 4); the collective library each span was built against is
#: the preset's own figure (NCCL 2.0-2.3 to 2018, 2.4/2.5 in 2019-20, 2.8 from 2021).
RELEASE_SPANS: Mapping[str, tuple[tuple[tuple[int, ...], str], ...]] = MappingProxyType({
    "horovod": (((0, 9, 3), "horovod-0.11"), ((0, 16), "horovod-0.19"),
                ((0, 21), "horovod-0.22")),
})
#: The newest release of each family the spans are known to hold for (Horovod 0.28.1, 2023);
#: a later number is more likely a typo, and gets the registry's did-you-mean.
LATEST_RELEASE: Mapping[str, tuple[int, ...]] = MappingProxyType({"horovod": (0, 28, 1)})
_RELEASE = re.compile(r"^(?P<family>[a-z][a-z0-9]*)-(?P<version>\d+(?:\.\d+){1,2})$")


def release_stack(name: str) -> Stack | None:
    """A framework release named like ``horovod-0.20.3`` as the preset whose defaults it has.

    A preset of that name is returned as it is; a release of a family in
    :data:`RELEASE_SPANS` between presets is the preset of its span, renamed to the release
    (its source says which preset's figures it takes). None for any other name, or a release
    newer than :data:`LATEST_RELEASE`, so that the registry's own error names the presets. A release older than the family's first span is
    one error line naming the first release modelled.
    """
    match = _RELEASE.match(name)
    if match is None or match["family"] not in RELEASE_SPANS or name in stack_presets():
        return None
    version = tuple(int(x) for x in match["version"].split("."))
    if version > LATEST_RELEASE[match["family"]]:
        return None
    spans = RELEASE_SPANS[match["family"]]
    preset = next((p for since, p in reversed(spans) if version >= since), None)
    if preset is None:
        first = ".".join(map(str, spans[0][0]))
        raise SpecError("stack", name, f"a {match['family']} release from {first} on "
                        f"(earlier releases are not modelled)")
    base = stack_presets()[preset]
    return replace(base, name=name, source=f"{base.source}; {name} has the defaults of "
                   f"{preset} (hwmodels.stacks.RELEASE_SPANS)")
