"""``stratacache demo``: a read-heavy service in front of a SQLite "application database", with and without a cache.

The demo builds an application database (``items(id, name, version, payload)``) in a temporary directory, then
runs the same load twice for the same duration:

- **uncached**: every read queries the database (one ``sqlite3`` connection per reader thread);
- **cached**: every read goes through ``Cache(MemoryTier(), SQLiteTier(<tmp>/cache.db))`` with
  ``get_or_load(("item", id), loader, tags=[f"row:{id}"])``.

Readers pick rows from a seeded Zipf distribution (a few hot rows, a long tail). A writer thread interleaves
writes: it bumps a row's ``version`` and commits, then invalidates the row's tag, then records that the new
version is *due*. Every value a reader gets is checked against that record, honestly: a read is **stale** only if
it returned a version older than one whose write *and* invalidation had completed before the read started
(the ``History`` of :mod:`stratacache.testing.staleness`). Reads racing a write may legitimately return either
version.

A point query on a local SQLite file costs a few microseconds, less than any cache miss, which is not what a
cache sits in front of. So every database query also pays a modelled network round trip (``db_latency``,
0.5 ms by default, ``0`` for the raw file); the CLI prints it next to the results.

This module runs the phases and reports the results (the CLI renders them); the database, the load model, the
staleness check and the two backends live in :mod:`stratacache._demo_workload`, whose public names it re-exports.
Both use the public stratacache API and the standard library only.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import stratacache as sc
from stratacache._demo_workload import (
    _MAX_STALE_EXAMPLES,
    WINDOWS,
    Backend,
    Item,
    RedisOptions,
    StalenessTracker,
    StaleRead,
    StrataBackend,
    ThreadConnections,
    UncachedBackend,
    WindowStats,
    WorkerChannels,
    WorkerResult,
    WorkerSpec,
    ZipfSampler,
    build_database,
    connect,
    settled_stats,
    stale_reads_of,
    worker_main,
)
from stratacache._staleness import History

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

__all__ = [
    "REDIS_WORKERS",
    "Backend",
    "DemoConfig",
    "DemoError",
    "DemoResult",
    "Item",
    "OutageResult",
    "PhaseResult",
    "RedisDemoResult",
    "RedisOptions",
    "StaleRead",
    "StalenessTracker",
    "StrataBackend",
    "TierResult",
    "UncachedBackend",
    "WindowStats",
    "WindowSummary",
    "WorkerResult",
    "WriterResult",
    "ZipfSampler",
    "build_database",
    "check_redis_url",
    "run_demo",
    "run_phase",
    "run_redis_demo",
]

# ---------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Parameters of a demo run.

    Args:
        rows: rows in the application database.
        duration: seconds each phase (uncached, cached) runs.
        threads: reader threads.
        write_rate: writes per second by the writer thread (0: no writes).
        zipf_s: exponent of the Zipf distribution of reads and writes over rows.
        seed: seed of every random choice (rows, payloads, request sequences).
        payload_bytes: size of each row's payload.
        db_latency: seconds added to every database query, modelling the network round trip to a database
            server (PostgreSQL or MySQL on a LAN: about 0.1 to 1 ms). The application database here is a local
            SQLite file, whose point query costs a few microseconds: cheaper than any cache miss. ``0`` measures
            that raw local file.
        ttl: seconds a cached row lives (short enough that entries expire during a phase).
        stale_while_revalidate: the cached phase's :class:`~stratacache.LoadPolicy`: seconds after expiry an
            entry is still served, on purpose, while one background refresh replaces it (``0``: off). Only
            *expired* entries are: a row's invalidation after a write is never served around.
        early_refresh: the policy's XFetch ``beta``: a fresh hit near expiry refreshes in the background with a
            probability that rises as expiry nears (``0``: off).

    Raises:
        ValueError: a parameter is out of range.
    """

    rows: int = 100_000
    duration: float = 10.0
    threads: int = 4
    write_rate: float = 100.0
    zipf_s: float = 1.1
    seed: int = 20240601
    payload_bytes: int = 200
    db_latency: float = 0.0005
    ttl: float = 5.0
    stale_while_revalidate: float = 10.0
    early_refresh: float = 1.0

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 10, 10_000_000)
        _check_int("threads", self.threads, 1, 256)
        _check_int("payload_bytes", self.payload_bytes, 1, 1_000_000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_number("duration", self.duration, 0.05, 3600.0)
        _check_number("write_rate", self.write_rate, 0.0, 100_000.0)
        _check_number("zipf_s", self.zipf_s, 0.01, 10.0)
        _check_number("db_latency", self.db_latency, 0.0, 1.0)
        _check_number("ttl", self.ttl, 0.01, 86_400.0)
        _check_number("stale_while_revalidate", self.stale_while_revalidate, 0.0, 86_400.0)
        _check_number("early_refresh", self.early_refresh, 0.0, 100.0)

    def policy(self) -> sc.LoadPolicy:
        """The :class:`~stratacache.LoadPolicy` of the cached phase."""
        return sc.LoadPolicy(
            stale_while_revalidate=self.stale_while_revalidate or None,
            early_refresh=self.early_refresh or None,
        )


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def _check_number(name: str, value: object, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        # NaN fails the range test too
        raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class TierResult:
    """One cache tier's counters at the end of the cached phase."""

    name: str
    hits: int
    misses: int
    hit_ratio: float
    sets: int
    deletes: int
    evictions: int
    errors: int
    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one phase measured.

    Attributes:
        name: ``"uncached"`` or ``"cached"``.
        seconds: wall time of the phase.
        requests: reads served.
        db_queries: reads that reached the application database.
        writes: rows updated (and invalidated) by the writer.
        stale_reads: reads older than a version whose write and invalidation had completed before they began
            (the honest checker's verdict; must be 0).
        wrong_rows: reads that returned another row than the one asked for (always a bug).
        throughput: requests per second.
        p50_us, p99_us, mean_us: read latency in microseconds.
        hit_ratio: share of requests answered by some cache tier (0 for the uncached phase).
        tiers: per-tier counters (empty for the uncached phase).
        loads, coalesced: loader calls (background refreshes included), and callers that shared another
            caller's load instead of calling the loader (single-flight).
        stale_served: reads of an *expired* entry served on purpose by stale-while-revalidate while a background
            refresh ran (never an invalidated one: those are misses).
        refreshes, refresh_errors: background refreshes started (stale-while-revalidate, early refresh), and
            those whose loader failed.
        load_timeouts, lock_waits: callers that stopped waiting for a load, and loads that waited for another
            process's lease (both 0 with the demo's policy).
        stale_examples: the first few stale reads, for diagnosis.
    """

    name: str
    seconds: float
    requests: int
    db_queries: int
    writes: int
    stale_reads: int
    wrong_rows: int
    throughput: float
    p50_us: float
    p99_us: float
    mean_us: float
    hit_ratio: float
    tiers: tuple[TierResult, ...] = ()
    loads: int = 0
    coalesced: int = 0
    stale_served: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    load_timeouts: int = 0
    lock_waits: int = 0
    stale_examples: tuple[StaleRead, ...] = ()

    @property
    def loads_saved(self) -> int:
        """Loader calls the cache saved: requests minus loader calls (0 for the uncached phase, which has none)."""
        return max(0, self.requests - self.loads) if self.tiers else 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "loads_saved": self.loads_saved}


@dataclass(frozen=True, slots=True)
class DemoResult:
    """Both phases of a demo run and how they compare.

    Attributes:
        config: the parameters used.
        build_seconds: time to build the application database.
        uncached: the phase where every read queries the database.
        cached: the phase where reads go through stratacache.
        speedup: cached throughput / uncached throughput.
        p50_speedup, p99_speedup: uncached latency / cached latency at the median and the 99th percentile.
        db_query_reduction: share of database queries the cache saved, per request.
    """

    config: DemoConfig
    build_seconds: float
    uncached: PhaseResult
    cached: PhaseResult
    speedup: float
    p50_speedup: float
    p99_speedup: float
    db_query_reduction: float
    stratacache_version: str = field(default=sc.__version__)

    @property
    def ok(self) -> bool:
        """No stale or wrong read in either phase, and no loader failure in the cache's background refreshes."""
        return (
            all(p.stale_reads == 0 and p.wrong_rows == 0 for p in (self.uncached, self.cached))
            and self.cached.refresh_errors == 0
        )

    def verdict(self) -> str:
        """A one-line summary."""
        c, u = self.cached, self.uncached
        if not self.ok:
            return (
                f"FAIL: {c.stale_reads} stale and {c.wrong_rows} wrong read(s) with the cache "
                f"({c.refresh_errors} failed background refresh(es)), "
                f"{u.stale_reads} stale and {u.wrong_rows} wrong without it"
            )
        faster = (
            f"{self.speedup:.2f}x the uncached throughput"
            if self.speedup >= 1
            else (f"{1 / self.speedup:.2f}x slower than uncached" if self.speedup > 0 else "no throughput measured")
        )
        return (
            f"OK: stratacache answered {c.requests:,} reads with {c.loads:,} loader calls ({c.loads_saved:,} saved), "
            f"{faster}, {c.db_queries:,} database queries instead of {c.requests:,}, "
            f"and 0 stale reads across {c.writes:,} writes; {c.stale_served:,} expired entries were served on "
            f"purpose while {c.refreshes:,} background refreshes ran, never an invalidated one."
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``stratacache demo --json`` prints)."""
        return {
            "stratacache_version": self.stratacache_version,
            "config": asdict(self.config),
            "build_seconds": self.build_seconds,
            "uncached": self.uncached.to_dict(),
            "cached": self.cached.to_dict(),
            "speedup": self.speedup,
            "p50_speedup": self.p50_speedup,
            "p99_speedup": self.p99_speedup,
            "db_query_reduction": self.db_query_reduction,
            "ok": self.ok,
            "verdict": self.verdict(),
        }


# ---------------------------------------------------------------------------------------------- one phase


@dataclass(slots=True)
class _ReaderState:
    latencies: list[int] = field(default_factory=list)
    wrong_rows: int = 0


def run_phase(
    db_path: Path,
    backend: Backend,
    *,
    duration: float,
    threads: int,
    sampler: ZipfSampler,
    seed: int,
    write_rate: float,
    db_latency: float = 0.0,
) -> PhaseResult:
    """Run ``threads`` readers and one writer against ``backend`` for ``duration`` seconds.

    Raises:
        Exception: the first exception raised by a reader or the writer, after every thread has stopped.
    """
    db = ThreadConnections(db_path, db_latency)
    phase = _Phase(db_path, backend, db, sampler=sampler, seed=seed, write_rate=write_rate)
    try:
        seconds = phase.run(threads, duration)
        stats = settled_stats(backend, db)
        db_queries = db.queries
    finally:
        db.close()
    latencies = sorted(itertools.chain.from_iterable(s.latencies for s in phase.states))
    requests = len(latencies)
    report = phase.history.check()
    return PhaseResult(
        name=backend.name,
        seconds=seconds,
        requests=requests,
        db_queries=db_queries,
        writes=phase.writes,
        stale_reads=report.stale_reads,
        wrong_rows=sum(s.wrong_rows for s in phase.states),
        throughput=requests / seconds if seconds > 0 else 0.0,
        p50_us=_percentile(latencies, 0.50) / 1000,
        p99_us=_percentile(latencies, 0.99) / 1000,
        mean_us=(sum(latencies) / requests / 1000) if requests else 0.0,
        hit_ratio=0.0 if stats is None else stats.hit_ratio,
        tiers=() if stats is None else tuple(_tier_result(t) for t in stats.tiers),
        loads=0 if stats is None else stats.loads,
        coalesced=0 if stats is None else stats.coalesced,
        stale_served=0 if stats is None else stats.stale_served,
        refreshes=0 if stats is None else stats.refreshes,
        refresh_errors=0 if stats is None else stats.refresh_errors,
        load_timeouts=0 if stats is None else stats.load_timeouts,
        lock_waits=0 if stats is None else stats.lock_waits,
        stale_examples=stale_reads_of(report),
    )


class _Phase:
    """The threads of one phase: readers that check every value, one writer that updates and invalidates.

    Loaders query through ``db`` (one connection per thread): the cache may call them from its own background
    threads (refreshes).
    """

    def __init__(
        self,
        db_path: Path,
        backend: Backend,
        db: ThreadConnections,
        *,
        sampler: ZipfSampler,
        seed: int,
        write_rate: float,
    ) -> None:
        self.db_path = db_path
        self.backend = backend
        self.db = db
        self.sampler = sampler
        self.seed = seed
        self.write_rate = write_rate
        # judged as recorded: memory stays bounded however long the phase runs
        self.history = History(max_examples=_MAX_STALE_EXAMPLES, keep_reads=False)
        self.stop = threading.Event()
        self.states: list[_ReaderState] = []
        self.writes = 0
        self.errors: list[BaseException] = []
        self._start = threading.Barrier(1)

    def run(self, threads: int, duration: float) -> float:
        """Run for ``duration`` seconds; return the measured wall time."""
        self.states = [_ReaderState() for _ in range(threads)]
        self._start = threading.Barrier(threads + 2)
        readers = [
            threading.Thread(
                target=self._guarded, args=(functools.partial(self._read_loop, i),), name=f"demo-reader-{i}"
            )
            for i in range(threads)
        ]
        writer = threading.Thread(target=self._guarded, args=(self._write_loop, True), name="demo-writer")
        workers = [*readers, writer]
        for t in workers:
            t.start()
        t0 = time.perf_counter()
        try:
            self._start.wait()
            t0 = time.perf_counter()
            self.stop.wait(duration)
        except threading.BrokenBarrierError:
            pass  # a thread failed before the start: its error is raised below
        finally:
            self.stop.set()
            for t in workers:
                t.join()
        seconds = time.perf_counter() - t0
        if self.errors:
            raise self.errors[0]
        return seconds

    def _guarded(self, loop: Callable[[sqlite3.Connection | None], None], writer: bool = False) -> None:
        """Run ``loop``, the writer's with a connection of its own, a reader's once its loader connection is open.

        An error stops the phase and is re-raised by :meth:`run`.
        """
        try:
            if not writer:
                self.db.reader()  # opened before the start: a missing database fails at once
                loop(None)
                return
            conn = connect(self.db_path)
            try:
                loop(conn)
            finally:
                conn.close()
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
            self._start.abort()

    def _read_loop(self, index: int, _conn: sqlite3.Connection | None) -> None:
        state = self.states[index]
        rng = random.Random(self.seed * 1_000_003 + index)  # noqa: S311 - a load model
        latencies, clock, stop = state.latencies, time.perf_counter_ns, self.stop
        sample, read, history, fetch = self.sampler.sample, self.backend.read, self.history, self.db.fetch

        self._start.wait()
        while not stop.is_set():
            row_id = sample(rng)
            start = history.now()  # before the read is issued, so a stale verdict is never a false alarm
            t0 = clock()
            item = read(row_id, functools.partial(fetch, row_id))
            latencies.append(clock() - t0)
            if item["id"] != row_id:
                state.wrong_rows += 1
            history.read(row_id, item["version"], start, history.now())

    def _write_loop(self, conn: sqlite3.Connection | None) -> None:
        assert conn is not None  # the writer always gets one
        rng = random.Random(self.seed * 1_000_003 - 1)  # noqa: S311 - a load model
        self._start.wait()
        if self.write_rate <= 0:
            return
        interval = 1.0 / self.write_rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            row_id = self.sampler.sample(rng)
            version = _commit_new_version(conn, row_id, rng)
            self.history.write_committed(row_id, version)
            self.backend.invalidate(row_id)  # the write is complete once its invalidation has returned
            self.history.invalidation_done(row_id, version)
            self.writes += 1
            next_at += interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def _percentile(ordered: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return float(ordered[rank - 1])


def _tier_result(t: sc.TierStats) -> TierResult:
    return TierResult(
        t.name, t.hits, t.misses, t.hit_ratio, t.sets, t.deletes, t.evictions, t.errors, t.entries, t.bytes
    )


# ---------------------------------------------------------------------------------------------- the demo


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def run_demo(
    config: DemoConfig | None = None,
    *,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Build the application database, run the uncached then the cached phase, and compare them.

    Args:
        config: parameters (defaults: 100k rows, 10 s per phase, 4 readers, 100 writes/s).
        workdir: where to create the temporary directory holding the database files (default: the system's
            temporary directory); it is removed afterwards.
        progress: called with a short message as each step starts.

    Raises:
        ValueError: bad parameters.
    """
    config = DemoConfig() if config is None else config
    say = progress if progress is not None else (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="stratacache-demo-", dir=workdir) as tmp:
        root = Path(tmp)
        db_path = root / "app.db"
        say(f"building the application database ({config.rows:,} rows)")
        t0 = time.perf_counter()
        build_database(db_path, config.rows, seed=config.seed, payload_bytes=config.payload_bytes)
        build_seconds = time.perf_counter() - t0
        sampler = ZipfSampler(config.rows, config.zipf_s, seed=config.seed)
        common: dict[str, Any] = {
            "duration": config.duration,
            "threads": config.threads,
            "sampler": sampler,
            "seed": config.seed,
            "write_rate": config.write_rate,
            "db_latency": config.db_latency,
        }
        say(f"phase 1/2: {config.threads} readers, no cache, {config.duration:g} s")
        uncached = run_phase(db_path, UncachedBackend(), **common)
        say(f"phase 2/2: {config.threads} readers through stratacache (memory + SQLite), {config.duration:g} s")
        with sc.Cache(
            sc.MemoryTier(),
            sc.SQLiteTier(root / "cache.db"),
            namespace="demo",
            ttl=config.ttl,
            policy=config.policy(),
        ) as cache:
            backend = StrataBackend(cache)
            cached = run_phase(db_path, backend, **common)
    per_request_u = _ratio(uncached.db_queries, uncached.requests)
    per_request_c = _ratio(cached.db_queries, cached.requests)
    return DemoResult(
        config=config,
        build_seconds=build_seconds,
        uncached=uncached,
        cached=cached,
        speedup=_ratio(cached.throughput, uncached.throughput),
        p50_speedup=_ratio(uncached.p50_us, cached.p50_us),
        p99_speedup=_ratio(uncached.p99_us, cached.p99_us),
        db_query_reduction=1.0 - _ratio(per_request_c, per_request_u) if per_request_u else 0.0,
    )


# ---------------------------------------------------------------------------------------------- demo --redis


def _commit_new_version(conn: sqlite3.Connection, row_id: int, rng: random.Random) -> int:
    """The writer's transaction: bump the row's version (with a new payload) and commit; return the version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute(
            "UPDATE items SET version = version + 1, payload = ? WHERE id = ? RETURNING version",
            (rng.randbytes(8).hex(), row_id),
        ).fetchone()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(version)


class DemoError(Exception):
    """The demo cannot run as asked (a bad ``--redis`` URL, an unreachable server); the message says why."""


REDIS_WORKERS: Final = 2
"""Worker processes of ``demo --redis``, each with its own L1 and its own readers."""
_BUCKET: Final = 0.1  # seconds per timeline bucket
_OUTAGE_MAX: Final = 3.0  # seconds the injected outage lasts at most
_READY_TIMEOUT: Final = 60.0  # seconds a worker may take to start (spawn, imports, Zipf table, cache)


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """One window of the cached phase of ``demo --redis``, over every worker process.

    Attributes:
        name: ``"before"``, ``"during"`` or ``"after"`` the injected outage.
        start, end: seconds since the phase started.
        requests, db_queries, errors: reads completed, database queries and errors raised to readers, by the
            0.1 s bucket they ended in.
        stale_reads, max_staleness: reads that *started* in the window and were stale, and the worst staleness.
        writes: the writer's writes (commit, then invalidation) that completed in the window.
    """

    name: str
    start: float
    end: float
    requests: int
    db_queries: int
    errors: int
    stale_reads: int
    max_staleness: float
    writes: int

    @property
    def seconds(self) -> float:
        """The window's length."""
        return max(0.0, self.end - self.start)

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return _ratio(self.requests, self.seconds)

    @property
    def db_rate(self) -> float:
        """Database queries per second."""
        return _ratio(self.db_queries, self.seconds)


@dataclass(frozen=True, slots=True)
class OutageResult:
    """The outage injected in the cached phase: Redis blackholed by the fault proxy from ``began`` to ``ended``.

    Attributes:
        began, ended: seconds since the phase started.
        windows: before, during and after the outage.
        breaker_paths: per process (worker 1, worker 2, then the writer), the breaker states it went through,
            sampled every 10 ms (a half-open probe that succeeds at once can fall between two samples).
        detection: seconds from the blackhole until every worker's breaker had opened (``None``: one never did).
        recovery: seconds from the heal until every process's breaker was closed again and every worker's
            backplane link resubscribed, for good (``None``: not recovered when the phase ended).
        events: ``(process, seconds, what, state)``: every sampled transition.
    """

    began: float
    ended: float
    windows: tuple[WindowSummary, ...]
    breaker_paths: tuple[tuple[str, tuple[str, ...]], ...]
    detection: float | None
    recovery: float | None
    events: tuple[tuple[str, float, str, str], ...]

    @property
    def seconds(self) -> float:
        """How long Redis was unreachable."""
        return self.ended - self.began


@dataclass(frozen=True, slots=True)
class WriterResult:
    """The writer of ``demo --redis`` (in the parent process): writes, errors, slowest invalidation."""

    writes: int
    errors: int
    error_examples: tuple[str, ...]
    max_invalidate_ms: float


@dataclass(frozen=True, slots=True)
class RedisDemoResult:
    """``demo --redis``: both phases in :data:`REDIS_WORKERS` worker processes, and the injected outage.

    Attributes:
        config: the parameters (``threads`` readers per worker process).
        redis: the server, as ``redis://host:port/db`` (no credentials).
        options: the Redis tier as the processes use it (``url`` is the fault proxy's).
        uncached, cached: each worker process's results per phase.
        writers: the writer of each phase.
        outage: the outage injected in the cached phase.
    """

    config: DemoConfig
    redis: str
    options: RedisOptions
    build_seconds: float
    uncached: tuple[WorkerResult, ...]
    cached: tuple[WorkerResult, ...]
    writers: tuple[WriterResult, WriterResult]
    outage: OutageResult
    stratacache_version: str = field(default=sc.__version__)

    @staticmethod
    def total(phase: Sequence[WorkerResult], attr: str) -> int:
        """Sum of an integer attribute over the processes of a phase."""
        return sum(int(getattr(p, attr)) for p in phase)

    def throughput(self, phase: Sequence[WorkerResult]) -> float:
        """Requests per second of a phase, over every process."""
        seconds = max((p.seconds for p in phase), default=0.0)
        return _ratio(self.total(phase, "requests"), seconds)

    @property
    def errors(self) -> int:
        """Errors raised to callers (readers and writer) in the cached phase."""
        return self.total(self.cached, "errors") + self.writers[1].errors

    @property
    def stale_reads(self) -> int:
        """Stale reads in the cached phase, by the strict rule (any read older than a completed invalidation)."""
        return self.total(self.cached, "stale_reads")

    @property
    def lag_bound(self) -> float:
        """Seconds another process's L1 may lag an invalidation while Redis answers.

        A backplane message not delivered within 1.5 heartbeats means a lost link, which flushes the L1.
        """
        return 1.5 * self.options.heartbeat

    @property
    def outage_bound(self) -> float:
        """Seconds an L1 may serve an invalidated copy around an outage.

        The link's loss detection, then ``outage_l1_ttl``: copies cached while Redis is unreachable live no longer.
        """
        return self.lag_bound + self.options.outage_l1_ttl

    def within_bounds(self) -> bool:
        """Every stale read of the cached phase within its window's bound (see :attr:`lag_bound`)."""
        before, during, after = self.outage.windows
        return (
            before.max_staleness <= self.lag_bound
            and during.max_staleness <= self.outage_bound
            and after.max_staleness <= self.outage_bound
        )

    @property
    def ok(self) -> bool:
        """No error raised to a caller, no wrong row, no stale read uncached, cached ones within the bounds.

        Cached, staleness across processes is bounded, not zero (:attr:`lag_bound`, :attr:`outage_bound`).
        """
        return (
            all(p.wrong_rows == 0 and p.errors == 0 for p in (*self.uncached, *self.cached))
            and all(p.stale_reads == 0 for p in self.uncached)
            and self.writers[0].errors == 0
            and self.writers[1].errors == 0
            and self.within_bounds()
        )

    def verdict(self) -> str:
        """A one-line summary."""
        stale = self.stale_reads
        worst = max(w.max_staleness for w in self.outage.windows)
        if not self.ok:
            return (
                f"FAIL: {stale:,} stale read(s) (worst {worst * 1000:,.0f} ms), "
                f"{self.total(self.cached, 'wrong_rows')} wrong row(s) and {self.errors} error(s) raised to "
                f"callers with the cache; {self.total(self.uncached, 'stale_reads')} stale read(s) and "
                f"{self.total(self.uncached, 'errors') + self.writers[0].errors} error(s) without it"
            )
        recovered = (
            f"recovered {self.outage.recovery:.2f} s after it"
            if self.outage.recovery is not None
            else "had not recovered when the phase ended"
        )
        return (
            f"OK: {self.total(self.cached, 'requests'):,} reads in {len(self.cached)} processes kept coherent by "
            f"the Redis backplane across {self.writers[1].writes:,} writes; through a {self.outage.seconds:.1f} s "
            f"Redis outage 0 errors reached a caller and the cache {recovered}. {stale:,} read(s) lagged an "
            f"invalidation (worst {worst * 1000:,.0f} ms), all within the bounds: "
            f"{self.lag_bound * 1000:,.0f} ms of backplane lag, {self.outage_bound:g} s around the outage."
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``stratacache demo --redis URL --json`` prints)."""
        outage = asdict(self.outage)
        outage["windows"] = [
            {**asdict(w), "throughput": w.throughput, "db_rate": w.db_rate} for w in self.outage.windows
        ]
        return {
            "stratacache_version": self.stratacache_version,
            "config": asdict(self.config),
            "redis": self.redis,
            "options": {**asdict(self.options), "url": "<fault proxy>"},
            "processes": REDIS_WORKERS,
            "build_seconds": self.build_seconds,
            "uncached": [{**asdict(p), "stale_reads": p.stale_reads} for p in self.uncached],
            "cached": [{**asdict(p), "stale_reads": p.stale_reads} for p in self.cached],
            "writers": {"uncached": asdict(self.writers[0]), "cached": asdict(self.writers[1])},
            "outage": outage,
            "errors": self.errors,
            "stale_reads": self.stale_reads,
            "lag_bound": self.lag_bound,
            "outage_bound": self.outage_bound,
            "ok": self.ok,
            "verdict": self.verdict(),
        }


def check_redis_url(url: str) -> tuple[str, int, int]:
    """``(host, port, db)`` of a ``redis://`` URL the demo can put its fault proxy in front of, once it answers.

    Raises:
        DemoError: the URL is not a ``redis://host:port/db`` URL, redis-py is missing, or the server does not
            answer a PING within 2 s.
    """
    try:
        spec = sc.RedisTier(url)
    except sc.ConfigError as exc:
        raise DemoError(f"bad --redis URL {url!r}: {exc}") from None
    if spec.kind != "redis" or spec.tls or len(spec.hosts) != 1:
        raise DemoError(
            f"--redis needs a plain redis://host:port/db URL (the demo puts a TCP fault proxy in front of one "
            f"server), got {url!r}"
        )
    try:
        import redis
        import redis.backoff
        import redis.retry
    except ImportError:
        raise DemoError("--redis needs redis-py: pip install 'stratacache[redis]'") from None
    (host, port), db = spec.hosts[0], spec.db
    client = redis.Redis(
        host=host,
        port=port,
        db=db,
        username=spec.username,
        password=spec.password,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise DemoError(f"cannot reach the Redis server at {host}:{port} (--redis {_public_url(url)}): {exc}") from None
    finally:
        client.close()
    return host, port, db


def _public_url(url: str) -> str:
    """``url`` without its credentials."""
    parts = urllib.parse.urlsplit(url.strip())
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _via(url: str, host: str, port: int) -> str:
    """``url`` pointed at ``host:port`` instead, credentials and database kept."""
    parts = urllib.parse.urlsplit(url.strip())
    auth, at, _ = parts.netloc.rpartition("@")
    netloc = f"{auth}{at}{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _delete_prefix(url: str, prefix: str) -> None:
    """Remove every key the demo wrote (they all start with its unique ``prefix``); best effort."""
    import redis

    spec = sc.RedisTier(url)
    (host, port), db = spec.hosts[0], spec.db
    with (
        contextlib.suppress(redis.exceptions.RedisError, OSError),
        redis.Redis(
            host=host, port=port, db=db, username=spec.username, password=spec.password, socket_timeout=5.0
        ) as client,
    ):
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)


class _Writer:
    """The writer of ``demo --redis``: commit a row, invalidate it through its own cache, publish it as done."""

    def __init__(
        self,
        db_path: Path,
        backend: Backend,
        sampler: ZipfSampler,
        *,
        seed: int,
        write_rate: float,
        done: Any,
    ) -> None:
        self.db_path = db_path
        self.backend = backend
        self.sampler = sampler
        self.seed = seed
        self.write_rate = write_rate
        self.done = done
        self.stop = threading.Event()
        self.completed: list[float] = []  # monotonic time each write completed
        self.errors: list[str] = []
        self.error_count = 0
        self.slowest = 0.0
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._guarded, name="demo-writer", daemon=True)

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # re-raised by the parent once the phase is over
            self.failure = exc

    def _run(self) -> None:
        if self.write_rate <= 0:
            return
        rng = random.Random(self.seed * 1_000_003 - 1)  # noqa: S311 - a load model
        interval = 1.0 / self.write_rate
        conn = connect(self.db_path)
        try:
            next_at = time.monotonic()
            while not self.stop.is_set():
                row_id = self.sampler.sample(rng)
                version = _commit_new_version(conn, row_id, rng)
                t0 = time.perf_counter()
                try:
                    self.backend.invalidate(row_id)
                except Exception as exc:  # counted: the demo requires none; the write is not complete
                    self.error_count += 1
                    if len(self.errors) < _MAX_STALE_EXAMPLES:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                else:
                    self.slowest = max(self.slowest, time.perf_counter() - t0)
                    self.done[row_id] = version  # readers starting from now on must see this version
                    self.completed.append(time.monotonic())
                next_at += interval
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            conn.close()

    def result(self) -> WriterResult:
        return WriterResult(len(self.completed), self.error_count, tuple(self.errors), self.slowest * 1000)


def _run_processes(
    ctx: Any,
    config: DemoConfig,
    db_path: Path,
    sampler: ZipfSampler,
    *,
    options: RedisOptions | None,
    outage: tuple[float, float] | None = None,
    proxy: Any = None,
) -> tuple[tuple[WorkerResult, ...], _Writer, tuple[float, float, float], list[tuple[str, float, str, str]]]:
    """Run one phase in :data:`REDIS_WORKERS` processes and the writer here; blackhole ``proxy`` over ``outage``.

    Returns:
        The workers' results, the writer, the marks (phase start, outage start and end: monotonic times, 0 when
        there was no outage) and the writer's breaker transitions.

    Raises:
        DemoError: a worker failed to start or failed while running.
    """
    channels = WorkerChannels(
        done=ctx.RawArray("q", config.rows + 1),
        marks=ctx.RawArray("d", 3),
        start=ctx.Event(),
        stop=ctx.Event(),
        results=ctx.Queue(),
    )
    specs = [
        WorkerSpec(
            index=i,
            db_path=str(db_path),
            rows=config.rows,
            zipf_s=config.zipf_s,
            seed=config.seed,
            threads=config.threads,
            db_latency=config.db_latency,
            bucket=_BUCKET,
            redis=options,
        )
        for i in range(REDIS_WORKERS)
    ]
    procs = [
        ctx.Process(target=worker_main, args=(s, channels), name=f"stratacache-demo-{s.index + 1}", daemon=True)
        for s in specs
    ]
    writer_cache = None if options is None else options.cache(l1=False)
    backend: Backend = UncachedBackend() if writer_cache is None else StrataBackend(writer_cache)
    writer = _Writer(db_path, backend, sampler, seed=config.seed, write_rate=config.write_rate, done=channels.done)
    events: list[tuple[str, float, str, str]] = []
    try:
        for p in procs:
            p.start()
        _collect(channels.results, "ready", procs, _READY_TIMEOUT)
        t0 = time.monotonic()
        channels.marks[0] = t0
        channels.start.set()
        writer.thread.start()
        _drive(channels, writer_cache, proxy, t0=t0, duration=config.duration, outage=outage, events=events)
        channels.stop.set()
        writer.stop.set()
        writer.thread.join()
        results = _collect(channels.results, "result", procs, _READY_TIMEOUT)
    finally:
        channels.stop.set()
        writer.stop.set()
        channels.start.set()  # a worker still waiting to start exits at once
        for p in procs:
            if p.pid is None:  # never started
                continue
            p.join(10.0)
            if p.is_alive():
                p.terminate()
                p.join(5.0)
        if writer_cache is not None:
            writer_cache.close()
    if writer.failure is not None:
        raise DemoError(f"the writer failed: {type(writer.failure).__name__}: {writer.failure}")
    marks = (channels.marks[0], channels.marks[1], channels.marks[2])
    return tuple(results[i] for i in range(len(procs))), writer, marks, events


def _collect(queue: Any, kind: str, procs: Sequence[Any], timeout: float) -> dict[int, Any]:
    """Wait for one message of ``kind`` from each worker process.

    Raises:
        DemoError: a worker reported an error, died, or did not report in time.
    """
    got: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(procs):
        try:
            what, index, payload = queue.get(timeout=0.2)
        except Exception:  # queue.Empty: is everybody still alive?
            for i, p in enumerate(procs):
                if i not in got and p.exitcode is not None:
                    raise DemoError(f"worker process {i + 1} exited with status {p.exitcode}") from None
            if time.monotonic() > deadline:
                raise DemoError(f"a worker process did not report ({kind}) within {timeout:g} s") from None
            continue
        if what == "error":
            raise DemoError(f"worker process {index + 1} failed: {payload}")
        if what == kind:
            got[index] = payload
    return got


def _drive(
    channels: WorkerChannels,
    writer_cache: sc.Cache | None,
    proxy: Any,
    *,
    t0: float,
    duration: float,
    outage: tuple[float, float] | None,
    events: list[tuple[str, float, str, str]],
) -> None:
    """Run the phase's clock: blackhole and heal the proxy on time, record the writer's breaker every 10 ms."""
    breaker: Any = None
    if writer_cache is not None:
        store: Any = writer_cache._lower[0]  # the writer's Redis tier, its only tier
        breaker = store.breaker
    last = None
    plan: list[tuple[float, int]] = []
    if outage is not None and proxy is not None:
        plan = [(outage[0], 1), (outage[1], 2)]
    end = t0 + duration
    while True:
        now = time.monotonic()
        if breaker is not None and breaker.state != last:
            last = breaker.state
            events.append(("writer", now - t0, "breaker", last))
        if plan and now >= t0 + plan[0][0]:
            _, mark = plan.pop(0)
            if mark == 1:
                channels.marks[1] = time.monotonic()
                proxy.blackhole()
            else:
                proxy.heal()
                channels.marks[2] = time.monotonic()
        if now >= end:
            return
        time.sleep(min(0.01, max(0.0, end - now)))


def _outage_result(
    cached: Sequence[WorkerResult],
    writer: _Writer,
    marks: tuple[float, float, float],
    writer_events: list[tuple[str, float, str, str]],
) -> OutageResult:
    t0, began_at, ended_at = marks
    began, ended = began_at - t0, ended_at - t0
    seconds = max((p.seconds for p in cached), default=0.0)
    bounds = ((0.0, began), (began, ended), (ended, max(ended, seconds)))
    writes = [t - t0 for t in writer.completed]
    windows = []
    for w, (name, (lo, hi)) in enumerate(zip(WINDOWS, bounds, strict=True)):
        requests = queries = errors = 0
        for p in cached:
            for b, (r, q, e) in enumerate(p.buckets):
                if lo <= (b + 0.5) * _BUCKET < hi:
                    requests, queries, errors = requests + r, queries + q, errors + e
        windows.append(
            WindowSummary(
                name=name,
                start=lo,
                end=hi,
                requests=requests,
                db_queries=queries,
                errors=errors + (writer.error_count if name == "during" else 0),
                stale_reads=sum(p.windows[w].stale_reads for p in cached),
                max_staleness=max((p.windows[w].max_staleness for p in cached), default=0.0),
                writes=sum(1 for t in writes if lo <= t < hi),
            )
        )
    events = [(f"worker {p.index + 1}", t, what, state) for p in cached for t, what, state in p.events]
    events += writer_events
    events.sort(key=lambda e: e[1])
    processes = [f"worker {p.index + 1}" for p in cached] + ["writer"]
    paths = []
    for proc in processes:
        states: list[str] = []
        for who, _t, what, state in events:
            if who == proc and what == "breaker" and (not states or states[-1] != state):
                states.append(state)
        paths.append((proc, tuple(states)))
    opened = [
        min(
            (t for who, t, what, s in events if who == proc and what == "breaker" and s == "open" and t >= began),
            default=None,
        )
        for proc in processes[:-1]
    ]
    detection = None if not opened or None in opened else max(o - began for o in opened if o is not None)
    return OutageResult(
        began=began,
        ended=ended,
        windows=tuple(windows),
        breaker_paths=tuple(paths),
        detection=detection,
        recovery=_recovery(events, processes, ended),
        events=tuple(events),
    )


def _recovery(events: Sequence[tuple[str, float, str, str]], processes: Sequence[str], healed: float) -> float | None:
    """Seconds after ``healed`` until every process was healthy (breaker closed, link subscribed) for good."""
    latest = healed
    for proc in processes:
        state = {"breaker": "closed", "backplane": "subscribed"}
        good_since: float | None = healed
        for who, t, what, s in events:
            if who != proc:
                continue
            state[what] = s
            healthy = state["breaker"] == "closed" and state["backplane"] == "subscribed"
            if not healthy:
                good_since = None
            elif good_since is None:
                good_since = t
        if good_since is None:
            return None
        latest = max(latest, good_since)
    return latest - healed


def run_redis_demo(
    config: DemoConfig | None = None,
    redis_url: str = "",
    *,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    policy: bool = False,
) -> RedisDemoResult:
    """``stratacache demo --redis URL``: two worker processes share Redis as L2, and Redis goes away for a while.

    Both phases run :data:`REDIS_WORKERS` worker processes (multiprocessing, spawn) of ``config.threads``
    readers each; the writer runs in this process. Uncached, every read queries the database. Cached, each worker
    reads through its own ``Cache(MemoryTier(), RedisTier(...))``, and the writer invalidates through a cache of
    its own: every L1 is kept coherent by the Redis backplane alone. The processes reach Redis through a
    :class:`stratacache.testing.FaultProxy`, which blackholes it (connections open, nothing answered) for up to
    3 s in the middle of the cached phase; the server itself is never touched. The keys go under a prefix unique
    to the run and are deleted afterwards.

    The caches use the default TTL and no :class:`~stratacache.LoadPolicy` unless ``policy`` is true; then
    ``config.ttl`` and :meth:`DemoConfig.policy`. Off by default: a stale window lets an L1 copy cached during the
    outage be served past ``outage_l1_ttl`` (its expiry is capped, its stale window is not), beyond the bounds
    this demo checks.

    Raises:
        DemoError: a bad or unreachable ``redis_url``, or a worker process that failed.
        ValueError: bad parameters.
    """
    import multiprocessing

    from stratacache.testing import FaultProxy

    config = DemoConfig() if config is None else config
    say = progress if progress is not None else (lambda _message: None)
    host, port, _db = check_redis_url(redis_url)
    ctx = multiprocessing.get_context("spawn")
    prefix = f"scdemo-{uuid.uuid4().hex[:12]}:"
    outage_len = min(_OUTAGE_MAX, 0.3 * config.duration)
    outage_at = 0.35 * config.duration
    with tempfile.TemporaryDirectory(prefix="stratacache-demo-", dir=workdir) as tmp:
        db_path = Path(tmp) / "app.db"
        say(f"building the application database ({config.rows:,} rows)")
        t0 = time.perf_counter()
        build_database(db_path, config.rows, seed=config.seed, payload_bytes=config.payload_bytes)
        build_seconds = time.perf_counter() - t0
        sampler = ZipfSampler(config.rows, config.zipf_s, seed=config.seed)
        say(f"phase 1/2: {REDIS_WORKERS} processes x {config.threads} readers, no cache, {config.duration:g} s")
        uncached, uncached_writer, _marks, _events = _run_processes(ctx, config, db_path, sampler, options=None)
        say(
            f"phase 2/2: {REDIS_WORKERS} processes x {config.threads} readers through memory + Redis, "
            f"{config.duration:g} s; Redis blackholed from {outage_at:g} s for {outage_len:g} s"
        )
        with FaultProxy(host, port) as proxy:
            options = RedisOptions(
                url=_via(redis_url, proxy.host, proxy.port),
                prefix=prefix,
                ttl=config.ttl if policy else None,
                policy=config.policy() if policy else None,
            )
            try:
                cached, writer, marks, events = _run_processes(
                    ctx,
                    config,
                    db_path,
                    sampler,
                    options=options,
                    outage=(outage_at, outage_at + outage_len),
                    proxy=proxy,
                )
            finally:
                proxy.heal()
                _delete_prefix(redis_url, prefix)
    return RedisDemoResult(
        config=config,
        redis=_public_url(redis_url),
        options=options,
        build_seconds=build_seconds,
        uncached=uncached,
        cached=cached,
        writers=(uncached_writer.result(), writer.result()),
        outage=_outage_result(cached, writer, marks, events),
    )
