"""Checkpoints: each rank saves its own state every K steps; ``--resume`` continues from it.

A rank's file holds the model, every optimizer (momentum buffers), the strategy's state (the
averaged gradients a ``delayed`` run has not applied yet), torch's RNG state and the next step,
so a resumed run reaches the same weights, bit for bit, as an uninterrupted one. numpy's global
RNG is not saved: nothing draws from it (data order and synthetic batches come from
``numpy.random.default_rng`` seeded by (seed, epoch or step, rank)). Files are
written to a temporary name and renamed, so a crash mid-save leaves the previous checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vocab.outpath import atomic_write
from vocab.errors import SpecError

CHECKPOINT_DIR = "checkpoint"


def checkpoint_path(out_dir: str | Path, rank: int) -> Path:
    """Where ``rank`` keeps its checkpoint in run directory ``out_dir``."""
    return Path(out_dir) / CHECKPOINT_DIR / f"rank-{rank:04d}.pt"


def save_checkpoint(out_dir: str | Path, rank: int, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` as ``rank``'s checkpoint."""
    path = checkpoint_path(out_dir, rank)
    with atomic_write(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(out_dir: str | Path, rank: int) -> dict[str, Any]:
    """Read ``rank``'s checkpoint; SpecError when there is none or it is unreadable."""
    path = checkpoint_path(out_dir, rank)
    if not path.exists():
        raise SpecError("resume", str(out_dir), f"a run directory with a checkpoint ({path})")
    try:
        return torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to a user
        raise SpecError("resume", str(path), f"a readable checkpoint ({exc})") from None


def has_checkpoint(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds rank 0's checkpoint."""
    return checkpoint_path(out_dir, 0).exists()
