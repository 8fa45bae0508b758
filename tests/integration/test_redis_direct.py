"""The Redis tier's own pools and direct GET/MGET path (``tiers/redis_direct.py``) on a real server.

Bounds (a checkout waits at most the pool's timeout, a release wakes a waiter) and the rule that a connection
which failed mid-command is never reused as it is: after a timeout, every later reply belongs to its own request.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import redis.exceptions

from stratacache import AsyncCache, Cache, RedisTier
from stratacache.testing import FaultProxy
from stratacache.tiers.redis_direct import AsyncPool, Pool

if TYPE_CHECKING:
    from tests.support.servers import RedisServer


def _tier(url: str, **kw: Any) -> RedisTier:
    opts: dict[str, Any] = {"timeout": 1.0, "connect_timeout": 1.0, "backplane": False} | kw
    return RedisTier(url, prefix=f"t{uuid.uuid4().hex[:12]}:", **opts)


def test_sync_pool_waits_for_a_released_connection_and_no_longer(redis_server: RedisServer) -> None:
    pool = Pool(timeout=0.5, max_connections=1, host="127.0.0.1", port=redis_server.port)
    try:
        held = pool.get_connection()
        t0 = time.monotonic()
        threading.Timer(0.05, pool.release, (held,)).start()
        again = pool.get_connection()  # woken by the release, well before the timeout
        assert again is held
        assert time.monotonic() - t0 < 0.4
        pool.timeout = 0.05
        t0 = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError, match="No connection available"):
            pool.get_connection()
        assert 0.04 < time.monotonic() - t0 < 0.5
        pool.release(again)
    finally:
        pool.disconnect()


def test_async_pool_waits_for_a_released_connection(redis_server: RedisServer) -> None:
    async def run() -> None:
        pool = AsyncPool(timeout=0.05, max_connections=1, host="127.0.0.1", port=redis_server.port)
        try:
            held = await pool.get_connection()
            with pytest.raises(redis.exceptions.ConnectionError, match="No connection available"):
                await pool.get_connection()
            waiter = asyncio.create_task(pool.get_connection())
            await asyncio.sleep(0.01)
            await pool.release(held)
            assert await waiter is held
        finally:
            await pool.disconnect()

    asyncio.run(run())


def test_sync_tier_with_one_connection_serves_many_threads(redis_server: RedisServer) -> None:
    with Cache(_tier(redis_server.url, max_connections=1), namespace="app") as cache:
        cache.set_many({f"k{i}": i for i in range(50)})
        wrong: list[int] = []

        def read(n: int) -> None:
            for i in range(50):
                if cache.get(f"k{(i + n) % 50}") != (i + n) % 50:
                    wrong.append(i)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wrong == []


def test_sync_timed_out_reads_never_leave_a_reply_for_the_next_caller(redis_server: RedisServer) -> None:
    with FaultProxy("127.0.0.1", redis_server.port) as proxy:
        tier = _tier(proxy.url(), timeout=0.05, max_connections=1, breaker_failures=1000)
        with Cache(tier, namespace="app") as cache:
            cache.set_many({f"k{i}": i for i in range(20)})
            proxy.delay(0.08)  # every reply arrives after the read timed out
            for i in range(5):
                assert cache.get(f"k{i}") is None
                assert cache.get_many([f"k{i}", f"k{i + 1}"]) == {}
            # The late replies are released now, towards sockets closed already. No wait is needed for the check:
            # a connection reused after a timeout would get its old reply before any new one (one ordered stream).
            proxy.heal()
            assert [cache.get(f"k{i}") for i in range(20)] == list(range(20))
            assert cache.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
            assert cache.stats()["redis"].errors >= 10


def test_async_timed_out_reads_never_leave_a_reply_for_the_next_caller(redis_server: RedisServer) -> None:
    async def run() -> None:
        with FaultProxy("127.0.0.1", redis_server.port) as proxy:
            tier = _tier(proxy.url(), timeout=0.05, max_connections=2, breaker_failures=1000)
            async with AsyncCache(tier, namespace="app") as cache:
                await cache.set_many({f"k{i}": i for i in range(20)})
                proxy.delay(0.08)
                got = await asyncio.gather(*(cache.get(f"k{i}") for i in range(10)))
                assert got == [None] * 10
                proxy.heal()  # no wait needed: a reused connection would get its old reply first (sync test)
                assert [await cache.get(f"k{i}") for i in range(20)] == list(range(20))
                many = await cache.get_many([f"k{i}" for i in range(20)])
                assert many == {f"k{i}": i for i in range(20)}

    asyncio.run(run())
