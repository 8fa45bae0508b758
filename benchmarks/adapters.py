"""One small adapter per library: each builds a store or a memoizing decorator with the library's defaults.

Every adapter imports its library lazily (in :meth:`Adapter.load`), so a peer that is not installed is
skipped and recorded as such instead of breaking the run. All bounded caches get the same capacity
(:data:`MAXSIZE`, above the key count, so nothing is evicted while timing) and, where the library has one,
the same TTL (:data:`TTL`, far longer than a run).
"""

from __future__ import annotations

import functools
import importlib
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

TTL = 600
MAXSIZE = 20_000
PREFILL_CHUNK = 500  # keys per prefill batch on Redis (well inside stratacache's 0.1 s command budget)


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
class RedisKV(KV):
    """A store on the ``redis`` suite's server. Async stores have coroutine ``get``/``set``/``read``/``prefill``."""

    get_many: Callable[[list[Any]], Any] | None = None
    read_many: Callable[[list[Any]], list[Any]] | None = None  # values in key order, None when absent: checks only


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


def _chunks(items: list[tuple[Any, Any]]) -> list[dict[Any, Any]]:
    return [dict(items[i : i + PREFILL_CHUNK]) for i in range(0, len(items), PREFILL_CHUNK)]


def _prefill_many(set_many: Callable[[dict[Any, Any]], Any]) -> Callable[[list[tuple[Any, Any]]], None]:
    def prefill(items: list[tuple[Any, Any]]) -> None:
        for chunk in _chunks(items):
            set_many(chunk)

    return prefill


def _aprefill_many(set_many: Callable[[dict[Any, Any]], Awaitable[Any]]) -> Callable[[list[tuple[Any, Any]]], Any]:
    async def prefill(items: list[tuple[Any, Any]]) -> None:
        for chunk in _chunks(items):
            await set_many(chunk)

    return prefill


