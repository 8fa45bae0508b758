"""A staleness checker for cache tests: ``from stratacache.testing import staleness``.

Record a history of versioned writes and of reads, then ask whether any read was stale::

    history = staleness.History()
    with history.reading(key) as r:            # times the read
        r.version = cache.get_or_load(key, load)["version"]
    ...                                        # in the writer, after the commit:
    history.write_committed(key, 2)
    cache.delete(key)
    history.invalidation_done(key, 2)          # the invalidation has returned
    report = history.check()
    assert report.stale_reads == 0, report.examples

**The rule** (bounded staleness per key): a read of ``key`` that returned version ``v`` and started at ``start``
is *stale* if some version ``v' > v`` of ``key`` had its invalidation completed strictly before ``start``. A read
that overlaps an invalidation may return either version and is never stale; reads need not be linearizable.

Versions are integers that grow per key (a row's version column, a counter). A read that went to the source
instead of a cache can be recorded with ``version=None``: it is counted as a miss and not checked.

The check is conservative: take a read's start *before* the read is issued and an invalidation's time *after*
it returned (what :meth:`History.reading` and the default ``at`` of :meth:`History.invalidation_done` do), and
every read it reports stale really was. Times from several threads must come from one clock
(:func:`time.monotonic` by default; inject another, e.g. ``FakeClock().monotonic``).

By default the history keeps every read until :meth:`History.check`, which is then exact whatever the order the
events were recorded in; ``History(keep_reads=False)`` judges reads as they come, for long runs.
Everything here is the standard library and thread-safe (one lock); nothing sleeps.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

__all__ = ["History", "Read", "Report", "StaleRead"]


@dataclass(frozen=True, slots=True)
class StaleRead:
    """One stale read, for diagnosis.

    Attributes:
        key: the key read.
        version: the version the read returned.
        newer_version: the newest version whose invalidation had completed before the read started.
        start, end: when the read started and ended.
        invalidated_at: when the first version newer than ``version`` finished its invalidation.
        committed_at: when that version was committed, if :meth:`History.write_committed` recorded it.
        staleness: ``start - invalidated_at``: how long the returned version had been known to be stale.
    """

    key: Hashable
    version: int
    newer_version: int
    start: float
    end: float
    invalidated_at: float
    committed_at: float | None
    staleness: float


@dataclass(frozen=True, slots=True)
class Report:
    """What :meth:`History.check` found.

    Attributes:
        reads: reads checked (those that returned a version).
        misses: reads recorded with ``version=None`` (served by the source; not checked).
        stale_reads: checked reads that were stale.
        examples: the first stale reads, in the order they were recorded (at most ``max_examples``).
        max_staleness: the largest ``staleness`` among stale reads (``0.0`` when there is none).
        writes: versions recorded by :meth:`History.write_committed`.
        invalidations: invalidations recorded by :meth:`History.invalidation_done`.
    """

    reads: int
    misses: int
    stale_reads: int
    examples: tuple[StaleRead, ...]
    max_staleness: float
    writes: int = 0
    invalidations: int = 0

    @property
    def ok(self) -> bool:
        """No stale read."""
        return self.stale_reads == 0


@dataclass(slots=True)
class Read:
    """A read being timed by :meth:`History.reading`: set :attr:`version` to what the read returned.

    Leave it ``None`` for a read answered by the source rather than a cache (a miss: counted, not checked).
    """

    key: Hashable
    start: float
    version: int | None = None
    end: float | None = None


class History:
    """A thread-safe record of versioned writes, invalidations and reads, checked for bounded staleness.

    By default every read is kept until :meth:`check`, which is then exact whatever the order events were
    recorded in. ``keep_reads=False`` judges each read as it is recorded, against the invalidations recorded
    before it, and keeps only the counts and the examples: memory stays bounded over long runs. That is exact
    when invalidations take the default ``at`` (the clock is read under the history's lock, so an invalidation
    that completed before a read started is always recorded before that read ends); an explicit ``at`` earlier
    than the start of a read of the same key already judged is refused.

    Args:
        clock: the time source of every default timestamp (and of :meth:`reading`); it must be shared by all
            threads recording into this history. Default: :func:`time.monotonic`.
        max_examples: how many stale reads :meth:`check` reports in detail.
        keep_reads: keep every read for :meth:`check` (``True``), or judge reads as they are recorded.

    Raises:
        ValueError: ``max_examples`` is negative.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_examples: int = 10, keep_reads: bool = True
    ) -> None:
        if max_examples < 0:
            raise ValueError("max_examples must not be negative")
        self._clock = clock
        self._max_examples = max_examples
        self._keep_reads = keep_reads
        self._lock = threading.Lock()
        self._commits: dict[Hashable, dict[int, float]] = {}
        self._index: dict[Hashable, _KeyIndex] = {}
        self._reads: list[tuple[Hashable, int | None, float, float]] = []
        self._judged = _Tally(max_examples)  # reads judged as recorded (keep_reads=False)
        self._judged_start: dict[Hashable, float] = {}  # per key, the latest start of a judged read
        self._writes = 0
        self._invalidation_count = 0

    def now(self) -> float:
        """The current time on this history's clock."""
        return self._clock()

    def write_committed(self, key: Hashable, version: int, at: float | None = None) -> None:
        """Record that ``version`` of ``key`` was committed to the source at ``at`` (default: now).

        Optional: commits only enrich the examples (:attr:`StaleRead.committed_at`); the rule uses invalidations.

        Raises:
            TypeError: ``version`` is not an ``int``.
        """
        _check_version(version)
        with self._lock:
            when = self._clock() if at is None else float(at)
            self._commits.setdefault(key, {})[version] = when
            self._writes += 1

    def invalidation_done(self, key: Hashable, version: int, at: float | None = None) -> None:
        """Record that the writer's invalidation of ``key`` for ``version`` returned at ``at`` (default: now).

        Call it after the cache's ``delete`` / ``invalidate_tags`` has returned: from then on, a read of ``key``
        that starts must not return a version older than ``version``.

        Raises:
            TypeError: ``version`` is not an ``int``.
            ValueError: with ``keep_reads=False``, ``at`` is before the start of a read of ``key`` already judged.
        """
        _check_version(version)
        with self._lock:
            when = self._clock() if at is None else float(at)
            if at is not None and when < self._judged_start.get(key, when):
                raise ValueError(
                    f"invalidation of {key!r} at {when} is earlier than a read already judged without it "
                    "(keep_reads=False): record it before, or leave `at` to the history's clock"
                )
            index = self._index.get(key)
            if index is None:
                index = self._index[key] = _KeyIndex()
            index.add(when, version)
            self._invalidation_count += 1

    def read(self, key: Hashable, version: int | None, start: float, end: float) -> None:
        """Record a read of ``key`` that started at ``start``, ended at ``end`` and returned ``version``.

        ``version=None`` records a miss served by the source (counted, not checked).

        Raises:
            TypeError: ``version`` is neither an ``int`` nor ``None``.
            ValueError: ``end`` is before ``start``.
        """
        if version is not None:
            _check_version(version)
        if end < start:
            raise ValueError(f"a read cannot end ({end}) before it starts ({start})")
        start, end = float(start), float(end)
        with self._lock:
            if self._keep_reads:
                self._reads.append((key, version, start, end))
                return
            self._judge(self._judged, key, version, start, end)
            if version is not None and start > self._judged_start.get(key, start - 1.0):
                self._judged_start[key] = start

    def reading(self, key: Hashable) -> _Reading:
        """Time one read of ``key``: ``with history.reading(key) as r: r.version = ...``.

        The start is taken on entry, the end on exit, and the read is recorded on a normal exit (with
        ``r.version``, ``None`` meaning a miss). A read that raises is not recorded.
        """
        return _Reading(self, key)

    def check(self) -> Report:
        """Check every read recorded so far against every invalidation recorded so far.

        The history is left as it is: record more and check again.
        """
        with self._lock:
            tally = self._judged.copy()
            for key, version, start, end in self._reads:
                self._judge(tally, key, version, start, end)
            return Report(
                reads=tally.checked,
                misses=tally.misses,
                stale_reads=tally.stale,
                examples=tuple(tally.examples),
                max_staleness=tally.worst,
                writes=self._writes,
                invalidations=self._invalidation_count,
            )

    def _judge(self, tally: _Tally, key: Hashable, version: int | None, start: float, end: float) -> None:
        """Add one read to ``tally`` (the lock is held)."""
        if version is None:
            tally.misses += 1
            return
        tally.checked += 1
        index = self._index.get(key)
        found = None if index is None else index.stale(version, start)
        if found is None:
            return
        newer, invalidated_at, first_newer = found
        staleness = start - invalidated_at
        tally.stale += 1
        tally.worst = max(tally.worst, staleness)
        if len(tally.examples) < tally.max_examples:
            tally.examples.append(
                StaleRead(
                    key=key,
                    version=version,
                    newer_version=newer,
                    start=start,
                    end=end,
                    invalidated_at=invalidated_at,
                    committed_at=self._commits.get(key, {}).get(first_newer),
                    staleness=staleness,
                )
            )


