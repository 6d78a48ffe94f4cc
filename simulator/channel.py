"""A processor-sharing channel in SimPy: k concurrent transfers each progress at 1/k of the rate.

This is how the simulator models contention: concurrent collectives (analytic fidelity) or
concurrent link transfers (detailed fidelity) share a link class's bandwidth fairly. The channel
is a noun owning one server process; SimPy is the event loop (no hand-written heap): the server
sleeps until the earliest job would finish at the current share, or until an arrival changes
the share, whichever comes first.
"""

from __future__ import annotations

import math

import simpy


class Channel:
    """A link (class) of ``rate`` work units per second served by processor sharing.

    ``work`` is in the channel's unit: bytes for a link of ``rate`` bytes/s, or seconds of
    transfer at full bandwidth for ``rate=1`` (how the analytic fidelity uses it).
    """

    def __init__(self, env: simpy.Environment, name: str, rate: float = 1.0):
        if not rate > 0:
            raise ValueError(f"channel {name}: rate must be > 0, got {rate!r}")
        self.env = env
        self.name = name
        self.rate = float(rate)
        self.busy_s = 0.0                       # time with at least one job (utilisation)
        self.served = 0.0                       # work served in total (conservation checks)
        self._jobs: dict[simpy.Event, float] = {}
        self._changed = env.event()
        self._last = env.now
        self._server = env.process(self._serve())

    @property
    def active(self) -> int:
        """Transfers currently sharing the channel."""
        return len(self._jobs)

    def transfer(self, work: float) -> simpy.Event:
        """Start serving ``work``; the returned event succeeds when it has all been served."""
        done = self.env.event()
        if work <= 0:
            return done.succeed()
        self._advance()
        self._jobs[done] = float(work)
        self.served += float(work)
        if not self._changed.triggered:
            self._changed.succeed()
        return done

    def set_rate(self, rate: float) -> None:
        """Serve at ``rate`` from now on (work already served stays served): how overlap
        interference slows a collective while compute runs beside it."""
        if not rate > 0:
            raise ValueError(f"channel {self.name}: rate must be > 0, got {rate!r}")
        if rate == self.rate:
            return
        self._advance()
        self.rate = float(rate)
        if not self._changed.triggered:
            self._changed.succeed()

    def _advance(self) -> None:
        """Charge the time since the last change to every job at the share it had."""
        now = self.env.now
        if self._jobs and now > self._last:
            share = (now - self._last) * self.rate / len(self._jobs)
            for job in self._jobs:
                self._jobs[job] -= share
            self.busy_s += now - self._last
        self._last = now

    def _serve(self):
        """The server: wake at the next completion or arrival, retire finished jobs."""
        env = self.env
        while True:
            if not self._jobs:
                yield self._changed
            else:
                dt = min(self._jobs.values()) * len(self._jobs) / self.rate
                yield env.timeout(max(dt, 0.0)) | self._changed
            self._advance()
            if self._changed.triggered:
                self._changed = env.event()
            # Tolerance: float error in the remaining work must not leave a job that can never
            # finish (a dt below the clock's resolution would not advance ``now``).
            eps = 1e-12 * self.rate + 4 * math.ulp(max(env.now, 1.0)) * self.rate
            for job in [j for j, w in self._jobs.items() if w <= eps]:
                del self._jobs[job]
                job.succeed()
