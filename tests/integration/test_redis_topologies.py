"""The Redis tier over TLS, Sentinel (with a failover under load) and Cluster (with a live slot migration)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from stratacache import AsyncCache, Cache, MemoryTier, RedisTier, TierError

if TYPE_CHECKING:
    from tests.support.servers import RedisCluster, RedisServer, SentinelTopology, TLSFiles

pytestmark = pytest.mark.redis


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


def _opts(**kw: Any) -> dict[str, Any]:
    return {"prefix": _prefix(), "timeout": 2.0, "connect_timeout": 2.0, "heartbeat": 0.5} | kw


# -------------------------------------------------------------------------------------------------- TLS


def test_tls_with_the_ca_verifies_and_works(redis_tls: tuple[RedisServer, TLSFiles]) -> None:
    server, files = redis_tls
    with Cache(MemoryTier(), RedisTier(server.url, ssl_ca_certs=str(files.ca_cert), **_opts())) as cache:
        cache.set("k", {"tls": True})
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get("k") == {"tls": True}
        assert cache.stats()["redis"].hits == 1


def test_tls_without_the_ca_is_refused_and_degrades_to_misses(redis_tls: tuple[RedisServer, TLSFiles]) -> None:
    server, _ = redis_tls
    with Cache(RedisTier(server.url, **_opts(backplane=False))) as cache:  # system CAs do not know the test CA
        assert cache.get("k") is None  # a read never raises
        with pytest.raises(TierError):  # certificate verification failed: a write or an invalidation says so
            cache.invalidate_tags("t")
        assert cache.stats()["redis"].errors >= 1


def test_plaintext_url_against_a_tls_port_fails_cleanly(redis_tls: tuple[RedisServer, TLSFiles]) -> None:
    server, _ = redis_tls
    plain = server.url.replace("rediss://", "redis://")
    with Cache(RedisTier(plain, **_opts(backplane=False, timeout=0.3))) as cache:
        t0 = time.monotonic()
        assert cache.get("k") is None
        assert time.monotonic() - t0 < 5.0


# --------------------------------------------------------------------------------------------- Sentinel


def test_sentinel_resolves_the_master_and_survives_a_failover(sentinel_topology: SentinelTopology) -> None:
    topo = sentinel_topology
    opts = _opts(timeout=0.5, connect_timeout=0.5, breaker_open_for=0.2)
    errors: list[BaseException] = []
    stop = threading.Event()
    reads = [0]
    with Cache(MemoryTier(max_entries=10), RedisTier(topo.url, **opts)) as cache:
        cache.set("k", "before")
        assert cache.get("k") == "before"

        def load() -> None:  # reads keep working during the failover (degraded, never raising)
            i = 0
            while not stop.is_set():
                try:
                    cache.get_or_load(f"r{i % 50}", lambda i=i: i)
                    reads[0] += 1
                except BaseException as exc:
                    errors.append(exc)
                    return
                i += 1

        worker = threading.Thread(target=load)
        worker.start()
        try:
            topo.failover()
        finally:
            stop.set()
            worker.join(30)
        assert errors == []
        assert reads[0] > 0
        deadline = time.monotonic() + 30
        pause = threading.Event()
        while True:  # recovers on the new master: a write and a read through Redis succeed
            try:
                cache._lower[0].set_many([])  # type: ignore[attr-defined]
                cache.set("k2", "after")
                cache._l1.clear()  # type: ignore[union-attr]
                if cache.get("k2") == "after":
                    break
            except TierError:
                pass
            assert time.monotonic() < deadline, "no recovery on the new master"
            pause.wait(0.05)
        new_master = topo.master.client()
        try:
            assert new_master.exists(cache._lower[0]._keys(cache._key("k2"))[0])  # type: ignore[attr-defined]
        finally:
            new_master.close()


# ---------------------------------------------------------------------------------------------- Cluster


def test_cluster_batches_span_slots(redis_cluster: RedisCluster) -> None:
    with Cache(MemoryTier(), RedisTier(redis_cluster.url, **_opts())) as cache:
        values = {f"user:{i}": i for i in range(200)}  # spread over every node
        cache.set_many(values, tags=["users"])
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get_many(values) == values
        assert cache.delete_many([f"user:{i}" for i in range(100)]) == 100
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get_many(values) == {k: v for k, v in values.items() if v >= 100}
        cache.invalidate_tags("users")
        assert cache.get_many(values) == {}
        assert cache.get_or_load("loaded", lambda: 7) == 7
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get("loaded") == 7


def test_cluster_async_facade(redis_cluster: RedisCluster) -> None:
    async def run() -> dict[str, int]:
        async with AsyncCache(RedisTier(redis_cluster.url, **_opts())) as cache:
            await cache.set_many({f"a{i}": i for i in range(50)})
            assert await cache.get_or_load("x", lambda: asyncio.sleep(0, 1)) == 1
            return await cache.get_many([f"a{i}" for i in range(50)])

    assert asyncio.run(run()) == {f"a{i}": i for i in range(50)}


def test_resharding_a_slot_under_load_surfaces_no_error(redis_cluster: RedisCluster) -> None:
    import redis.cluster

    with Cache(RedisTier(redis_cluster.url, **_opts(timeout=1.0))) as cache:
        key = "hot"
        data_key = cache._lower[0]._keys(cache._key(key))[0]  # type: ignore[attr-defined]
        slot = redis.cluster.key_slot(data_key.encode())
        cache.set(key, "v")
        for i in range(50):  # more keys in the same slot, so the migration takes a while
            cache.set(f"{{{key}}}{i}", i)
        errors: list[BaseException] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    assert cache.get(key) == "v"
                except BaseException as exc:
                    errors.append(exc)
                    return

        worker = threading.Thread(target=load)
        worker.start()
        try:
            source = redis_cluster.node_for_slot(slot)
            target = next(n for n in redis_cluster.nodes if n is not source)
            redis_cluster.migrate_slot(slot, target, batch=5)
            assert redis_cluster.node_for_slot(slot) is target
        finally:
            stop.set()
            worker.join(30)
        assert errors == []
        assert cache.get(key) == "v"


def test_delete_matching_walks_every_cluster_node(redis_cluster: RedisCluster) -> None:
    with Cache(MemoryTier(), RedisTier(redis_cluster.url, **_opts())) as cache:
        cache.set_many({f"user:{i}": i for i in range(300)} | {f"order:{i}": i for i in range(50)})
        assert cache.delete_matching("user:*", page=20) == 300
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get_many([f"user:{i}" for i in range(300)]) == {}
        assert cache.get("order:7") == 7
