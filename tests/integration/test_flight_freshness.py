"""A caller that starts after ``invalidate_tags()`` or ``delete()`` returned never gets a load that began before it.

The scenario, through the public facades (``Cache`` with threads, ``AsyncCache`` with tasks), over a memory L1
alone and over a memory L1 on a SQLite L2:

1. the *leader* misses and runs its loader, which reads the row (version 1) and then blocks on an event;
2. the row is written (version 2) and ``invalidate_tags(tag)`` or ``delete(key)`` is called and returns;
3. the *follower*, a ``get_or_load`` of the same key that starts only now, must run a loader of its own and
   return version 2; only then is the leader released. Its version 1 (it overlapped the write: either version
   is allowed for it) must not end up cached: no later read, in this cache or in a fresh one over the same
   SQLite file, returns it.

Why this fails if single-flight were keyed by the key alone: in step 3 the leader's flight is still open under
that key, so the follower would join it instead of loading, park until the leader returns, and get version 1.
The follower's own loader would never run, so the follower cannot finish before the leader is released (the
test releases it only after the follower has finished): the bounded wait for the follower expires and the test
fails on "joined a load that began before the invalidation". stratacache keys a flight by the key, its write
epoch and the generations of its namespace and tags, all read before joining, so a caller that saw the
invalidation can only join a load that also saw it.

A second ordering releases the leader *before* the follower starts: there is no flight to join any more, and
the point is the store. A loader that began before ``invalidate_tags()`` stores its value under the old
generations (dead at its first read); one that began before ``delete()`` does not store it at all.

Overlap is forced with events, never by timing; ``BOUND`` only bounds the wait of a failing run.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Literal

import pytest

import stratacache as sc

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

KEY = ("item", 1)
TAG = "row:1"
NAMESPACE = "flight"
OLD = {"id": 1, "version": 1}
NEW = {"id": 1, "version": 2}
BOUND = 10.0  # seconds; a passing run never waits on it
ABSENT = object()

Tiers = Literal["memory", "memory+sqlite"]
How = Literal["invalidate_tags", "delete"]
Order = Literal["follower during the load", "follower after the load"]

TIERS: list[Tiers] = ["memory", "memory+sqlite"]
HOWS: list[How] = ["invalidate_tags", "delete"]
ORDERS: list[Order] = ["follower during the load", "follower after the load"]

JOINED = "the follower joined a load that began before the invalidation (flights keyed by the key alone?)"


def _tiers(kind: Tiers, tmp_path: Path) -> tuple[Any, ...]:
    if kind == "memory":
        return (sc.MemoryTier(),)
    return sc.MemoryTier(), sc.SQLiteTier(tmp_path / "cache.db")


def _assert_old_value_not_stored(kind: Tiers, tmp_path: Path) -> None:
    """A fresh cache over the same SQLite file (cold L1, or no L1 at all) does not serve the old value."""
    if kind == "memory":
        return
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "cache.db"), namespace=NAMESPACE) as fresh:
        assert fresh.get(KEY, ABSENT) in (NEW, ABSENT)
    with sc.Cache(sc.SQLiteTier(tmp_path / "cache.db"), namespace=NAMESPACE) as l2_only:
        assert l2_only.get(KEY, ABSENT) in (NEW, ABSENT)


class _Call(threading.Thread):
    """Runs ``fn`` in a thread and keeps its result or its exception."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.fn = fn
        self.result: Any = ABSENT
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> Any:
        assert not self.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


