"""The tier contract suite (needs pytest); import it as ``stratacache.testing.TierContract``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from stratacache._api import AsyncCache, Cache
from stratacache.errors import EncodeError, InvalidKeyError, InvalidTTLError, ValueTooLargeError
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from pathlib import Path

    from stratacache.tiers.specs import MemoryTier, TierSpec

__all__ = ["TierContract"]


class _SyncFacade:
    """Runs an :class:`AsyncCache` through a private event loop, so one suite exercises both engines."""

    def __init__(self, cache: AsyncCache) -> None:
        self._cache = cache
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cache, name)
        if name in {"stats", "namespace"} or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return self._run(result)
            return result

        return call

    def _run(self, coro: Any) -> Any:
        if not self._loop.is_running():
            return self._loop.run_until_complete(coro)
        # Called from inside a loader (a writer racing a load): loaders run in a worker thread (below), so the
        # loop is free to run the writer, on the same loop as the cache's connections, as in a real async app.
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def get_or_load(self, key: Any, loader: Callable[[], Any], **kwargs: Any) -> Any:
        async def aloader() -> Any:
            return await asyncio.to_thread(loader)

        return self._run(self._cache.get_or_load(key, aloader, **kwargs))

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._cache.close())
        finally:
            self._loop.close()


class TierContract:
    """The behaviour every tier configuration must show, run through the sync and the async facade.

    Subclass it in a test module and override :meth:`tiers`. Every test gets a fresh cache on a
    :class:`FakeClock` (``self.clock``), in namespace ``"contract"``, default TTL 300 s.
    """

    clock: FakeClock
    value_limit: int = 1024 * 1024
    """Every tier under test must reject a value larger than this (configure its ``max_bytes`` so)."""

    def tiers(self, tmp_path: Path) -> tuple[MemoryTier | TierSpec | str, ...]:
        """The tiers under test (L1 first). Override in subclasses."""
        raise NotImplementedError

    @pytest.fixture(params=["sync", "async"])
    def cache(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
        """A cache over :meth:`tiers` through the sync or the async facade."""
        self.clock = FakeClock()
        self._tmp_path = tmp_path
        yield from self._open(request.param)

    def _open(self, facade: str, namespace: str = "contract") -> Generator[Any, None, None]:
        tiers = self.tiers(self._tmp_path)
        if facade == "sync":
            c: Any = Cache(*tiers, namespace=namespace, ttl=300, clock=self.clock)
        else:
            c = _SyncFacade(AsyncCache(*tiers, namespace=namespace, ttl=300, clock=self.clock))
        try:
            yield c
        finally:
            c.close()

    # ------------------------------------------------------------------ basic operations

    def test_set_then_get(self, cache: Any) -> None:
        cache.set("k", {"a": [1, 2, 3]})
        assert cache.get("k") == {"a": [1, 2, 3]}

    def test_missing_key_returns_default(self, cache: Any) -> None:
        assert cache.get("absent") is None
        assert cache.get("absent", default="d") == "d"

    def test_none_is_cacheable(self, cache: Any) -> None:
        cache.set("n", None)
        assert cache.get("n", default="miss") is None
        calls = []
        assert cache.get_or_load("n", lambda: calls.append(1)) is None
        assert calls == []

    def test_overwrite(self, cache: Any) -> None:
        cache.set("k", 1)
        cache.set("k", 2)
        assert cache.get("k") == 2

    def test_tuple_keys_are_distinct_from_str_keys(self, cache: Any) -> None:
        cache.set(("user", 1), "tuple")
        cache.set("(user,1)", "str")
        cache.set(("user", "1"), "tuple-str")
        cache.set(("user", 1.0), "tuple-float")
        cache.set(("user", True), "tuple-bool")
        assert cache.get(("user", 1)) == "tuple"
        assert cache.get("(user,1)") == "str"
        assert cache.get(("user", "1")) == "tuple-str"
        assert cache.get(("user", 1.0)) == "tuple-float"
        assert cache.get(("user", True)) == "tuple-bool"

    def test_delete(self, cache: Any) -> None:
        cache.set("k", 1)
        assert cache.delete("k") is True
        assert cache.get("k") is None
        assert cache.delete("k") is False

    def test_many(self, cache: Any) -> None:
        cache.set_many({"a": 1, "b": 2, ("c", 3): 3})
        assert cache.get_many(["a", "b", ("c", 3), "zz"]) == {"a": 1, "b": 2, ("c", 3): 3}
        assert cache.delete_many(["a", "b", "zz"]) == 2
        assert cache.get_many(["a", "b", ("c", 3)]) == {("c", 3): 3}

    # ------------------------------------------------------------------ expiry

    def test_ttl_expiry(self, cache: Any) -> None:
        cache.set("k", "v", ttl=10)
        self.clock.advance(9.9)
        assert cache.get("k") == "v"
        self.clock.advance(0.2)
        assert cache.get("k") is None

    def test_default_ttl(self, cache: Any) -> None:
        cache.set("k", "v")
        self.clock.advance(299)
        assert cache.get("k") == "v"
        self.clock.advance(2)
        assert cache.get("k") is None

    def test_expired_entry_is_reloaded(self, cache: Any) -> None:
        loads: list[int] = []

        def loader() -> int:
            loads.append(1)
            return len(loads)

        assert cache.get_or_load("k", loader, ttl=5) == 1
        assert cache.get_or_load("k", loader, ttl=5) == 1
        self.clock.advance(6)
        assert cache.get_or_load("k", loader, ttl=5) == 2

    # ------------------------------------------------------------------ invalidation

    def test_invalidate_tags(self, cache: Any) -> None:
        cache.set("a", 1, tags=["t1"])
        cache.set("b", 2, tags=["t1", "t2"])
        cache.set("c", 3, tags=["t2"])
        cache.set("d", 4)
        cache.invalidate_tags("t1")
        assert cache.get("a") is None
        assert cache.get("b") is None
        assert cache.get("c") == 3
        assert cache.get("d") == 4
        cache.set("a", 10, tags=["t1"])
        assert cache.get("a") == 10

    def test_clear_is_namespace_wide(self, cache: Any) -> None:
        cache.set_many({"a": 1, "b": 2}, tags=["t"])
        cache.clear()
        assert cache.get_many(["a", "b"]) == {}
        cache.set("a", 3)
        assert cache.get("a") == 3

    def test_clear_spares_other_namespaces(self, cache: Any) -> None:
        other_gen = self._open("sync", namespace="other")
        other = next(other_gen)
        try:
            other.set("k", "other")
            cache.set("k", "mine")
            cache.clear()
            assert cache.get("k") is None
            assert other.get("k") == "other"
        finally:
            other_gen.close()

    # ------------------------------------------------------------------ get_or_load

    def test_get_or_load_caches(self, cache: Any) -> None:
        calls: list[int] = []

        def loader() -> dict[str, int]:
            calls.append(1)
            return {"n": len(calls)}

        assert cache.get_or_load("k", loader) == {"n": 1}
        assert cache.get_or_load("k", loader) == {"n": 1}
        assert calls == [1]

    def test_loader_exception_propagates_and_is_not_cached(self, cache: Any) -> None:
        def boom() -> int:
            raise RuntimeError("db down")

        with pytest.raises(RuntimeError, match="db down"):
            cache.get_or_load("k", boom)
        assert cache.get("k", default="miss") == "miss"
        assert cache.get_or_load("k", lambda: 7) == 7

    def test_tag_bumped_during_load_makes_result_stale(self, cache: Any) -> None:
        def loader() -> str:
            cache.invalidate_tags("t")  # a writer commits and invalidates while we load
            return "old"

        assert cache.get_or_load("k", loader, tags=["t"]) == "old"
        assert cache.get("k") is None

    # ------------------------------------------------------------------ bad input leaves the cache unchanged

    def test_bad_input_raises_typed_errors_and_changes_nothing(self, cache: Any) -> None:
        cache.set("k", "before")
        with pytest.raises(InvalidKeyError):
            cache.set(["list"], 1)
        with pytest.raises(InvalidKeyError):
            cache.get("")
        with pytest.raises(InvalidKeyError):
            cache.set("x" * 5000, 1)
        with pytest.raises(InvalidTTLError):
            cache.set("k", "after", ttl=-1)
        with pytest.raises(InvalidTTLError):
            cache.set("k", "after", ttl=float("nan"))
        with pytest.raises(InvalidTTLError):
            cache.set("k", "after", ttl=True)
        with pytest.raises(EncodeError):
            cache.set("k", object())
        with pytest.raises(EncodeError):
            cache.set_many({"k": "after", "k2": object()})
        with pytest.raises(InvalidKeyError):
            cache.set("k", "after", tags=[""])
        assert cache.get("k") == "before"
        assert cache.get("k2") is None

    def test_value_too_large(self, cache: Any) -> None:
        cache.set("k", "before")
        with pytest.raises(ValueTooLargeError):
            cache.set("k", b"x" * (self.value_limit + 1))
        assert cache.get("k") == "before"

    # ------------------------------------------------------------------ stats

    def test_stats_count_hits_and_misses(self, cache: Any) -> None:
        cache.set("k", 1)
        cache.get("k")
        cache.get("absent")
        stats = cache.stats()
        first = stats.tiers[0]
        assert first.hits >= 1
        assert first.misses >= 1
        assert first.sets >= 1
        assert first.entries >= 1
        assert stats.tiers[-1].misses >= 1
