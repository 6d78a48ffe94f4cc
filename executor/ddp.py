"""``--strategy ddp``: the same model and data under torch DistributedDataParallel (gloo).

The peer baseline: torch's own bucketed, overlapped allreduce (the spec's ``bucket_bytes``,
``--bucket-mb``, is DDP's ``bucket_cap_mb``). Ranks and world size come from MPI; rank 0 picks
a free TCP port on 127.0.0.1 (``MASTER_ADDR``/``MASTER_PORT`` when set win) and broadcasts it.
With tracing on, a DDP communication hook records each bucket's allreduce (post to completion)
in the trace.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from executor.comm import MPI
from vocab.units import MiB


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def init_gloo(comm: MPI.Comm, timeout_s: float) -> None:
    """Start torch.distributed (gloo) with MPI's ranks."""
    port = comm.bcast(int(os.environ.get("MASTER_PORT", 0)) or free_port()
                      if comm.rank == 0 else None, root=0)
    addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=comm.rank,
                            world_size=comm.size, timeout=timedelta(seconds=timeout_s))


class DDPStrategy:
    """torch DDP as an :class:`executor.strategy.ExecStrategy`; ``net`` is the DDP model.

    It needs only the bucket cap (bytes) and the timeout of the run, not its whole config.
    """

    #: DDP's own hooks see no layer: the tracer hooks the gradients and forwards itself.
    reports_gradients = False
    reports_forward = False

    def __init__(self, comm: MPI.Comm, model: nn.Module,
                 make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
                 clock: Callable[[], float], record: Callable | None, bucket_bytes: int,
                 timeout_s: float):
        init_gloo(comm, timeout_s)
        self.clock, self.record, self.step, self.size = clock, record, 0, comm.size
        device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
        self.net = DistributedDataParallel(model, device_ids=device_ids,
                                           bucket_cap_mb=bucket_bytes / MiB)
        self.optimizers = [make_optimizer(list(model.parameters()))]
        if record is not None:
            self.net.register_comm_hook(None, self._traced_allreduce)

    def _traced_allreduce(self, state, bucket):  # noqa: ANN001, ANN202
        # No annotations: DDP checks them at run time and this module's are postponed strings.
        # Same arithmetic as DDP's default hook (divide, then sum); times its completion.
        tensor, step, index, t0 = bucket.buffer(), self.step, bucket.index(), self.clock()
        tensor.div_(self.size)
        nbytes = tensor.numel() * tensor.element_size()
        fut = dist.all_reduce(tensor, async_op=True).get_future()

        def done(f: torch.futures.Future) -> torch.Tensor:
            self.record(step, "comm", "allreduce", f"bucket{index}", t0, self.clock(), index,
                        nbytes)
            return f.value()[0]
        return fut.then(done)

    def begin_step(self, step: int) -> None:
        """Remember the step for the trace."""
        self.step = step

    def end_step(self, step: int) -> bool:
        """DDP averaged the gradients during backward: update."""
        t0 = self.clock()
        self.optimizers[0].step()
        if self.record is not None:
            self.record(step, "compute", "update", "update", t0, self.clock())
        return True

    def flush(self, step: int) -> None:
        """Nothing is ever pending."""

    def pending_state(self) -> list:
        """Nothing is ever pending."""
        return []

    def load_pending_state(self, state: list) -> None:
        """Nothing is ever pending."""

    def close(self) -> None:
        """Shut torch.distributed down."""
        if dist.is_initialized():
            dist.destroy_process_group()


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live."""
    return next(model.parameters()).device

