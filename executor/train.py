"""One rank's training run: setup, the step loop, checkpoints, partial flushes, final outputs.

Every rank runs :func:`train_rank`; the strategy object, an
:class:`executor.strategy.ExecStrategy` (:class:`StrategyRuntime` for the shared plans,
:class:`executor.ddp.DDPStrategy` for the torch baseline), does the communication. Rank 0
writes ``trace.parquet``, ``metrics.csv``, ``model.pt`` and ``run.json``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from executor import checkpoint as ckpt
from executor import data as datamod
from executor import outputs
from executor.comm import MPI, Clock, Watchdog, local_rank, threads_per_rank
from executor.config import RunConfig
from executor.ddp import DDPStrategy
from executor.deathwatch import start_watcher
from executor.modelsrc import ModelSource, build_source
from executor.runtime import StrategyRuntime
from executor.strategy import ExecStrategy
from executor.tracing import PARTIAL_DIR, PartSchedule, Tracer
from vocab.errors import SpecError
from vocab.strategies import make_plan


#: How long the watchdog waits for a flush under way on the training thread before it
#: aborts without its own: a part of rows takes milliseconds to write (benchmarks/README.md,
#: the flush share of a step), so seconds mean the flush itself is stuck.
WATCHDOG_FLUSH_WAIT_S = 5.0

@dataclass
class RankState:
    """What a rank's failure handler needs: where to flush, what step it was on."""

    cfg: RunConfig
    rank: int
    step: int = -1
    tracer: Tracer | None = None
    metrics: list[tuple] = field(default_factory=list)
    flushed_metrics: int = 0
    attempt: int = 0
    #: When the periodic part is due (default: ``cfg.flush_every`` steps and
    #: ``cfg.trace_flush_s`` seconds on the monotonic clock).
    schedule: PartSchedule | None = None

    #: One flush at a time: the watchdog's (its own thread) and the training thread's.
    _flush_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                        compare=False)

    def __post_init__(self) -> None:
        if self.schedule is None:
            self.schedule = PartSchedule(self.cfg.flush_every, self.cfg.trace_flush_s)

    def flush(self, background: bool = False, timeout_s: float | None = None) -> bool:
        """Write this rank's new trace rows and metrics as partial parts; ``background``: the
        trace part is written by the tracer's writer thread (see :meth:`Tracer.flush`).

        Safe from another thread (the watchdog's) while the training thread appends rows
        and metrics or flushes itself: flushes take turns, and a row appended during one is
        written by the next, never lost or written twice. ``timeout_s``: give up (False)
        rather than wait longer for a flush under way, so that a watchdog about to abort a
        hung rank is not hung by it too."""
        if not self._flush_lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            return False
        try:
            if self.tracer is not None:
                self.tracer.flush(Path(self.cfg.out), background)
            end = len(self.metrics)         # rows appended from here on: the next flush's
            new = self.metrics[self.flushed_metrics:end]
            if new:
                outputs.write_metrics_part(Path(self.cfg.out), self.rank, self.attempt,
                                           self.flushed_metrics, new)
                self.flushed_metrics = end
            self.schedule.written(self.step + 1)
        finally:
            self._flush_lock.release()
        return True

    def periodic_flush(self, steps_done: int) -> bool:
        """The training loop's flush after each step: a background part when the schedule
        says one is due (see :class:`PartSchedule`); True when it wrote one."""
        if not self.schedule.due(steps_done):
            return False
        self.flush(background=True)     # the synchronous flushes wait for it
        return True


def pick_device(cfg: RunConfig, comm: MPI.Comm) -> torch.device:
    """CUDA (one GPU per rank, by local rank) where present and allowed, else CPU."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device", cfg.device, "'cpu' or 'auto' (CUDA is not available here)")
    if cfg.device != "cpu" and torch.cuda.is_available():
        index = local_rank(comm) % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def build_model(cfg: RunConfig, comm: MPI.Comm, device: torch.device) -> ModelSource:
    """The model with rank 0's initial weights on every rank."""
    torch.manual_seed(cfg.seed)
    source = build_source(cfg.model)
    source.model.to(getattr(torch, cfg.dtype))
    with torch.no_grad():
        for tensor in list(source.model.parameters()) + list(source.model.buffers()):
            comm.Bcast(tensor.detach().numpy(), root=0)
    source.model.to(device)
    return source


