# ruff: noqa: F841 - the assignments exist to be type-checked
"""Misuses of the public API: ``mypy --strict`` must report an error on every line marked ``# E: <code>``, and
nowhere else (checked by ``tests/typing/test_typing.py``; never imported or collected by pytest).
"""

from __future__ import annotations

from typing import Any

import stratacache as sc
from stratacache.testing import FakeClock


def construction() -> None:
    sc.Cache(namespace=1)  # E: arg-type
    sc.Cache(ttl="300")  # E: arg-type
    sc.Cache(codec=42)  # E: arg-type
    sc.Cache(clock=object())  # E: arg-type
    sc.Cache(42)  # E: arg-type
    sc.Cache(sc.MemoryTier(max_entries=10), nmespace="x")  # E: call-arg
    sc.MemoryTier(policy=1)  # E: arg-type
    sc.MemoryTier(max_entries=10, copy_on_read="yes")  # E: arg-type
    sc.SQLiteTier(3.5)  # E: arg-type
    sc.open(1)  # E: arg-type
    sc.AsyncCache(namespace=b"ns")  # E: arg-type


def sync_misuse(cache: sc.Cache) -> None:
    cache.set("k", 1, ttl="60")  # E: arg-type
    cache.set("k", 1, tags=5)  # E: arg-type
    cache.set(["not", "hashable"], 1)  # E: arg-type
    cache.set("k")  # E: call-arg
    cache.set("k", 1, 60)  # E: call-arg
    cache.get_or_load("k", 5)  # E: arg-type
    cache.get_or_load("k", lambda: 1, tags=7)  # E: arg-type
    cache.invalidate_tags(["a", "b"])  # E: arg-type
    cache.delete_many(5)  # E: arg-type
    deleted: str = cache.delete("k")  # E: assignment
    count: str = cache.get_or_load("k", lambda: 1)  # E: assignment
    cache.stats().loads = 3  # E: misc
    cache.statistics()  # E: attr-defined


async def awaiting_sync_calls(cache: sc.Cache) -> None:
    # ``await cache.get(k)`` is not caught: ``get`` returns ``Any`` (a cached value), and ``Any`` is awaitable.
    await cache.delete("k")  # E: misc
    await cache.get_many(["k"])  # E: misc
    await cache.set("k", 1)  # E: func-returns-value, misc


async def not_awaiting_async_calls(acache: sc.AsyncCache) -> None:
    acache.set("k", 1)  # E: unused-coroutine
    found: bool = acache.delete("k")  # E: assignment
    n: int = acache.delete_many(["k"])  # E: assignment


def cached_functions(cache: sc.Cache, acache: sc.AsyncCache) -> None:
    @cache.cached(ttl=60, tags=lambda user_id: [f"user:{user_id}"])
    def load_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    load_user("42")  # E: arg-type
    load_user()  # E: call-arg
    load_user(42, 43)  # E: call-arg
    load_user(uid=42)  # E: call-arg
    name: str = load_user(42)  # E: assignment
    cache.cached(ttl="60")  # E: call-overload

    def plain(x: int) -> int:
        return x

    acache.cached(plain)  # E: arg-type

    @acache.cached
    async def fetch(item_id: int) -> str:
        return str(item_id)

    async def use() -> None:
        await fetch("1")  # E: arg-type
        size: int = await fetch(1)  # E: assignment

    del use


def misc(value: Any) -> None:
    clock: sc.Clock = object()  # E: assignment
    codec: sc.Codec = "msgpack"  # E: assignment
    FakeClock().advance("1")  # E: arg-type
    del clock, codec, value