def _host_port_db(url: str) -> tuple[str, int, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379, int(parts.path.strip("/") or 0)


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

    def redis(self, url: str) -> RedisKV:
        raise NotImplementedError

    def aredis(self, url: str) -> RedisKV:
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

    def redis(self, url: str, *, backplane: bool = False, strict_reads: bool = True) -> RedisKV:
        """A cache with the Redis tier only (no L1): every get is an L2 hit through the engine."""
        sc = self.mods["stratacache"]
        namespace = f"bench-redis-{int(backplane)}{int(strict_reads)}"
        c = sc.Cache(sc.RedisTier(url, backplane=backplane, strict_reads=strict_reads), namespace=namespace, ttl=TTL)

        def read_many(keys: list[Any]) -> list[Any]:
            found = c.get_many(keys)
            return [found.get(k) for k in keys]

        return RedisKV(
            label=f"Cache(RedisTier(url, backplane={backplane}, strict_reads={strict_reads})), no L1, ttl={TTL}",
            get=c.get,
            set=c.set,
            read=c.get,
            prefill=_prefill_many(c.set_many),
            close=c.close,
            get_many=c.get_many,
            read_many=read_many,
        )

    def aredis(self, url: str) -> RedisKV:
        sc = self.mods["stratacache"]
        c = sc.AsyncCache(sc.RedisTier(url, backplane=False), namespace="bench-aredis", ttl=TTL)
        return RedisKV(
            label=f"AsyncCache(RedisTier(url, backplane=False)), no L1, ttl={TTL}",
            get=c.get,
            set=c.set,
            read=c.get,
            prefill=_aprefill_many(c.set_many),
            close=c.close,
        )


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

    def redis(self, url: str) -> RedisKV:
        region = self.mods["dogpile.cache"].make_region()
        region.configure("dogpile.cache.redis", expiration_time=TTL, arguments={"url": url})
        no_value = self.mods["dogpile.cache.api"].NO_VALUE

        def read(k: Any) -> Any:
            v = region.get(k)
            return None if v is no_value else v

        def read_many(keys: list[Any]) -> list[Any]:
            return [None if v is no_value else v for v in region.get_multi(keys)]

        return RedisKV(
            f"dogpile.cache.redis region (pickle), expiration_time={TTL}",
            region.get,
            region.set,
            read,
            _prefill_many(region.set_multi),
            get_many=region.get_multi,
            read_many=read_many,
        )


class Cashews(Adapter):
    name = "cashews"
    modules = ("cashews",)
    dists = ("cashews",)

    def adeco(self, fn: Callable[..., Awaitable[Any]]) -> Deco:
        cashews = self.mods["cashews"]
        c = cashews.Cache()
        c.setup("mem://")
        return Deco(f"cashews Cache('mem://')(ttl={TTL})", c(ttl=TTL)(fn), c.close)

    def aredis(self, url: str) -> RedisKV:
        cashews = self.mods["cashews"]
        c = cashews.Cache()
        c.setup(url)
        return RedisKV(
            f"cashews Cache().setup('redis://...') (pickle), expire={TTL}",
            c.get,
            functools.partial(c.set, expire=TTL),
            c.get,
            _aprefill_many(functools.partial(c.set_many, expire=TTL)),
            c.close,
        )


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

    def aredis(self, url: str) -> RedisKV:
        host, port, db = _host_port_db(url)
        c = self.mods["aiocache"].RedisCache(endpoint=host, port=port, db=db)
        return RedisKV(
            f"aiocache.RedisCache (JsonSerializer), ttl={TTL}",
            c.get,
            functools.partial(c.set, ttl=TTL),
            c.get,
            _aprefill_many(lambda chunk: c.multi_set(list(chunk.items()), ttl=TTL)),
            c.close,
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


class RedisPy(Adapter):
    """The baseline: redis-py's own client (hiredis parser when installed), one command per operation."""

    name = "redis-py"
    modules = ("redis", "redis.asyncio", "redis.utils", "msgspec")
    dists = ("redis", "hiredis")

    def _codec(self) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
        msgpack = self.mods["msgspec"].msgpack
        return msgpack.encode, msgpack.decode

    def _label(self, cls: str, extra: str = "") -> str:
        parser = "hiredis" if self.mods["redis.utils"].HIREDIS_AVAILABLE else "pure-Python"
        return (
            f"{cls}, {parser} parser: GET returns the stored msgpack bytes undecoded; "
            f"SET k msgpack(v) PX {TTL * 1000}{extra}"
        )

    def redis(self, url: str) -> RedisKV:
        r = self.mods["redis"].Redis.from_url(url)
        encode, decode = self._codec()
        px = TTL * 1000

        def set_(k: Any, v: Any) -> Any:
            return r.set(k, encode(v), px=px)

        def read(k: Any) -> Any:
            data = r.get(k)
            return None if data is None else decode(data)

        def prefill(items: list[tuple[Any, Any]]) -> None:
            pipe = r.pipeline(transaction=False)
            for k, v in items:
                pipe.set(k, encode(v), px=px)
            pipe.execute()

        return RedisKV(
            self._label("redis.Redis", "; MGET of the batch"),
            r.get,
            set_,
            read,
            prefill,
            r.close,
            get_many=r.mget,
            read_many=lambda keys: [None if d is None else decode(d) for d in r.mget(keys)],
        )

    def aredis(self, url: str) -> RedisKV:
        r = self.mods["redis.asyncio"].Redis.from_url(url)
        encode, decode = self._codec()
        px = TTL * 1000

        def set_(k: Any, v: Any) -> Any:  # returns the command's coroutine: no extra coroutine layer
            return r.set(k, encode(v), px=px)

        async def read(k: Any) -> Any:
            data = await r.get(k)
            return None if data is None else decode(data)

        async def prefill(items: list[tuple[Any, Any]]) -> None:
            pipe = r.pipeline(transaction=False)
            for k, v in items:
                pipe.set(k, encode(v), px=px)
            await pipe.execute()

        return RedisKV(self._label("redis.asyncio.Redis"), r.get, set_, read, prefill, r.aclose)


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
        RedisPy,
    )
}

# Distributions whose versions every result file records.
VERSIONED: tuple[str, ...] = tuple(dict.fromkeys(d for a in ADAPTERS.values() for d in a.dists))
