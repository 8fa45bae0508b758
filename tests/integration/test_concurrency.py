"""Threads and tasks against one cache over MemoryTier + SQLiteTier: coalesced loads, and no reader ever
going back in time.

Overlap is forced, never timed: a loader does not return until every other caller is parked on its flight
(counted where the single-flight parks them), and interleavings that need a thread to be preempted at one point
are produced by blocking that thread there on an ``Event``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

import stratacache as sc
from stratacache.protection import singleflight
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

WAIT = 30.0  # bound of every wait: a hang fails the test instead of the run


def tiers(tmp_path: Path, max_entries: int = 10_000) -> tuple[sc.MemoryTier, sc.SQLiteTier]:
    memory = sc.MemoryTier(max_entries=max_entries, max_bytes="64MiB")
    return memory, sc.SQLiteTier(tmp_path / "cache.db", max_bytes=None)


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run every target in its own thread; re-raise the first error; every join is bounded."""
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a thread is still running (deadlock?)"
    if errors:
        raise errors[0]


# ----------------------------------------------------------------------------------- threads: one load per epoch


class ParkedFollowers:
    """Counts callers parked on a thread single-flight (they wait on the flight's ``Event``)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.parked = 0

    def wait_for(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.parked >= n, timeout=WAIT), f"{self.parked} of {n} parked"

    def reset(self) -> None:
        with self.cond:
            self.parked = 0


@pytest.fixture
def parked(monkeypatch: pytest.MonkeyPatch) -> ParkedFollowers:
    """Instrument the thread single-flight: a follower is counted when it parks on the leader's event."""
    counter = ParkedFollowers()

    class CountingEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            with counter.cond:
                counter.parked += 1
                counter.cond.notify_all()
            return super().wait(timeout)

    class ThreadingWithCountingEvent:
        Event = CountingEvent

        def __getattr__(self, name: str) -> Any:
            return getattr(threading, name)

    monkeypatch.setattr(singleflight, "threading", ThreadingWithCountingEvent())
    return counter


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(tmp_path: Path, clock: FakeClock) -> Iterator[sc.Cache]:
    c = sc.Cache(*tiers(tmp_path), namespace="conc", ttl=60, clock=clock)
    # Learn the namespace's and the "hot" tag's counters first: concurrent first reads of a counter share one
    # fetch through a single-flight of their own, whose parked followers the `parked` instrumentation would count
    # as followers of the load (a loader then returned early, and a late caller got a hit: 14 coalesced of 15).
    c.set("warm-up", 0, tags=["hot"])
    yield c
    c.close()


KEYS = ["hot:a", ("hot", 2), "hot:c"]
CALLERS_PER_KEY = 6


def _new_epoch(cache: sc.Cache, clock: FakeClock, how: str) -> None:
    if how == "invalidate_tags":
        cache.invalidate_tags("hot")
    elif how == "delete_many":
        assert cache.delete_many(KEYS) == len(KEYS)
    elif how == "clear":
        cache.clear()
    elif how == "expire":
        clock.advance(61)


def test_each_hot_key_loads_once_per_invalidation_epoch(
    cache: sc.Cache, clock: FakeClock, parked: ParkedFollowers
) -> None:
    followers = len(KEYS) * (CALLERS_PER_KEY - 1)
    epochs = ["first", "invalidate_tags", "delete_many", "clear", "expire"]
    lock = threading.Lock()
    for epoch, how in enumerate(epochs):
        _new_epoch(cache, clock, how)
        parked.reset()
        loads: dict[Any, int] = dict.fromkeys(KEYS, 0)
        results: list[tuple[Any, Any]] = []

        def loader_for(key: Any, epoch: int = epoch, loads: dict[Any, int] = loads) -> Callable[[], Any]:
            def loader() -> Any:
                with lock:
                    loads[key] += 1
                parked.wait_for(followers)  # every other caller of every key has joined a flight
                return {"key": list(key) if isinstance(key, tuple) else key, "epoch": epoch}

            return loader

        def caller(key: Any, results: list[tuple[Any, Any]] = results) -> Callable[[], None]:
            def call() -> None:
                value = cache.get_or_load(key, loader_for(key), tags=["hot"])
                with lock:
                    results.append((key, value))

            return call

        before = cache.stats()
        run_threads([caller(key) for key in KEYS for _ in range(CALLERS_PER_KEY)])
        after = cache.stats()

        assert loads == dict.fromkeys(KEYS, 1), f"epoch {how}: {loads}"
        assert after.loads - before.loads == len(KEYS)
        assert after.coalesced - before.coalesced == followers
        assert len(results) == len(KEYS) * CALLERS_PER_KEY
        for key, value in results:
            assert value["epoch"] == epoch, (how, key, value)
        for key in KEYS:  # and the loaded value is what the cache now holds
            assert cache.get(key)["epoch"] == epoch


