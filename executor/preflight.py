"""Checks before anything runs or is written: model, strategy, batch, data, output directory.

``gradsync run`` calls :func:`check` before starting ``mpiexec``; rank 0 of
``python -m executor`` calls it again (for direct ``mpiexec`` use). Every failure is a
:class:`~vocab.errors.SpecError` naming the field and the bad value.
"""

from __future__ import annotations

import torch

from executor import data as datamod
from executor.config import RunConfig
from executor.modelsrc import check_features, check_labels, check_model_name
from vocab.errors import SpecError
from executor.outputs import check_out_dir


def check(cfg: RunConfig) -> None:
    """Raise SpecError unless ``cfg`` can run (RunConfig already checked ranges and names)."""
    check_model_name(cfg.model)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device", cfg.device, "'cpu' or 'auto' (CUDA is not available here)")
    arrays = datamod.load_arrays(cfg.data, cfg.seed)
    datamod.check_fits(arrays, cfg.nprocs, cfg.batch)
    if arrays is not None:
        check_features(cfg.model, int(arrays.x_train.shape[1]))
        for labels in (arrays.y_train, arrays.y_test):
            check_labels(cfg.model, labels)
        for split in (arrays.x_train, arrays.x_test):
            if not bool(split.isfinite().all()):    # would train to NaN, step after step
                raise SpecError("data", cfg.data, "finite feature values (the data holds "
                                "NaN or infinite values)")
    check_out_dir(cfg)
