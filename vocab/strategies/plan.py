"""Strategy planning: which gradients go in which message, in what order, and when to wait.

This is the half of a strategy that touches no tensor and no clock. The simulator runs a
:class:`Plan` on modelled hardware; the executor runs the same plan on real tensors. Layers are
indexed in forward order ``0..L-1``; backward runs ``L-1..0``, so a message is ready when the
backward of its lowest-indexed layer ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocab.argtypes import STALENESS
from vocab.errors import SpecError, UnknownNameError
from vocab.units import MiB

#: Strategies laid out as a :class:`Plan` (run by the simulator and the executor alike).
STRATEGIES = ("sync", "layerwise", "bucketed", "delayed", "crossiter")
#: Baselines a framework runs its own way (the executor's ``ddp``: torch DDP's buckets,
#: ``bucket_bytes`` is its ``bucket_cap``). A spec may name one, so that an executor run is
#: described by one StrategySpec whatever it ran, but a baseline has no Plan: the simulator
#: refuses it (:func:`vocab.strategies.make_plan`).
BASELINES = ("ddp",)
MERGE_RULES = ("size", "mgwfbp")

#: When a message must be complete:
#: "update"      before this iteration's optimizer update (sync, layerwise, bucketed);
#: "delayed"     before the update ``staleness`` iterations later (delayed);
#: "next_forward" before the next iteration's forward reaches the message's layers (crossiter).
WAIT_POINTS = ("update", "delayed", "next_forward")


@dataclass(frozen=True)
class StrategySpec:
    """A gradient strategy and its knobs; validated on construction."""

    name: str
    bucket_bytes: int = 25 * MiB
    first_bucket_bytes: int = 1 * MiB
    merge: str = "size"          # bucketing rule: "size" (DDP-like) or "mgwfbp"
    staleness: int = 1           # delayed only: the update at t applies gradients of t - d

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES + BASELINES:
            raise UnknownNameError("strategy", self.name, STRATEGIES + BASELINES)
        for field_name in ("bucket_bytes", "first_bucket_bytes"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise SpecError(field_name, value, "a whole number of bytes > 0")
        if self.merge not in MERGE_RULES:
            raise UnknownNameError("merge", self.merge, MERGE_RULES)
        if not isinstance(self.staleness, int) or isinstance(self.staleness, bool) \
                or self.staleness < 1:
            raise SpecError("staleness", self.staleness, "a whole number >= 1")
        if self.staleness > STALENESS.maximum:      # the CLI's bound, for the API too
            raise SpecError("staleness", self.staleness, f"at most {STALENESS.maximum:.0f} "
                            f"({STALENESS.why_max})")

    @property
    def is_baseline(self) -> bool:
        """A framework's own strategy (``ddp``), run by the executor only, with no Plan."""
        return self.name in BASELINES


@dataclass(frozen=True)
class Message:
    """One collective: the layers it carries (in the order they become ready) and its size."""

    index: int
    layers: tuple[int, ...]
    nbytes: int

    @property
    def trigger_layer(self) -> int:
        """The layer whose backward completes the message (the lowest index it holds)."""
        return min(self.layers)


@dataclass(frozen=True)
class Plan:
    """A strategy laid out for one workload: messages in post order and when to wait for them."""

    spec: StrategySpec
    messages: tuple[Message, ...]
    wait_point: str
    staleness: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(m.nbytes for m in self.messages)

    def message_of_layer(self) -> dict[int, int]:
        """Layer index -> index of the message carrying its gradient."""
        return {layer: m.index for m in self.messages for layer in m.layers}