def test_a_failing_load_reaches_every_follower_and_caches_nothing(cache: sc.Cache, parked: ParkedFollowers) -> None:
    calls = []

    def loader() -> Any:
        calls.append(1)
        parked.wait_for(CALLERS_PER_KEY - 1)
        raise RuntimeError("db down")

    outcomes: list[BaseException | None] = []

    def call() -> None:
        try:
            cache.get_or_load("k", loader)
        except RuntimeError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)

    run_threads([call] * CALLERS_PER_KEY)
    assert calls == [1]
    assert len(outcomes) == CALLERS_PER_KEY
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert cache.get("k", "miss") == "miss"
    assert cache.get_or_load("k", lambda: "recovered") == "recovered"


# -------------------------------------------------------------------------------------- asyncio: one shared load


class CountingFlight:
    """Wraps an engine's async single-flight; ``arrived`` counts callers that reached it (and joined in the
    same step: the wrapped ``do`` registers or joins the flight before it first suspends)."""

    def __init__(self, inner: Any, expected: int) -> None:
        self.inner = inner
        self.arrived = 0
        self.expected = expected
        self.all_arrived = asyncio.Event()

    async def do(self, key: str, fn: Callable[[], Any]) -> Any:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_arrived.set()
        return await self.inner.do(key, fn)

    def __len__(self) -> int:
        return len(self.inner)


@pytest_asyncio.fixture
async def acache(tmp_path: Path) -> Any:
    c = sc.AsyncCache(*tiers(tmp_path), namespace="aconc", ttl=60, clock=FakeClock())
    await c.set("warm-up", 0)  # the namespace's counter is known before the race (see `cache`)
    yield c
    await c.close()


@pytest.mark.asyncio
async def test_many_tasks_share_one_load(acache: sc.AsyncCache) -> None:
    n = 50
    flight = CountingFlight(acache._flight, expected=n)
    acache._flight = flight
    release = asyncio.Event()
    loads = 0

    async def loader() -> dict[str, int]:
        nonlocal loads
        loads += 1
        await release.wait()
        return {"n": loads}

    tasks = [asyncio.create_task(acache.get_or_load("k", loader)) for _ in range(n)]
    await asyncio.wait_for(flight.all_arrived.wait(), WAIT)  # every task has joined the one flight
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    assert results == [{"n": 1}] * n
    assert loads == 1
    stats = acache.stats()
    assert stats.loads == 1
    assert stats.coalesced == n - 1
    assert await acache.get("k") == {"n": 1}
    assert await acache.get_or_load("k", loader) == {"n": 1}
    assert loads == 1


@pytest.mark.asyncio
async def test_cancelled_waiters_do_not_cancel_the_shared_load(acache: sc.AsyncCache) -> None:
    n = 10
    flight = CountingFlight(acache._flight, expected=n)
    acache._flight = flight
    release = asyncio.Event()
    loads = 0

    async def loader() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "loaded"

    tasks = [asyncio.create_task(acache.get_or_load("k", loader)) for _ in range(n)]
    await asyncio.wait_for(flight.all_arrived.wait(), WAIT)
    for task in tasks[:3]:  # whichever caller started the load may be among them
        task.cancel()
    release.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT)
    assert all(isinstance(r, asyncio.CancelledError) for r in done[:3])
    assert done[3:] == ["loaded"] * (n - 3)
    assert loads == 1
    assert await acache.get("k") == "loaded"


@pytest.mark.asyncio
async def test_tasks_load_once_per_epoch(acache: sc.AsyncCache) -> None:
    inner = acache._flight
    for epoch in range(3):
        if epoch:
            await acache.invalidate_tags("t")
        n = 20
        flight = CountingFlight(inner, expected=n)
        acache._flight = flight
        release = asyncio.Event()
        calls: list[int] = []

        async def loader(epoch: int = epoch, calls: list[int] = calls, release: asyncio.Event = release) -> int:
            calls.append(1)
            await release.wait()
            return epoch

        tasks = [asyncio.create_task(acache.get_or_load(("k", i % 2), loader, tags=["t"])) for i in range(n)]
        await asyncio.wait_for(flight.all_arrived.wait(), WAIT)
        release.set()
        assert await asyncio.wait_for(asyncio.gather(*tasks), WAIT) == [epoch] * n
        assert len(calls) == 2  # one per key


# ----------------------------------------------------------------------------------- no reader goes back in time


def _memory_only(tmp_path: Path) -> list[sc.Cache]:
    return [sc.Cache(sc.MemoryTier(max_entries=10_000), namespace="ver", ttl=None)]


def _sqlite_only(tmp_path: Path) -> list[sc.Cache]:
    # two caches on one file: the second one reads what the first one writes
    return [sc.Cache(sc.SQLiteTier(tmp_path / "cache.db", max_bytes=None), namespace="ver", ttl=None) for _ in "ab"]


