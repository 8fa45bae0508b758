"""The staleness checker (``stratacache.testing.staleness``) catches the stale-fill race, and stratacache has none.

The race, forced with events (never by timing): a reader misses and reads version 1 from the source; a writer
commits version 2 and invalidates the key (``delete`` or ``invalidate_tags``), and records that the invalidation
returned; only then does the reader's load return and its fill happen. A read that starts afterwards must get
version 2. A naive cache-aside (a dict filled after the source read) stores version 1 and serves it: the checker
must report it. Through ``stratacache.Cache`` the same interleaving leaves nothing stale.

``BOUND`` only bounds the wait of a failing run; loops are bounded by counts.
"""

from __future__ import annotations

import functools
import random
import threading
from typing import TYPE_CHECKING, Literal, Protocol

import pytest

import stratacache as sc
from stratacache.testing import staleness

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

BOUND = 30.0  # seconds a failing run may wait on an event; never reached by a passing run

Key = tuple[str, int]


class Source:
    """The application database: a versioned row per key; every commit bumps the version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[Key, int] = {}
        self.reads = 0

    def read(self, key: Key) -> int:
        with self._lock:
            self.reads += 1
            return self._versions.setdefault(key, 1)

    def commit(self, key: Key) -> int:
        with self._lock:
            version = self._versions.get(key, 1) + 1
            self._versions[key] = version
            return version


class CacheAside(Protocol):
    def read(self, key: Key, load: Callable[[], int]) -> int: ...

    def invalidate(self, key: Key) -> None: ...


class NaiveCacheAside:
    """Read-through into a dict: a miss loads and stores what it loaded, whatever happened meanwhile."""

    def __init__(self) -> None:
        self._data: dict[Key, int] = {}

    def read(self, key: Key, load: Callable[[], int]) -> int:
        if key in self._data:
            return self._data[key]
        value = load()
        self._data[key] = value  # the unguarded fill
        return value

    def invalidate(self, key: Key) -> None:
        self._data.pop(key, None)


class StrataCacheAside:
    """stratacache used plainly: ``get_or_load``, then ``delete`` (or one tag per key and ``invalidate_tags``)."""

    def __init__(self, cache: sc.Cache, how: Literal["delete", "tags"]) -> None:
        self.cache = cache
        self.how = how

    def read(self, key: Key, load: Callable[[], int]) -> int:
        value: int = self.cache.get_or_load(key, load, tags=(_tag(key),))
        return value

    def invalidate(self, key: Key) -> None:
        if self.how == "delete":
            self.cache.delete(key)
        else:
            self.cache.invalidate_tags(_tag(key))


def _tag(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def _write(history: staleness.History, source: Source, cache: CacheAside, key: Key) -> None:
    """The writer: commit, then invalidate, then record that the invalidation returned."""
    version = source.commit(key)
    history.write_committed(key, version)
    cache.invalidate(key)
    history.invalidation_done(key, version)


def _forced_fill_race(cache: CacheAside, *, reads_after: int = 3) -> staleness.Report:
    """Run the race once on key ``("item", 1)`` in two threads, then read it ``reads_after`` times."""
    history, source, key = staleness.History(), Source(), ("item", 1)
    loaded, written = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def racing_load() -> int:
        version = source.read(key)  # version 1
        loaded.set()
        if not written.wait(BOUND):  # the writer commits version 2 and invalidates meanwhile
            raise TimeoutError("the writer never finished")
        return version

    def reader() -> None:
        try:
            with history.reading(key) as r:
                r.version = cache.read(key, racing_load)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            loaded.set()

    thread = threading.Thread(target=reader, name="racing-reader")
    thread.start()
    try:
        assert loaded.wait(BOUND), "the reader never loaded"
        _write(history, source, cache, key)
    finally:
        written.set()
        thread.join(BOUND)
    assert not thread.is_alive()
    assert not errors, errors
    for _ in range(reads_after):
        with history.reading(key) as r:
            r.version = cache.read(key, lambda: source.read(key))
    return history.check()


@pytest.fixture
def strata(tmp_path: Path) -> Iterator[sc.Cache]:
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="staleness") as cache:
        yield cache


# ---------------------------------------------------------------------------------------------- the race


def test_the_checker_catches_the_naive_fill_race() -> None:
    report = _forced_fill_race(NaiveCacheAside())
    assert report.reads == 4
    assert report.stale_reads == 3  # every read after the write gets the version 1 the racing fill stored
    example = report.examples[0]
    assert (example.key, example.version, example.newer_version) == (("item", 1), 1, 2)
    assert example.committed_at is not None
    assert example.committed_at <= example.invalidated_at < example.start
    assert report.max_staleness > 0


@pytest.mark.parametrize("how", ["delete", "tags"])
def test_stratacache_over_sqlite_survives_the_fill_race(strata: sc.Cache, how: Literal["delete", "tags"]) -> None:
    report = _forced_fill_race(StrataCacheAside(strata, how))
    assert report.reads == 4
    assert report.stale_reads == 0, report.examples
    assert report.invalidations == 1


@pytest.mark.parametrize("how", ["delete", "tags"])
def test_stratacache_survives_the_race_many_times(tmp_path: Path, how: Literal["delete", "tags"]) -> None:
    for run in range(20):
        with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / f"c{run}.db")) as cache:
            report = _forced_fill_race(StrataCacheAside(cache, how), reads_after=1)
        assert report.stale_reads == 0, (run, report.examples)


# ---------------------------------------------------------------------------------------------- a threaded load


def _threaded_load(
    history: staleness.History, source: Source, cache: CacheAside, *, keys: int, readers: int, reads: int, writes: int
) -> staleness.Report:
    """``readers`` threads of ``reads`` reads and two writers of ``writes`` writes each, over ``keys`` keys.

    Each writer reads its key through the cache just before writing it, so there is a cached copy to invalidate.
    """
    start = threading.Barrier(readers + 2)
    errors: list[BaseException] = []

    def guarded(body: Callable[[random.Random], None], seed: int) -> None:
        try:
            start.wait(BOUND)
            body(random.Random(seed))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read_loop(rng: random.Random) -> None:
        for _ in range(reads):
            key = ("item", min(int(rng.paretovariate(1.2)), keys))  # a few hot keys, a tail
            with history.reading(key) as r:
                r.version = cache.read(key, functools.partial(source.read, key))

    def write_loop(rng: random.Random) -> None:
        for _ in range(writes):
            key = ("item", rng.randint(1, min(keys, 8)))
            with history.reading(key) as r:  # cache the version about to be replaced
                r.version = cache.read(key, functools.partial(source.read, key))
            _write(history, source, cache, key)

    bodies = [read_loop] * readers + [write_loop] * 2
    threads = [threading.Thread(target=guarded, args=(body, i)) for i, body in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND * 4)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    report = history.check()
    assert report.reads == readers * reads + 2 * writes
    assert report.invalidations == 2 * writes
    return report


@pytest.mark.parametrize("how", ["delete", "tags"])
def test_stratacache_over_sqlite_under_a_threaded_load_has_no_stale_reads(
    strata: sc.Cache, how: Literal["delete", "tags"]
) -> None:
    history, source = staleness.History(max_examples=5), Source()
    cache = StrataCacheAside(strata, how)
    report = _threaded_load(history, source, cache, keys=20, readers=4, reads=400, writes=150)
    assert report.stale_reads == 0, report.examples
    stats = strata.stats()
    assert stats.loads < report.reads  # the cache answered some of the reads


def test_a_cache_that_is_never_invalidated_fails_the_threaded_load() -> None:
    class Forgetful(NaiveCacheAside):
        def invalidate(self, key: Key) -> None:
            pass

    history, source, cache = staleness.History(), Source(), Forgetful()
    written = [("item", k) for k in range(1, 9)]  # the keys the writers touch
    for key in written:  # cached at version 1 before any write
        cache.read(key, functools.partial(source.read, key))
    report = _threaded_load(history, source, cache, keys=20, readers=2, reads=200, writes=50)
    assert report.invalidations == 100
    for key in written:  # after every write: each key written at least once is stale, and one surely was
        with history.reading(key) as r:
            r.version = cache.read(key, functools.partial(source.read, key))
    report = history.check()
    assert report.stale_reads >= 1
    assert all(e.version == 1 < e.newer_version for e in report.examples)


def test_the_threaded_load_fails_stratacache_without_invalidation(strata: sc.Cache) -> None:
    class Forgetful(StrataCacheAside):
        def invalidate(self, key: Key) -> None:
            pass

    history, source = staleness.History(), Source()
    report = _threaded_load(history, source, Forgetful(strata, "delete"), keys=20, readers=2, reads=100, writes=20)
    # 20 writes by one writer over 8 keys: it writes some key twice, and its read before the second write starts
    # after the first write's invalidation returned and gets the copy cached before it.
    assert report.stale_reads >= 1
