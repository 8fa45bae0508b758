"""Per-tier counters (plain ints: no lock on the hit path) and the frozen :class:`Stats` snapshot."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Final

__all__ = ["LAG_BUCKETS", "LOAD_BUCKETS", "EngineCounters", "Stats", "TierCounters", "TierStats"]

LOAD_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the load-duration histogram; one more bucket counts everything slower."""

LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the invalidation-lag histogram (another process's change -> known here)."""


class TierCounters:
    """Mutable counters of one tier.

    Increments are plain ``+=`` on slotted ints: no lock on the hit path. Under the GIL an increment racing
    another thread's can, rarely, be lost; counts are for monitoring, never for decisions.
    """

    __slots__ = ("deletes", "errors", "evictions", "expirations", "hits", "misses", "sets", "skipped", "stale")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.stale = 0
        self.sets = 0
        self.deletes = 0
        self.evictions = 0
        """Entries dropped to honour the tier's count or byte bound."""
        self.expirations = 0
        """Entries dropped because their time was up (reclaimed, not evicted)."""
        self.errors = 0
        self.skipped = 0
        """Calls not attempted because the tier was known to be down (circuit breaker open, journal pending)."""

    def snapshot(self, name: str, entries: int, nbytes: int) -> TierStats:
        """Freeze the counters together with the tier's current size."""
        return TierStats(
            name=name,
            hits=self.hits,
            misses=self.misses,
            sets=self.sets,
            deletes=self.deletes,
            evictions=self.evictions,
            expirations=self.expirations,
            errors=self.errors,
            entries=entries,
            bytes=nbytes,
            skipped=self.skipped,
        )


class EngineCounters:
    """Engine-wide counters: loads, load errors, coalesced waits, invalidations."""

    __slots__ = (
        "coalesced",
        "db_invalidations",
        "invalidations",
        "lag_histogram",
        "lag_time",
        "load_errors",
        "load_histogram",
        "load_time",
        "load_timeouts",
        "loads",
        "lock_waits",
        "refresh_errors",
        "refreshes",
        "remote_invalidations",
        "stale_served",
    )

    def __init__(self) -> None:
        self.loads = 0
        self.load_errors = 0
        self.load_time = 0.0
        self.coalesced = 0
        self.invalidations = 0
        self.stale_served = 0
        self.refreshes = 0
        self.refresh_errors = 0
        self.load_timeouts = 0
        self.lock_waits = 0
        self.remote_invalidations = 0
        self.db_invalidations = 0
        self.load_histogram = [0] * (len(LOAD_BUCKETS) + 1)
        self.lag_histogram = [0] * (len(LAG_BUCKETS) + 1)
        self.lag_time = 0.0

    def observe_load(self, seconds: float) -> None:
        """Count one loader call of ``seconds`` in the load-duration histogram."""
        self.load_histogram[bisect.bisect_left(LOAD_BUCKETS, seconds)] += 1

    def observe_lags(self, lags: tuple[float, ...]) -> None:
        """Count invalidations that took ``lags`` seconds from another process's change to this one."""
        histogram = self.lag_histogram
        for lag in lags:
            lag = max(lag, 0.0)  # noqa: PLW2901 - clocks of two hosts: a negative lag is skew, counted as none
            histogram[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
            self.lag_time += lag


@dataclass(frozen=True, slots=True)
class TierStats:
    """Counters of one tier at the time of :meth:`stratacache.Cache.stats`."""

    name: str
    hits: int
    misses: int
    sets: int
    deletes: int
    evictions: int
    errors: int
    entries: int
    bytes: int
    expirations: int = 0
    """Entries dropped because their time was up (``evictions`` counts those dropped for room)."""
    skipped: int = 0
    """Calls not attempted because the tier was known to be down (breaker open, invalidations pending)."""
    breaker: str | None = None
    """Circuit breaker state of a shared network tier (``closed``, ``open``, ``half_open``); ``None`` without one."""
    breaker_opened: int = 0
    """How many times the breaker opened."""
    backplane: str | None = None
    """``"up"`` or ``"lost"`` for a tier with a pub/sub backplane (Redis); ``None`` otherwise."""
    backplane_losses: int = 0
    """Times the backplane link was lost (each one flushed the L1)."""
    backplane_messages: int = 0
    """Invalidation messages received from other processes."""
    pending_invalidations: int = 0
    """Invalidations journaled while the tier was unreachable, not yet replayed (``-1``: overflowed)."""
    max_bytes: int | None = None
    """The tier's byte bound (``None``: none)."""

    @property
    def hit_ratio(self) -> float:
        """``hits / (hits + misses)``, 0.0 before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Stats:
    """A frozen snapshot of a cache's counters, one :class:`TierStats` per tier, L1 first.

    Attributes:
        namespace: the cache's namespace.
        tiers: per-tier counters, in lookup order.
        loads: loader calls made by ``get_or_load`` and decorated functions.
        load_errors: loader calls that raised.
        load_seconds: total time spent in loaders.
        coalesced: callers that waited for another caller's load instead of loading (single-flight).
        invalidations: ``invalidate_tags``/``clear``/``invalidate_namespace`` calls of this cache.
        stale_served: expired values served on purpose (stale-while-revalidate, fail-safe, soft timeout).
        refreshes: background refreshes started (stale-while-revalidate, early refresh, refresh-ahead).
        refresh_errors: background refreshes whose loader failed.
        load_timeouts: callers that stopped waiting for a load (soft or hard timeout, lease wait).
        lock_waits: loads that found another process's lease and waited for its value.
        remote_invalidations: changes made by other processes and applied here (key drops, generation moves,
            L1 flushes).
        load_histogram: loader calls per duration bucket (bounds :data:`LOAD_BUCKETS`, then slower).
        db_invalidations: invalidations driven by the database (PostgreSQL notifications).
        lag_histogram: invalidations from other processes per lag bucket (bounds :data:`LAG_BUCKETS`, then
            slower): from the change (its publication, on the writer's clock) to this process knowing it.
        lag_seconds: the sum of those lags.
        tenants: ``(tenant, hits, misses)`` per tenant when tenant tracking is on (``tenant_of``), busiest first.
    """

    namespace: str
    tiers: tuple[TierStats, ...]
    loads: int
    load_errors: int
    load_seconds: float
    coalesced: int
    invalidations: int
    stale_served: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    load_timeouts: int = 0
    lock_waits: int = 0
    remote_invalidations: int = 0
    load_histogram: tuple[int, ...] = ()
    db_invalidations: int = 0
    lag_histogram: tuple[int, ...] = ()
    lag_seconds: float = 0.0
    tenants: tuple[tuple[str, int, int], ...] = ()

    def __getitem__(self, name: str) -> TierStats:
        """The :class:`TierStats` of the tier named ``name`` (``"memory"``, ``"sqlite"``...)."""
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def hits(self) -> int:
        """Requests answered by any tier."""
        return sum(t.hits for t in self.tiers)

    @property
    def hit_ratio(self) -> float:
        """Share of lookups answered by some tier (a miss in L1 then a hit in L2 counts once, as a hit)."""
        if not self.tiers:
            return 0.0
        misses = self.tiers[-1].misses
        hits = self.hits
        total = hits + misses
        return hits / total if total else 0.0
