"""Training data: synthetic tensors (timing), scikit-learn's digits and generated modular
addition (convergence), a user's .npz.

``modadd:P`` is every pair ``(a, b)`` of ``0..P-1`` labelled ``(a + b) mod P``; its inputs are
integer tokens, split like the others but not standardised.

Sharding: every step takes the next ``nprocs * batch`` samples of an epoch's permutation (one
permutation per epoch, from the seed) and rank ``r`` gets the ``r``-th slice of ``batch``, so
the ranks' shards are disjoint and their union is exactly the global batch a single process
would train on; the last partial global batch of an epoch is dropped. Synthetic batches are
drawn per (seed, step, rank), so the global batch is the ranks' shards in rank order.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vocab.errors import SpecError
from vocab.files import check_path

TEST_FRACTION = 0.25
MODADD = "modadd:"


@dataclass
class ArrayData:
    """A standardised train/test split held as tensors."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def load_arrays(data: str, seed: int) -> ArrayData | None:
    """The dataset named by ``data`` (``None`` for synthetic); raises SpecError when unusable."""
    if data == "synthetic":
        return None
    if data.startswith(MODADD):
        return modular_addition(modadd_modulus(data), seed)
    if data == "digits":
        from sklearn.datasets import load_digits  # noqa: PLC0415 - optional, loaded only here
        bunch = load_digits()
        return split_standardise(bunch.data, bunch.target, seed)
    return split_standardise(*_read_npz(data[len("npz:"):]), seed)


def modadd_modulus(data: str) -> int:
    """``P`` of ``modadd:P``: a whole number from 2 to the transformer's vocabulary."""
    from executor.models.modadd import MAX_P  # noqa: PLC0415 - the model fixes the bound
    text = data[len(MODADD):]
    if not text.isdigit() or not 2 <= int(text) <= MAX_P:
        raise SpecError("data", data, f"modadd:P with P a whole number from 2 to {MAX_P}")
    return int(text)


def modular_addition(p: int, seed: int) -> ArrayData:
    """All ``P * P`` pairs ``(a, b) -> (a + b) mod P`` as integer tokens, split by ``seed``."""
    a, b = np.divmod(np.arange(p * p), p)
    x, y = np.stack([a, b], axis=1).astype(np.int64), (a + b) % p
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(TEST_FRACTION * len(x))))
    test, train = order[:n_test], order[n_test:]
    as_t = torch.from_numpy
    return ArrayData(as_t(x[train].copy()), as_t(y[train].copy()),
                     as_t(x[test].copy()), as_t(y[test].copy()))


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        check_path(path, "an .npz file of arrays x and y")
    except SpecError as exc:
        raise SpecError("data", f"npz:{path}", f"a readable .npz file: {exc.expected}") from None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, y = np.asarray(arrays["x"]), np.asarray(arrays["y"])
    except KeyError as exc:
        raise SpecError("data", f"npz:{path}", f"an .npz with arrays 'x' and 'y' ({exc})") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # np.load of an empty file raises EOFError, of a cut-off zip BadZipFile.
        what = str(exc) or type(exc).__name__
        raise SpecError("data", f"npz:{path}", f"a readable .npz file ({what})") from None
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) < 2:
        raise SpecError("data", f"npz:{path}",
                        "x of shape (n, ...) and integer labels y of shape (n,), n >= 2")
    if not np.issubdtype(y.dtype, np.integer):
        raise SpecError("data", f"npz:{path}", f"integer labels y, got dtype {y.dtype}")
    return x.reshape(len(x), -1), y


def split_standardise(x: np.ndarray, y: np.ndarray, seed: int) -> ArrayData:
    """Fixed train/test split by ``seed``; features standardised with training statistics."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(TEST_FRACTION * len(x))))
    test, train = order[:n_test], order[n_test:]
    x = x.astype(np.float64)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    x = (x - mean) / std
    as_t = torch.from_numpy
    return ArrayData(as_t(x[train].copy()), as_t(y[train].astype(np.int64)),
                     as_t(x[test].copy()), as_t(y[test].astype(np.int64)))


def check_fits(arrays: ArrayData | None, nprocs: int, batch: int) -> None:
    """The training set must hold at least one global batch of ``nprocs * batch`` samples."""
    if arrays is not None and nprocs * batch > arrays.n_train:
        raise SpecError("nprocs * batch", nprocs * batch,
                        f"at most {arrays.n_train} (training samples in the data)")


def steps_per_epoch(arrays: ArrayData, global_batch: int) -> int:
    """Whole global batches per pass over the training set."""
    return arrays.n_train // global_batch


def global_indices(arrays: ArrayData, seed: int, step: int, global_batch: int) -> torch.Tensor:
    """Training-sample indices of the global batch of ``step`` (epoch permutation by seed)."""
    per_epoch = steps_per_epoch(arrays, global_batch)
    epoch, within = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(arrays.n_train)
    return torch.from_numpy(perm[within * global_batch:(within + 1) * global_batch])


def shard(arrays: ArrayData | None, synthetic, seed: int, step: int, rank: int,
          nprocs: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s ``batch`` samples of step ``step``; ``synthetic(seed, n)`` makes fakes."""
    if arrays is None:
        return synthetic(int(np.random.default_rng([seed, step, rank]).integers(2**31)), batch)
    idx = global_indices(arrays, seed, step, nprocs * batch)[rank * batch:(rank + 1) * batch]
    return arrays.x_train[idx], arrays.y_train[idx]


def global_batch(arrays: ArrayData | None, synthetic, seed: int, step: int,
                 nprocs: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole step's batch, as a single process would see it (the shards in rank order)."""
    parts = [shard(arrays, synthetic, seed, step, r, nprocs, batch) for r in range(nprocs)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def resolve_npz_path(data: str) -> Path | None:
    """The file behind ``npz:PATH`` (``None`` for the other sources)."""
    return Path(data[len("npz:"):]) if data.startswith("npz:") else None
