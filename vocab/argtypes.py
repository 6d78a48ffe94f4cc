"""The one argparse type for numbers: finite, in range, named in one line when not.

Every numeric flag of ``gradsync`` and ``python -m executor`` is declared with
:func:`whole` or :func:`real`, e.g. ``type=whole(1, 2**20, what="samples per device")``.
A bad value (``nan``, ``inf``, ``1e30``, ``-1``, ``abc``) becomes an
``argparse.ArgumentTypeError`` whose message says what was got and what was expected; the
``gradsync`` parser prints it as one line with exit status 2. The bounds are kept on the
type (:attr:`Number.minimum`, :attr:`Number.maximum`), so the test suite can walk every flag
and check each one against its own declared range.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from vocab.errors import GradsyncError

__all__ = ["Number", "OneLineParser", "real", "report_errors", "whole"]


class OneLineParser(argparse.ArgumentParser):
    """Bad usage is one line naming the command and the flag, exit 2: never argparse's usage
    block. The parser of ``gradsync`` (and its subcommands') and of every ``python -m``
    module CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def report_errors(prog: str, body: Callable[[], int | None]) -> int:
    """Run a module CLI's ``body``; a :class:`~vocab.errors.GradsyncError` (a bad file, a bad
    value) is one line ``PROG: error: ...`` and exit status 2, as ``gradsync`` prints it."""
    try:
        return int(body() or 0)
    except GradsyncError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


@dataclass(frozen=True)
class Number:
    """An argparse ``type=``: parses a whole or real number and checks its range.

    ``minimum``/``maximum`` are inclusive unless ``open_min``/``open_max``; ``what`` says
    what the number means (shown in the error); ``why_max`` says why the upper bound is
    where it is (e.g. the time it would take).
    """

    integer: bool
    minimum: float | None = None
    maximum: float | None = None
    open_min: bool = False
    open_max: bool = False
    what: str = ""
    why_max: str = ""

    @property
    def __name__(self) -> str:       # argparse names the type in some of its messages
        return "whole number" if self.integer else "number"

    def expected(self) -> str:
        """What a valid value is, in words: ``a whole number >= 1 and <= 1048576``."""
        noun = "a whole number" if self.integer else "a finite number"
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.open_min else '>='} {_plain(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.open_max else '<='} {_plain(self.maximum)}")
        text = noun + (" " + " and ".join(parts) if parts else "")
        return text + (f" ({self.what})" if self.what else "")

    def __call__(self, text: str) -> int | float:
        value = self._parse(text)
        if self._too_small(value):
            raise argparse.ArgumentTypeError(f"got {text!r}, expected {self.expected()}")
        if self._too_big(value):
            why = f"; {self.why_max}" if self.why_max else ""
            raise argparse.ArgumentTypeError(f"got {text!r}, expected {self.expected()}{why}")
        return value

    def accepts(self, value: float) -> bool:
        """True when ``value`` (already a number) is inside the declared range."""
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return False
        return not (self._too_small(value) or self._too_big(value))

    def _parse(self, text: str) -> int | float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"got {text!r}, expected {self.expected()}") \
                from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"got {text!r}, expected {self.expected()}")
        if not self.integer:
            return value
        try:
            return int(text)        # "3" but not "3.5" nor "1e3" (say what you mean)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {text!r}, expected {self.expected()}") \
                from None

    def _too_small(self, value: float) -> bool:
        if self.minimum is None:
            return False
        return value <= self.minimum if self.open_min else value < self.minimum

    def _too_big(self, value: float) -> bool:
        if self.maximum is None:
            return False
        return value >= self.maximum if self.open_max else value > self.maximum


def _plain(value: float) -> str:
    """``1048576`` rather than ``1.04858e+06``: a bound is read to be typed back."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def whole(minimum: int | None = 1, maximum: int | None = None, *, what: str = "",
          why_max: str = "") -> Number:
    """A whole-number flag in ``[minimum, maximum]``."""
    return Number(True, minimum, maximum, what=what, why_max=why_max)


def real(minimum: float | None = None, maximum: float | None = None, *,
         open_min: bool = False, open_max: bool = False, what: str = "",
         why_max: str = "") -> Number:
    """A finite real flag between ``minimum`` and ``maximum`` (open ends where asked)."""
    return Number(False, minimum, maximum, open_min, open_max, what, why_max)


# -- the shared flags' types (one definition per meaning) -------------------------------------
#: Simulated or measured iterations: beyond this a run takes hours (a simulated iteration of a
#: large model on many nodes costs up to a second of events).
MAX_ITERATIONS = 10_000
ITERATIONS = whole(1, MAX_ITERATIONS, what="iterations",
                   why_max=f"{MAX_ITERATIONS} iterations already take minutes to hours")
#: Staleness adds as many warm-up iterations (vocab.timing): bounded like iterations.
STALENESS = whole(1, 1000, what="steps of staleness",
                  why_max="each step of staleness adds a warm-up iteration to simulate or run")
#: Per-device batch: beyond 2**20 samples no model fits a device (the memory check says more).
BATCH = whole(1, 2**20, what="samples per device")
NODES = whole(1, 100_000, what="nodes")
DEVICES_PER_NODE = whole(1, 1024, what="devices per node")
NICS = whole(1, 64, what="NICs per node")
#: Oversubscription of the fabric above the leaf switches: 1 is non-blocking.
OVERSUBSCRIPTION = real(1, 1024, what="oversubscription ratio (1: non-blocking)")
RANKS = whole(1, 4096, what="MPI ranks")
#: Ranks a simulation may hold (the detailed fidelity's bound is the simulator's own).
RANKS_SIMULATED = whole(1, 10_000_000, what="simulated ranks")
STEPS = whole(1, 10_000_000, what="training steps")
EVERY = whole(0, 10_000_000, what="steps between events, 0 for never")
SEED = whole(0, 2**32 - 1, what="a random seed")
BUCKET_MB = real(0, 1024 * 1024, open_min=True, what="MiB")
NOISE_CV = real(0, 10, what="coefficient of variation")
LR = real(0, 1e3, open_min=True, what="learning rate")
MOMENTUM = real(0, 1, open_max=True, what="SGD momentum")
WEIGHT_DECAY = real(0, 1, what="weight decay")
SECONDS = real(0, 7 * 24 * 3600, open_min=True, what="seconds")
JOBS = whole(1, 1024, what="worker processes")
REPEATS = whole(1, 100_000, what="repeats")
ACCURACY = real(0, 1, open_min=True, what="a fraction of test samples")
THROUGHPUT = real(0, 1e12, open_min=True, what="samples per second")
EPOCHS = real(0, 1e6, open_min=True, what="epochs")
