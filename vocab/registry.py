"""Named things, looked up loudly: one small read-only mapping type for every registry.

Strategies, zoo workloads, devices, fabrics, cluster presets, node topologies and the
executor's torch models are all chosen by name. Each is a :class:`Registry`: a read-only
``Mapping[str, T]`` (so ``name in registry``, ``list(registry)`` and ``registry.get(name)``
behave as for any mapping) whose :meth:`Registry.lookup` turns a miss into an
:class:`~vocab.errors.UnknownNameError` that lists the valid names and suggests the nearest.

>>> colours = Registry("colour", {"red": 1, "green": 2})
>>> colours.lookup("green")
2
>>> colours.lookup("gren")
Traceback (most recent call last):
...
vocab.errors.UnknownNameError: colour: got 'gren', expected one of green, red (did you mean 'green'?)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from vocab.errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping name -> item, in the order the items were given.

    ``field`` names what is being chosen (``"strategy"``, ``"device"``) in lookup errors.
    ``also_valid`` lists choices that are accepted elsewhere but are not entries (``"custom"``
    for topologies, ``"a path to a .yaml file"`` for presets), so errors mention them too.
    Building from pairs with a name given twice is an error, never a silent overwrite.
    """

    __slots__ = ("field", "also_valid", "_items")

    def __init__(self, field: str, items: Mapping[str, T] | Iterable[tuple[str, T]] = (), *,
                 also_valid: Iterable[str] = ()):
        self.field = field
        self.also_valid = tuple(also_valid)
        pairs = items.items() if isinstance(items, Mapping) else items
        entries: dict[str, T] = {}
        for name, item in pairs:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{field} registry: a name must be a non-empty string, "
                                 f"got {name!r}")
            if name in entries:
                raise ValueError(f"{field} registry: {name!r} registered twice")
            entries[name] = item
        self._items = entries

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items
        except TypeError:  # an unhashable "name" (a mapping from a file) is simply not here
            return False

    def __repr__(self) -> str:
        return f"Registry({self.field!r}, names={self.names()!r})"

    def names(self) -> tuple[str, ...]:
        """The entries' names, in registration order."""
        return tuple(self._items)

    def lookup(self, name: object, field: str | None = None) -> T:
        """The entry called ``name``; a miss raises UnknownNameError naming ``field``.

        ``field`` defaults to the registry's own; pass the dotted path of the value being
        read (``node.device``) when it is more telling.
        """
        if name in self:
            return self._items[name]  # type: ignore[index]
        raise UnknownNameError(field or self.field, name, (*self._items, *self.also_valid))