def make_strategy(cfg: RunConfig, comm: MPI.Comm, source: ModelSource, clock: Clock,
                  tracer: Tracer) -> ExecStrategy:
    """The strategy runtime (or DDP baseline) with its optimizer(s)."""
    def sgd(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)

    record = tracer.record if cfg.trace else None
    if cfg.strategy.name == "ddp":
        return DDPStrategy(comm, source.model, sgd, clock.now, record,
                           cfg.strategy.bucket_bytes, cfg.comm_timeout_s)
    layers = source.layers()
    # A local run gives the strategy a communicator of one rank: the same hooks, buffers and
    # updates, no exchange (what the other ranks compute beside it is the point).
    grad_comm = MPI.COMM_SELF if cfg.local else comm
    return StrategyRuntime(grad_comm, source.model, layers,
                           make_plan(cfg.strategy, grad_bytes_of(layers)), sgd, clock.now,
                           record, cfg.comm_timeout_s, tracer.grad_ready if cfg.trace else None,
                           tracer.forward_begins if cfg.trace else None)


def grad_bytes_of(layers) -> list[int]:
    """Gradient bytes per layer (forward order), as the plan and the run record count them."""
    return [sum(p.numel() * p.element_size() for p in ps) for _, _, ps in layers]


def set_lr(strategy: ExecStrategy, lr: float) -> None:
    """The schedule's learning rate for the coming update(s) (warm-up, linear scaling)."""
    for opt in strategy.optimizers:
        for group in opt.param_groups:
            group["lr"] = lr


def train_rank(cfg: RunConfig, state: RankState) -> None:
    """Run the whole training job on this rank (collective: every rank calls it)."""
    comm = MPI.COMM_WORLD
    wall0 = time.perf_counter()
    outputs.write_pid(Path(cfg.out), comm.rank)
    start_watcher(Path(cfg.out) / PARTIAL_DIR, comm.rank)
    torch.set_num_threads(threads_per_rank(comm))
    device = pick_device(cfg, comm)
    clock = Clock()
    watchdog = Watchdog(comm, cfg.comm_timeout_s,
                        lambda msg: state.flush(timeout_s=WATCHDOG_FLUSH_WAIT_S))
    arrays = datamod.load_arrays(cfg.data, cfg.seed)
    source = build_model(cfg, comm, device)
    resume = ckpt.load_checkpoint(cfg.out, comm.rank) if cfg.resume else None
    run_id = resume["run_id"] if resume else comm.bcast(outputs.new_run_id(cfg), root=0)
    state.attempt = resume["attempt"] + 1 if resume else 0
    tracer = Tracer(run_id, comm.rank, clock, cfg.trace, device.type == "cuda",
                    state.attempt)
    state.tracer = tracer
    strategy = make_strategy(cfg, comm, source, clock, tracer)
    # The strategy runtime reports gradients and forward starts to the tracer from its own
    # hooks; DDP needs the tracer's (registered after the strategy's).
    tracer.attach(source.layers(), grad_hooks=not strategy.reports_gradients,
                  forward_hooks=not strategy.reports_forward)
    start = restore(resume, source, strategy, state) if resume else 0
    specs = outputs.run_specs(cfg, grad_bytes_of(source.layers()), device,
                              torch.get_num_threads())
    if comm.rank == 0:
        outputs.prepare_run_dir(cfg, specs, run_id, start)
    watchdog.arm("aligning clocks")
    clock.align(comm)
    watchdog.disarm()
    state.schedule.written(start)       # the first part's time and steps count from here
    for step in range(start, cfg.steps):
        state.step = step
        set_lr(strategy, cfg.lr_at(step))
        run_step(cfg, comm, step, source, strategy, tracer, arrays, device, state)
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            save(cfg, comm.rank, step + 1, run_id, source, strategy, state, clock, tracer)
        state.periodic_flush(step + 1)
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            strategy.flush(step)
            evaluate(comm, source, arrays, device, state, step)
    strategy.flush(cfg.steps - 1)
    evaluate(comm, source, arrays, device, state, cfg.steps - 1)
    state.flush()
    watchdog.arm("gathering results")
    comm.Barrier()
    if comm.rank == 0:
        outputs.finish_run(cfg, specs, run_id, source.model, start,
                           time.perf_counter() - wall0,
                           MPI.Get_library_version().splitlines()[0].strip())
    comm.Barrier()
    watchdog.disarm()
    strategy.close()
    tracer.close()


