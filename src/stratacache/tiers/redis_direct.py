"""The synchronous Redis tier's read path and connection pool, without redis-py's per-command machinery.

redis-py's ``Redis.execute_command`` pays, on every command, a pool checkout and return under a lock with
observability hooks (pool-name formatting, connection-count recorders), a ``poll()`` of the socket for stale data,
a retry wrapper built from closures and the duration/error recorders: about as much CPU as the round trip to a
local server. The sync store (``_sync/redis.py``) uses instead, on a standalone server (``redis://``, ``rediss://``,
``unix://``; not Sentinel or Cluster, whose clients route commands themselves):

- :class:`Pool`: redis-py's ``ConnectionPool`` with a bounded, blocking checkout (a caller waits at most the pool's
  ``timeout`` for a connection, as with ``BlockingConnectionPool``) whose get and release only take the pool's lock.
  Every command of the store goes through it, the client's own included.
- ``Direct`` (``tiers/redis_reads.py``, written once as ``AsyncDirect`` and generated): ``GET`` and ``MGET``
  written to a pooled connection and read back directly, with the store's retry (after a connection error only)
  and the connection's socket timeout (the tier's ``timeout``), as the client would. A connection that failed in
  any way (timeout, error, an exception such as ``KeyboardInterrupt`` in the middle of a reply) is disconnected
  before it goes back to the pool: a connection that may hold an unread reply is never reused.

The async store has the same two, :class:`AsyncPool` and ``AsyncDirect``: its calls are bounded by one deadline each
instead of socket timeouts, and a cancelled call disconnects its connection before giving it back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
import time
from typing import Any

import redis
import redis.asyncio
import redis.exceptions

__all__ = ["STANDALONE", "AsyncPool", "Pool", "pool_class"]

STANDALONE = frozenset({"redis", "unix"})  # RedisTier.kind of redis://, rediss:// and unix:// URLs


class Pool(redis.ConnectionPool):
    """A bounded pool whose checkout waits up to ``timeout`` seconds for a connection (``BlockingConnectionPool``).

    Get and release take the pool's lock and nothing else: no observability hooks and no ``poll()`` of an idle
    connection for stale data (every path that returns a connection here disconnects it after any failure, so an
    idle connection never holds an unread reply; one the server closed meanwhile fails its next command with a
    connection error, which the store's retry covers). A connection is opened by its first command.
    """

    def __init__(self, *, timeout: float | None, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)
        self._freed = threading.Condition(self._lock)  # notified when a connection or a slot is given back

    def get_connection(self, *_args: Any, **_kwargs: Any) -> Any:
        """A connection (made if none is idle and the bound allows), waiting at most ``timeout`` for one.

        Raises:
            redis.exceptions.ConnectionError: none became available in time ("No connection available.").
        """
        if self.pid != os.getpid():
            self._checkpid()  # forked: start over with new connections
        with self._lock:
            idle = self._available_connections
            if idle:
                connection = idle.pop()
            elif self._created_connections < self.max_connections:
                connection = self.make_connection()
            else:
                connection = self._wait()
            self._in_use_connections.add(connection)
        return connection

    def _wait(self) -> Any:
        """Wait (holding the lock, released while waiting) for an idle connection or a free slot."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise redis.exceptions.ConnectionError("No connection available.")
            self._freed.wait(remaining)
            if self._available_connections:
                return self._available_connections.pop()
            if self._created_connections < self.max_connections:
                return self.make_connection()

    def release(self, connection: Any) -> None:
        """Give a connection back (disconnected first if redis-py marked it for a reconnect)."""
        if self.pid != os.getpid():
            self._checkpid()
        with self._lock:
            try:
                self._in_use_connections.remove(connection)
            except KeyError:  # not ours (a reset after a fork dropped it)
                return
            if connection.pid == self.pid:
                if connection.should_reconnect():
                    connection.disconnect()
                self._available_connections.append(connection)
            else:
                connection.disconnect()
            self._freed.notify()

    def give_back(self, connection: Any) -> None:
        """:meth:`release` (the name the async pool's caller uses, so that the read path is written once)."""
        self.release(connection)

    @staticmethod
    def discard(connection: Any) -> None:
        """Close a connection that may hold (part of) an unread reply; it reconnects on its next command."""
        connection.disconnect()


class AsyncPool(redis.asyncio.ConnectionPool):
    """The async twin of :class:`Pool`: get and release never suspend while a connection is idle.

    A task waits (at most ``timeout``; ``None``: within its call's deadline) only when ``max_connections`` are all
    in use; a release wakes one waiter. Connections open with their first command.
    """

    def __init__(self, *, timeout: float | None, **kwargs: Any) -> None:
        self.timeout = timeout
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        super().__init__(**kwargs)

    async def get_connection(self, *_args: Any, **_kwargs: Any) -> Any:
        """A connection (made if none is idle and the bound allows), waiting for one otherwise.

        Raises:
            redis.exceptions.ConnectionError: none became available within ``timeout``.
        """
        idle = self._available_connections
        if idle:
            connection = idle.pop()
        elif len(self._in_use_connections) < self.max_connections:
            connection = self.make_connection()  # type: ignore[no-untyped-call]
        else:
            connection = await self._wait()
        self._in_use_connections.add(connection)
        return connection

    async def _wait(self) -> Any:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.append(waiter)
                    try:
                        await waiter
                    except BaseException:
                        if waiter.done() and not waiter.cancelled():
                            self._wake()  # woken, then cancelled: the wake-up goes to the next waiter
                        raise
                    finally:
                        with contextlib.suppress(ValueError):
                            self._waiters.remove(waiter)
                    if self._available_connections:
                        return self._available_connections.pop()
                    if len(self._in_use_connections) < self.max_connections:
                        return self.make_connection()  # type: ignore[no-untyped-call]
        except TimeoutError:
            raise redis.exceptions.ConnectionError("No connection available.") from None

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def release(self, connection: Any) -> None:
        """Give a connection back (never suspends unless redis-py marked it for a reconnect)."""
        if connection.should_reconnect():
            await connection.disconnect(nowait=True)
        self.give_back(connection)

    @staticmethod
    async def discard(connection: Any) -> None:
        """Close a connection that may hold (part of) an unread reply, without suspending (safe while cancelled)."""
        await connection.disconnect(nowait=True)

    def give_back(self, connection: Any) -> None:
        """Give a connection back, without suspending (a caller being cancelled can still do it)."""
        if connection not in self._in_use_connections:
            return  # not ours
        self._in_use_connections.remove(connection)
        self._available_connections.append(connection)
        self._wake()


def pool_class(*, asynchronous: bool) -> type[Any]:
    """The pool of a standalone server's client: :class:`AsyncPool` or :class:`Pool`."""
    return AsyncPool if asynchronous else Pool