def _memory_over_sqlite(tmp_path: Path) -> list[sc.Cache]:
    # the writer's cache and a second cache on the same file, each with a small L1 (evicts and backfills)
    return [sc.Cache(*tiers(tmp_path, max_entries=4), namespace="ver", ttl=None) for _ in "ab"]


VERSION_SETUPS: dict[str, Callable[[Path], list[sc.Cache]]] = {
    "memory only": _memory_only,
    "sqlite only, two caches": _sqlite_only,
    "memory over sqlite, two caches": _memory_over_sqlite,
}


@pytest.mark.parametrize("setup", VERSION_SETUPS.values(), ids=VERSION_SETUPS.keys())
def test_readers_never_see_a_value_older_than_a_returned_set(
    tmp_path: Path, setup: Callable[[Path], list[sc.Cache]]
) -> None:
    """A writer sets versions 1..N; before each read a reader notes the last version whose ``set`` returned.

    The read must return that version or a newer one, through the writer's cache and through a second cache on
    the same file where there is one.
    """
    keys = [f"k{i}" for i in range(8)]
    writes = 300
    caches = setup(tmp_path)
    writer_cache = caches[0]
    committed = dict.fromkeys(keys, 0)
    done = threading.Event()
    violations: list[str] = []
    reads = [0]

    def writer() -> None:
        try:
            for version in range(1, writes + 1):
                key = keys[version % len(keys)]
                if version % 3 == 0:
                    writer_cache.set_many({key: version})
                else:
                    writer_cache.set(key, version)
                committed[key] = version  # published only after the set returned
        finally:
            done.set()

    def reader(cache: sc.Cache, *, batch: bool) -> Callable[[], None]:
        name = f"cache {caches.index(cache)}, {'get_many' if batch else 'get'}"

        def read() -> None:
            i = 0
            while not done.is_set() or i < len(keys):  # bounded by the writer, plus one last sweep
                key = keys[i % len(keys)]
                floor = committed[key]
                got = cache.get_many([key, keys[(i + 3) % len(keys)]]).get(key, 0) if batch else cache.get(key, 0)
                reads[0] += 1
                if got < floor:
                    violations.append(f"{name}: {key}: read {got} after version {floor} was set")
                i += 1

        return read

    try:
        run_threads([writer] + [reader(c, batch=b) for c in caches for b in (False, True)])
    finally:
        for c in caches:
            c.close()
    assert not violations, violations[:10]
    assert reads[0] >= 2 * len(caches) * len(keys)


@pytest.fixture
def pause_l1_fill(cache: sc.Cache) -> Iterator[Callable[[threading.Thread], tuple[threading.Event, threading.Event]]]:
    """``pause(thread)``: that thread stops right before its next L1 fill until ``resume`` is set.

    Stands in for the thread being preempted there: it has read (or loaded) a value, and is about to put it in
    L1, while another thread writes a newer one.
    """
    l1 = cache._l1
    assert l1 is not None
    real = l1.set_many

    def pause(thread: threading.Thread) -> tuple[threading.Event, threading.Event]:
        arrived, resume = threading.Event(), threading.Event()

        def set_many(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is thread and not arrived.is_set():
                arrived.set()
                assert resume.wait(WAIT)
            return real(*args, **kwargs)

        l1.set_many = set_many  # type: ignore[method-assign]
        return arrived, resume

    yield pause
    l1.set_many = real  # type: ignore[method-assign]


def test_a_backfill_racing_a_write_never_overwrites_the_newer_value(
    cache: sc.Cache, pause_l1_fill: Callable[[threading.Thread], tuple[threading.Event, threading.Event]]
) -> None:
    cache.set("k", 1)
    cache._l1.clear()  # version 1 now lives in SQLite only, as after an L1 eviction
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(cache.get("k")), daemon=True)
    arrived, resume = pause_l1_fill(reader)
    reader.start()
    assert arrived.wait(WAIT)  # the reader holds version 1, about to backfill L1
    cache.set("k", 2)  # returns before the next read starts
    resume.set()
    reader.join(WAIT)
    assert got == [1]  # the racing read itself may return the old value
    assert cache.get("k") == 2
    assert cache.get_many(["k"]) == {"k": 2}


def test_a_load_racing_a_write_never_overwrites_the_newer_value_in_l1(
    cache: sc.Cache, pause_l1_fill: Callable[[threading.Thread], tuple[threading.Event, threading.Event]]
) -> None:
    got: list[Any] = []
    leader = threading.Thread(target=lambda: got.append(cache.get_or_load("k", lambda: "old")), daemon=True)
    arrived, resume = pause_l1_fill(leader)
    leader.start()
    assert arrived.wait(WAIT)  # the load is done and stored below L1, about to fill L1
    cache.set("k", "new")
    resume.set()
    leader.join(WAIT)
    assert got == ["old"]
    assert cache.get("k") == "new"
