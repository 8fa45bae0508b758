"""Eviction policies for the in-process tier, behind one small interface.

A policy is the container *and* the order: ``get`` records an access, ``put`` inserts or replaces, ``pop``
removes, ``evict`` removes the next victim. ``MemoryStore`` keeps byte/count accounting, expiry and locking,
so a new policy (W-TinyLFU) only has to implement this protocol.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from stratacache.tiers.tinylfu import TinyLFUPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["Entry", "EvictionPolicy", "LRUPolicy", "make_policy"]

Entry: TypeAlias = Any
"""What a policy holds per key: opaque to it (``MemoryStore`` stores ``L1Entry`` objects, ``simulate`` dummies)."""


class EvictionPolicy(Protocol):
    """Container plus eviction order. ``get`` and ``peek`` may be called without the store's lock; the rest hold it.

    ``exact_lookups``: whether a lock-free ``get``/``peek`` that finds nothing is always right. A policy that
    keeps its entries in several containers (W-TinyLFU's segments) can miss a key a writer is moving between
    them; its store repeats such a miss under the lock.
    """

    exact_lookups: bool

    def get(self, key: str) -> Entry | None:
        """Return the entry and record the access (lock-free)."""
        ...

    def peek(self, key: str) -> Entry | None:
        """Return the entry without recording an access."""
        ...

    def put(self, key: str, env: Entry) -> Entry | None:
        """Insert or replace; return the replaced entry."""
        ...

    def pop(self, key: str) -> Entry | None:
        """Remove and return the entry."""
        ...

    def evict(self) -> tuple[str, Entry] | None:
        """Remove and return the next victim in one atomic step, or ``None`` when empty."""
        ...

    def clear(self) -> None:
        """Drop everything."""
        ...

    def keys(self) -> Iterator[str]:
        """Iterate over a snapshot of the keys."""
        ...

    def hit_path(self) -> tuple[tuple[Callable[[str], Entry | None], ...], Callable[[str], object]]:
        """``(peeks, touch)``: :meth:`get` in steps, for the engine's inlined hit path.

        ``peeks``: one or more lookups (bound ``dict.get`` methods, C calls) tried in order, the first entry
        found being :meth:`peek`'s answer (a miss of all of them is subject to ``exact_lookups``); ``touch(key)``
        records the access :meth:`get` would have recorded (it may raise ``KeyError`` if the key was removed
        meanwhile). All stay valid for the policy's lifetime (bound to containers that are cleared, never
        replaced).
        """
        ...

    def __len__(self) -> int: ...


class LRUPolicy:
    """Least recently used, on an ``OrderedDict`` (its C implementation makes each step atomic under the GIL)."""

    __slots__ = ("_data",)

    exact_lookups = True

    def __init__(self) -> None:
        self._data: OrderedDict[str, Entry] = OrderedDict()

    def get(self, key: str) -> Entry | None:
        """Return the entry and move it to the most-recent end."""
        env = self._data.get(key)
        if env is not None:
            try:
                self._data.move_to_end(key)
            except KeyError:  # removed by a writer between the two steps
                return None
        return env

    def peek(self, key: str) -> Entry | None:
        """Return the entry without touching the order."""
        return self._data.get(key)

    def hit_path(self) -> tuple[tuple[Callable[[str], Entry | None], ...], Callable[[str], object]]:
        """``((dict.get,), OrderedDict.move_to_end)``: :meth:`get` in two C calls (see :class:`EvictionPolicy`)."""
        return (self._data.get,), self._data.move_to_end

    def put(self, key: str, env: Entry) -> Entry | None:
        """Insert or replace at the most-recent end."""
        old = self._data.get(key)
        self._data[key] = env
        self._data.move_to_end(key)
        return old

    def pop(self, key: str) -> Entry | None:
        """Remove and return."""
        return self._data.pop(key, None)

    def evict(self) -> tuple[str, Entry] | None:
        """Pop the least recently used entry (``popitem`` is one C call: safe beside lock-free readers)."""
        try:
            return self._data.popitem(last=False)
        except KeyError:
            return None

    def clear(self) -> None:
        """Drop everything."""
        self._data.clear()

    def keys(self) -> Iterator[str]:
        """A snapshot of the keys, oldest first."""
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


def make_policy(name: str, max_entries: int | None = None) -> EvictionPolicy:
    """Build a policy by name: ``"lru"`` or ``"tinylfu"`` (adaptive W-TinyLFU, :mod:`stratacache.tiers.tinylfu`).

    ``max_entries`` is a capacity hint for policies that size themselves (W-TinyLFU learns it without one).
    """
    if name == "lru":
        return LRUPolicy()
    if name == "tinylfu":
        return TinyLFUPolicy(max_entries)
    raise ValueError(name)
