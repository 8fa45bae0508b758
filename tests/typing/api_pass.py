"""Correct uses of the public API: ``mypy --strict`` must accept this file without a single error.

Checked by ``tests/typing/test_typing.py``; never imported or collected by pytest. ``assert_type`` pins the types
the API promises, so a signature that degrades to ``Any`` fails here too.
"""

from __future__ import annotations

import random
from typing import Any, assert_type

import stratacache as sc
from stratacache.testing import FakeClock


def sync_api(path: str) -> None:
    clock = FakeClock()
    cache = sc.Cache(
        sc.MemoryTier(max_entries=100_000, max_bytes="256MiB", policy="lru"),
        sc.SQLiteTier(path, max_bytes=1 << 30),
        namespace="myapp",
        ttl=300.0,
        codec="msgpack",
        clock=clock,
        ttl_jitter=0.1,
        rng=random.Random(7),
    )
    assert_type(cache, sc.Cache)
    assert_type(cache.namespace, str)

    cache.set("user:1", {"name": "Ada"}, ttl=60, tags=["user:1"])
    cache.set(("user", 1, 2.5, b"x", None, True), [1, 2, 3])
    value: Any = cache.get("user:1")
    assert_type(cache.get("user:1", default=0), Any)
    assert_type(cache.delete("user:1"), bool)
    assert_type(cache.get_many(["a", ("b", 1)]), dict[Any, Any])
    cache.set_many({"a": 1, ("b", 1): 2}, ttl=None, tags=("t",))
    assert_type(cache.delete_many(["a", "b"]), int)
    cache.invalidate_tags("user:1", "user:2")
    cache.clear()

    def load_count() -> int:
        return 42

    assert_type(cache.get_or_load("count", load_count), int)
    assert_type(cache.get_or_load("names", lambda: ["a", "b"], ttl=5.0, tags=["t"]), list[str])

    stats = cache.stats()
    assert_type(stats, sc.Stats)
    assert_type(stats.tiers, tuple[sc.TierStats, ...])
    assert_type(stats["memory"], sc.TierStats)
    assert_type(stats.hit_ratio, float)
    assert_type(stats["memory"].evictions, int)

    @cache.cached(ttl=60, tags=lambda user_id: [f"user:{user_id}"])
    def load_user(user_id: int) -> dict[str, str]:
        return {"id": str(user_id)}

    assert_type(load_user(42), dict[str, str])
    assert_type(load_user(user_id=42), dict[str, str])
    assert_type(load_user.invalidate(42), bool)
    assert_type(load_user.key(42), str)

    @cache.cached
    def plain(x: str, y: int = 0) -> float:
        return float(x) + y

    assert_type(plain("1.5", y=2), float)

    with sc.Cache() as default_cache:
        assert_type(default_cache, sc.Cache)
        default_cache.set("k", value)

    with sc.open("memory://?max_entries=10", f"sqlite://{path}", namespace="x", ttl=None) as opened:
        assert_type(opened, sc.Cache)
    cache.close()


async def async_api() -> None:
    async with sc.AsyncCache(sc.MemoryTier(max_entries=10), namespace="a", ttl=None, codec="json") as acache:
        assert_type(acache, sc.AsyncCache)
        await acache.set("k", 1, ttl=1.5, tags=["t"])
        value: Any = await acache.get("k")
        assert_type(await acache.delete("k"), bool)
        assert_type(await acache.get_many(["k"]), dict[Any, Any])
        await acache.set_many({"k": value})
        assert_type(await acache.delete_many(["k"]), int)
        await acache.invalidate_tags("t")
        await acache.clear()

        async def fetch() -> bytes:
            return b"x"

        assert_type(await acache.get_or_load("k", fetch, ttl=2), bytes)
        assert_type(acache.stats(), sc.Stats)

        @acache.cached(ttl=5, tags=lambda item_id: [f"item:{item_id}"])
        async def load_item(item_id: int) -> list[int]:
            return [item_id]

        assert_type(await load_item(1), list[int])
        assert_type(await load_item.invalidate(1), bool)
        assert_type(load_item.key(1), str)

        @acache.cached
        async def bare(x: int) -> str:
            return str(x)

        assert_type(await bare(3), str)


def codecs_and_errors(secret: bytes) -> None:
    codec: sc.Codec = sc.SignedPickleCodec({"k1": secret, "k2": secret}, current="k2")
    data = codec.encode({"a": 1}, "ns:key")
    assert_type(data, bytes)
    codec.decode(data, "ns:key")
    zipped: sc.Codec = sc.ZstdCodec(sc.MsgpackCodec(), threshold=512)
    sc.Cache(codec=zipped).close()
    sc.Cache(codec=sc.JsonCodec()).close()
    clock: sc.Clock = FakeClock()
    assert_type(clock.now(), float)
    try:
        sc.Cache(namespace="")
    except sc.ConfigError as exc:
        assert_type(exc, sc.ConfigError)
    except (sc.InvalidKeyError, sc.InvalidTTLError, sc.ValueTooLargeError, sc.SerializationError) as exc:
        root: sc.StrataCacheError = exc
        del root
    except sc.CodecError:
        pass
    version: str = sc.__version__
    assert version
