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

import functools
import itertools
import math
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import stratacache as sc
from stratacache._demo_workload import (
    _MAX_STALE_EXAMPLES,
    Backend,
    Item,
    StalenessTracker,
    StaleRead,
    StrataBackend,
    UncachedBackend,
    ZipfSampler,
    build_database,
    connect,
    fetch_item,
    stale_reads_of,
)
from stratacache._staleness import History

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

__all__ = [
    "Backend",
    "DemoConfig",
    "DemoResult",
    "Item",
    "PhaseResult",
    "StaleRead",
    "StalenessTracker",
    "StrataBackend",
    "TierResult",
    "UncachedBackend",
    "ZipfSampler",
    "build_database",
    "run_demo",
    "run_phase",
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

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 10, 10_000_000)
        _check_int("threads", self.threads, 1, 256)
        _check_int("payload_bytes", self.payload_bytes, 1, 1_000_000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_number("duration", self.duration, 0.05, 3600.0)
        _check_number("write_rate", self.write_rate, 0.0, 100_000.0)
        _check_number("zipf_s", self.zipf_s, 0.01, 10.0)
        _check_number("db_latency", self.db_latency, 0.0, 1.0)


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
        stale_reads: reads older than a version whose write and invalidation had completed before they began.
        wrong_rows: reads that returned another row than the one asked for (always a bug).
        throughput: requests per second.
        p50_us, p99_us, mean_us: read latency in microseconds.
        hit_ratio: share of requests answered by some cache tier (0 for the uncached phase).
        tiers: per-tier counters (empty for the uncached phase).
        loads, coalesced: loader calls, and callers that shared another caller's load (single-flight).
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
    stale_examples: tuple[StaleRead, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


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
        """No stale or wrong read in either phase."""
        return all(p.stale_reads == 0 and p.wrong_rows == 0 for p in (self.uncached, self.cached))

    def verdict(self) -> str:
        """A one-line summary."""
        c, u = self.cached, self.uncached
        if not self.ok:
            return (
                f"FAIL: {c.stale_reads} stale and {c.wrong_rows} wrong read(s) with the cache, "
                f"{u.stale_reads} stale and {u.wrong_rows} wrong without it"
            )
        faster = (
            f"{self.speedup:.2f}x the uncached throughput"
            if self.speedup >= 1
            else (f"{1 / self.speedup:.2f}x slower than uncached" if self.speedup > 0 else "no throughput measured")
        )
        return (
            f"OK: stratacache answered {c.hit_ratio:.1%} of {c.requests:,} reads from cache, "
            f"{faster}, {c.db_queries:,} database queries instead of {c.requests:,}, "
            f"and 0 stale reads across {c.writes:,} writes."
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
    db_queries: int = 0
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
    phase = _Phase(db_path, backend, sampler=sampler, seed=seed, write_rate=write_rate, db_latency=db_latency)
    seconds = phase.run(threads, duration)
    latencies = sorted(itertools.chain.from_iterable(s.latencies for s in phase.states))
    requests = len(latencies)
    stats = backend.stats()
    report = phase.history.check()
    return PhaseResult(
        name=backend.name,
        seconds=seconds,
        requests=requests,
        db_queries=sum(s.db_queries for s in phase.states),
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
        stale_examples=stale_reads_of(report),
    )


class _Phase:
    """The threads of one phase: readers that check every value, one writer that updates and invalidates."""

    def __init__(
        self,
        db_path: Path,
        backend: Backend,
        *,
        sampler: ZipfSampler,
        seed: int,
        write_rate: float,
        db_latency: float,
    ) -> None:
        self.db_path = db_path
        self.backend = backend
        self.sampler = sampler
        self.seed = seed
        self.write_rate = write_rate
        self.db_latency = db_latency
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
        loops = [functools.partial(self._read_loop, i) for i in range(threads)]
        names = [f"demo-reader-{i}" for i in range(threads)]
        workers = [
            threading.Thread(target=self._guarded, args=(loop,), name=name)
            for loop, name in zip([*loops, self._write_loop], [*names, "demo-writer"], strict=True)
        ]
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

    def _guarded(self, loop: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``loop`` with a connection of its own; an error stops the phase and is re-raised by :meth:`run`."""
        try:
            conn = connect(self.db_path)
            try:
                loop(conn)
            finally:
                conn.close()
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
            self._start.abort()

    def _read_loop(self, index: int, conn: sqlite3.Connection) -> None:
        state = self.states[index]
        rng = random.Random(self.seed * 1_000_003 + index)  # noqa: S311 - a load model
        latencies, clock, stop = state.latencies, time.perf_counter_ns, self.stop
        sample, read, history, latency = self.sampler.sample, self.backend.read, self.history, self.db_latency

        def load_row(row_id: int) -> Item:
            state.db_queries += 1
            item = fetch_item(conn, row_id)
            if latency:
                time.sleep(latency)  # the modelled network round trip (releases the GIL, as I/O does)
            return item

        self._start.wait()
        while not stop.is_set():
            row_id = sample(rng)
            start = history.now()  # before the read is issued, so a stale verdict is never a false alarm
            t0 = clock()
            item = read(row_id, functools.partial(load_row, row_id))
            latencies.append(clock() - t0)
            if item["id"] != row_id:
                state.wrong_rows += 1
            history.read(row_id, item["version"], start, history.now())

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        rng = random.Random(self.seed * 1_000_003 - 1)  # noqa: S311 - a load model
        self._start.wait()
        if self.write_rate <= 0:
            return
        interval = 1.0 / self.write_rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            row_id = self.sampler.sample(rng)
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
            self.history.write_committed(row_id, int(version))
            self.backend.invalidate(row_id)  # the write is complete once its invalidation has returned
            self.history.invalidation_done(row_id, int(version))
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
        with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(root / "cache.db"), namespace="demo") as cache:
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
