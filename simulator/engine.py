"""The SimPy engine: ranks run forward, backward and update; a network runs the collectives.

A :class:`Rank` is a process per data-parallel rank: forward per layer, backward per layer
(posting each message of the strategy's :class:`~vocab.strategies.Plan` as soon as its last
gradient is ready), then the strategy's wait and the optimizer update. The network is one of two
fidelities with the same ``post(rank, message, iteration, priority) -> event`` interface:
:class:`AnalyticNetwork` here (one event chain per collective, cost from the cost model) and
:class:`simulator.detailed.DetailedNetwork` (every schedule step as link transfers).

Ordering of collectives on one communicator (``ordering``):
``"serial"``: one at a time in post order (NCCL runs collectives on one stream, in order; and
``crossiter``'s priority to front layers applies when several wait). ``"concurrent"``: every
posted collective progresses at once, sharing bandwidth (MPI progresses non-blocking ones
concurrently). The engine appends plain tuples (trace schema v1 order, without run id and
source); DataFrames are built once, by the result.

The software stack (``hwmodels.stacks``) adds its costs to each collective the strategy sends:
``call_s(message)`` seconds before the bytes move (launch, copies, per-variable calls) and, with
a Horovod cycle, a wait for the next tick (:func:`wait_for_cycle`). Overlap interference
``f``: compute runs at ``1 / (1 + f)`` of its rate for as long as collectives move bytes beside
it (:class:`MovingClock`; its extra time is the result's ``interference_s``), and on GPUs
(``stretch_comm``) the collectives' channels serve at ``1 / (1 + f)`` while any rank computes
(:class:`OverlapStretch`). Only the bytes-moving part of a collective counts: the slowdown is
memory bandwidth that NCCL's traffic takes (NVIDIA/nccl#1428), which a collective's latency
and launch do not use; and it is the same slowdown model that calibration fits ``f`` with
(:func:`calibration.fitting.interference_from_overlap`: ``compute + comm * f / (1 + f)``).

MPI progress (``progress``, :mod:`simulator.progress`): each rank owns a
:class:`~simulator.progress.ProgressGate` that it opens while it waits and polls at every layer
boundary; under ``"wait"`` and ``"test"`` the analytic network runs a collective as steps,
each started only when its rank's gate permits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import simpy

from simulator.channel import Channel
from simulator.progress import PROGRESS_MODES, ProgressGate
from vocab.strategies import Message, Plan

ORDERINGS = ("serial", "concurrent")
#: nbytes -> (fixed_s, ((link class, per_byte_s), ...)): the bandwidth phases in order
PhaseFn = Callable[[int], tuple[float, tuple[tuple[str, float], ...]]]
StepFn = Callable[[int], int]                   # nbytes -> sequential steps of the collective
#: message -> seconds the software stack adds to its collective (launch, copies, extra calls)
CallFn = Callable[[Message], float]


@dataclass(frozen=True)
class EngineSetup:
    """Everything a rank needs: per-layer times, the plan, and the run's shape."""

    layer_names: tuple[str, ...]
    forward_s: tuple[float, ...]
    backward_s: tuple[float, ...]
    update_s: float
    plan: Plan
    iterations: int                  # simulated, warm-up included
    warmup: int = 1
    interference: float = 0.0        # compute slowdown while a collective is active
    ordering: str = "serial"
    progress: str = "async"          # MPI progress of posted collectives (simulator.progress)
    #: Whether an overlapped collective is also stretched by ``1 + interference`` while compute
    #: runs (GPUs: NCCL kernels share SMs and HBM with compute; CPU ranks' fitted factor is
    #: the compute slowdown alone).
    stretch_comm: bool = False
    #: Horovod's cycle: a posted collective starts at the next multiple of ``cycle_s`` (0: none).
    cycle_s: float = 0.0
    #: The stack's ``after_backward``: messages are posted, in order, when the backward pass
    #: ends rather than when their last gradient is ready.
    post_after_backward: bool = False
    triggers: dict[int, tuple[Message, ...]] = field(init=False, repr=False, compare=False)
    messages: tuple[Message, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ordering not in ORDERINGS:
            raise ValueError(f"ordering: got {self.ordering!r}, expected one of {ORDERINGS}")
        if self.progress not in PROGRESS_MODES:
            raise ValueError(f"progress: got {self.progress!r}, expected {PROGRESS_MODES}")
        triggers: dict[int, list[Message]] = {}
        # A model without gradients (all frozen) communicates nothing: no empty collectives.
        messages = tuple(m for m in self.plan.messages if m.layers)
        object.__setattr__(self, "messages", messages)
        for message in messages:
            triggers.setdefault(message.trigger_layer, []).append(message)
        object.__setattr__(self, "triggers", {k: tuple(v) for k, v in triggers.items()})

    @property
    def compute_s(self) -> float:
        """Nominal forward + backward time of one iteration."""
        return float(sum(self.forward_s) + sum(self.backward_s))

    def priority(self, message: Message, iteration: int) -> int:
        """Lower runs first: earlier iterations first; crossiter then front layers first."""
        key = message.trigger_layer if self.plan.wait_point == "next_forward" \
            else message.index
        return iteration * (len(self.layer_names) + len(self.plan.messages) + 1) + key


class Network(Protocol):
    """What a rank needs from a fidelity: post a collective, how long collectives have moved
    bytes (:class:`MovingClock`), and to be told when ranks start and stop computing (overlap
    interference)."""

    moving: "MovingClock"

    def computing(self, rank: int, busy: bool) -> None:
        ...

    def post(self, rank: int, message: Message, iteration: int, priority: int,
             gate: ProgressGate | None = None, weight: int = 1) -> simpy.Event:
        ...


class AnalyticNetwork:
    """All ranks' collectives as one: fixed latency, then bandwidth work on shared channels.

    Ranks are symmetric, so one representative rank posts each collective, its compute paced
    as rank 0 of the group advances (:func:`simulator.noise.pacing_factors`: the slowest rank
    each step, or less when the strategy waits steps later). The collective costs ``fixed_s`` (latency terms
    and launch overhead) and then, phase by phase, ``per_byte_s * nbytes`` of work served by the
    processor-sharing channel of that phase's link class ("net" for the collective itself,
    "host" for the staging copies of host-staged MPI), so collectives in flight at once share
    each class's bandwidth and a staging copy can overlap another collective's network phase.

    Under MPI progress ``"wait"`` or ``"test"`` (a gated ``gate``), the collective is
    ``steps(nbytes)`` equal slices of that cost, each started only when the gate permits.
    """

    def __init__(self, env: simpy.Environment, phases: PhaseFn, ordering: str, rows: list,
                 steps: StepFn | None = None, call_s: CallFn | None = None,
                 stretch: float = 1.0, cycle_s: float = 0.0):
        self.env = env
        self.phases = phases
        self.steps = steps or (lambda nbytes: 1)
        self.call_s = call_s or (lambda message: 0.0)
        self.rows = rows
        self.moving = MovingClock(env)
        self.stream = simpy.PriorityResource(env, 1) if ordering == "serial" else None
        self.channels: dict[str, Channel] = {}
        self.interference = OverlapStretch(stretch)
        self.cycle_s = cycle_s

    def computing(self, rank: int, busy: bool) -> None:
        """Rank ``rank`` started or stopped computing: stretch the collectives meanwhile."""
        self.interference.computing(rank, busy, self.channels.values())

    def post(self, rank: int, message: Message, iteration: int, priority: int,
             gate: ProgressGate | None = None, weight: int = 1) -> simpy.Event:
        """Start ``message``'s allreduce; the returned process ends when it completes (one
        representative rank posts: ``weight`` is not needed)."""
        return self.env.process(self.allreduce(message, iteration, priority, gate))

    def channel(self, link_class: str) -> Channel:
        """The processor-sharing channel of a link class (created on first use)."""
        if link_class not in self.channels:
            self.channels[link_class] = Channel(self.env, link_class, self.interference.rate)
        return self.channels[link_class]

    def allreduce(self, message: Message, iteration: int, priority: int,
                  gate: ProgressGate | None = None):
        """One collective: queue on the stream (serial), latency, then the bandwidth share."""
        env = self.env
        request = yield from enter_stream(env, self.cycle_s, self.stream, priority)
        fixed_s, phases = self.phases(message.nbytes)
        fixed_s += self.call_s(message)
        if gate is not None and gate.gated:
            start = yield from self.stepped(message.nbytes, fixed_s, phases, gate)
        else:
            start = env.now
            if fixed_s > 0:
                yield env.timeout(fixed_s)
            self.moving.start()
            for link_class, per_byte_s in phases:
                yield self.channel(link_class).transfer(per_byte_s * message.nbytes)
            self.moving.stop()
        if request is not None:
            self.stream.release(request)
        self.rows.append((iteration, 0, "comm", "allreduce", f"msg{message.index}",
                          message.index, message.nbytes, start, env.now))

    def stepped(self, nbytes: int, fixed_s: float, phases: tuple[tuple[str, float], ...],
                gate: ProgressGate):
        """The collective as equal steps, each waiting for the gate; returns its first start."""
        steps = max(1, int(self.steps(nbytes)))
        start = None
        me = self.env.active_process      # what the rank waits on: this collective's process
        for _ in range(steps):
            ask = gate.step(me)
            if ask is not None:
                yield ask
            start = self.env.now if start is None else start
            if fixed_s > 0:
                yield self.env.timeout(fixed_s / steps)
            self.moving.start()  # compute slows (interference) only while a step moves bytes
            for link_class, per_byte_s in phases:
                yield self.channel(link_class).transfer(per_byte_s * nbytes / steps)
            self.moving.stop()
        return start


def wait_for_cycle(env: simpy.Environment, cycle_s: float):
    """Wait for the next tick of a framework's background cycle (Horovod), if it has one."""
    if cycle_s > 0:
        tick = math.ceil(env.now / cycle_s - 1e-9) * cycle_s
        if tick > env.now:
            yield env.timeout(tick - env.now)


def enter_stream(env: simpy.Environment, cycle_s: float,
                 stream: simpy.PriorityResource | None, priority: int):
    """A collective's start: the next background-cycle tick, then its turn on the stream.

    ``stream`` serialises collectives (None: they run concurrently). Returns the granted
    request, for the caller to release when the collective ends, or None without a stream.
    """
    yield from wait_for_cycle(env, cycle_s)
    if stream is None:
        return None
    request = stream.request(priority=priority)
    yield request
    return request


class MovingClock:
    """How long collectives have been moving bytes: the time compute shares the device's
    memory bandwidth with them (overlap interference on the compute side).

    ``start``/``stop`` bracket each collective's bytes phase (several may overlap);
    :meth:`busy_s` is the total time at least one was moving, up to now.
    """

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.count = 0
        self._total = 0.0
        self._since = 0.0

    def start(self) -> None:
        """A collective starts moving bytes."""
        if self.count == 0:
            self._since = self.env.now
        self.count += 1

    def stop(self) -> None:
        """A collective has moved its bytes."""
        self.count -= 1
        if self.count == 0:
            self._total += self.env.now - self._since

    def busy_s(self) -> float:
        """Seconds, from time 0 to now, during which some collective moved bytes."""
        return self._total + (self.env.now - self._since if self.count else 0.0)


#: A compute segment's interference is settled in at most this many rounds (each round pays
#: for the overlap of the previous one; the rounds shrink by f / (1 + f) < 1 each).
INTERFERENCE_ROUNDS = 12
#: ... and a round owing less than this share of the segment is not paid (each extra round is
#: a SimPy event per rank and segment; 0.1 % of a segment is below any measurement here).
INTERFERENCE_TOLERANCE = 1e-3


class OverlapStretch:
    """Overlap interference on the collective side: while any rank computes, the channels a
    collective's bytes move on serve at ``1 / stretch`` of their rate (Proteus's model: the
    overlapped collective takes ``1 + f`` times as long)."""

    def __init__(self, stretch: float = 1.0):
        self.stretch = float(stretch)
        self.busy: set[int] = set()
        self.base: dict[int, float] = {}

    @property
    def rate(self) -> float:
        """The rate factor of a channel created now."""
        return 1.0 / self.stretch if self.busy else 1.0

    def computing(self, rank: int, busy: bool, channels) -> None:
        """Record ``rank``'s state; on the first rank busy or the last idle, rescale."""
        if self.stretch == 1.0:
            return
        was = bool(self.busy)
        (self.busy.add if busy else self.busy.discard)(rank)
        if was != bool(self.busy):
            for channel in channels:
                base = self.base.setdefault(id(channel), channel.rate * (self.stretch if was
                                                                          else 1.0))
                channel.set_rate(base / self.stretch if self.busy else base)


class Rank:
    """One data-parallel rank: its iteration loop and the strategy's waits and updates."""

    def __init__(self, env: simpy.Environment, rank_id: int, setup: EngineSetup,
                 network: Network, factors: Sequence[float], rows: list, weight: int = 1):
        self.env = env
        self.id = rank_id
        self.weight = weight          # ranks this process stands for (one rank class)
        self.setup = setup
        self.network = network
        self.factors = [float(f) for f in factors]
        self.rows = rows
        self.done: dict[tuple[int, int], simpy.Event] = {}
        #: (iteration, start, end, compute, update, wait, interference)
        self.summary: list[tuple] = []
        self.gate = ProgressGate(env, setup.progress)
        self._acc = [0.0, 0.0, 0.0, 0.0]  # compute, update, wait, interference this iteration
        self._busy = False

    def run(self):
        """The rank's process: every iteration, start to update."""
        for it in range(self.setup.iterations):
            start = self.env.now
            self._acc = [0.0, 0.0, 0.0, 0.0]
            yield from self.forward(it)
            yield from self.backward(it)
            yield from self.finish(it)
            self.summary.append((it, start, self.env.now, *self._acc))
        self.busy(False)

    def busy(self, computing: bool) -> None:
        """Tell the network when this rank starts or stops computing (compute segments run
        back to back, so only a wait ends a busy spell)."""
        if computing != self._busy and self.setup.stretch_comm:
            self._busy = computing
            self.network.computing(self.id, computing)

    def forward(self, it: int):
        """Forward pass; under crossiter each message's update gates its first layer."""
        setup = self.setup
        gated = setup.plan.wait_point == "next_forward" and it > 0
        for layer, name in enumerate(setup.layer_names):
            self.gate.poll()      # the executor's forward pre-hook calls MPI_Testall
            if gated and layer in setup.triggers:
                for message in setup.triggers[layer]:
                    yield from self.wait_for(it, [self.done[(it - 1, message.index)]])
                    share = message.nbytes / max(setup.plan.total_bytes, 1)
                    yield from self.compute(it, "update", f"msg{message.index}",
                                            setup.update_s * share)
            yield from self.compute(it, "forward", name, setup.forward_s[layer])

    def backward(self, it: int):
        """Backward pass in reverse layer order, posting each message when it is complete."""
        setup = self.setup
        held: list[Message] = []
        for layer in range(len(setup.layer_names) - 1, -1, -1):
            yield from self.compute(it, "backward", setup.layer_names[layer],
                                    setup.backward_s[layer])
            ready = setup.triggers.get(layer, ())
            if setup.post_after_backward:
                held.extend(ready)
                ready = ()
            for message in ready:
                self.post(it, message)
            self.gate.poll()      # ...and so does every gradient hook, after posting
        for message in held:
            self.post(it, message)

    def post(self, it: int, message: Message) -> None:
        """Hand ``message`` of iteration ``it`` to the network."""
        self.done[(it, message.index)] = self.network.post(
            self.id, message, it, self.setup.priority(message, it), gate=self.gate,
            weight=self.weight)

    def finish(self, it: int):
        """The strategy's wait point, then the optimizer update."""
        setup, plan = self.setup, self.setup.plan
        if plan.wait_point == "next_forward" and setup.messages:
            return        # each message's update gates the next forward (see forward)
        waited = it if plan.wait_point == "update" else it - plan.staleness
        if waited < 0:   # delayed warm-up: no averaged gradient to apply yet
            return
        yield from self.wait_for(it, [self.done[(waited, m.index)] for m in setup.messages])
        yield from self.compute(it, "update", "sgd", setup.update_s)

    def compute(self, it: int, op: str, name: str, nominal_s: float):
        """A compute segment, scaled by this iteration's noise factor and slowed by
        interference for as long as collectives move bytes beside it."""
        scaled = nominal_s * self.factors[it]
        start = self.env.now
        extra = 0.0
        if scaled > 0:
            self.busy(True)
            moved_before = self.network.moving.busy_s()
            yield self.env.timeout(scaled)
            extra = yield from self.interfere(start, moved_before)
        self._acc[1 if op == "update" else 0] += scaled
        self._acc[3] += extra
        self.rows.append((it, self.id, "compute", op, name, -1, 0, start, self.env.now))

    def interfere(self, started: float, moved_before: float):
        """The time a compute segment loses to collectives moving bytes beside it: running at
        ``1 / (1 + f)`` while they do, a segment overlapped for ``b`` seconds takes
        ``b * f / (1 + f)`` longer (and overlaps more meanwhile, settled in rounds)."""
        f = self.setup.interference
        if not f:
            return 0.0
        share = f / (1.0 + f)
        paid = 0.0
        floor = INTERFERENCE_TOLERANCE * (self.env.now - started)
        for _ in range(INTERFERENCE_ROUNDS):
            owed = share * (self.network.moving.busy_s() - moved_before) - paid
            if owed <= max(floor, 1e-12):
                break
            yield self.env.timeout(owed)
            paid += owed
        return paid

    def wait_for(self, it: int, events: list[simpy.Event]):
        """Block until ``events`` are done, recording the time as a ``wait`` interval."""
        pending = [e for e in events if not e.processed]
        if not pending:
            return
        start = self.env.now
        self.busy(False)
        self.gate.enter_wait(pending)   # what the rank waits on progresses meanwhile
        yield simpy.AllOf(self.env, pending)
        self.gate.leave_wait()
        self._acc[2] += self.env.now - start
        self.rows.append((it, self.id, "compute", "wait", "comm", -1, 0, start, self.env.now))


@dataclass
class EngineOutput:
    """Plain records of one simulated run (tuples; DataFrames come later)."""

    rows: list[tuple]
    summary: list[tuple]      # rank 0's (iteration, start, end, compute, update, wait,
                              # interference)


NetworkFactory = Callable[[simpy.Environment, list], Network]


def run_engine(setup: EngineSetup, make_network: NetworkFactory,
               factors: np.ndarray) -> EngineOutput:
    """Simulate ``factors.shape[1]`` ranks (factors: per iteration and rank) to completion.

    Ranks with identical factor columns behave identically (every collective waits for all
    ranks and ends for all at once), so they run as one process per *rank class*, posting
    for all its members; a network that writes per-rank rows is told the classes' ranks
    (``record_ranks``). The summary is rank 0's.
    """
    env = simpy.Environment()
    rows: list[tuple] = []
    network = make_network(env, rows)
    _, first, counts = np.unique(np.asarray(factors).T, axis=0, return_index=True,
                                 return_counts=True)
    order = np.argsort(first)          # classes in order of their lowest rank
    ranks = [Rank(env, int(first[c]), setup, network, factors[:, first[c]], rows,
                  int(counts[c])) for c in order]
    if hasattr(network, "record_ranks"):
        network.record_ranks([r.id for r in ranks])
    for rank in ranks:
        env.process(rank.run())
    env.run()
    unfinished = [r.id for r in ranks if len(r.summary) != setup.iterations]
    if unfinished:  # a collective never completed: a bug in a network, never a user error
        raise RuntimeError(f"ranks {unfinished[:5]} did not finish; a collective never ended")
    return EngineOutput(rows, ranks[0].summary)     # rank 0 leads the first class
