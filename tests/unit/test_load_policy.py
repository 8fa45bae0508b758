"""LoadPolicy: stale-while-revalidate, fail-safe, timeouts, early refresh and negative caching, both facades.

Time is a FakeClock everywhere except loader timeouts, which are the code under test's own waits (tens of ms).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from stratacache import AsyncCache, Cache, ConfigError, EncodeError, LoadPolicy, LoadTimeout, MemoryTier
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable


def _eventually(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait (bounded) for background work to land; never used for TTLs, which the FakeClock drives."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.002)


def _cache(clock: FakeClock, policy: LoadPolicy | None = None, **kw: Any) -> Cache:
    return Cache(MemoryTier(max_entries=100), clock=clock, ttl=10, policy=policy, rng=random.Random(7), **kw)


class Source:
    """A versioned 'database' whose loader can be made to fail or to block."""

    def __init__(self) -> None:
        self.version = 1
        self.calls = 0
        self.fail = False
        self.gate: threading.Event | None = None

    def load(self) -> int:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise ConnectionError("database down")
        return self.version


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stale_while_revalidate": -1},
        {"fail_safe": 0},
        {"fail_safe": float("nan")},
        {"hard_timeout": float("inf")},
        {"soft_timeout": True},
        {"soft_timeout": 2, "hard_timeout": 1},
        {"refresh_ahead": 1.0},
        {"refresh_ahead": 0},
        {"early_refresh": -0.5},
        {"negative_ttl": "5"},
        {"fail_safe_throttle": 0},
    ],
)
def test_bad_policies_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        LoadPolicy(**kwargs)


def test_policy_argument_type_is_checked() -> None:
    with pytest.raises(ConfigError):
        Cache(policy={"fail_safe": 5})  # type: ignore[arg-type]
    with Cache() as cache, pytest.raises(ConfigError):
        cache.get_or_load("k", lambda: 1, policy="fail_safe")  # type: ignore[arg-type]


def test_stale_window_is_the_longest_of_swr_and_fail_safe() -> None:
    assert LoadPolicy().stale_window is None
    assert LoadPolicy(stale_while_revalidate=5, fail_safe=60).stale_window == 60
    assert LoadPolicy().plain
    assert not LoadPolicy(negative_ttl=1).plain


# -------------------------------------------------------------------------------- stale-while-revalidate


def test_swr_serves_stale_at_once_and_refreshes_once_in_the_background() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(stale_while_revalidate=60)) as cache:
        assert cache.get_or_load("k", src.load) == 1
        src.version = 2
        clock.advance(15)  # expired, inside the SWR window
        src.gate = threading.Event()  # the refresh blocks until released
        served = [cache.get_or_load("k", src.load) for _ in range(20)]
        assert served == [1] * 20  # nobody waited for the load
        _eventually(lambda: src.calls == 2, "the refresh to start")
        src.gate.set()
        _eventually(lambda: cache.get("k") == 2, "the refreshed value")
        assert src.calls == 2  # one refresh for 20 stale serves
        stats = cache.stats()
        assert stats.stale_served == 20
        assert stats.refreshes == 1
        assert cache.get("k") == 2


def test_swr_window_ends() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(stale_while_revalidate=5)) as cache:
        cache.get_or_load("k", src.load)
        src.version = 2
        clock.advance(16)  # past expiry + window: a plain miss, loaded in the caller
        assert cache.get_or_load("k", src.load) == 2
        assert cache.stats().stale_served == 0


def test_plain_get_never_returns_a_stale_value() -> None:
    clock = FakeClock()
    with _cache(clock, LoadPolicy(stale_while_revalidate=60)) as cache:
        cache.set("k", 1)
        clock.advance(11)
        assert cache.get("k") is None
        assert cache.get_or_load("k", lambda: 2) == 1  # still kept for the policy path


# ------------------------------------------------------------------------------------------ fail-safe


def test_fail_safe_serves_the_last_value_and_throttles_the_failing_loader() -> None:
    clock = FakeClock()
    src = Source()
    policy = LoadPolicy(fail_safe=300, fail_safe_throttle=10)
    with _cache(clock, policy) as cache:
        assert cache.get_or_load("k", src.load) == 1
        clock.advance(11)
        src.fail = True
        assert cache.get_or_load("k", src.load) == 1  # the loader raised: stale instead
        calls = src.calls
        for _ in range(50):
            assert cache.get_or_load("k", src.load) == 1
        assert src.calls == calls  # throttled: not called again within 10 s
        clock.advance(11)
        assert cache.get_or_load("k", src.load) == 1
        assert src.calls == calls + 1  # one attempt per throttle period
        src.fail = False
        src.version = 3
        clock.advance(11)
        assert cache.get_or_load("k", src.load) == 3  # recovered: fresh values again
        assert cache.stats().stale_served == 52


def test_fail_safe_window_ends_and_the_error_surfaces() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(fail_safe=30)) as cache:
        cache.get_or_load("k", src.load)
        src.fail = True
        clock.advance(41)
        with pytest.raises(ConnectionError):
            cache.get_or_load("k", src.load)


def test_invalidated_entries_are_never_served_stale() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(fail_safe=300, stale_while_revalidate=60)) as cache:
        cache.get_or_load("k", src.load, tags=["t"])
        cache.get_or_load("j", src.load)
        src.fail = True
        clock.advance(11)
        cache.invalidate_tags("t")
        cache.delete("j")
        with pytest.raises(ConnectionError):
            cache.get_or_load("k", src.load, tags=["t"])
        with pytest.raises(ConnectionError):
            cache.get_or_load("j", src.load)


def test_fail_safe_does_not_hide_the_caches_own_errors() -> None:
    clock = FakeClock()
    with _cache(clock, LoadPolicy(fail_safe=300)) as cache:
        cache.get_or_load("k", lambda: 1)
        clock.advance(11)
        with pytest.raises(EncodeError):
            cache.get_or_load("k", object)  # an unencodable result is a bug, not an outage


# ------------------------------------------------------------------------------------------- timeouts


def test_hard_timeout_raises_and_the_load_still_lands() -> None:
    clock = FakeClock()
    src = Source()
    src.gate = threading.Event()
    with _cache(clock, LoadPolicy(hard_timeout=0.05)) as cache:
        with pytest.raises(LoadTimeout) as info:
            cache.get_or_load("k", src.load)
        assert not info.value.soft
        assert isinstance(info.value, TimeoutError)
        src.gate.set()
        _eventually(lambda: cache.get("k") == 1, "the background load to store its result")
        assert cache.stats().load_timeouts == 1


def test_soft_timeout_serves_stale_and_the_load_still_lands() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(fail_safe=60, soft_timeout=0.05)) as cache:
        cache.get_or_load("k", src.load)
        src.version = 2
        src.gate = threading.Event()
        clock.advance(11)
        assert cache.get_or_load("k", src.load) == 1  # stale after 50 ms
        src.gate.set()
        _eventually(lambda: cache.get("k") == 2, "the background load")


def test_soft_timeout_without_a_stale_value_waits_for_the_hard_one() -> None:
    clock = FakeClock()
    src = Source()
    src.gate = threading.Event()
    with _cache(clock, LoadPolicy(fail_safe=60, soft_timeout=0.02, hard_timeout=0.1)) as cache:
        t0 = time.monotonic()
        with pytest.raises(LoadTimeout):
            cache.get_or_load("k", src.load)
        assert time.monotonic() - t0 >= 0.1  # no stale value: the soft timeout does not apply
        src.gate.set()


# ------------------------------------------------------------------------------- early refresh, negative


def test_refresh_ahead_refreshes_a_hot_key_before_it_expires() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(refresh_ahead=0.8)) as cache:
        cache.get_or_load("k", src.load)
        src.version = 2
        clock.advance(5)
        assert cache.get_or_load("k", src.load) == 1
        assert src.calls == 1  # not in the last 20% yet
        clock.advance(4)
        assert cache.get_or_load("k", src.load) == 1  # served at once...
        _eventually(lambda: cache.get("k") == 2, "the refresh")  # ...and refreshed before expiry
        assert src.calls == 2


def test_xfetch_refreshes_near_expiry_in_proportion_to_the_load_time() -> None:
    clock = FakeClock()
    calls = [0]

    def slow_load() -> int:
        calls[0] += 1
        clock.advance(1.0)  # the load takes 1 s (delta)
        return calls[0]

    with _cache(clock, LoadPolicy(early_refresh=1.0)) as cache:
        cache.get_or_load("k", slow_load)
        for _ in range(200):  # 9 s before expiry with delta=1: P(refresh) = e^-9 per hit
            cache.get_or_load("k", slow_load)
        assert calls[0] == 1
        clock.advance(8.9)  # 0.1 s before expiry: P(refresh) = e^-0.1 per hit
        cache.get_or_load("k", slow_load)
        _eventually(lambda: calls[0] == 2, "the early refresh")
        assert cache.stats().refreshes == 1


def test_negative_results_get_their_own_ttl() -> None:
    clock = FakeClock()
    calls = [0]

    def find() -> None:
        calls[0] += 1

    with _cache(clock, LoadPolicy(negative_ttl=2)) as cache:
        assert cache.get_or_load("missing", find, ttl=100) is None
        assert cache.get_or_load("missing", find, ttl=100) is None
        assert calls[0] == 1
        clock.advance(3)
        cache.get_or_load("missing", find, ttl=100)
        assert calls[0] == 2


# ------------------------------------------------------------------------------- per call, decorator


def test_per_call_policy_overrides_the_caches() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock, LoadPolicy(fail_safe=300)) as cache:
        cache.get_or_load("k", src.load)
        src.fail = True
        clock.advance(11)
        with pytest.raises(ConnectionError):
            cache.get_or_load("k", src.load, policy=LoadPolicy())  # strict for this call
        assert cache.get_or_load("k", src.load) == 1


def test_decorator_takes_a_policy() -> None:
    clock = FakeClock()
    src = Source()
    with _cache(clock) as cache:

        @cache.cached(ttl=10, policy=LoadPolicy(fail_safe=60))
        def lookup(user: int) -> int:
            return src.load() + user

        assert lookup(1) == 2
        src.fail = True
        clock.advance(11)
        assert lookup(1) == 2
        with pytest.raises(ConfigError):
            cache.cached(policy=5)  # type: ignore[call-overload]


# -------------------------------------------------------------------------------------------- async


def test_async_swr_fail_safe_and_hard_timeout() -> None:
    clock = FakeClock()

    async def run() -> None:
        state = {"v": 1, "fail": False, "gate": None}

        async def load() -> int:
            gate = state["gate"]
            if gate is not None:
                await gate.wait()  # type: ignore[attr-defined]
            if state["fail"]:
                raise ConnectionError("down")
            return state["v"]  # type: ignore[return-value]

        policy = LoadPolicy(stale_while_revalidate=5, fail_safe=300, hard_timeout=0.05)
        async with AsyncCache(MemoryTier(), clock=clock, ttl=10, policy=policy) as cache:
            assert await cache.get_or_load("k", load) == 1
            state["v"] = 2
            clock.advance(12)  # SWR: stale at once, refreshed in a task
            assert await cache.get_or_load("k", load) == 1
            for _ in range(100):
                if await cache.get("k") == 2:
                    break
                await asyncio.sleep(0)
            assert await cache.get("k") == 2
            state["fail"] = True
            clock.advance(20)  # past SWR, inside fail-safe
            assert await cache.get_or_load("k", load) == 2
            state["fail"] = False
            state["gate"] = asyncio.Event()
            with pytest.raises(LoadTimeout):
                await cache.get_or_load("other", load)
            state["gate"].set()  # type: ignore[attr-defined]
            stats = cache.stats()
            assert stats.stale_served == 2
            assert stats.load_timeouts == 1
        # close() awaited the background load of "other"

    asyncio.run(run())


# ------------------------------------------------------------------------------- leases across caches


def _two_caches(tmp_path: Any, clock: FakeClock, policy: LoadPolicy) -> tuple[Cache, Cache]:
    """Two caches over one SQLite file: two processes, as far as leases are concerned."""
    from stratacache import SQLiteTier

    path = tmp_path / "shared.db"
    return (
        Cache(MemoryTier(), SQLiteTier(path), clock=clock, ttl=10, policy=policy),
        Cache(MemoryTier(), SQLiteTier(path), clock=clock, ttl=10, policy=policy),
    )


def test_a_second_cache_waits_for_the_first_ones_load(tmp_path: Any) -> None:
    clock = FakeClock()
    a, b = _two_caches(tmp_path, clock, LoadPolicy(lease_wait=5))
    src = Source()
    src.gate = threading.Event()
    with a, b:
        first: list[int] = []
        t = threading.Thread(target=lambda: first.append(a.get_or_load("k", src.load)))
        t.start()
        _eventually(lambda: src.calls == 1, "the first load to start")
        second: list[int] = []
        u = threading.Thread(target=lambda: second.append(b.get_or_load("k", src.load)))
        u.start()
        _eventually(lambda: b.stats().lock_waits == 1, "the second cache to find the lease")
        src.gate.set()
        t.join(5)
        u.join(5)
        assert first == second == [1]
        assert src.calls == 1  # one load for both "processes"


@pytest.mark.parametrize(("on_timeout", "expected"), [("load", "loaded"), ("raise", LoadTimeout)])
def test_what_a_waiter_does_when_the_lease_holder_is_too_slow(tmp_path: Any, on_timeout: str, expected: Any) -> None:
    clock = FakeClock()
    policy = LoadPolicy(lease_wait=0.05, on_lease_timeout=on_timeout)
    a, b = _two_caches(tmp_path, clock, policy)
    gate = threading.Event()
    with a, b:
        t = threading.Thread(target=lambda: a.get_or_load("k", lambda: gate.wait(5) and "slow"))
        t.start()
        _eventually(lambda: a._leases is not None and b.get("k") is None and _held(tmp_path), "the lease")
        try:
            if expected is LoadTimeout:
                with pytest.raises(LoadTimeout):
                    b.get_or_load("k", lambda: "loaded")
            else:
                assert b.get_or_load("k", lambda: "loaded") == expected
        finally:
            gate.set()
            t.join(5)


def _held(tmp_path: Any) -> bool:
    import sqlite3

    with sqlite3.connect(tmp_path / "shared.db") as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM sc_leases").fetchone()[0] > 0
        except sqlite3.OperationalError:
            return False


def test_lease_policy_validation() -> None:
    with pytest.raises(ConfigError):
        LoadPolicy(lease_wait=1, on_lease_timeout="wait")
    with pytest.raises(ConfigError):
        LoadPolicy(soft_timeout=1)  # nothing stale to serve
