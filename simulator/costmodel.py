"""What the engines ask of a collective cost model, and of a compute profile.

:class:`hwmodels.commmodel.CommModel` is the cost model gradsync builds; a caller may pass its
own to ``prepare``/``simulate`` (``comm_model=``), and :class:`CostModel` says what it must
offer. Likewise :class:`LayerTimes` is what the engines read of a profile;
:class:`vocab.profile.ComputeProfile` is the concrete one. Both are runtime-checkable, so a
Context built with an object lacking a member fails at once, naming what is missing, rather
than deep inside a simulation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from hwmodels.collectives.affine import Affine
from hwmodels.collectives.schedules import Schedule
from hwmodels.specs import AlphaBeta

__all__ = ["CostModel", "LayerTimes", "missing_members"]


@runtime_checkable
class CostModel(Protocol):
    """The allreduce of ``nbytes`` per rank over all ranks of one cluster."""

    #: The allreduce algorithm asked for (``"auto"`` or a name), reported with results.
    algorithm: str

    def allreduce(self, nbytes: float) -> Affine:
        """Seconds as ``fixed_s + per_byte_s * nbytes`` (the analytic engine's price)."""
        ...

    def steps(self, nbytes: float) -> int:
        """Sequential rounds of the allreduce (>= 1): the calls an MPI without a progress
        thread needs to drive it (``simulator.progress``)."""
        ...

    def link_params(self) -> Mapping[str, AlphaBeta]:
        """Alpha-beta-gamma of the ``"intra"``, ``"inter"`` and ``"host"`` link classes."""
        ...

    def collective_links(self) -> Mapping[str, AlphaBeta]:
        """The ``"intra"`` and ``"inter"`` links the collective steps are priced on (for a
        model without host staging, the same as those of :meth:`link_params`)."""
        ...

    def schedule(self, nbytes: float) -> Schedule:
        """The allreduce as steps between ranks, for the detailed engine."""
        ...


@runtime_checkable
class LayerTimes(Protocol):
    """Seconds per layer (forward order) of one iteration of ``batch`` samples."""

    batch: int
    forward_s: Sequence[float]
    backward_s: Sequence[float]
    update_s: float
    source: str


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` lacks (empty when it satisfies it)."""
    names = [name for name in dir(protocol) if not name.startswith("_")]
    names += list(getattr(protocol, "__annotations__", {}))
    return sorted({name for name in names if not hasattr(obj, name)})