# ------------------------------------------------------------------------------------------ Cache (threads)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", TIERS)
def test_sync_caller_after_invalidation_never_gets_an_older_load(
    tmp_path: Path, kind: Tiers, how: How, order: Order
) -> None:
    db = dict(OLD)
    leader_read, release, follower_loaded = threading.Event(), threading.Event(), threading.Event()

    def leader_loader() -> dict[str, int]:
        row = dict(db)  # the row before the write
        leader_read.set()
        release.wait(BOUND)  # the rest of the query's round trip
        return row

    def follower_loader() -> dict[str, int]:
        follower_loaded.set()
        return dict(db)

    with sc.Cache(*_tiers(kind, tmp_path), namespace=NAMESPACE) as cache:
        leader = _Call("leader", lambda: cache.get_or_load(KEY, leader_loader, tags=[TAG]))
        follower = _Call("follower", lambda: cache.get_or_load(KEY, follower_loader, tags=[TAG]))
        try:
            leader.start()
            assert leader_read.wait(BOUND)
            db.update(NEW)  # the write commits...
            if how == "invalidate_tags":  # ...and is invalidated; both have returned
                cache.invalidate_tags(TAG)
            else:
                cache.delete(KEY)
            if order == "follower after the load":
                release.set()
                leader.join(BOUND)
            follower.start()  # this read starts after the invalidation returned
            follower.join(BOUND)  # returns at once, unless the follower parked on the leader's flight
            finished_first = not follower.is_alive()
        finally:
            release.set()
            leader.join(BOUND)
            follower.join(BOUND)
        assert finished_first, JOINED
        assert follower.outcome() == NEW
        assert follower_loaded.is_set()
        assert leader.outcome() == OLD  # it overlapped the write: the old version is allowed for it alone
        stats = cache.stats()
        assert (stats.loads, stats.coalesced) == (2, 0)
        # the leader's value is not cached: not in L1, not in L2
        assert cache.get(KEY, ABSENT) in (NEW, ABSENT)
        assert cache.get_or_load(KEY, lambda: dict(db), tags=[TAG]) == NEW
        assert cache.get(KEY, ABSENT) == NEW
    _assert_old_value_not_stored(kind, tmp_path)


# ------------------------------------------------------------------------------------------ AsyncCache (tasks)


@pytest.mark.asyncio
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("kind", TIERS)
async def test_async_caller_after_invalidation_never_gets_an_older_load(
    tmp_path: Path, kind: Tiers, how: How, order: Order
) -> None:
    db = dict(OLD)
    leader_read, release, follower_loaded = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def leader_loader() -> dict[str, int]:
        row = dict(db)  # the row before the write
        leader_read.set()
        await release.wait()  # the rest of the query's round trip
        return row

    async def follower_loader() -> dict[str, int]:
        follower_loaded.set()
        return dict(db)

    async with sc.AsyncCache(*_tiers(kind, tmp_path), namespace=NAMESPACE) as cache:
        leader = asyncio.create_task(cache.get_or_load(KEY, leader_loader, tags=[TAG]))
        try:
            await asyncio.wait_for(leader_read.wait(), BOUND)
            db.update(NEW)  # the write commits...
            if how == "invalidate_tags":  # ...and is invalidated; both have returned
                await cache.invalidate_tags(TAG)
            else:
                await cache.delete(KEY)
            if order == "follower after the load":
                release.set()
                await asyncio.wait({leader}, timeout=BOUND)
            # this read starts after the invalidation returned
            follower = asyncio.create_task(cache.get_or_load(KEY, follower_loader, tags=[TAG]))
            # done at once, unless the follower parked on the leader's flight
            done, _ = await asyncio.wait({follower}, timeout=BOUND)
        finally:
            release.set()
        leader_row = await asyncio.wait_for(leader, BOUND)
        follower_row = await asyncio.wait_for(follower, BOUND)
        assert follower in done, JOINED
        assert follower_row == NEW
        assert follower_loaded.is_set()
        assert leader_row == OLD  # it overlapped the write: the old version is allowed for it alone
        stats = cache.stats()
        assert (stats.loads, stats.coalesced) == (2, 0)
        # the leader's value is not cached: not in L1, not in L2

        async def reload() -> dict[str, int]:
            return dict(db)

        assert await cache.get(KEY, ABSENT) in (NEW, ABSENT)
        assert await cache.get_or_load(KEY, reload, tags=[TAG]) == NEW
        assert await cache.get(KEY, ABSENT) == NEW
    _assert_old_value_not_stored(kind, tmp_path)
