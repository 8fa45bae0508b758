"""The Redis tier's ``GET``/``MGET`` on a pooled connection, without redis-py's per-command machinery.

Written once, async (``AsyncDirect``); ``scripts/unasync.py`` generates the sync ``Direct`` in
``_sync/redis_reads.py``. The pools are in ``tiers/redis_direct.py`` (why, and what they leave out, is there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.exceptions

from stratacache._primitives import apause
from stratacache.tiers.redis_direct import STANDALONE, AsyncPool

if TYPE_CHECKING:
    from redis.backoff import AbstractBackoff

    from stratacache.tiers.redis_spec import RedisTier

__all__ = ["AsyncDirect", "reader"]


class AsyncDirect:
    """``GET`` and ``MGET`` written to a pooled connection and read back directly.

    The store's retry (after a connection error only, never after a timeout, which spent the budget) with its
    backoff. A connection that failed in any way (timeout, error, cancellation, ``KeyboardInterrupt`` in the middle
    of a reply) is discarded before it goes back to the pool: a reply it did not read is never read by the next
    caller (the CVE-2023-28858 class).
    """

    def __init__(self, pool: AsyncPool, retries: int, backoff: AbstractBackoff) -> None:
        self._pool = pool
        self._retries = retries
        self._backoff = backoff

    async def get(self, name: str) -> bytes | None:
        """``GET name``."""
        return await self._run(("GET", name))  # type: ignore[no-any-return]

    async def mget(self, names: list[str]) -> list[bytes | None]:
        """``MGET *names``."""
        return await self._run(("MGET", *names))  # type: ignore[no-any-return]

    async def _run(self, args: tuple[str, ...]) -> Any:
        pool = self._pool
        connection = await pool.get_connection()
        try:
            failures = 0
            while True:
                try:
                    await connection.send_command(*args)
                    return await connection.read_response()
                except redis.exceptions.ConnectionError:
                    await pool.discard(connection)
                    failures += 1
                    if failures > self._retries:
                        raise
                    if failures == 1:
                        self._backoff.reset()  # type: ignore[no-untyped-call]
                    wait = self._backoff.compute(failures)
                    if wait > 0:
                        await apause(wait)
        except BaseException:
            await pool.discard(connection)  # it may hold (part of) a reply: never reused as it is
            raise
        finally:
            pool.give_back(connection)


def reader(client: Any, spec: RedisTier, backoff: AbstractBackoff) -> Any:
    """What the store reads with (``get``, ``mget``): an ``AsyncDirect`` on a standalone server, else ``client``.

    ``backoff``: the one of the client's retry, for the retries after a connection error.
    """
    pool = getattr(client, "connection_pool", None)
    if spec.kind in STANDALONE and isinstance(pool, AsyncPool):
        return AsyncDirect(pool, spec.retries, backoff)
    return client
