"""Adapters between store flavours: the async engine reaches a blocking store through :func:`arun_blocking`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratacache._primitives import arun_blocking

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from stratacache._types import Changes, Store
    from stratacache.core.envelope import Envelope
    from stratacache.metrics.stats import TierCounters

__all__ = ["BlockingStoreAdapter"]


class BlockingStoreAdapter:
    """An :class:`~stratacache._types.AsyncStore` over a blocking :class:`~stratacache._types.Store`.

    I/O runs in the default executor so the event loop never waits on disk; ``poll`` and ``usage`` stay
    synchronous because they are cheap reads that never block on a writer in WAL mode.
    """

    __slots__ = ("lease_ttl", "max_bytes", "name", "shared", "store", "supports_leases")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.name = store.name
        self.shared = store.shared
        self.max_bytes = store.max_bytes
        self.supports_leases: bool = getattr(store, "supports_leases", False)
        self.lease_ttl: float = getattr(store, "lease_ttl", 30.0)

    def link_status(self) -> tuple[str, int, int] | None:
        """The wrapped store's backplane status, if it has one."""
        status = getattr(self.store, "link_status", None)
        return status() if status is not None else None

    async def scan(self, prefix: str, cursor: object, count: int) -> tuple[object, list[str]]:
        """The wrapped store's ``scan`` (admin listing of keys, in pages)."""
        return await arun_blocking(self.store.scan, prefix, cursor, count)  # type: ignore[attr-defined]

    async def claim(self, key: str, ttl: float) -> int | None:
        """The wrapped store's ``claim`` (only called when it ``supports_leases``)."""
        return await arun_blocking(self.store.claim, key, ttl)  # type: ignore[attr-defined]

    async def release(self, key: str, token: int) -> None:
        """The wrapped store's ``release``."""
        await arun_blocking(self.store.release, key, token)  # type: ignore[attr-defined]

    @property
    def counters(self) -> TierCounters:
        """The wrapped store's counters."""
        return self.store.counters

    async def get_many(self, keys: Sequence[str]) -> list[Envelope[bytes] | None]:
        """See :meth:`Store.get_many`."""
        return await arun_blocking(self.store.get_many, keys)

    async def set_many(self, items: Sequence[tuple[str, Envelope[bytes]]]) -> None:
        """See :meth:`Store.set_many`."""
        await arun_blocking(self.store.set_many, items)

    async def delete_many(self, keys: Sequence[str]) -> int:
        """See :meth:`Store.delete_many`."""
        return await arun_blocking(self.store.delete_many, keys)

    async def get_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """See :meth:`Store.get_gens`."""
        return await arun_blocking(self.store.get_gens, names)

    async def bump_gens(self, names: Sequence[str]) -> tuple[int, ...]:
        """See :meth:`Store.bump_gens`."""
        return await arun_blocking(self.store.bump_gens, names)

    async def fence(self, keys: Sequence[str]) -> int:
        """See :meth:`Store.fence`."""
        return await arun_blocking(self.store.fence, keys)

    async def fill_many(self, items: Sequence[tuple[str, Envelope[bytes]]], since: int) -> list[str]:
        """See :meth:`Store.fill_many`."""
        return await arun_blocking(self.store.fill_many, items, since)

    def poll(self, apply: Callable[[Changes], None]) -> None:
        """See :meth:`Store.poll`."""
        self.store.poll(apply)

    def usage(self) -> tuple[int, int]:
        """See :meth:`Store.usage`."""
        return self.store.usage()

    async def close(self) -> None:
        """See :meth:`Store.close`."""
        await arun_blocking(self.store.close)
