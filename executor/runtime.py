"""The tensor-touching half of a strategy: hooks, flat buffers, non-blocking allreduces.

The :class:`~vocab.strategies.Plan` says which layers go in which message; this runtime
maps parameters -> layers -> messages, counts each message's gradients as
``register_post_accumulate_grad_hook`` reports them ready, and when a message is complete
copies its gradients into a flat buffer and posts ``Iallreduce`` on the buffer's zero-copy
numpy view. When to wait is the plan's ``wait_point``:

* ``update`` (sync, layerwise, bucketed): all messages before this step's optimizer update;
* ``delayed``: the step's buffers stay in flight for ``staleness`` more steps; the update of
  step ``t`` applies the averaged gradient of step ``t - d``; the first ``d`` steps make no
  update (their gradients are applied at steps ``d .. 2d-1``);
* ``next_forward`` (crossiter): a message is waited for, and its layers updated, just before
  the next forward reaches its first layer (forward pre-hooks).

**Progress.** MPI moves a non-blocking collective forward only while some thread is inside MPI.
Every gradient hook and every forward pre-hook calls ``Testall`` on the requests in flight,
which gives progress at layer granularity while compute runs. A dedicated progress thread
(``MPI_THREAD_MULTIPLE`` is available with mpich) was not used: on oversubscribed CPU ranks a
polling thread steals the core the backward pass needs, and the GIL serialises it anyway.

**Tracing.** The runtime's hooks are shared with the tracer, which then registers none of
its own (its rows tile the forward and the backward between these hooks; see
:mod:`executor.tracing`): the per-parameter hook calls ``on_grad(layer)`` first (a layer's
backward row ends before its message is posted), and each layer's forward pre-hook calls
``on_forward(layer)`` last (the layer's forward row starts after the polling; the polling
falls into the row before). crossiter's gate, before it waits for a message and applies
its update (rows of their own), ends the open forward row with ``on_forward(-1)``. That
saves a second Python hook per parameter and per layer, the largest costs of recording.
Message names and sizes for the trace are made once, at construction.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from executor.comm import MPI, wait_all
from vocab.strategies import Plan

Layers = list[tuple[str, nn.Module, list[nn.Parameter]]]
Recorder = Callable[..., None]   # add(iteration, rank, stream, op, name, start, end, bucket, nbytes)


@dataclass
class _Slot:
    """One step's flat buffers and requests. Buffers and requests are kept referenced here
    until the request completes: mpi4py does not keep the memory of a pending collective
    alive, so dropping the buffer early would let MPI write into freed memory."""

    bufs: list[torch.Tensor]
    reqs: list[MPI.Request] = field(default_factory=list)
    post_s: list[float] = field(default_factory=list)
    posted: list[bool] = field(default_factory=list)
    applied: list[bool] = field(default_factory=list)
    step: int = -1


class StrategyRuntime:
    """Runs ``plan`` on ``layers`` (forward order) of ``net`` over ``comm``; see the module
    docstring. An :class:`executor.strategy.ExecStrategy`."""

    #: Gradients and forward starts reach the tracer through ``on_grad`` and ``on_forward``
    #: from this runtime's own hooks.
    reports_gradients = True
    reports_forward = True

    def __init__(self, comm: MPI.Comm, net: nn.Module, layers: Layers, plan: Plan,
                 make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
                 clock: Callable[[], float], record: Recorder | None, timeout_s: float,
                 on_grad: Callable[[int], None] | None = None,
                 on_forward: Callable[[int], None] | None = None):
        self.net = net   # the model, run as it is: the hooks communicate
        self.comm, self.plan, self.clock, self.record = comm, plan, clock, record
        self.on_grad = on_grad   # the tracer's grad_ready (see "Tracing" above)
        self.on_forward = on_forward   # the tracer's forward_begins
        self.timeout_s = timeout_s
        self.size = comm.size
        self.msg_params: list[list[nn.Parameter]] = [
            [p for layer in m.layers for p in layers[layer][2]] for m in plan.messages]
        self.dtype = layers[0][2][0].dtype
        self.numel = [sum(p.numel() for p in ps) for ps in self.msg_params]
        # Trace names and sizes made once: nothing is formatted in the hooks.
        self.msg_names = [f"msg{k}" for k in range(len(plan.messages))]
        self.msg_nbytes = [n * layers[0][2][0].element_size() for n in self.numel]
        if plan.wait_point == "next_forward":
            self.optimizers = [make_optimizer(ps) for ps in self.msg_params]
        else:
            self.optimizers = [make_optimizer([p for ps in self.msg_params for p in ps])]
        self._free: list[list[torch.Tensor]] = []
        self._inflight: deque[_Slot] = deque()
        self._slot: _Slot | None = None
        self._pending: list[int] = []
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_hook(k, layer))
                         for k, m in enumerate(plan.messages) for layer in m.layers
                         for p in layers[layer][2]]
        for layer, (_, module, _) in enumerate(layers):
            hook = self._forward_hook(layer)
            if hook is not None:
                self._handles.append(module.register_forward_pre_hook(hook))

    # -- per step --------------------------------------------------------------------------
    def begin_step(self, step: int) -> None:
        """Prepare buffers for ``step``'s backward (call before its forward)."""
        bufs = self._free.pop() if self._free else [
            torch.zeros(n, dtype=self.dtype) for n in self.numel]
        n = len(bufs)
        self._slot = _Slot(bufs, [MPI.REQUEST_NULL] * n, [0.0] * n, [False] * n, [False] * n,
                           step)
        self._pending[:] = [len(ps) for ps in self.msg_params]   # in place: hooks hold it

    def end_step(self, step: int) -> bool:
        """After backward: post what is left, wait per the plan, update; True if updated."""
        slot = self._slot
        assert slot is not None, "begin_step was not called"
        for k, posted in enumerate(slot.posted):
            if not posted:   # parameters that got no gradient this step (unused)
                self._post(slot, k)
        self._slot = None
        if self.plan.wait_point == "next_forward":
            self.flush(step)    # messages whose layers the last forward never reached
        if self.plan.wait_point == "update":
            self._complete(slot, range(len(slot.bufs)))
            self._apply(slot, step)
            self._release(slot)
            return True
        self._inflight.append(slot)
        if self.plan.wait_point == "delayed":
            if len(self._inflight) <= self.plan.staleness:
                return False
            old = self._inflight.popleft()
            self._complete(old, range(len(old.bufs)))
            self._apply(old, step)
            self._release(old)
        return True

    def flush(self, step: int) -> None:
        """crossiter: apply every pending update now (before evaluation, checkpoint, end)."""
        if self.plan.wait_point != "next_forward":
            return
        while self._inflight:
            slot = self._inflight.popleft()
            for k in range(len(slot.bufs)):
                self._apply_message(slot, k, step)
            self._release(slot)

    def pending_state(self) -> list[dict]:
        """delayed: the gradients still to be applied (completed, averaged) for a checkpoint."""
        out = []
        for slot in self._inflight:
            self._complete(slot, range(len(slot.bufs)))
            out.append({"step": slot.step, "bufs": [b.clone() for b in slot.bufs]})
        return out

    def load_pending_state(self, state: list[dict]) -> None:
        """Restore :meth:`pending_state` (the buffers are already averaged sums)."""
        for item in state:
            n = len(item["bufs"])
            slot = _Slot([b.clone() for b in item["bufs"]], [MPI.REQUEST_NULL] * n,
                         [0.0] * n, [True] * n, [False] * n, item["step"])
            self._inflight.append(slot)

    def close(self) -> None:
        """Complete what is still in flight (delayed's last ``d`` steps), remove the hooks."""
        while self._inflight:
            slot = self._inflight.popleft()
            self._complete(slot, range(len(slot.bufs)))
        for handle in self._handles:
            handle.remove()

    # -- hooks -----------------------------------------------------------------------------
    def _grad_hook(self, k: int, layer: int) -> Callable[[torch.Tensor], None]:
        """The post-accumulate-grad hook of one parameter of ``layer`` (in message ``k``);
        built once, it also ends the layer's backward in the trace (``on_grad``)."""
        on_grad, pending = self.on_grad, self._pending

        def hook(param: torch.Tensor) -> None:
            if on_grad is not None:
                on_grad(layer)
            slot = self._slot
            if slot is None:    # a backward outside training (e.g. a user's probe): ignore
                return
            pending[k] -= 1
            if pending[k] == 0:
                self._post(slot, k)
            self._progress()
        return hook

    def _forward_hook(self, layer: int) -> Callable | None:
        """The forward pre-hook of ``layer``: crossiter's gate on the first layer of each
        message (the message is waited for and its layers updated), a progress poll on every
        layer otherwise; then ``on_forward``. None where there is nothing to do."""
        on_forward = self.on_forward
        if self.plan.wait_point != "next_forward":
            def hook(module: nn.Module, args: tuple) -> None:
                self._progress()
                if on_forward is not None:
                    on_forward(layer)
            return hook
        gates = {min(m.layers): m.index for m in self.plan.messages}
        if layer in gates:
            return self._gate(gates[layer], layer)
        if on_forward is None:
            return None
        return lambda module, args: on_forward(layer)

    def _gate(self, k: int, layer: int) -> Callable:
        on_forward = self.on_forward

        def hook(module: nn.Module, args: tuple) -> None:
            if self._inflight and not self._inflight[0].applied[k]:
                if on_forward is not None:
                    on_forward(-1)      # the wait and update are rows of their own
                slot = self._inflight[0]
                self._apply_message(slot, k, slot.step)
                if all(slot.applied):
                    self._release(self._inflight.popleft())
            self._progress()
            if on_forward is not None:
                on_forward(layer)
        return hook

    def _progress(self) -> None:
        for slot in self._inflight:
            self._poll(slot)
        if self._slot is not None:
            self._poll(self._slot)

    def _poll(self, slot: _Slot) -> None:
        for k in MPI.Request.Testsome(slot.reqs) or ():
            self._completed(slot, k)

    def _completed(self, slot: _Slot, k: int) -> None:
        if self.record is not None:
            self.record(slot.step, "comm", "allreduce", self.msg_names[k], slot.post_s[k],
                        self.clock(), k, self.msg_nbytes[k])

    # -- messages --------------------------------------------------------------------------
    def _post(self, slot: _Slot, k: int) -> None:
        buf, offset = slot.bufs[k], 0
        for p in self.msg_params[k]:
            n = p.numel()
            if p.grad is None:
                buf[offset:offset + n].zero_()
            else:
                buf[offset:offset + n].copy_(p.grad.reshape(-1))
            offset += n
        slot.post_s[k] = self.clock()
        slot.reqs[k] = self.comm.Iallreduce(MPI.IN_PLACE, buf.numpy(), op=MPI.SUM)
        slot.posted[k] = True

    def _complete(self, slot: _Slot, which) -> None:
        which = list(which)
        reqs = [slot.reqs[k] for k in which]
        t0 = self.clock()
        deadline = time.monotonic() + self.timeout_s
        wait_all(reqs, deadline, f"allreduce of step {slot.step}",
                 lambda i: self._completed(slot, which[i]))
        if self.record is not None:
            self.record(slot.step, "host", "wait", "wait", t0, self.clock(), -1, 0)

    def _apply(self, slot: _Slot, step: int) -> None:
        t0 = self.clock()
        for k in range(len(slot.bufs)):
            self._unpack(slot, k)
        self.optimizers[0].step()
        if self.record is not None:
            self.record(step, "compute", "update", "update", t0, self.clock(), -1, 0)

    def _apply_message(self, slot: _Slot, k: int, step: int) -> None:
        self._complete(slot, [k])
        t0 = self.clock()
        self._unpack(slot, k)
        self.optimizers[k].step()
        for p in self.msg_params[k]:
            p.grad = None   # this step's backward must not accumulate onto applied gradients
        slot.applied[k] = True
        if self.record is not None:
            self.record(step, "compute", "update", self.msg_names[k], t0, self.clock(), k, 0)

    def _unpack(self, slot: _Slot, k: int) -> None:
        buf, offset = slot.bufs[k], 0
        buf.div_(self.size)
        for p in self.msg_params[k]:
            n = p.numel()
            view = buf[offset:offset + n].view_as(p)
            if p.grad is None:
                p.grad = view.to(p.device, copy=True)
            else:
                p.grad.copy_(view)
            offset += n

    def _release(self, slot: _Slot) -> None:
        self._free.append(slot.bufs)