@dataclass(slots=True)
class _Tally:
    max_examples: int
    checked: int = 0
    misses: int = 0
    stale: int = 0
    worst: float = 0.0
    examples: list[StaleRead] = field(default_factory=list)

    def copy(self) -> _Tally:
        return _Tally(self.max_examples, self.checked, self.misses, self.stale, self.worst, list(self.examples))


class _KeyIndex:
    """One key's invalidations by completion time, with the running maximum of their versions."""

    __slots__ = ("_at", "_max", "_version")

    def __init__(self) -> None:
        self._at: list[float] = []
        self._version: list[int] = []
        self._max: list[int] = []

    def add(self, at: float, version: int) -> None:
        """Insert an invalidation (in time order: an append, unless recorded late)."""
        i = bisect.bisect_right(self._at, at)
        self._at.insert(i, at)
        self._version.insert(i, version)
        running: list[int] = []
        top = self._max[i - 1] if i else version
        for v in self._version[i:]:
            top = max(top, v)
            running.append(top)
        self._max[i:] = running

    def stale(self, version: int, start: float) -> tuple[int, float, int] | None:
        """``(newest version invalidated before start, when the first newer one was, its version)`` or None."""
        done = bisect.bisect_left(self._at, start)  # invalidations completed strictly before the read started
        if done == 0 or self._max[done - 1] <= version:
            return None
        first = bisect.bisect_right(self._max, version)  # the first invalidation of a newer version
        return self._max[done - 1], self._at[first], self._version[first]


class _Reading:
    __slots__ = ("_history", "_read")

    def __init__(self, history: History, key: Hashable) -> None:
        self._history = history
        self._read = Read(key, 0.0)

    def __enter__(self) -> Read:
        self._read.start = self._history.now()
        return self._read

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            return
        r = self._read
        r.end = self._history.now()
        self._history.read(r.key, r.version, r.start, r.end)


def _check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"a version is an int, got {version!r}")
