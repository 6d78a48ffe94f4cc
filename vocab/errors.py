"""Errors that gradsync shows to users as one clear line, never as a traceback."""

from __future__ import annotations

import difflib
from typing import Any


class GradsyncError(Exception):
    """Base class of every error the CLI prints without a traceback (exit status 2)."""


class SpecError(GradsyncError, ValueError):
    """A value in a spec (cluster, workload, strategy, run settings) is invalid.

    The message names the field, the value and what was expected, and the file when one was
    being loaded, e.g. ``my.yaml: fabric.bandwidth: got '-5 GB/s', expected a positive bandwidth``.
    """

    def __init__(self, field: str, value: Any, expected: str, source: str | None = None):
        self.field = field
        self.value = value
        self.expected = expected
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: got {value!r}, expected {expected}")

    def with_source(self, source: str) -> "SpecError":
        """The same error (same class), attributed to the file it was loaded from."""
        clone = SpecError(self.field, self.value, self.expected, source)
        clone.__class__ = type(self)
        clone.__dict__.update({k: v for k, v in self.__dict__.items() if k != "source"})
        return clone


class UnknownNameError(SpecError):
    """A registry lookup failed; the message lists the valid names and the nearest one.

    ``strategy: got 'bucketd', expected one of bucketed, delayed, sync (did you mean
    'bucketed'?)``. ``suggestion`` is that nearest name, or None when nothing is close.
    """

    def __init__(self, field: str, value: Any, valid: list[str] | tuple[str, ...],
                 source: str | None = None):
        self.valid = tuple(valid)
        near = difflib.get_close_matches(str(value), [str(v) for v in self.valid], n=1)
        self.suggestion: str | None = near[0] if near else None
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        super().__init__(field, value, "one of " + ", ".join(sorted(self.valid)) + hint, source)
