"""The engine through ``sc.Cache`` / ``sc.AsyncCache`` on a FakeClock: coalescing, counters, closing, clearing."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

import pytest

import stratacache as sc
from stratacache.errors import CacheClosedError, EncodeError, InvalidKeyError, ValueTooLargeError
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

N_THREADS = 8


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> Iterator[sc.Cache]:
    with sc.Cache(sc.MemoryTier(max_entries=100, max_bytes="1MiB"), namespace="eng", ttl=300, clock=clock) as c:
        yield c


class LoaderFailedError(Exception):
    pass


# ------------------------------------------------------------------ coalescing


def _coalesce(
    cache: sc.Cache, wait_for_followers: Callable[[int], None], loader_result: Callable[[], Any]
) -> tuple[list[int], dict[int, Any]]:
    """Run N_THREADS get_or_load calls on one key with every follower parked before the leader may finish."""
    release = threading.Event()
    entered = threading.Event()
    calls: list[int] = []
    outcomes: dict[int, Any] = {}

    def loader() -> Any:
        calls.append(1)
        entered.set()
        assert release.wait(30)
        return loader_result()

    def caller(i: int) -> None:
        try:
            outcomes[i] = cache.get_or_load("hot", loader)
        except LoaderFailedError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(N_THREADS)]
    threads[0].start()
    assert entered.wait(30)  # the leader is inside the loader
    for t in threads[1:]:
        t.start()
    wait_for_followers(N_THREADS - 1)  # every other caller has missed and joined the flight
    release.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return calls, outcomes


def test_get_or_load_from_many_threads_calls_the_loader_once(
    clock: FakeClock, wait_for_followers: Callable[[int], None]
) -> None:
    with sc.Cache(sc.MemoryTier(max_entries=100), namespace="eng", clock=clock) as cache:
        calls, outcomes = _coalesce(cache, wait_for_followers, lambda: {"rows": [1, 2, 3]})
        assert calls == [1]
        assert sorted(outcomes) == list(range(N_THREADS))
        assert all(v == {"rows": [1, 2, 3]} for v in outcomes.values())
        stats = cache.stats()
        assert stats.loads == 1
        assert stats.coalesced == N_THREADS - 1
        assert cache.get_or_load("hot", lambda: pytest.fail("cached: must not load")) == {"rows": [1, 2, 3]}


def test_loader_failure_reaches_every_thread_and_caches_nothing(
    clock: FakeClock, wait_for_followers: Callable[[int], None]
) -> None:
    def fail() -> Any:
        raise LoaderFailedError("db down")

    with sc.Cache(sc.MemoryTier(max_entries=100), namespace="eng", clock=clock) as cache:
        calls, outcomes = _coalesce(cache, wait_for_followers, fail)
        assert calls == [1]
        assert all(isinstance(v, LoaderFailedError) for v in outcomes.values())
        assert len(outcomes) == N_THREADS
        stats = cache.stats()
        assert (stats.loads, stats.load_errors) == (0, 1)
        assert cache.get("hot", "absent") == "absent"
        assert cache.get_or_load("hot", lambda: "recovered") == "recovered"


def test_get_or_load_from_threads_over_sqlite(
    tmp_path: Path, clock: FakeClock, wait_for_followers: Callable[[int], None]
) -> None:
    tiers = (sc.MemoryTier(max_entries=100), sc.SQLiteTier(tmp_path / "c.db"))
    with sc.Cache(*tiers, namespace="eng", clock=clock) as cache:
        calls, outcomes = _coalesce(cache, wait_for_followers, lambda: "value")
        assert calls == [1]
        assert set(outcomes.values()) == {"value"}
        assert cache.stats()["sqlite"].entries == 1


@pytest.mark.asyncio
async def test_async_get_or_load_calls_the_loader_once_and_survives_a_cancelled_caller(clock: FakeClock) -> None:
    import asyncio

    release = asyncio.Event()
    calls: list[int] = []

    async def loader() -> str:
        calls.append(1)
        await release.wait()
        return "value"

    async with sc.AsyncCache(sc.MemoryTier(max_entries=100), clock=clock) as acache:
        tasks = [asyncio.create_task(acache.get_or_load("k", loader)) for _ in range(N_THREADS)]
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0)
        assert calls == [1]
        tasks[0].cancel()
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert results[1:] == ["value"] * (N_THREADS - 1)
        assert calls == [1]
        assert await acache.get("k") == "value"
        stats = acache.stats()
        assert stats.loads == 1
        assert stats.coalesced == N_THREADS - 1


# ------------------------------------------------------------------ counters


def test_stats_after_known_operations(cache: sc.Cache) -> None:
    cache.set("a", 1)  # set 1
    assert cache.get("a") == 1  # hit 1
    assert cache.get("b") is None  # miss 1
    assert cache.get_or_load("c", lambda: 3) == 3  # miss 2, load 1, set 2
    assert cache.get_or_load("c", lambda: 4) == 3  # hit 2
    assert cache.delete("a") is True  # delete 1
    assert cache.get_many(["a", "c"]) == {"c": 3}  # miss 3, hit 3

    stats = cache.stats()
    assert stats.namespace == "eng"
    assert [t.name for t in stats.tiers] == ["memory"]
    mem = stats["memory"]
    assert (mem.hits, mem.misses, mem.sets, mem.deletes, mem.evictions, mem.errors) == (3, 3, 2, 1, 0, 0)
    assert mem.entries == 1
    assert mem.bytes > 0
    assert mem.hit_ratio == 0.5
    assert stats.hits == 3
    assert stats.hit_ratio == 0.5
    assert (stats.loads, stats.load_errors, stats.coalesced, stats.invalidations) == (1, 0, 0, 0)
    cache.invalidate_tags("t")
    cache.clear()
    assert cache.stats().invalidations == 2


def test_stats_is_a_frozen_snapshot(cache: sc.Cache) -> None:
    before = cache.stats()
    cache.set("a", 1)
    cache.get("a")
    assert before["memory"].hits == 0
    assert cache.stats()["memory"].hits == 1
    with pytest.raises(AttributeError):
        before.loads = 5  # type: ignore[misc]
    with pytest.raises(KeyError):
        before["redis"]


def test_load_time_is_measured_on_the_injected_clock(cache: sc.Cache, clock: FakeClock) -> None:
    def slow() -> int:
        clock.advance(2.5)
        return 1

    cache.get_or_load("k", slow)
    assert cache.stats().load_seconds == pytest.approx(2.5)


def test_evictions_are_counted(clock: FakeClock) -> None:
    with sc.Cache(sc.MemoryTier(max_entries=2, policy="lru"), clock=clock) as cache:
        for k in "abcd":
            cache.set(k, k)
        mem = cache.stats()["memory"]
        assert (mem.entries, mem.evictions, mem.sets) == (2, 2, 4)
        assert cache.get_many(list("abcd")) == {"c": "c", "d": "d"}


# ------------------------------------------------------------------ lifecycle


def test_operations_after_close_raise(clock: FakeClock) -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=10), clock=clock)
    cache.set("k", 1)
    cache.close()
    cache.close()  # idempotent
    ops: list[Callable[[], Any]] = [
        lambda: cache.get("k"),
        lambda: cache.set("k", 2),
        lambda: cache.delete("k"),
        lambda: cache.get_or_load("k", lambda: 3),
        lambda: cache.get_many(["k"]),
        lambda: cache.set_many({"k": 4}),
        lambda: cache.delete_many(["k"]),
        lambda: cache.invalidate_tags("t"),
        cache.clear,
    ]
    for op in ops:
        with pytest.raises(CacheClosedError):
            op()
    assert issubclass(CacheClosedError, sc.StrataCacheError)


def test_context_manager_closes(clock: FakeClock) -> None:
    with sc.Cache(sc.MemoryTier(max_entries=10), clock=clock) as cache:
        cache.set("k", 1)
    with pytest.raises(CacheClosedError):
        cache.get("k")


def test_decorated_function_after_close_raises(clock: FakeClock) -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=10), clock=clock)

    @cache.cached
    def f(x: int) -> int:
        return x

    f(1)
    cache.close()
    with pytest.raises(CacheClosedError):
        f(1)


@pytest.mark.asyncio
async def test_async_operations_after_close_raise(clock: FakeClock) -> None:
    async with sc.AsyncCache(sc.MemoryTier(max_entries=10), clock=clock) as acache:
        await acache.set("k", 1)
        assert await acache.get("k") == 1
    with pytest.raises(CacheClosedError):
        await acache.get("k")
    with pytest.raises(CacheClosedError):
        await acache.set("k", 1)
    await acache.close()


# ------------------------------------------------------------------ namespaces and clear


def test_clear_drops_this_namespace(cache: sc.Cache) -> None:
    cache.set_many({"a": 1, "b": 2})
    cache.set("c", 3, tags=["t"])
    cache.clear()
    assert cache.get_many(["a", "b", "c"]) == {}
    assert cache.stats()["memory"].entries == 0
    cache.set("a", 10)
    assert cache.get("a") == 10


def test_clear_only_affects_its_namespace_in_a_shared_store(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "shared.db"
    mine = sc.Cache(sc.MemoryTier(max_entries=10), sc.SQLiteTier(path), namespace="mine", clock=clock)
    other = sc.Cache(sc.MemoryTier(max_entries=10), sc.SQLiteTier(path), namespace="other", clock=clock)
    try:
        mine.set("k", "mine")
        other.set("k", "other")
        other.set("only-other", 1)
        mine.clear()
        assert mine.get("k") is None
        assert other.get("k") == "other"
        assert other.get("only-other") == 1
        # a third process-like cache of the other namespace, with a cold L1, still reads its rows
        with sc.Cache(sc.SQLiteTier(path), namespace="other", clock=clock) as cold:
            assert cold.get("k") == "other"
        with sc.Cache(sc.SQLiteTier(path), namespace="mine", clock=clock) as cold_mine:
            assert cold_mine.get("k") is None
    finally:
        mine.close()
        other.close()


def test_same_key_in_two_namespaces_of_one_store(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "shared.db"
    with (
        sc.Cache(sc.SQLiteTier(path), namespace="a", clock=clock) as a,
        sc.Cache(sc.SQLiteTier(path), namespace="b", clock=clock) as b,
    ):
        a.set("k", "from a")
        assert b.get("k") is None
        b.set("k", "from b")
        assert a.get("k") == "from a"
        a.invalidate_tags("t")
        assert a.delete("k") is True
        assert b.get("k") == "from b"


# ------------------------------------------------------------------ input checks and expiry


def test_bad_keys_raise_before_touching_the_cache(cache: sc.Cache) -> None:
    cache.set("ok", 1)
    for bad in ("", (), 1, None, ["a"], "x" * 5000):
        with pytest.raises(InvalidKeyError):
            cache.set(bad, 2)  # type: ignore[arg-type]
        with pytest.raises(InvalidKeyError):
            cache.get(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        cache.set_many({"fine": 1, "": 2})
    with pytest.raises(InvalidKeyError):
        cache.get_or_load("", lambda: pytest.fail("must not load"))
    assert cache.get("fine") is None
    assert cache.get("ok") == 1
    assert cache.stats()["memory"].sets == 1


def test_value_too_large_changes_nothing(clock: FakeClock) -> None:
    with sc.Cache(sc.MemoryTier(max_entries=10, max_bytes=100), clock=clock) as cache:
        cache.set("k", "small")
        with pytest.raises(ValueTooLargeError):
            cache.set("k", "x" * 1000)
        assert cache.get("k") == "small"
        with pytest.raises(ValueTooLargeError):
            cache.set_many({"a": 1, "k": "x" * 1000})
        assert cache.get("a") is None
        assert cache.get("k") == "small"


def test_set_many_checks_every_value_first(cache: sc.Cache) -> None:
    with pytest.raises(EncodeError):
        cache.set_many({"a": 1, "b": object(), "c": 3})
    assert cache.get_many(["a", "b", "c"]) == {}


def test_ttl_and_no_expiry(cache: sc.Cache, clock: FakeClock) -> None:
    with sc.Cache(sc.MemoryTier(max_entries=10), ttl=None, clock=clock) as forever:
        forever.set("k", 1)
        clock.advance(10**9)
        assert forever.get("k") == 1
    cache.set("short", 1, ttl=1)
    cache.set("default", 2)
    clock.advance(1)
    assert cache.get("short") is None
    assert cache.get("default") == 2
    clock.advance(299)
    assert cache.get("default") is None


def test_ttl_jitter_with_a_seeded_rng(clock: FakeClock) -> None:
    def expiries(seed: int) -> list[bool]:
        own_clock = FakeClock(clock.now())
        tier = sc.MemoryTier(max_entries=200)
        with sc.Cache(tier, ttl=100, ttl_jitter=0.5, rng=random.Random(seed), clock=own_clock) as c:
            for i in range(100):
                c.set(f"k{i}", i)
            own_clock.advance(75)
            return [c.get(f"k{i}") is not None for i in range(100)]

    first = expiries(1)
    assert first == expiries(1)  # reproducible
    assert first != expiries(2)
    assert 20 < sum(first) < 80  # about half the TTLs were shortened below 75 s


def test_none_is_cached_and_told_from_a_miss(cache: sc.Cache) -> None:
    calls: list[int] = []
    assert cache.get_or_load("n", lambda: calls.append(1)) is None
    assert cache.get_or_load("n", lambda: calls.append(2)) is None
    assert calls == [1]
    assert cache.get("n", "default") is None
    assert cache.get_many(["n"]) == {"n": None}


def test_invalidate_tags_reads_back(cache: sc.Cache) -> None:
    cache.set("a", 1, tags=["t1"])
    cache.set("b", 2, tags=["t2"])
    cache.invalidate_tags("t1")
    assert cache.get("a") is None
    assert cache.get("b") == 2
    calls: list[int] = []
    assert cache.get_or_load("a", lambda: calls.append(1) or 10, tags=["t1"]) == 10
    assert cache.get("a") == 10


def test_tag_bumped_while_loading_makes_the_result_stale(cache: sc.Cache) -> None:
    def loader() -> str:
        cache.invalidate_tags("t")  # a write committed while the loader was reading
        return "read before the write"

    assert cache.get_or_load("k", loader, tags=["t"]) == "read before the write"
    assert cache.get("k") is None  # never served from the cache afterwards


def test_write_during_load_wins_over_the_loaded_value(cache: sc.Cache) -> None:
    def loader() -> str:
        cache.set("k", "written meanwhile")
        return "loaded from an old read"

    assert cache.get_or_load("k", loader) == "loaded from an old read"
    assert cache.get("k") == "written meanwhile"


def test_repr(cache: sc.Cache) -> None:
    assert "eng" in repr(cache)
    assert "memory" in repr(cache)


def test_stats_expose_load_histogram_remote_invalidations_and_tier_bounds(tmp_path: Path) -> None:
    from stratacache import SQLiteTier
    from stratacache.metrics.stats import LOAD_BUCKETS

    clock = FakeClock()
    db = tmp_path / "c.db"
    a = sc.Cache(sc.MemoryTier(max_bytes="1MiB"), SQLiteTier(db), clock=clock)
    b = sc.Cache(SQLiteTier(db), clock=clock)
    with a, b:

        def slow() -> int:
            clock.advance(0.03)  # the load takes 30 ms of the cache's clock
            return 1

        a.get_or_load("k", slow)
        stats = a.stats()
        assert len(stats.load_histogram) == len(LOAD_BUCKETS) + 1
        assert stats.load_histogram[LOAD_BUCKETS.index(0.05)] == 1  # 25 ms < 30 ms <= 50 ms
        assert sum(stats.load_histogram) == stats.loads == 1
        assert stats["memory"].max_bytes == 1024 * 1024
        assert stats["sqlite"].pending_invalidations == 0
        assert stats["sqlite"].backplane is None  # the SQLite backplane is the log, polled: never "lost"
        b.delete("k")  # another "process"
        assert a.get("k") is None
        assert a.stats().remote_invalidations >= 1
        assert a.stats().invalidations == 0  # this cache invalidated nothing itself
