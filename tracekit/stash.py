"""Plugins' state per trace: ``trace.stash``, a :class:`Stash` of values under keys of their
own. A module of its own, light to import: plugins make their keys at module level, and the
command line imports plugins' modules for ``--help``. :mod:`tracekit.model` re-exports both."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """A key of :class:`Stash`, made once per plugin (a module-level constant), that says
    the type of what it keeps: ``STATE = StashKey[MyState]()``."""

    __slots__ = ()


class Stash:
    """What plugins keep for one trace (``trace.stash``), each under a key of its own:
    state that lives and dies with the trace, so that many traces in one process, one
    after another or at the same time, never share it."""

    def __init__(self) -> None:
        self._items: dict[StashKey[Any], object] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._items[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast(T, self._items[key])

    def __contains__(self, key: StashKey[Any]) -> bool:
        return key in self._items

    def get(self, key: StashKey[T], default: D = None) -> T | D:  # type: ignore[assignment]
        """What ``key`` keeps, or ``default``."""
        return cast(T, self._items[key]) if key in self._items else default

    def pop(self, key: StashKey[T], default: D = None) -> T | D:  # type: ignore[assignment]
        """Remove and return what ``key`` keeps, or ``default``."""
        return cast(T, self._items.pop(key)) if key in self._items else default

    def __repr__(self) -> str:
        return f"Stash({len(self._items)} items)"
