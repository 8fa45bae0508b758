"""The Redis tier against real servers: backplane coherence, race-free fills across caches, and outages.

Outages are real: the server is killed (SIGKILL), paused (SIGSTOP) or blackholed behind a FaultProxy. Bounds on
call durations are "no hang" bounds (the configured budget plus a wide margin), never speed goals. The breaker
is timed by the cache's FakeClock, so recovery is driven by advancing it, not by waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from stratacache import AsyncCache, Cache, MemoryTier, RedisTier, TierError
from stratacache.testing import FakeClock, FaultProxy

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.servers import RedisServer

pytestmark = pytest.mark.redis
NO_HANG = 2.0  # seconds: far above every budget configured below


def _wait_until(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> float:
    """Poll ``cond`` until true (bounded); return how long it took. For messages in flight, never for TTLs."""
    t0 = time.monotonic()
    pause = threading.Event()
    while not cond():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.005)
    return time.monotonic() - t0


def _tier(url: str, prefix: str, **kw: Any) -> RedisTier:
    opts: dict[str, Any] = {"timeout": 1.0, "connect_timeout": 1.0, "heartbeat": 0.2} | kw
    return RedisTier(url, prefix=prefix, **opts)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


def _pair(url: str, prefix: str, **kw: Any) -> tuple[Cache, Cache]:
    """Two caches with their own L1s over one Redis: two processes, as far as the backplane is concerned."""
    return (
        Cache(MemoryTier(max_entries=1000), _tier(url, prefix, **kw), namespace="app"),
        Cache(MemoryTier(max_entries=1000), _tier(url, prefix, **kw), namespace="app"),
    )


# ---------------------------------------------------------------------------------------------- backplane


def test_writes_deletes_and_tags_reach_the_other_l1(redis_url: str, prefix: str) -> None:
    a, b = _pair(redis_url, prefix)
    with a, b:
        a.set("k", 1, tags=["user:1"])
        assert b.get("k") == 1
        _wait_until(lambda: b.get("k") == 1 and b.stats()["memory"].hits > 0, "the L1 copy in b")
        a.set("k", 2, tags=["user:1"])
        _wait_until(lambda: b.get("k") == 2, "b to see the new value")
        a.invalidate_tags("user:1")
        _wait_until(lambda: b.get("k") is None, "b to drop the invalidated tag")
        a.set("k", 3)
        _wait_until(lambda: b.get("k") == 3, "b to see the value again")
        a.delete("k")
        _wait_until(lambda: b.get("k") is None, "b to drop the deleted key")
        a.set("j", 1)
        assert b.get("j") == 1
        a.clear()
        _wait_until(lambda: b.get("j") is None, "b to drop the cleared namespace")


def test_killed_subscription_is_detected_and_the_l1_flushed(redis_server: RedisServer, prefix: str) -> None:
    a, b = _pair(redis_server.url, prefix)
    with a, b:
        link = b._lower[0]._link  # type: ignore[attr-defined]
        a.set("k", 1)
        _wait_until(lambda: b.get("k") == 1 and b.stats()["memory"].entries == 1, "b's L1 copy")
        losses = link.losses
        admin = redis_server.client()
        try:
            admin.client_kill_filter(_type="pubsub")
        finally:
            admin.close()
        _wait_until(lambda: link.losses > losses, "the loss to be noticed")
        _wait_until(lambda: not link.lost, "the link to resubscribe")
        a.set("k", 2)
        _wait_until(lambda: b.get("k") == 2, "invalidations to flow again")


def test_paused_server_is_detected_within_two_heartbeats(private_redis: RedisServer, prefix: str) -> None:
    cache = Cache(MemoryTier(), _tier(private_redis.url, prefix, heartbeat=0.2))
    with cache:
        link = cache._lower[0]._link  # type: ignore[attr-defined]
        _wait_until(lambda: not link.lost, "the first subscription")
        private_redis.pause()
        try:
            took = _wait_until(lambda: link.lost, "the paused server to be noticed")
        finally:
            private_redis.resume()
        assert took < 5 * 0.2 + NO_HANG  # the figure itself (<= 2 heartbeats) is measured in benchmarks/faults
        _wait_until(lambda: not link.lost, "the link to come back")


# ------------------------------------------------------------------------------------- race-free fills


def _race_once(reader: Cache, writer: Cache, db: dict[str, int], key: str) -> int:
    """One forced interleaving: the loader has read the row when the writer commits and deletes the key."""
    loaded = threading.Event()
    go_on = threading.Event()

    def loader() -> int:
        value = db["v"]
        loaded.set()
        go_on.wait(NO_HANG)
        return value

    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(reader.get_or_load(key, loader)))
    t.start()
    assert loaded.wait(NO_HANG)
    db["v"] += 1  # the writer commits, then invalidates
    writer.delete(key)
    go_on.set()
    t.join(NO_HANG)
    assert result == [db["v"] - 1]  # the reader is served what it read...
    return int(reader.get(key) not in (None, db["v"]))  # ...but its L1 must not keep it


def test_a_load_that_raced_a_delete_in_another_process_is_not_stored(redis_url: str, prefix: str) -> None:
    """The seeds' stale-fill race, forced 100 times per server: 0 stale entries afterwards."""
    reader, writer = _pair(redis_url, prefix)
    fresh = Cache(_tier(redis_url, prefix), namespace="app")
    db = {"v": 0}
    stale = 0
    with reader, writer, fresh:
        for i in range(100):
            stale += _race_once(reader, writer, db, f"row:{i}")
            stale += fresh.get(f"row:{i}") is not None  # nor may Redis keep it
    assert stale == 0


