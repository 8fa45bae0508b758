"""The workload of ``stratacache demo``: the application database, the load model and the staleness check.

- :func:`build_database` creates ``items(id, name, version, payload)``; :func:`connect`, :func:`fetch_item` and
  :func:`read_versions` read it.
- :class:`ZipfSampler` draws the rows that readers and the writer touch (a few hot rows, a long tail).
- Staleness is decided, honestly, by :class:`stratacache._staleness.History` (public as
  ``stratacache.testing.staleness``); :func:`stale_reads_of` turns its report into the demo's :class:`StaleRead`
  examples, and :class:`StalenessTracker` is its front end on a logical clock.
- :class:`UncachedBackend` and :class:`StrataBackend` are the two ways a phase reads a row.

The run itself (phases, threads, results) lives in :mod:`stratacache.demo`, which re-exports the public names
of this module. Like it, this module uses the standard library and the public stratacache API only.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypedDict, cast

from stratacache._staleness import History

if TYPE_CHECKING:
    from collections.abc import Callable

    import stratacache as sc
    from stratacache._staleness import Report

__all__ = [
    "WINDOWS",
    "Backend",
    "Item",
    "RedisOptions",
    "StaleRead",
    "StalenessTracker",
    "StrataBackend",
    "ThreadConnections",
    "UncachedBackend",
    "WindowStats",
    "WorkerChannels",
    "WorkerResult",
    "WorkerSpec",
    "ZipfSampler",
    "build_database",
    "connect",
    "fetch_item",
    "read_versions",
    "settled_stats",
    "stale_reads_of",
    "worker_main",
]

_SELECT = "SELECT id, name, version, payload FROM items WHERE id = ?"
_MAX_STALE_EXAMPLES = 5


class Item(TypedDict):
    """One row of the application database, as readers receive it."""

    id: int
    name: str
    version: int
    payload: str


@dataclass(frozen=True, slots=True)
class StaleRead:
    """A read that returned ``got`` although version ``due`` had been written and invalidated before it began."""

    row_id: int
    got: int
    due: int


# ---------------------------------------------------------------------------------------------- the database


def build_database(path: Path, rows: int, *, seed: int = 0, payload_bytes: int = 200) -> None:
    """Create ``items(id, name, version, payload)`` with ``rows`` rows at ``path`` (one transaction, WAL mode)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    hex_len = (payload_bytes + 1) // 2
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN")
        conn.execute(
            "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "version INTEGER NOT NULL, payload TEXT NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO items(id, name, version, payload) VALUES (?, ?, 1, ?)",
            ((i, f"item-{i}", rng.randbytes(hex_len).hex()[:payload_bytes]) for i in range(1, rows + 1)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def connect(path: Path, *, any_thread: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode: every SELECT is its own read transaction and sees every prior commit.

    ``any_thread``: the connection may be closed by another thread than the one that opened it (it is still used
    by one thread at a time).
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=not any_thread)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def fetch_item(conn: sqlite3.Connection, row_id: int) -> Item:
    """Row ``row_id``.

    Raises:
        LookupError: there is no such row.
    """
    row = conn.execute(_SELECT, (row_id,)).fetchone()
    if row is None:
        raise LookupError(f"no row {row_id}")
    return {"id": row[0], "name": row[1], "version": row[2], "payload": row[3]}


def read_versions(path: Path) -> dict[int, int]:
    """The current version of every row."""
    conn = connect(path)
    try:
        return {int(i): int(v) for i, v in conn.execute("SELECT id, version FROM items")}
    finally:
        conn.close()


class ThreadConnections:
    """The loader side of a phase: one database connection per thread that queries, each query counted.

    A cache with a :class:`~stratacache.LoadPolicy` calls loaders from its own background threads too
    (stale-while-revalidate and early refreshes), and a ``sqlite3`` connection belongs to the thread that opened
    it: so a loader never uses its reader's connection, it asks this object, which opens one per thread on first
    use. :meth:`close` closes them all once the phase is over.

    Args:
        path: the application database.
        latency: seconds added to every query (the modelled network round trip; the sleep releases the GIL).
        bucket: with ``t0``, also count the queries of threads that are not readers (background refreshes) per
            ``bucket`` seconds since ``t0`` (monotonic), for the timeline of ``demo --redis``.
    """

    def __init__(self, path: Path, latency: float = 0.0, *, bucket: float = 0.0) -> None:
        self._path = path
        self._latency = latency
        self._bucket = bucket
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._counts: list[list[int]] = []  # one [queries] per thread, summed by :attr:`queries`
        self.t0 = 0.0
        self.background: list[int] = []  # per bucket: queries made outside reader threads

    def open(self) -> list[int]:
        """This thread's connection (opened now if it has none) and its query counter, ``[queries]``.

        Raises:
            sqlite3.Error: the database cannot be opened.
        """
        local = self._local
        count: list[int] | None = getattr(local, "count", None)
        if count is None:
            conn = connect(self._path, any_thread=True)
            count = [0]
            with self._lock:
                self._conns.append(conn)
                self._counts.append(count)
            local.conn, local.count, local.reader = conn, count, False
        return count

    def reader(self) -> list[int]:
        """:meth:`open`, for a reader thread (its queries are counted by the reader itself, per bucket)."""
        count = self.open()
        self._local.reader = True
        return count

    def fetch(self, row_id: int) -> Item:
        """Row ``row_id``, on this thread's connection, after the modelled round trip."""
        self.open()
        local = self._local
        local.count[0] += 1
        item = fetch_item(local.conn, row_id)
        if self._latency:
            time.sleep(self._latency)
        if self._bucket and not local.reader:
            b = max(0, int((time.monotonic() - self.t0) / self._bucket))
            with self._lock:
                background = self.background
                while len(background) <= b:
                    background.append(0)
                background[b] += 1
        return item

    @property
    def queries(self) -> int:
        """Queries made so far, by every thread."""
        with self._lock:
            return sum(c[0] for c in self._counts)

    def close(self) -> None:
        """Close every connection (call it once no thread queries any more)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()


# ---------------------------------------------------------------------------------------------- load model


class ZipfSampler:
    """Row ids drawn from a Zipf(s) law over ranks, ranks mapped to ids by a seeded shuffle."""

    __slots__ = ("_cum", "_ids", "_total")

    def __init__(self, rows: int, s: float, *, seed: int) -> None:
        self._cum = list(itertools.accumulate(k**-s for k in range(1, rows + 1)))
        self._total = self._cum[-1]
        ids = list(range(1, rows + 1))
        random.Random(seed).shuffle(ids)  # noqa: S311 - a load model, not cryptography
        self._ids = ids

    def sample(self, rng: random.Random) -> int:
        """One row id."""
        return self._ids[bisect.bisect(self._cum, rng.random() * self._total)]


class StalenessTracker:
    """The staleness check on a logical clock: a front end to :class:`stratacache._staleness.History`.

    The demo's phases record reads and invalidations in a ``History`` on the monotonic clock directly; this
    class keeps the earlier interface for callers that count events instead of reading a clock. A reader calls
    :meth:`due` before its read and :meth:`check` after it; the writer calls :meth:`completed` after its commit
    and its invalidation have both returned. Each completion is one tick of the logical clock, and a read is
    recorded as starting just after the completion that made its ``due`` version due, so the history's rule
    (stale: a newer version's invalidation completed before the read started) is the same as ``got < due``. A
    read that overlaps the write may return either version and is never counted.
    """

    def __init__(self, versions: dict[int, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._history = History(max_examples=_MAX_STALE_EXAMPLES, keep_reads=False)
        self._bars: dict[int, tuple[list[int], list[int]]] = {}  # per row: versions as they became due, and ticks
        self._seq = 0
        for row_id, version in (versions or {}).items():
            self._bars[row_id] = ([version], [0])
            self._history.invalidation_done(row_id, version, at=0.0)

    def due(self, row_id: int) -> int:
        """The version a read of ``row_id`` starting now must return at least."""
        with self._lock:
            bar = self._bars.get(row_id)
            return 0 if bar is None else bar[0][-1]

    def completed(self, row_id: int, version: int) -> int:
        """Record that ``version`` of ``row_id`` is committed and invalidated; return the event's sequence."""
        with self._lock:
            self._seq += 1
            bar = self._bars.setdefault(row_id, ([], []))
            if not bar[0] or version > bar[0][-1]:  # an older completion never moves the bar back
                bar[0].append(version)
                bar[1].append(self._seq)
            self._history.invalidation_done(row_id, version, at=float(self._seq))
            return self._seq

    def check(self, row_id: int, due: int, got: int) -> bool:
        """Whether a read of ``row_id`` that returned ``got`` is stale (then it is counted).

        ``due`` is what :meth:`due` returned when the read began.
        """
        with self._lock:
            versions, ticks = self._bars.get(row_id, ([], []))
            i = bisect.bisect_right(versions, due)  # the bar the read started under
            start = (ticks[i - 1] if i else 0) + 0.5
            self._history.read(row_id, got, start, start)
            return i > 0 and got < versions[i - 1]

    @property
    def stale_reads(self) -> int:
        """Stale reads counted so far."""
        return self._history.check().stale_reads

    @property
    def examples(self) -> tuple[StaleRead, ...]:
        """The first few stale reads."""
        return stale_reads_of(self._history.check())


def stale_reads_of(report: Report) -> tuple[StaleRead, ...]:
    """The examples of a staleness ``report`` as the demo reports them (``row_id``, ``got``, ``due``)."""
    return tuple(StaleRead(cast("int", e.key), e.version, e.newer_version) for e in report.examples)


# ---------------------------------------------------------------------------------------------- backends


class Backend(Protocol):
    """How a phase reads rows and invalidates them after a write."""

    name: str

    def read(self, row_id: int, load: Callable[[], Item]) -> Item:
        """Return row ``row_id``; ``load()`` queries the database."""
        ...

    def invalidate(self, row_id: int) -> None:
        """Called after a write of ``row_id`` has committed."""
        ...

    def stats(self) -> sc.Stats | None:
        """Cache counters, if there is a cache."""
        ...


class UncachedBackend:
    """Every read queries the database; nothing to invalidate."""

    name = "uncached"

    def read(self, row_id: int, load: Callable[[], Item]) -> Item:  # noqa: ARG002 - part of the protocol
        """Query the database."""
        return load()

    def invalidate(self, row_id: int) -> None:
        """Nothing is cached."""

    def stats(self) -> sc.Stats | None:
        """No cache, no counters."""
        return None


class StrataBackend:
    """Reads through a :class:`stratacache.Cache`, one tag per row; a write invalidates the row's tag.

    This is stratacache used plainly: ``get_or_load`` keyed and tagged by the row, and after each commit
    ``invalidate_tags``. A read that starts once ``invalidate_tags`` has returned never gets a value loaded
    before it, neither from a tier nor by joining a load already in flight.
    """

    name = "cached"

    def __init__(self, cache: sc.Cache) -> None:
        self.cache = cache

    def read(self, row_id: int, load: Callable[[], Item]) -> Item:
        """``get_or_load`` keyed and tagged by the row."""
        return self.cache.get_or_load(("item", row_id), load, tags=(f"row:{row_id}",))

    def invalidate(self, row_id: int) -> None:
        """Bump the row's tag: every cached copy of it, in every tier, becomes a miss."""
        self.cache.invalidate_tags(f"row:{row_id}")

    def stats(self) -> sc.Stats | None:
        """The cache's counters."""
        return self.cache.stats()


def settled_stats(backend: Backend, db: ThreadConnections, timeout: float = 2.0) -> sc.Stats | None:
    """``backend.stats()`` once the background refreshes still running when the readers stopped have returned.

    Readers have stopped, so no refresh is asked for any more; each one queued or in flight makes its query and is
    counted as a load (or a load error) when its loader returns. Waits at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: tuple[int, ...] = ()
    while True:
        queries = db.queries
        stats = backend.stats()
        if stats is None:
            return None
        now = (queries, stats.loads, stats.load_errors, stats.refreshes)
        if (now == last and stats.loads + stats.load_errors >= queries) or time.monotonic() > deadline:
            return stats  # nothing moved for 20 ms (a queued refresh would have started) and every query is counted
        last = now
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------- worker processes
#
# ``stratacache demo --redis`` runs its readers in worker processes (multiprocessing, spawn) and its writer in the
# parent. What crosses the process boundary:
#
# - ``done``: a shared array, per row the newest version whose write *and* invalidation had returned in the writer.
#   A reader reads it just before it starts a read and records it in its process's ``History`` (the demo's
#   honest checker), so a read is judged stale only against invalidations that had completed before it began.
# - ``marks``: the monotonic times (0 until set) the outage began and ended, to file each read under the window
#   it started in: before, during or after the outage. ``time.monotonic`` is system-wide on Linux, macOS and
#   Windows, so times taken in different processes compare.
# - events to start and stop, and a queue for the results.

WINDOWS: Final = ("before", "during", "after")
"""The windows of the cached phase of ``demo --redis``: before the injected outage, during it, after it."""


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """How a demo process reaches the shared tier (through the fault proxy), with which settings and policy.

    ``timeout`` to ``outage_l1_ttl`` are the Redis tier's resilience settings; ``ttl`` and ``policy`` the caches'
    TTL and :class:`~stratacache.LoadPolicy` (``None``: the cache's defaults).
    """

    url: str
    prefix: str
    timeout: float = 0.05
    heartbeat: float = 0.5
    breaker_open_for: float = 0.5
    outage_l1_ttl: float = 1.0
    ttl: float | None = None
    policy: sc.LoadPolicy | None = None

    def cache(self, *, l1: bool) -> sc.Cache:
        """A cache over this Redis tier, with an L1 above it if ``l1``."""
        import stratacache as sc_  # at run time only, as the type hints import it

        redis = sc_.RedisTier(
            self.url,
            prefix=self.prefix,
            timeout=self.timeout,
            heartbeat=self.heartbeat,
            breaker_open_for=self.breaker_open_for,
            outage_l1_ttl=self.outage_l1_ttl,
        )
        tiers = (sc_.MemoryTier(), redis) if l1 else (redis,)
        if self.ttl is None:
            return sc_.Cache(*tiers, namespace="demo", policy=self.policy)
        return sc_.Cache(*tiers, namespace="demo", ttl=self.ttl, policy=self.policy)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker process runs: ``threads`` readers over ``db_path``, through Redis or uncached."""

    index: int
    db_path: str
    rows: int
    zipf_s: float
    seed: int
    threads: int
    db_latency: float
    bucket: float
    redis: RedisOptions | None = None


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Reads that started in one window of the phase, and what the staleness check found among them."""

    requests: int = 0
    stale_reads: int = 0
    max_staleness: float = 0.0
    examples: tuple[StaleRead, ...] = ()
    timings: tuple[tuple[float, float], ...] = ()
    """Per example: when the read started and when the newer version's invalidation had completed (seconds
    since the phase started)."""


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What one worker process measured (times in ``events`` are seconds since the phase started).

    Attributes:
        db_queries: database queries, background refreshes' included.
        loads, coalesced, stale_served, refreshes, refresh_errors, load_timeouts, lock_waits: the cache's
            counters (see :class:`stratacache.Stats`).
        breaker_opened: times the Redis tier's circuit breaker opened (counted by the breaker itself).
        backplane_received: invalidation messages from other processes received by this process's backplane link.
        backplane_losses: times the link was declared lost (each one flushes the L1 until resubscribed).
        fresh_versions: reads that returned a newer version of a row than this process had returned before: each
            is a write made in the parent process whose invalidation reached this process's L1.
        buckets: per ``bucket`` seconds since the start: ``(requests, database queries, errors)`` (a reader's
            queries in the bucket its read ended in, a background refresh's in the bucket it was made in).
        events: ``(seconds, what, state)`` transitions of the breaker and of the backplane link.
    """

    index: int
    pid: int
    seconds: float
    requests: int
    db_queries: int
    errors: int
    error_examples: tuple[str, ...]
    wrong_rows: int
    p50_us: float
    p99_us: float
    mean_us: float
    windows: tuple[WindowStats, ...]
    tiers: tuple[sc.TierStats, ...] = ()
    hit_ratio: float = 0.0
    loads: int = 0
    coalesced: int = 0
    stale_served: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    load_timeouts: int = 0
    lock_waits: int = 0
    breaker_opened: int = 0
    backplane_received: int = 0
    backplane_losses: int = 0
    fresh_versions: int = 0
    buckets: tuple[tuple[int, int, int], ...] = ()
    events: tuple[tuple[float, str, str], ...] = ()

    @property
    def stale_reads(self) -> int:
        """Stale reads in every window."""
        return sum(w.stale_reads for w in self.windows)

    @property
    def loads_saved(self) -> int:
        """Loader calls the cache saved: requests minus loader calls (0 without a cache)."""
        return max(0, self.requests - self.loads) if self.tiers else 0


@dataclass(slots=True)
class WorkerChannels:
    """The shared objects between the parent and its workers (created from one multiprocessing context)."""

    done: Any  # RawArray('q', rows + 1)
    marks: Any  # RawArray('d', 3): phase start, outage start, outage end (0 until set)
    start: Any  # Event
    stop: Any  # Event
    results: Any  # Queue of (kind, index, payload)


def worker_main(spec: WorkerSpec, channels: WorkerChannels) -> None:
    """The entry point of a worker process: report ``("ready", i, pid)``, run, report ``("result", i, ...)``.

    A failure is reported as ``("error", i, "Type: message")``, never raised (the parent renders it).
    """
    try:
        _Worker(spec, channels).run()
    except BaseException as exc:  # reported to the parent, which fails the demo with this message
        channels.results.put(("error", spec.index, f"{type(exc).__name__}: {exc}"))


def _percentile_ns(ordered: list[int], q: float) -> float:
    if not ordered:
        return 0.0
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return float(ordered[rank - 1])


class _Worker:
    """One worker process: readers through a backend, and (with Redis) a sampler of the breaker and the link."""

    def __init__(self, spec: WorkerSpec, channels: WorkerChannels) -> None:
        self.spec = spec
        self.ch = channels
        self.db = ThreadConnections(Path(spec.db_path), spec.db_latency, bucket=spec.bucket)  # the loaders' side
        self.histories = tuple(History(max_examples=_MAX_STALE_EXAMPLES, keep_reads=False) for _ in WINDOWS)
        self.known: dict[int, int] = {}  # per row, the newest completed invalidation recorded in the histories
        self.seen: dict[int, int] = {}  # per row, the newest version a read returned in this process
        self.fresh = 0
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.error_count = 0
        self.wrong_rows = 0
        self.latencies: list[list[int]] = []
        self.buckets: list[list[int]] = []  # [requests, db queries, errors] per bucket, summed over the readers
        self.events: list[tuple[float, str, str]] = []

    def run(self) -> None:
        spec, ch = self.spec, self.ch
        sampler = ZipfSampler(spec.rows, spec.zipf_s, seed=spec.seed)
        cache = None if spec.redis is None else spec.redis.cache(l1=True)
        db = self.db
        try:
            backend: Backend = UncachedBackend() if cache is None else StrataBackend(cache)
            store = None if cache is None else _redis_store(cache)
            ch.results.put(("ready", spec.index, os.getpid()))
            ch.start.wait()
            t0 = db.t0 = ch.marks[0]
            states = [_ThreadState() for _ in range(spec.threads)]
            threads = [
                threading.Thread(target=self._read_loop, args=(backend, sampler, i, states[i], t0), daemon=True)
                for i in range(spec.threads)
            ]
            if store is not None:
                threads.append(threading.Thread(target=self._watch, args=(store, t0), daemon=True))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.monotonic() - t0
            self._report(backend, db, store, states, seconds)
        finally:
            if cache is not None:
                cache.close()
            db.close()

    def _window(self, start: float) -> int:
        began, ended = self.ch.marks[1], self.ch.marks[2]
        if not began or start < began:
            return 0
        return 1 if not ended or start < ended else 2

    def _due(self, row_id: int) -> None:
        """Record in the histories an invalidation of ``row_id`` the writer completed and not yet recorded here."""
        due = self.ch.done[row_id]
        if due > self.known.get(row_id, 0):
            with self.lock:
                if due > self.known.get(row_id, 0):
                    self.known[row_id] = due
                    for history in self.histories:
                        history.invalidation_done(row_id, due)  # now: after it completed, before the read starts

    def _read_loop(self, backend: Backend, sampler: ZipfSampler, index: int, state: _ThreadState, t0: float) -> None:
        spec, db = self.spec, self.db
        rng = random.Random(spec.seed * 1_000_003 + spec.index * 10_007 + index)  # noqa: S311 - a load model
        count = db.reader()  # this thread's queries (the cache's background refreshes count theirs in ``db``)
        bucket, stop, fetch = spec.bucket, self.ch.stop, db.fetch
        clock, now = time.perf_counter_ns, time.monotonic

        while not stop.is_set():
            row_id = sampler.sample(rng)
            self._due(row_id)
            start = now()  # after the due version was recorded: a stale verdict is never a false alarm
            before = count[0]
            c0 = clock()
            try:
                item = backend.read(row_id, functools.partial(fetch, row_id))
            except Exception as exc:  # counted and reported: the demo requires none
                state.add(int((now() - t0) / bucket), 0, count[0] - before, 1)
                with self.lock:
                    self.error_count += 1
                    if len(self.errors) < _MAX_STALE_EXAMPLES:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            state.latencies.append(clock() - c0)
            end = now()
            version = item["version"]
            if item["id"] != row_id:
                state.wrong_rows += 1
            window = self._window(start)
            state.windows[window] += 1
            self.histories[window].read(row_id, version, start, end)
            state.add(int((end - t0) / bucket), 1, count[0] - before, 0)
            last = self.seen.get(row_id)
            if last is None or version > last:
                self.seen[row_id] = version
                if last is not None:
                    state.fresh += 1

    def _watch(self, store: Any, t0: float) -> None:
        """Record the breaker's state and the backplane link's state when they change (every 10 ms).

        Read from the store, not from ``cache.stats()``: ``stats()`` also asks the server for its size, which
        can block for seconds while the server is unreachable and the breaker still closed.
        """
        breaker, link = store.breaker, store._link  # the demo shows the tier's inner states
        last: dict[str, str] = {}
        stop = self.ch.stop
        while True:
            now = time.monotonic() - t0
            for what, state in (("breaker", breaker.state), ("backplane", "lost" if link.lost else "subscribed")):
                if last.get(what) != state:
                    last[what] = state
                    self.events.append((now, what, state))
            if stop.wait(0.01):
                return

    def _report(
        self, backend: Backend, db: ThreadConnections, store: Any, states: list[_ThreadState], seconds: float
    ) -> None:
        spec = self.spec
        stats = settled_stats(backend, db)
        latencies = sorted(itertools.chain.from_iterable(s.latencies for s in states))
        background = list(db.background)
        n_buckets = max((len(s.buckets) for s in states), default=0)
        n_buckets = max(n_buckets, len(background))
        buckets = tuple(
            (
                sum(s.buckets[b][0] for s in states if b < len(s.buckets)),
                sum(s.buckets[b][1] for s in states if b < len(s.buckets))
                + (background[b] if b < len(background) else 0),
                sum(s.buckets[b][2] for s in states if b < len(s.buckets)),
            )
            for b in range(n_buckets)
        )
        windows = []
        for w, history in enumerate(self.histories):
            report = history.check()
            windows.append(
                WindowStats(
                    requests=sum(s.windows[w] for s in states),
                    stale_reads=report.stale_reads,
                    max_staleness=report.max_staleness,
                    examples=stale_reads_of(report),
                    timings=tuple(
                        (e.start - self.ch.marks[0], e.invalidated_at - self.ch.marks[0]) for e in report.examples
                    ),
                )
            )
        link = None if store is None else store._link  # the demo shows the link's counters
        requests = len(latencies)
        result = WorkerResult(
            index=spec.index,
            pid=os.getpid(),
            seconds=seconds,
            requests=requests,
            db_queries=sum(b[1] for b in buckets),
            errors=self.error_count,
            error_examples=tuple(self.errors),
            wrong_rows=sum(s.wrong_rows for s in states),
            p50_us=_percentile_ns(latencies, 0.50) / 1000,
            p99_us=_percentile_ns(latencies, 0.99) / 1000,
            mean_us=(sum(latencies) / requests / 1000) if requests else 0.0,
            windows=tuple(windows),
            tiers=() if stats is None else stats.tiers,
            hit_ratio=0.0 if stats is None else stats.hit_ratio,
            loads=0 if stats is None else stats.loads,
            coalesced=0 if stats is None else stats.coalesced,
            stale_served=0 if stats is None else stats.stale_served,
            refreshes=0 if stats is None else stats.refreshes,
            refresh_errors=0 if stats is None else stats.refresh_errors,
            load_timeouts=0 if stats is None else stats.load_timeouts,
            lock_waits=0 if stats is None else stats.lock_waits,
            breaker_opened=0 if store is None else int(store.breaker.opened),
            backplane_received=0 if link is None else int(link.received),
            backplane_losses=0 if link is None else int(link.losses),
            fresh_versions=sum(s.fresh for s in states),
            buckets=buckets,
            events=tuple(self.events),
        )
        self.ch.results.put(("result", spec.index, result))


@dataclass(slots=True)
class _ThreadState:
    latencies: list[int] = field(default_factory=list)
    buckets: list[list[int]] = field(default_factory=list)
    windows: list[int] = field(default_factory=lambda: [0, 0, 0])
    wrong_rows: int = 0
    fresh: int = 0

    def add(self, bucket: int, requests: int, queries: int, errors: int) -> None:
        buckets = self.buckets
        while len(buckets) <= bucket:
            buckets.append([0, 0, 0])
        b = buckets[bucket]
        b[0] += requests
        b[1] += queries
        b[2] += errors


def _redis_store(cache: sc.Cache) -> Any:
    """The cache's Redis store (the demo reads its breaker and its backplane link)."""
    for store in getattr(cache, "_lower", ()):
        if getattr(store, "name", None) == "redis":
            return store
    raise RuntimeError("the demo cache has no Redis tier")
