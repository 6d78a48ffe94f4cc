"""How much of the machine other programs used while we measured: the protocol's noise guard.

A run on a 2-core machine measures "this workload on 2 cores" only if nothing else ran. Other
programs that take a core for a while make the run look slower than the machine is, and no
model of the machine can (or should) predict them. :class:`ForeignLoad` measures, around a
block that runs subprocesses, the CPU seconds the whole machine was busy (``/proc/stat``,
steal time included) minus the CPU seconds our own waited-for children used
(``getrusage(RUSAGE_CHILDREN)``): what is left is other programs' work, reported as a share of
the machine's capacity over the block's wall time. The protocol repeats runs whose share is
high and keeps the cleanest attempt. Where ``/proc/stat`` is missing the share reads 0.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
#: Fields of /proc/stat's ``cpu`` line that count as busy (user nice system _ _ irq softirq
#: steal): idle and iowait do not.
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def machine_busy_s() -> float | None:
    """CPU seconds the machine has been busy since boot (all cores), or None if unknown."""
    try:
        fields = PROC_STAT.read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields)) / ticks


def children_cpu_s() -> float:
    """CPU seconds used by this process's finished (waited-for) children and their children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ForeignLoad:
    """Context manager: other programs' share of the machine while the block ran (0..1)."""

    cores: int = os.cpu_count() or 1
    share: float = 0.0
    wall_s: float = 0.0

    def __enter__(self) -> "ForeignLoad":
        self._busy = machine_busy_s()
        self._ours = children_cpu_s() + time.process_time()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self._start
        busy = machine_busy_s()
        if busy is None or self._busy is None or self.wall_s <= 0:
            self.share = 0.0
            return
        ours = children_cpu_s() + time.process_time() - self._ours
        self.share = max(0.0, busy - self._busy - ours) / (self.wall_s * self.cores)


def idle_share(sample_s: float = 0.5) -> float:
    """Fraction of the machine left idle over ``sample_s`` seconds (1 where unknown)."""
    before = machine_busy_s()
    time.sleep(sample_s)
    after = machine_busy_s()
    if before is None or after is None:
        return 1.0
    cores = os.cpu_count() or 1
    return max(0.0, 1.0 - (after - before) / (sample_s * cores))


def wait_for_quiet(max_wait_s: float, idle_at_least: float = 0.8,
                   sample_s: float = 0.5) -> float:
    """Wait (at most ``max_wait_s``) until the machine is mostly idle; returns the idle share
    seen last. Measuring into another program's burst only buys a repeat later."""
    deadline = time.monotonic() + max_wait_s
    idle = idle_share(sample_s)
    while idle < idle_at_least and time.monotonic() < deadline:
        idle = idle_share(sample_s)
    return idle