def run_step(cfg: RunConfig, comm: MPI.Comm, step: int, source: ModelSource,
             strategy: ExecStrategy, tracer: Tracer, arrays, device: torch.device,
             state: RankState) -> None:
    """Data, forward, loss, backward (hooks communicate), wait and update per the strategy."""
    maybe_fail(cfg, comm.rank, step)
    rec = tracer.record if cfg.trace else None
    t0 = tracer.clock()
    x, y = datamod.shard(arrays, source.synthetic, cfg.seed, step, comm.rank, cfg.nprocs,
                         cfg.batch)
    x = x.to(device=device, dtype=getattr(torch, cfg.dtype) if x.is_floating_point() else None)
    y = y.to(device)
    t1 = tracer.clock()
    if rec:
        rec(step, "host", "data", "data", t0, t1)
    tracer.begin_step(step)
    strategy.begin_step(step)
    source.model.zero_grad(set_to_none=True)
    out = strategy.net(x)
    if rec:
        tracer.forward_ends()       # the last layer's forward row ends here
    t2 = tracer.clock()
    loss = source.loss_fn(out, y)
    check_finite_loss(loss, step)
    if rec:
        rec(step, "compute", "loss", "loss", t2, tracer.clock())
        tracer.backward_begins()    # the first backward row starts here
    loss.backward()
    updated = strategy.end_step(step)
    tracer.end_step()
    acc = float((out.argmax(dim=-1) == y).double().mean()) \
        if isinstance(out, torch.Tensor) and out.dim() == 2 else float("nan")
    state.metrics.append((step, comm.rank, float(loss.detach()), acc, float("nan"), float("nan"),
                          int(updated), tracer.clock() - t0))


def check_finite_loss(loss: torch.Tensor, step: int) -> None:
    """Stop the run as failed, naming the step, once the loss is NaN or infinite: every later
    step would train on garbage and the run would still end ``ok``."""
    value = float(loss.detach())
    if value != value or value in (float("inf"), float("-inf")):
        raise SpecError("loss", value, f"a finite number (the loss became non-finite at step "
                        f"{step}: check the input data, --lr and --dtype)")


def evaluate(comm: MPI.Comm, source: ModelSource, arrays, device: torch.device,
             state: RankState, step: int) -> None:
    """Rank 0: accuracy and loss on the test split (every rank holds the same weights)."""
    if comm.rank != 0 or arrays is None:
        return
    model = source.model
    if state.tracer is not None:
        state.tracer.paused = True
    with torch.no_grad():
        x = arrays.x_test.to(device)   # integer tokens stay integers (modadd)
        if x.is_floating_point():
            x = x.to(next(model.parameters()).dtype)
        logits = model(x)
        acc = float((logits.argmax(dim=-1).cpu() == arrays.y_test).double().mean())
        test_loss = float(nn.functional.cross_entropy(logits.cpu().double(), arrays.y_test))
    if state.tracer is not None:
        state.tracer.paused = False
    state.metrics.append((step, -1, float("nan"), float("nan"), acc, test_loss, 0, float("nan")))


def save(cfg: RunConfig, rank: int, next_step: int, run_id: str, source: ModelSource,
         strategy: ExecStrategy, state: RankState, clock: Clock, tracer: Tracer) -> None:
    """Checkpoint this rank (crossiter updates are applied first, delayed ones kept)."""
    t0 = clock.now()
    strategy.flush(next_step - 1)
    ckpt.save_checkpoint(cfg.out, rank, {
        "run_id": run_id, "attempt": state.attempt, "step": next_step,
        "model": source.model.state_dict(),
        "optimizers": [o.state_dict() for o in strategy.optimizers],
        "pending": strategy.pending_state(), "torch_rng": torch.get_rng_state(),
        "config": cfg.to_dict()})
    if cfg.trace:
        tracer.record(next_step - 1, "host", "checkpoint", "checkpoint", t0, clock.now())
    state.flush()   # the trace up to a checkpoint survives whatever comes next


def restore(resume: dict, source: ModelSource, strategy: ExecStrategy,
            state: RankState) -> int:
    """Load a checkpoint into the model and strategy; returns the step to continue from."""
    source.model.load_state_dict(resume["model"])
    for opt, saved in zip(strategy.optimizers, resume["optimizers"]):
        opt.load_state_dict(saved)
    strategy.load_pending_state(resume["pending"])
    torch.set_rng_state(resume["torch_rng"])
    return int(resume["step"])


def maybe_fail(cfg: RunConfig, rank: int, step: int) -> None:
    """Test-only fault injection (``--fail-at-step S --fail-rank R --fail-mode raise|kill``)."""
    if step != cfg.fail_at_step or rank != cfg.fail_rank:
        return
    if cfg.fail_mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"injected fault at step {step}")
