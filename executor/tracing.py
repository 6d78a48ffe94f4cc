"""Per-rank trace recording (schema v1, ``source="exec"``) and periodic partial flushes.

What each row means (streams: ``compute`` for layer work and the update, ``comm`` for
collectives, ``host`` for waiting, data loading and checkpoints):

* ``forward``: a parametric module's forward pre-hook to its forward hook;
* ``backward``: from the moment the gradient of the module's output is ready (a tensor hook
  registered on the output in the forward hook) until the last of its parameters' gradients is
  accumulated (``register_post_accumulate_grad_hook``). Module full backward hooks were not
  used: they wrap inputs in extra autograd nodes, cost more and break in-place activations;
* ``allreduce``: post to observed completion of one message (``bucket`` = message index);
* ``wait``: time blocked waiting for messages; ``update``: the optimizer step;
* ``data``, ``loss``, ``checkpoint``.

Rows are plain tuples (cheap in hooks). Every ``flush_every`` steps the new rows go to
``DIR/partial/rank-R-aA-K.parquet`` (A: attempt, K: part) (written to a temporary name and renamed, so a crash never
leaves a half-written part); :func:`merge_partials` turns the parts into the run's trace.
On CUDA, layer boundaries are CUDA events resolved at the end of each step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import nn

from simulator.trace import TraceRecorder, conform, write_trace

PARTIAL_DIR = "partial"


class Tracer:
    """Records one rank's intervals; ``clock()`` is the aligned host clock in seconds."""

    def __init__(self, run_id: str, rank: int, clock: Callable[[], float], enabled: bool,
                 cuda: bool = False, attempt: int = 0):
        self.recorder = TraceRecorder(run_id, "exec")
        self.rank, self.clock, self.enabled, self.cuda = rank, clock, enabled, cuda
        self.step = 0
        self._flushed = 0
        self._parts = 0
        self.attempt = attempt     # a resumed run writes its parts beside the earlier ones
        self._handles: list = []
        self._bwd_start: dict[str, float] = {}
        self._left: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._events: list[tuple] = []     # CUDA: (op, name, start_event, end_event)
        self._fwd_open: dict[str, object] = {}
        self.paused = False        # set while evaluating: no rows for test-set forwards

    def record(self, iteration: int, stream: str, op: str, name: str, start_s: float,
               end_s: float, bucket: int = -1, nbytes: int = 0) -> None:
        """Add one interval (the runtime's callback)."""
        self.recorder.rows.append((iteration, self.rank, stream, op, name, bucket, nbytes,
                                   start_s, end_s))

    def attach(self, layers: list[tuple[str, nn.Module, list[nn.Parameter]]]) -> None:
        """Hook forward and backward of every parametric layer (before the strategy's hooks,
        so a layer's backward ends before its message is posted)."""
        if not self.enabled:
            return
        for name, module, params in layers:
            self._sizes[name] = len(params)
            self._handles.append(module.register_forward_pre_hook(self._fwd_pre(name)))
            self._handles.append(module.register_forward_hook(self._fwd_post(name)))
            for p in params:
                self._handles.append(p.register_post_accumulate_grad_hook(self._grad(name)))

    def begin_step(self, step: int) -> None:
        """Start of ``step``: reset per-step backward bookkeeping."""
        self.step = step
        self._left = dict(self._sizes)
        self._bwd_start.clear()
        if self.cuda and self.enabled:
            self._host0 = self.clock()
            self._ev0 = self._event()

    def end_step(self) -> None:
        """End of a step: on CUDA, resolve the step's events into rows."""
        if not (self.cuda and self.enabled) or not self._events:
            return
        torch.cuda.synchronize()
        for op, name, start, end in self._events:
            self.record(self.step, "compute", op, name,
                        self._host0 + self._ev0.elapsed_time(start) / 1e3,
                        self._host0 + self._ev0.elapsed_time(end) / 1e3)
        self._events.clear()

    def _now(self):
        return self._event() if self.cuda else self.clock()

    @staticmethod
    def _event():
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _interval(self, op: str, name: str, start, end) -> None:
        if self.paused:
            return
        if self.cuda:
            self._events.append((op, name, start, end))
        else:
            self.recorder.rows.append((self.step, self.rank, "compute", op, name, -1, 0,
                                       start, end))

    def _fwd_pre(self, name: str) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            self._fwd_open[name] = self._now()
        return hook

    def _fwd_post(self, name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, output) -> None:
            self._interval("forward", name, self._fwd_open.pop(name, None), self._now())
            out = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(self._bwd_begin(name))
        return hook

    def _bwd_begin(self, name: str) -> Callable:
        def hook(grad: torch.Tensor) -> None:
            self._bwd_start.setdefault(name, self._now())
        return hook

    def _grad(self, name: str) -> Callable:
        def hook(param: torch.Tensor) -> None:
            self._left[name] = left = self._left.get(name, 1) - 1
            if left == 0:
                end = self._now()
                self._interval("backward", name, self._bwd_start.get(name, end), end)
        return hook

    def flush(self, out_dir: Path) -> None:
        """Write the rows recorded since the last flush as this rank's next partial part."""
        rows = self.recorder.rows[self._flushed:]
        if not rows:
            return
        folder = Path(out_dir) / PARTIAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        part = TraceRecorder(self.recorder.run_id, "exec")
        part.rows = rows
        path = folder / f"rank-{self.rank:04d}-a{self.attempt:02d}-{self._parts:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        part.to_frame().to_parquet(tmp, index=False)
        os.replace(tmp, path)
        self._flushed += len(rows)
        self._parts += 1

    def frame(self) -> pd.DataFrame:
        """All rows of this rank as a v1 DataFrame."""
        return self.recorder.to_frame()

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()


def merge_partials(out_dir: Path, drop_from_step: int | None = None) -> pd.DataFrame | None:
    """Every rank's partial parts as one frame (``None`` when there are none); rows of
    iterations ``>= drop_from_step`` are dropped (a resumed run redoes them)."""
    parts = sorted((Path(out_dir) / PARTIAL_DIR).glob("rank-*.parquet"))
    if not parts:
        return None
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    if drop_from_step is not None:
        frame = frame[frame["iteration"] < drop_from_step]
    return conform(frame.sort_values(["rank", "start_s"], kind="stable"))


def write_partial_trace(out_dir: Path) -> Path | None:
    """Merge the partial parts into ``DIR/trace.parquet`` (after a failed run)."""
    frame = merge_partials(out_dir)
    return None if frame is None else write_trace(frame, out_dir)