def test_an_invalidation_that_arrives_before_the_reply_keeps_the_reply_out_of_l1(
    redis_server: RedisServer, prefix: str
) -> None:
    """The data connection is delayed, the backplane is not: the write's message beats the old value's reply."""
    stale = raced = 0
    with FaultProxy("127.0.0.1", redis_server.port) as proxy:
        reader = Cache(
            MemoryTier(), _tier(proxy.url(), prefix, backplane_url=redis_server.url, timeout=2.0), namespace="app"
        )
        writer = Cache(_tier(redis_server.url, prefix), namespace="app")
        with reader, writer:
            reader.get("warm-up")  # the data connection is open before the first trial
            for i in range(50):
                key = f"k{i}"
                writer.set(key, "v1")
                proxy.delay(0.05)  # the reader's GET runs at once; its reply comes back 50 ms later
                sent = proxy.stats.bytes_up
                got: list[Any] = []
                t = threading.Thread(target=lambda key=key, got=got: got.append(reader.get(key)))  # type: ignore[misc]
                t.start()
                _wait_until(lambda sent=sent: proxy.stats.bytes_up > sent, "the GET to go out")  # type: ignore[misc]
                writer.set(key, "v2")  # committed and published while the old reply is in flight
                t.join(NO_HANG)
                proxy.heal()
                raced += got == ["v1"]
                stale += got == ["v1"] and reader._l1.get(reader._short(key)) is not None  # type: ignore[union-attr]
    assert raced > 25  # the interleaving was really exercised
    assert stale == 0


# ---------------------------------------------------------------------------------------------- outages


