"""Regression tests for bugs found while building the foundation (each failed before its fix)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

import stratacache as sc
from stratacache.codecs import JsonCodec
from stratacache.core.envelope import Envelope
from stratacache.core.keys import build_key, canonical_arg, gen_name
from stratacache.errors import EncodeError
from stratacache.invalidation.generations import MAX_TRACKED, Generations
from stratacache.testing import FakeClock
from stratacache.tiers.memory import MemoryStore

if TYPE_CHECKING:
    from pathlib import Path


# 1. namespace "a" + key "b:c" and namespace "a:b" + key "c" are one stored key
def test_stored_keys_are_injective_across_namespaces() -> None:
    assert build_key("a", "b:c") != build_key("a:b", "c")


def test_namespaces_do_not_read_each_others_entries(tmp_path: Path) -> None:
    clock = FakeClock()
    with (
        sc.Cache(sc.SQLiteTier(tmp_path / "c.db"), namespace="a", clock=clock) as a,
        sc.Cache(sc.SQLiteTier(tmp_path / "c.db"), namespace="a:b", clock=clock) as ab,
    ):
        a.set("b:c", "written by namespace a")
        assert ab.get("c") is None


# 2. JSON codec turns NaN/inf into null: the cached value silently becomes None
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan]])
def test_json_refuses_non_finite_floats(value: object) -> None:
    with pytest.raises(EncodeError):
        JsonCodec().encode(value, "k")


# 3. dataclass InitVar fields: AttributeError (no default) or silently ignored value (default) -> key collision
@dataclasses.dataclass
class WithInitVar:
    x: int
    scale: dataclasses.InitVar[int] = 1

    def __post_init__(self, scale: int) -> None:
        self.x *= scale


@dataclasses.dataclass
class WithRequiredInitVar:
    x: int
    scale: dataclasses.InitVar[int]

    def __post_init__(self, scale: int) -> None:
        pass


def test_dataclass_init_only_variables_are_not_key_material() -> None:
    # an InitVar is not stored on the instance: only real fields identify the value
    assert canonical_arg(WithRequiredInitVar(1, 2)) == canonical_arg(WithRequiredInitVar(1, 3))
    assert canonical_arg(WithRequiredInitVar(1, 2)) != canonical_arg(WithRequiredInitVar(2, 2))


def test_dataclass_class_variables_are_not_key_material() -> None:
    # WithInitVar(2, scale=1) and WithInitVar(1, scale=2) have x == 2 and x == 2: equal keys are right here,
    # but the encoding reads the InitVar pseudo-field from the class (its default), not from the instance
    enc = canonical_arg(WithInitVar(3, 1))
    assert "scale" not in enc


# 4. LRUPolicy.victim() iterates the OrderedDict while lock-free readers move entries
def test_lock_free_reads_during_evictions() -> None:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make the race likely instead of rare
    try:
        s = MemoryStore(max_entries=50, max_bytes=None)
        errors: list[BaseException] = []
        stop = threading.Event()

        def env(i: int) -> Envelope[int]:
            return Envelope(i, 1, 0.0, None, None, 0.0, 1, (0,), (), 1)

        def reader() -> None:
            for _ in range(2000):  # bounded; stops early once the writers are done
                if stop.is_set():
                    return
                for i in range(60):
                    s.get(f"k{i}")

        def writer(n: int) -> None:
            try:
                for j in range(5_000):
                    s.set(f"k{(j * 7 + n) % 60}", env(j), 0.0)
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=reader) for _ in range(4)]
        writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert s.usage()[0] <= 50


# 5. Generations learned from other processes (poll) grow without bound in cache mode
def test_learn_names_growth_is_bounded() -> None:
    g = Generations("ns", authoritative=False)
    g.learn_ns(0)
    g.learn_names({gen_name("ns", f"t{i}"): 1 for i in range(MAX_TRACKED + 10_000)})
    assert len(g.tags) <= MAX_TRACKED


# 6. the tinylfu warning points into stratacache when the tier comes from open()
# 7. the signature of a bound cached method still shows self
def test_bound_cached_method_signature_drops_self() -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=10))

    class Repo:
        @cache.cached
        def get(self, user_id: int) -> int:
            return user_id

    try:
        assert list(inspect.signature(Repo().get).parameters) == ["user_id"]
    finally:
        cache.close()


# 8. tags= receives the raw call spelling: equivalent calls (same key) can break the tags callable
def test_tags_callable_sees_normalised_arguments() -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=10))

    @cache.cached(tags=lambda uid: [f"user:{uid}"])
    def load_user(user_id: int) -> int:
        return user_id

    try:
        load_user(1)
        load_user(user_id=1)  # same key as load_user(1); TypeError from the tags lambda
    finally:
        cache.close()


# 9. a re-entrant get_or_load of the same key in the same thread deadlocks instead of raising
def test_reentrant_get_or_load_does_not_hang() -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=10))
    outcome: list[object] = []

    def inner() -> int:
        return cache.get_or_load("k", lambda: 2)

    def run() -> None:
        try:
            outcome.append(cache.get_or_load("k", inner))
        except Exception as exc:
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "re-entrant get_or_load of one key deadlocked"


# get_many cannot return a dict holding keys that are equal in Python but distinct in the cache
def test_get_many_refuses_python_equal_distinct_keys() -> None:
    c = sc.Cache(sc.MemoryTier(max_entries=100))
    c.set(("t", 1), "int")
    c.set(("t", True), "bool")
    with pytest.raises(sc.InvalidKeyError, match="equal in Python"):
        c.get_many([("t", 1), ("t", True)])
    assert c.get_many([("t", 1), ("t", 1)]) == {("t", 1): "int"}  # plain duplicates are fine


# decorator digests of long timedeltas collided through float total_seconds()
def test_timedelta_arguments_never_collide() -> None:
    import datetime as dt

    from stratacache.core.keys import digest_args

    a = dt.timedelta(days=200_000)
    b = dt.timedelta(days=200_000, microseconds=1)
    assert digest_args([a]) != digest_args([b])
    assert digest_args([a]) == digest_args([dt.timedelta(seconds=200_000 * 86_400)])


# the memo of decorator keys must keep apart what the canonical encoding keeps apart
def test_memoized_decorator_keys_stay_type_exact() -> None:
    c = sc.Cache(sc.MemoryTier(max_entries=100))

    @c.cached
    def f(x: object) -> object:
        return x

    keys = [f.key(v) for v in (1, True, 1.0, "1", b"1", 0.0, -0.0, None, 0, False)]
    assert len(set(keys)) == len(keys)
    assert [f(v) for v in (1, True, 0.0, -0.0)] == [1, True, 0.0, -0.0]
    assert str(f(-0.0)) == "-0.0"


def test_close_with_an_invalidation_owed_to_an_unreachable_tier_returns_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """close() waited forever for the replay loop of a tier that never came back (found by `stratacache invalidate`)."""
    pytest.importorskip("redis")
    cache = sc.Cache("redis://127.0.0.1:1/0?timeout=0.05&connect_timeout=0.05", namespace="gone")
    cache.invalidate_tags("t")  # journaled: nothing listens on port 1
    assert cache.stats()["redis"].pending_invalidations == 1
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        cache.close()
    assert time.monotonic() - started < 5
    assert "never delivered to the unreachable redis tier" in caplog.text


@pytest.mark.asyncio
async def test_async_close_with_an_owed_invalidation_returns(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("redis")
    cache = sc.AsyncCache("redis://127.0.0.1:1/0?timeout=0.05&connect_timeout=0.05", namespace="gone")
    await cache.invalidate_tags("t")
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        await asyncio.wait_for(cache.close(), 5)
    assert "never delivered" in caplog.text
