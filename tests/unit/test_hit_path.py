"""The L1 hit path (``get``'s inlined check, ``_hit``, the decorator's quick path) agrees with the full lookup."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

import stratacache as sc
from stratacache._primitives import MISSING
from stratacache.errors import CacheClosedError, InvalidKeyError
from stratacache.testing import FakeClock


def make(policy: str = "lru", **kw: Any) -> tuple[sc.Cache, FakeClock]:
    clock = FakeClock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tinylfu is experimental
        tier = sc.MemoryTier(max_entries=100, policy=policy, **kw)
    return sc.Cache(tier, clock=clock, ttl=60), clock


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_a_hit_records_one_access_and_counts_one_hit(policy: str) -> None:
    cache, _ = make(policy)
    cache.set("a", 1)
    cache.set("b", 2)
    pol = cache._l1._policy  # type: ignore[union-attr]
    before = len(pol._buf) if policy == "tinylfu" else None
    assert cache.get("a") == 1
    assert cache._hit(cache._short("b")) == 2
    if policy == "lru":
        assert list(pol._data) == ["a", "b"]  # a, then b, moved to the recent end
    else:
        assert len(pol._buf) - before == 2
    s = cache.stats().tiers[0]
    assert (s.hits, s.misses) == (2, 0)


def test_expired_invalidated_and_absent_entries_take_the_full_path() -> None:
    cache, clock = make()
    cache.set("old", 1, ttl=10)
    cache.set("tagged", 2, tags=["t"])
    clock.advance(11)
    cache.invalidate_tags("t")
    for key in ("old", "tagged", "absent"):
        assert cache._hit(cache._short(key)) is MISSING  # nothing recorded, counted or dropped here
        assert cache.get(key, "miss") == "miss"
    s = cache.stats().tiers[0]
    assert (s.hits, s.misses) == (0, 3)
    assert cache._l1.peek(cache._short("old")) is None  # type: ignore[union-attr]  # dead entries dropped, as before
    assert cache._l1.peek(cache._short("tagged")) is None  # type: ignore[union-attr]


def test_a_tagged_entry_is_served_while_its_generations_are_current() -> None:
    cache, _ = make()
    cache.set("x", 1, tags=["t", "u"])
    assert cache.get("x") == 1
    cache.invalidate_tags("u")
    assert cache.get("x") is None


def test_an_entry_removed_between_peek_and_touch_is_a_miss() -> None:
    cache, _ = make()
    cache.set("a", 1)

    l1 = cache._l1
    assert l1 is not None
    touch = cache._l1_touch
    assert touch is not None

    def racing_delete(k: str) -> object:  # a writer deletes the key between the peek and the access record
        l1.delete(k)
        return touch(k)  # OrderedDict.move_to_end raises KeyError

    cache._l1_touch = racing_delete
    assert cache.get("a", "miss") == "miss"
    assert cache._hit(cache._short("a")) is MISSING
    assert cache.stats().tiers[0].hits == 0


@pytest.mark.parametrize("key", ["(a", "\\b", "x" * 1024, ("t", 1)])
def test_keys_outside_the_plain_str_fast_path_are_stored_as_before(key: Any) -> None:
    cache, _ = make()
    cache.set(key, "v")
    assert cache.get(key) == "v"
    assert cache._l1.peek(cache._short(key)) is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("key", ["", "x" * 1025, 1, ()])
def test_bad_keys_still_raise(key: Any) -> None:
    cache, _ = make()
    with pytest.raises(InvalidKeyError):
        cache.get(key)


def test_a_closed_cache_raises_on_the_fast_paths() -> None:
    cache, _ = make()
    f = cache.cached(lambda x: x)
    cache.set("a", 1)
    f(1)
    cache.close()
    with pytest.raises(CacheClosedError):
        cache.get("a")
    with pytest.raises(CacheClosedError):
        f(1)


def test_copy_on_read_decodes_a_private_copy_on_the_fast_path() -> None:
    cache, _ = make(copy_on_read=True)
    cache.set("a", {"n": [1]})
    first = cache.get("a")
    first["n"].append(2)
    assert cache.get("a") == {"n": [1]}


def test_the_decorator_quick_path_uses_the_same_keys_and_entries() -> None:
    cache, clock = make()
    calls: list[Any] = []

    @cache.cached(ttl=30)
    def f(a: Any, b: Any = 0) -> Any:
        calls.append((a, b))
        return [a, b]

    assert f(1, 0) == [1, 0]
    assert f(1) == [1, 0]  # defaults applied: the slow path, the same entry
    assert f(a=1, b=0) == [1, 0]
    assert f(1, 0) == [1, 0]
    assert f(True, 0) == [True, 0]  # typed: True is not 1
    assert len(calls) == 2
    assert cache.get_or_load(f.key(1, 0), lambda: "other") == [1, 0]  # what the engine stores under
    clock.advance(31)
    assert f(1, 0) == [1, 0]
    assert len(calls) == 3
    s = cache.stats().tiers[0]
    assert s.hits >= 4


def test_the_decorator_quick_path_keeps_a_load_policy() -> None:
    clock = FakeClock()
    cache = sc.Cache(sc.MemoryTier(max_entries=10), clock=clock, ttl=10)
    n = [0]

    @cache.cached(policy=sc.LoadPolicy(stale_while_revalidate=60))
    def f(x: int) -> int:
        n[0] += 1
        return n[0]

    assert f(1) == 1
    clock.advance(11)
    assert f(1) == 1  # stale served (the policy path, not the plain hit path)
    cache.close()


def test_the_async_decorator_quick_path() -> None:
    async def main() -> None:
        async with sc.AsyncCache(sc.MemoryTier(max_entries=10), clock=FakeClock()) as acache:
            calls = [0]

            @acache.cached
            async def g(x: int) -> int:
                calls[0] += 1
                return x * 2

            assert await g(2) == 4
            assert await g(2) == 4
            assert await acache.get(g.key(2)) == 4  # the quick path stores under the key get() builds
            assert calls[0] == 1

    asyncio.run(main())
