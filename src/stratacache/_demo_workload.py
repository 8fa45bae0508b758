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
import itertools
import random
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict, cast

from stratacache._staleness import History

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import stratacache as sc
    from stratacache._staleness import Report

__all__ = [
    "Backend",
    "Item",
    "StaleRead",
    "StalenessTracker",
    "StrataBackend",
    "UncachedBackend",
    "ZipfSampler",
    "build_database",
    "connect",
    "fetch_item",
    "read_versions",
    "stale_reads_of",
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


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: every SELECT is its own read transaction and sees every prior commit."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
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
