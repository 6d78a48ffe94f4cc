"""MPI progress semantics: when a posted non-blocking collective may take its next step.

An ``MPI_Iallreduce`` is a schedule of rounds (:mod:`hwmodels.collectives.schedules`). Without an
asynchronous progress thread, MPI starts a round only from inside the library: a round that has
been started completes on its own (the NIC moves the bytes), but the *next* round starts only
when the rank next calls into MPI. NCCL runs its own kernels and never waits for the rank.
The model, per rank (``Cluster.progress``):

``"async"``
    every step starts as soon as the previous one ends (NCCL; MPI with a progress thread).
    The engine's original path; nothing is gated.
``"wait"``
    a collective's steps start only while its rank is blocked in a Wait/Waitall *on it*
    (:meth:`ProgressGate.enter_wait`). That is what the MPI standard guarantees (its
    progress rule promises completion of the requests waited on); MPICH and Open MPI also
    poke other pending requests from inside a Wait, which we leave out: for ``delayed`` it
    would make iterations alternate between a double-length wait and none, same mean, no
    steady state. Compute-time overlap is zero: ``layerwise`` and ``bucketed`` cost
    ``sync`` plus their extra per-message costs. ``delayed`` posts iteration t's collective
    and waits for it in iteration t+1, so it progresses only during iteration t+1's Wait:
    its iteration costs what ``sync``'s does, no gain.
``"test"``
    as ``"wait"``, plus one step per poll: the rank calls MPI_Testall on everything in
    flight at every layer boundary (gradsync's executor does so from every gradient hook
    and every forward pre-hook), and each pending collective whose previous step has ended
    starts its next step then. A collective posted at a boundary takes its first step at
    that boundary's poll (Iallreduce, then Testall). Overlap is bounded by the number of
    layer boundaries, so ``test`` lies between ``wait`` and ``async``.

A step once started runs to completion, even if the wait that started it ends. How many steps a
collective has is the cost model's business (``CommModel.steps``: the number of sequential
rounds, the closed form's alpha multiplier); a cost model that does not say counts one step.
The analytic network splits a collective's cost into that many equal steps.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable

import simpy

from hwmodels.specs import PROGRESS_MODES


class ProgressGate:
    """One rank's MPI progress state: collectives ask it before each step (see the module)."""

    def __init__(self, env: simpy.Environment, mode: str = "async"):
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress: got {mode!r}, expected one of {PROGRESS_MODES}")
        self.env = env
        self.mode = mode
        self.polls = 0
        self._poll_at = -1.0
        self._waited: frozenset[Hashable] = frozenset()
        self._asks: list[tuple[Hashable, simpy.Event]] = []

    @property
    def gated(self) -> bool:
        """True when collectives must ask before each step (anything but async)."""
        return self.mode != "async"

    def step(self, request: Hashable) -> simpy.Event | None:
        """Permission for ``request`` to start its next step: ``None`` for now, else an event.

        ``request`` is what the rank waits on (the collective's completion event). Under
        ``test``, a step asked for at the instant of a poll takes that poll (a collective
        posted at a layer boundary, or one whose step ended there).
        """
        if not self.gated or request in self._waited or \
                (self.mode == "test" and self.env.now == self._poll_at):
            return None
        ask = self.env.event()
        self._asks.append((request, ask))
        return ask

    def poll(self) -> None:
        """MPI_Testall at a layer boundary: each collective waiting to step starts one step."""
        if self.mode != "test":
            return
        self.polls += 1
        self._poll_at = self.env.now
        self._release(lambda request: True)

    def enter_wait(self, requests: Iterable[Hashable]) -> None:
        """The rank blocks in Waitall on ``requests``: those progress until the wait ends."""
        self._waited = frozenset(requests)
        self._release(self._waited.__contains__)

    def leave_wait(self) -> None:
        """The rank returns to computing."""
        self._waited = frozenset()

    def _release(self, chosen: Callable[[Hashable], bool]) -> None:
        keep = []
        for request, ask in self._asks:
            if chosen(request):
                ask.succeed()
            else:
                keep.append((request, ask))
        self._asks = keep
