"""Protocols shared across layers: Clock, Codec, and the Store/AsyncStore tier interface.

Tiers are dumb, atomic stores of envelopes: they never judge freshness, call a loader or look inside a value.
The engine is their only caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stratacache.core.envelope import Envelope
    from stratacache.metrics.stats import TierCounters

__all__ = ["AsyncStore", "Changes", "Clock", "Codec", "Store", "Tracer"]

Tracer: TypeAlias = Callable[[str, dict[str, Any]], contextlib.AbstractContextManager[Any]]
"""``tracer(span name, attributes)`` -> a context manager around the traced call (``Cache.set_tracer``)."""


@runtime_checkable
class Clock(Protocol):
    """Source of time; inject ``stratacache.testing.FakeClock`` in tests."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds, for durations."""
        ...


@runtime_checkable
class Codec(Protocol):
    """Turns values into bytes and back.

    ``id`` (1-255; 128 and above mark compressed variants) is stored in every envelope, so entries written by
    another codec are misses, never mis-decoded.
    """

    id: int
    name: str

    def encode(self, value: Any, key: str) -> bytes:
        """Serialize ``value`` stored under ``key``; raise ``EncodeError`` if it cannot be."""
        ...

    def decode(self, data: bytes, key: str) -> Any:
        """Deserialize; raise ``DecodeError`` on corrupt or foreign bytes."""
        ...


class Changes(NamedTuple):
    """What other processes changed in a shared store since the last poll."""

    keys: tuple[str, ...]
    gens: dict[str, int]
    flush_all: bool
    keep_gens: bool = False
    """With ``flush_all``: keep (or take back) the last known generation counters: the store is down, so nobody
    can bump them, and the L1 goes on serving what it caches during the outage, under the store's ``outage_ttl``."""
    seqs: tuple[int, ...] = ()
    """Sequence numbers of the generation bumps in ``gens``, in the order they happened (Redis)."""
    lags: tuple[float, ...] = ()
    """Seconds from each change's publication (the writer's clock) to its reception here (Redis backplane)."""


class Store(Protocol):
    """A synchronous L2 store of bytes envelopes (SQLite; Redis through its generated sync twin)."""

    name: str
    shared: bool
    max_bytes: int | None

    @property
    def counters(self) -> TierCounters:
        """The tier's mutable counters (the engine increments hits, misses, sets, deletes, errors)."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Envelope[bytes] | None]:
        """Envelopes of ``keys`` in order (``None`` where absent or unreadable)."""
        ...

    def set_many(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        """Store envelopes, replacing what is there, in one batch."""
        ...

    def fence(self, keys: Sequence[str]) -> int:
        """A write fence for ``keys``, taken before a loader runs and handed to :meth:`fill_many`.

        Any write or delete of one of ``keys`` after the fence (by any process) must make ``fill_many`` refuse
        that key. A store may fence globally (SQLite: the newest log sequence number) or per key (Redis: a lease).
        """
        ...

    def fill_many(self, items: Sequence[tuple[str, Envelope[bytes]]], since: int) -> list[str]:
        """Atomically store loaded values except for keys written or deleted after ``since``; return those stored."""
        ...

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete keys; return how many existed."""
        ...

    def get_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """Current values of generation counters (0 when never bumped)."""
        ...

    def bump_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """Increment generation counters atomically; return the new values."""
        ...

    def poll(self, apply: Callable[[Changes], None]) -> None:
        """Pass changes made by other processes since the last call to ``apply``; return once applied."""
        ...

    def usage(self) -> tuple[int, int]:
        """``(entries, bytes)`` currently held."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class AsyncStore(Protocol):
    """The awaitable twin of :class:`Store`, used by the async engine."""

    name: str
    shared: bool
    max_bytes: int | None

    @property
    def counters(self) -> TierCounters:
        """The tier's mutable counters (the engine increments hits, misses, sets, deletes, errors)."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[Envelope[bytes] | None]:
        """See :meth:`Store.get_many`."""
        ...

    async def set_many(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        """See :meth:`Store.set_many`."""
        ...

    async def fence(self, keys: Sequence[str]) -> int:
        """See :meth:`Store.fence`."""
        ...

    async def fill_many(self, items: Sequence[tuple[str, Envelope[bytes]]], since: int) -> list[str]:
        """See :meth:`Store.fill_many`."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> int:
        """See :meth:`Store.delete_many`."""
        ...

    async def get_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """See :meth:`Store.get_gens`."""
        ...

    async def bump_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """See :meth:`Store.bump_gens`."""
        ...

    def poll(self, apply: Callable[[Changes], None]) -> None:
        """See :meth:`Store.poll` (synchronous in both engines: it must be cheap)."""
        ...

    def usage(self) -> tuple[int, int]:
        """See :meth:`Store.usage`."""
        ...

    async def close(self) -> None:
        """See :meth:`Store.close`."""
        ...
