"""One small adapter per library: each builds a store or a memoizing decorator with the library's defaults.

Every adapter imports its library lazily (in :meth:`Adapter.load`), so a peer that is not installed is
skipped and recorded as such instead of breaking the run. All bounded caches get the same capacity
(:data:`MAXSIZE`, above the key count, so nothing is evicted while timing) and, where the library has one,
the same TTL (:data:`TTL`, far longer than a run).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

TTL = 600
MAXSIZE = 20_000


def _noop() -> None:
    return None


@dataclass
class KV:
    """A key-value store under test: the callables the timed loops call, plus setup helpers."""

    label: str
    get: Callable[[Any], Any]
    set: Callable[[Any, Any], Any]
    read: Callable[[Any], Any]  # the stored value (unwrapped), or None: used only by checks
    prefill: Callable[[list[tuple[Any, Any]]], None]
    close: Callable[[], Any] = _noop


@dataclass
class Deco:
    """A memoized function under test (sync or async)."""

    label: str
    fn: Callable[..., Any]
    close: Callable[[], Any] = _noop


def _prefill_by(set_: Callable[[Any, Any], Any]) -> Callable[[list[tuple[Any, Any]]], None]:
    def prefill(items: list[tuple[Any, Any]]) -> None:
        for k, v in items:
            set_(k, v)

    return prefill


@dataclass
class Adapter:
    """Base adapter. Subclasses implement the suites their library supports."""

    name: ClassVar[str]
    modules: ClassVar[tuple[str, ...]]
    dists: ClassVar[tuple[str, ...]]
    mods: dict[str, Any] = field(default_factory=dict)

    def load(self) -> None:
        """Import the library; raises ImportError when it is not installed."""
        for m in self.modules:
            self.mods[m] = importlib.import_module(m)

    # Each returns a fresh object; NotImplementedError means "this library has no such case".
    def l1(self) -> KV:
        raise NotImplementedError

    def disk(self, directory: Path) -> KV:
        raise NotImplementedError

    def deco(self, fn: Callable[..., Any]) -> Deco:
        raise NotImplementedError

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        raise NotImplementedError


class Stratacache(Adapter):
    name = "stratacache"
    modules = ("stratacache",)
    dists = ("stratacache", "msgspec")

    def _memory(self) -> Any:
        sc = self.mods["stratacache"]
        return sc.MemoryTier(max_entries=MAXSIZE, max_bytes=None)

    def l1(self) -> KV:
        sc = self.mods["stratacache"]
        c = sc.Cache(self._memory(), namespace="bench-l1", ttl=TTL)
        return KV(
            label=f"Cache(MemoryTier), ttl={TTL}",
            get=c.get,
            set=c.set,
            read=c.get,
            prefill=lambda items: c.set_many(dict(items)),
            close=c.close,
        )

    def disk(self, directory: Path) -> KV:
        sc = self.mods["stratacache"]
        c = sc.Cache(
            sc.SQLiteTier(directory / "stratacache" / "cache.db", max_bytes=None),
            namespace="bench-sqlite",
            ttl=None,
        )
        return KV(
            label="Cache(SQLiteTier), ttl=None",
            get=c.get,
            set=c.set,
            read=c.get,
            prefill=lambda items: c.set_many(dict(items)),
            close=c.close,
        )

    def deco(self, fn: Callable[..., Any]) -> Deco:
        sc = self.mods["stratacache"]
        c = sc.Cache(self._memory(), namespace="bench-deco", ttl=TTL)
        return Deco(f"Cache(MemoryTier).cached(ttl={TTL})", c.cached(ttl=TTL)(fn), c.close)

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        sc = self.mods["stratacache"]
        c = sc.AsyncCache(self._memory(), namespace="bench-adeco", ttl=TTL)
        return Deco(f"AsyncCache(MemoryTier).cached(ttl={TTL})", c.cached(ttl=TTL)(fn), c.close)


class Dict(Adapter):
    name = "dict"
    modules = ()
    dists = ()

    def l1(self) -> KV:
        d: dict[Any, Any] = {}
        return KV("dict (unbounded, no TTL)", d.get, d.__setitem__, d.get, d.update)


class Cachetools(Adapter):
    name = "cachetools"
    modules = ("cachetools",)
    dists = ("cachetools",)

    def l1(self) -> KV:
        ct = self.mods["cachetools"]
        c = ct.TTLCache(maxsize=MAXSIZE, ttl=TTL)
        return KV(f"cachetools.TTLCache, ttl={TTL}", c.get, c.__setitem__, c.get, c.update)

    def deco(self, fn: Callable[..., Any]) -> Deco:
        ct = self.mods["cachetools"]
        return Deco("cachetools.cached(TTLCache)", ct.cached(ct.TTLCache(maxsize=MAXSIZE, ttl=TTL))(fn))


class Cachebox(Adapter):
    name = "cachebox"
    modules = ("cachebox",)
    dists = ("cachebox",)

    def l1(self) -> KV:
        cb = self.mods["cachebox"]
        c = cb.TTLCache(MAXSIZE, TTL)
        return KV(f"cachebox.TTLCache, ttl={TTL}", c.get, c.__setitem__, c.get, c.update)

    def deco(self, fn: Callable[..., Any]) -> Deco:
        cb = self.mods["cachebox"]
        return Deco("cachebox.cached(TTLCache)", cb.cached(cb.TTLCache(MAXSIZE, TTL))(fn))

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        cb = self.mods["cachebox"]
        return Deco("cachebox.cached(TTLCache), async", cb.cached(cb.TTLCache(MAXSIZE, TTL))(fn))


class Theine(Adapter):
    name = "theine"
    modules = ("theine",)
    dists = ("theine", "theine-core")

    def l1(self) -> KV:
        th = self.mods["theine"]
        c = th.Cache(MAXSIZE)
        set_ = functools.partial(c.set, ttl=timedelta(seconds=TTL))
        return KV(
            f"theine.Cache (W-TinyLFU), ttl={TTL}",
            c.get,  # returns (value, found)
            set_,
            lambda k: c.get(k)[0],
            _prefill_by(set_),
            c.close,
        )

    def deco(self, fn: Callable[..., Any]) -> Deco:
        th = self.mods["theine"]
        return Deco("theine.Memoize", th.Memoize(MAXSIZE, timedelta(seconds=TTL))(fn))

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        th = self.mods["theine"]
        return Deco("theine.Memoize, async", th.Memoize(MAXSIZE, timedelta(seconds=TTL))(fn))


class Dogpile(Adapter):
    name = "dogpile.cache"
    modules = ("dogpile.cache", "dogpile.cache.api")
    dists = ("dogpile.cache",)

    def _region(self) -> Any:
        return self.mods["dogpile.cache"].make_region().configure("dogpile.cache.memory", expiration_time=TTL)

    def l1(self) -> KV:
        region = self._region()
        no_value = self.mods["dogpile.cache.api"].NO_VALUE

        def read(k: Any) -> Any:
            v = region.get(k)
            return None if v is no_value else v

        return KV(
            f"dogpile.cache.memory region, expiration_time={TTL}",
            region.get,
            region.set,
            read,
            lambda items: region.set_multi(dict(items)),
        )

    def deco(self, fn: Callable[..., Any]) -> Deco:
        return Deco("dogpile region.cache_on_arguments (memory)", self._region().cache_on_arguments()(fn))


class Cashews(Adapter):
    name = "cashews"
    modules = ("cashews",)
    dists = ("cashews",)

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        cashews = self.mods["cashews"]
        c = cashews.Cache()
        c.setup("mem://")
        return Deco(f"cashews Cache('mem://')(ttl={TTL})", c(ttl=TTL)(fn), c.close)


class Aiocache(Adapter):
    name = "aiocache"
    modules = ("aiocache",)
    dists = ("aiocache",)

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        aiocache = self.mods["aiocache"]
        return Deco(
            "aiocache.cached(cache=Cache.MEMORY)",
            aiocache.cached(ttl=TTL, cache=aiocache.Cache.MEMORY)(fn),
        )


class Diskcache(Adapter):
    name = "diskcache"
    modules = ("diskcache",)
    dists = ("diskcache",)

    def disk(self, directory: Path) -> KV:
        dc = self.mods["diskcache"]
        c = dc.Cache(str(directory / "diskcache"))

        def prefill(items: list[tuple[Any, Any]]) -> None:
            with c.transact():
                for k, v in items:
                    c.set(k, v)

        return KV("diskcache.Cache (defaults)", c.get, c.set, c.get, prefill, c.close)


ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a
    for a in (
        Stratacache,
        Dict,
        Cachetools,
        Cachebox,
        Theine,
        Dogpile,
        Cashews,
        Aiocache,
        Diskcache,
    )
}

# Distributions whose versions every result file records.
VERSIONED: tuple[str, ...] = tuple(dict.fromkeys(d for a in ADAPTERS.values() for d in a.dists))
