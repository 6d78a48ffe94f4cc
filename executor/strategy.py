"""What a rank's training loop needs from a strategy: the :class:`ExecStrategy` protocol.

Two implementations: :class:`executor.runtime.StrategyRuntime` runs a shared
:class:`~vocab.strategies.Plan` (sync, layerwise, bucketed, delayed, crossiter) and
:class:`executor.ddp.DDPStrategy` the torch DDP baseline. :mod:`executor.train` uses only what
is declared here.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ExecStrategy(Protocol):
    """One rank's gradient strategy, driven step by step by :func:`executor.train.run_step`."""

    #: The module a step's forward runs: the model itself, or a wrapper that communicates
    #: (DDP's). Its parameters are the model's.
    net: nn.Module
    #: Every optimizer the strategy steps (one, or one per message for crossiter); their
    #: state is checkpointed.
    optimizers: list[torch.optim.Optimizer]
    #: True when the strategy reports each layer's gradient to the tracer from its own hooks
    #: (the tracer then attaches none); False when the tracer must hook the gradients itself.
    reports_gradients: bool
    #: True when the strategy reports each layer's forward start to the tracer from its own
    #: forward pre-hooks (the tracer then registers none); False when the tracer must.
    reports_forward: bool

    def begin_step(self, step: int) -> None:
        """Before ``step``'s forward."""

    def end_step(self, step: int) -> bool:
        """After ``step``'s backward: communicate what is left, wait per the strategy, update;
        True if the step updated the weights (delayed makes no update in its first steps)."""

    def flush(self, step: int) -> None:
        """Apply every pending update now (before evaluation, a checkpoint, the end)."""

    def pending_state(self) -> list[Any]:
        """What a checkpoint must keep beyond the model and the optimizers (delayed's
        gradients in flight); ``[]`` when nothing is pending."""

    def load_pending_state(self, state: list[Any]) -> None:
        """Restore :meth:`pending_state` after a resume."""

    def close(self) -> None:
        """Complete what is in flight and release hooks and process groups."""