def test_killed_server_costs_misses_never_errors_and_recovers(private_redis: RedisServer, prefix: str) -> None:
    clock = FakeClock()
    tier = _tier(private_redis.url, prefix, timeout=0.2, connect_timeout=0.2, breaker_open_for=10.0, outage_l1_ttl=2.0)
    cache = Cache(MemoryTier(), tier, namespace="app", clock=clock)
    loads = []
    with cache:
        cache.set("a", 1, tags=["t"])
        private_redis.kill()
        link = cache._lower[0]._link  # type: ignore[attr-defined]
        _wait_until(lambda: link.lost, "the loss of the backplane")
        for i in range(20):  # every call returns within its budget; none raises
            t0 = time.monotonic()
            assert cache.get("a") is None  # L1 was flushed with the link; L2 is down
            assert cache.get_or_load(f"b{i}", lambda i=i: loads.append(i) or i) == i  # type: ignore[misc]
            cache.set("c", 3)
            cache.delete("a")
            cache.invalidate_tags("t")
            assert time.monotonic() - t0 < NO_HANG
        stats = cache.stats()
        assert stats["redis"].breaker == "open"
        assert stats["redis"].errors > 0
        assert len(loads) == 20
        # With the server known down, the L1 caches again, each entry capped at outage_l1_ttl.
        calls: list[int] = []
        assert cache.get_or_load("x", lambda: calls.append(1) or "X") == "X"
        assert cache.get_or_load("x", lambda: calls.append(1) or "X") == "X"
        assert calls == [1]
        clock.advance(tier.outage_l1_ttl + 0.5)
        assert cache.get_or_load("x", lambda: calls.append(1) or "X") == "X"
        assert calls == [1, 1]
        private_redis.restart()
        clock.advance(10.5)  # the breaker lets a probe through
        _wait_until(lambda: not link.lost, "the backplane to come back")
        _wait_until(
            lambda: cache.get_or_load("d", lambda: 4) == 4 and cache.stats()["redis"].breaker == "closed", "recovery"
        )
        cache.set("e", 5)
        other = Cache(_tier(private_redis.url, prefix), namespace="app", clock=clock)
        with other:
            assert other.get("e") == 5  # writes reach Redis again


def test_invalidations_made_during_an_outage_are_replayed(private_redis: RedisServer, prefix: str) -> None:
    """A paused server keeps its data: a delete and a tag bump made meanwhile must reach it before it is read."""
    clock = FakeClock()
    tier = _tier(private_redis.url, prefix, timeout=0.1, breaker_open_for=1.0, backplane=False)
    cache = Cache(MemoryTier(), tier, namespace="app", clock=clock)
    other = Cache(_tier(private_redis.url, prefix, backplane=False), namespace="app", clock=clock)
    with cache, other:
        cache.set("k", "old")
        cache.set("t", "tagged", tags=["x"])
        assert other.get("k") == "old"
        private_redis.pause()
        try:
            cache.delete("k")  # journaled, not raised
            cache.invalidate_tags("x")
            assert cache.get("k") is None
            assert cache.get("t") is None
        finally:
            private_redis.resume()
        clock.advance(1.5)
        _wait_until(lambda: cache.get("k") is None and cache.stats()["redis"].breaker == "closed", "the replay")
        assert other.get("k") is None  # the delete reached Redis
        assert other.get("t") is None  # and so did the tag bump
        assert not cache._journals[0]  # type: ignore[attr-defined]


def test_an_idle_writer_still_replays_its_invalidations(private_redis: RedisServer, prefix: str) -> None:
    """After the outage the writer makes no call at all: its journal is replayed in the background anyway."""
    clock = FakeClock()
    writer = Cache(_tier(private_redis.url, prefix, timeout=0.1, breaker_open_for=1.0, backplane=False), clock=clock)
    reader = Cache(_tier(private_redis.url, prefix, backplane=False), clock=clock)
    with writer, reader:
        writer.set("k", "old")
        private_redis.pause()
        try:
            writer.delete("k")  # journaled
        finally:
            private_redis.resume()
        clock.advance(1.5)  # the writer's breaker may probe again; nothing else touches the writer
        _wait_until(lambda: reader.get("k") is None, "the background replay of the delete")


