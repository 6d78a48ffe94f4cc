"""Single-process references the distributed strategies are checked against.

:func:`reference_train` trains on the whole global batch (the ranks' shards in rank order) in
one process with the same SGD: ``sync``, ``layerwise``, ``bucketed``, ``crossiter`` and ``ddp``
must reach its weights; for ``delayed`` it applies the staleness-``d`` rule instead (no update
in the first ``d`` steps, then the gradient of step ``t - d`` at step ``t``). For a ``--local``
run (no exchange) it trains on rank 0's shard alone: rank 0's replica must reach its weights.
"""

from __future__ import annotations

from collections import deque

import torch

from executor import data as datamod
from executor.config import RunConfig
from executor.modelsrc import build_source


def reference_train(cfg: RunConfig) -> dict[str, torch.Tensor]:
    """Final weights (a state dict) of the single-process reference of ``cfg``."""
    torch.manual_seed(cfg.seed)
    source = build_source(cfg.model)
    model = source.model.to(getattr(torch, cfg.dtype))
    arrays = datamod.load_arrays(cfg.data, cfg.seed)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    stale = cfg.strategy.staleness if cfg.strategy.name == "delayed" else 0
    queue: deque[list[torch.Tensor]] = deque()
    for step in range(cfg.steps):
        for group in opt.param_groups:      # the run's schedule (warm-up, linear scaling)
            group["lr"] = cfg.lr_at(step)
        if cfg.local:
            x, y = datamod.shard(arrays, source.synthetic, cfg.seed, step, 0, cfg.nprocs,
                                 cfg.batch)
        else:
            x, y = datamod.global_batch(arrays, source.synthetic, cfg.seed, step, cfg.nprocs,
                                        cfg.batch)
        if x.is_floating_point():
            x = x.to(getattr(torch, cfg.dtype))
        model.zero_grad(set_to_none=True)
        source.loss_fn(model(x), y).backward()
        queue.append([torch.zeros_like(p) if p.grad is None else p.grad.clone()
                      for p in params])
        if len(queue) <= stale:
            continue
        for p, g in zip(params, queue.popleft()):
            p.grad = g
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_relative_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """max over tensors of ``max|a - b| / max|b|`` (``inf`` when the keys differ)."""
    if a.keys() != b.keys():
        return float("inf")
    worst = 0.0
    for key, ref in b.items():
        scale = float(ref.abs().max()) or 1.0
        worst = max(worst, float((a[key].to(ref.dtype) - ref).abs().max()) / scale)
    return worst