def test_blackholed_server_is_bounded_by_the_timeout_and_opens_the_breaker(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    with FaultProxy("127.0.0.1", redis_server.port) as proxy:
        tier = _tier(proxy.url(), prefix, timeout=0.1, connect_timeout=0.1, backplane=False)
        cache = Cache(MemoryTier(), tier, namespace="app", clock=clock)
        with cache:
            cache.set("k", 1)
            proxy.blackhole()
            cache._l1.clear()  # type: ignore[union-attr]  # force the read to Redis
            worst = 0.0
            for _ in range(10):
                t0 = time.monotonic()
                assert cache.get("k") is None
                worst = max(worst, time.monotonic() - t0)
            assert worst < 0.1 * 2 + NO_HANG
            assert cache.stats()["redis"].breaker == "open"
            proxy.heal()
            clock.advance(1.5)
            _wait_until(lambda: cache.get("k") == 1, "the healed server to answer")


def test_cancelled_async_gets_never_leave_a_reply_for_the_next_caller(redis_server: RedisServer, prefix: str) -> None:
    """CVE-2023-28858 class: 1,000 GETs cancelled mid-reply, then every reply must belong to its own request."""

    async def run() -> tuple[int, int]:
        with FaultProxy("127.0.0.1", redis_server.port) as proxy:
            cache = AsyncCache(_tier(proxy.url(), prefix, timeout=1.0, backplane=False), namespace="app")
            async with cache:
                await cache.set_many({f"k{i}": i for i in range(100)})
                proxy.delay(0.02)
                cancelled = 0
                for round_ in range(10):
                    tasks = [asyncio.create_task(cache.get(f"k{(round_ * 100 + i) % 100}")) for i in range(100)]
                    await asyncio.sleep(0.01)
                    for task in tasks:
                        cancelled += task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                proxy.heal()
                wrong = 0
                for i in range(100):
                    wrong += await cache.get(f"k{i}") != i
                return cancelled, wrong

    cancelled, wrong = asyncio.run(run())
    assert cancelled > 500  # most GETs really were cancelled in flight
    assert wrong == 0


# ------------------------------------------------------------------------------- misconfiguration stays loud


def test_wrong_credentials_raise_on_every_write_and_never_open_the_breaker(
    private_redis: RedisServer, prefix: str
) -> None:
    admin = private_redis.client()
    try:
        admin.config_set("requirepass", "right")
    finally:
        admin.close()
    with Cache(MemoryTier(), _tier(private_redis.url, prefix, backplane=False)) as cache:
        assert cache.get("k") is None  # reads never raise
        for _ in range(10):
            with pytest.raises(TierError, match="credentials"):
                cache.invalidate_tags("t")
        assert cache.stats()["redis"].breaker == "closed"
    good = private_redis.url.replace("redis://", "redis://:right@")
    with Cache(_tier(good, prefix, backplane=False)) as cache:
        cache.set("k", 1)
        assert cache.get("k") == 1


def test_error_replies_are_errors_not_outages(redis_server: RedisServer, prefix: str) -> None:
    admin = redis_server.client()
    try:
        admin.set(f"{prefix}{{g}}gens", "not a hash")  # every counter operation now gets WRONGTYPE
        with Cache(_tier(redis_server.url, prefix, backplane=False)) as cache:
            for _ in range(10):
                with pytest.raises(TierError):
                    cache.invalidate_tags("t")
            assert cache.stats()["redis"].breaker == "closed"
    finally:
        admin.close()


def test_a_cache_starts_while_its_cluster_is_unreachable(prefix: str) -> None:
    from tests.support.servers import free_port

    url = f"redis+cluster://127.0.0.1:{free_port()}"
    with Cache(MemoryTier(), _tier(url, prefix, backplane=False, timeout=0.2, connect_timeout=0.2)) as cache:
        assert cache.get("k") is None
        assert cache.get_or_load("k", lambda: 5) == 5

    async def run() -> Any:
        async with AsyncCache(_tier(url, prefix, backplane=False, timeout=0.2, connect_timeout=0.2)) as acache:
            return await acache.get("k", default="miss")

    assert asyncio.run(run()) == "miss"


def test_generations_stay_ahead_of_a_lost_hash(redis_server: RedisServer, prefix: str) -> None:
    """After the counters vanish (eviction, FLUSHDB, restart without persistence) new values exceed old ones."""
    with Cache(_tier(redis_server.url, prefix, backplane=False), namespace="app") as cache:
        store = cache._lower[0]  # type: ignore[attr-defined]
        (first,) = store.bump_gens(["app\x1ft"])
        admin = redis_server.client()
        try:
            admin.delete(f"{prefix}{{g}}gens", f"{prefix}{{g}}seq")
        finally:
            admin.close()
        (second,) = store.bump_gens(["app\x1ft"])
        assert second > first


def test_a_store_without_backplane_still_announces_its_writes(redis_url: str, prefix: str) -> None:
    writer = Cache(_tier(redis_url, prefix, backplane=False), namespace="app")
    reader = Cache(MemoryTier(), _tier(redis_url, prefix), namespace="app")
    with writer, reader:
        writer.set("k", 1)
        assert reader.get("k") == 1
        writer.set("k", 2)
        _wait_until(lambda: reader.get("k") == 2, "the reader to drop its L1 copy")


def test_delete_matching_pages_through_scan_and_tells_other_processes(redis_url: str, prefix: str) -> None:
    a, b = _pair(redis_url, prefix)
    with a, b:
        a.set_many({f"user:{i}": i for i in range(250)} | {"order:1": 1})
        assert b.get("user:5") == 5  # in b's L1
        assert a.delete_matching("user:*", page=50) == 250
        _wait_until(lambda: b.get("user:5") is None, "b to drop its L1 copy")
        assert b.get("order:1") == 1


def test_another_processes_tag_bump_is_seen_by_the_very_next_l2_read(redis_url: str, prefix: str) -> None:
    """No waiting for the backplane: an L2 read checks the counters' sequence in the same round trip."""
    reader = Cache(_tier(redis_url, prefix), namespace="app")  # no L1: every read is an L2 read
    writer = Cache(_tier(redis_url, prefix), namespace="app")
    stale = 0
    with reader, writer:
        for i in range(200):
            reader.set(f"k{i}", i, tags=[f"t{i}"])
            assert reader.get(f"k{i}") == i  # the reader now holds the tag's counter
            writer.invalidate_tags(f"t{i}")  # another process; its message may still be on the way
            stale += reader.get(f"k{i}") is not None
    assert stale == 0


def test_entries_invalidated_before_the_counters_were_lost_stay_invalid(redis_server: RedisServer, prefix: str) -> None:
    """The counters' hash lost (eviction, FLUSHDB, DEL) must not bring back what was invalidated before."""
    with Cache(_tier(redis_server.url, prefix, backplane=False), namespace="app") as writer:
        writer.set("k", "old", tags=["t"])  # stamped with the tag's counter as never bumped
        writer.invalidate_tags("t")
        writer.set("j", "kept")
        admin = redis_server.client()
        try:
            admin.delete(f"{prefix}{{g}}gens", f"{prefix}{{g}}seq")  # every counter gone
        finally:
            admin.close()
    with Cache(_tier(redis_server.url, prefix, backplane=False), namespace="app") as fresh:
        assert fresh.get("k") is None  # not resurrected
        assert fresh.get("j") is None  # (the loss invalidates everything: coarse, never stale)


def test_after_an_outage_a_reader_never_sees_what_a_writer_deleted_meanwhile(
    private_redis: RedisServer, prefix: str
) -> None:
    """The writer's delete is journaled while Redis is paused; when Redis answers again, the reader may reach it
    before the writer replays: entries written before the outage are not trusted until replays are due."""
    opts: dict[str, Any] = {"timeout": 0.1, "connect_timeout": 0.2, "breaker_failures": 1, "heartbeat": 0.2}
    writer = Cache(_tier(private_redis.url, prefix, **opts), namespace="app")
    reader = Cache(MemoryTier(), _tier(private_redis.url, prefix, **opts), namespace="app")
    with writer, reader:
        writer.set("k", "old")
        assert reader.get("k") == "old"
        private_redis.pause()
        try:
            writer.delete("k")  # journaled: Redis does not answer
            link = reader._lower[0]._link  # type: ignore[attr-defined]
            _wait_until(lambda: reader.get("k") is None and link.lost, "the reader to be in outage mode")
        finally:
            private_redis.resume()
        seen: set[Any] = set()
        deadline = time.monotonic() + 1.5  # past the writer's replay
        while time.monotonic() < deadline:
            seen.add(reader.get("k"))
        assert "old" not in seen
        assert reader.get("k") is None  # the delete reached Redis
