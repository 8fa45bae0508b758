"""Prometheus export (``stratacache[prometheus]``): a collector that reads caches' counters at scrape time.

The hot path pays nothing: counters are the plain ints every cache keeps anyway; :class:`CacheCollector` turns a
``stats()`` snapshot into metric families only when Prometheus scrapes. Every metric carries ``namespace`` (one
per cache) and, where it is per tier, ``tier`` (``memory``, ``sqlite``, ``redis``): bounded cardinality.

Usage::

    from stratacache.metrics.prometheus import register, start_http_server
    register(cache)                      # the default registry
    start_http_server(9464)              # 127.0.0.1 only, unless you pass addr
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import REGISTRY
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from stratacache.metrics.stats import LAG_BUCKETS, LOAD_BUCKETS, Stats

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.registry import CollectorRegistry

__all__ = ["BREAKER_STATES", "CacheCollector", "register", "start_http_server"]

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
"""``stratacache_breaker_state``: the value of each state."""

# per-tier counters: (metric name without prefix, TierStats attribute, help)
_TIER_COUNTERS = (
    ("sets", "sets", "Entries stored in the tier."),
    ("deletes", "deletes", "Keys deleted from the tier."),
    ("skipped", "skipped", "Calls not attempted: the tier was known to be down or owed invalidations."),
    ("breaker_opened", "breaker_opened", "Times the tier's circuit breaker opened."),
    ("backplane_losses", "backplane_losses", "Times the tier's backplane link was lost (the L1 was flushed)."),
    ("backplane_messages", "backplane_messages", "Invalidation messages received from other processes."),
)
# engine counters: (metric name without prefix, Stats attribute, help)
_ENGINE_COUNTERS = (
    ("loads", "loads", "Loader calls that returned a value (calls = loads + load_errors)."),
    ("load_errors", "load_errors", "Loader calls that raised (cancelled callers are not counted)."),
    ("coalesced", "coalesced", "Callers that waited for another caller's load (single-flight)."),
    ("lock_waits", "lock_waits", "Loads that waited for another process's lease."),
    ("load_timeouts", "load_timeouts", "Callers that stopped waiting for a load (LoadPolicy timeouts)."),
    ("stale_served", "stale_served", "Expired values served on purpose (stale-while-revalidate, fail-safe)."),
    ("refreshes", "refreshes", "Background refreshes started."),
    ("refresh_errors", "refresh_errors", "Background refreshes whose loader failed."),
)


class _HasStats(Protocol):
    @property
    def namespace(self) -> str: ...

    def stats(self) -> Stats: ...


class CacheCollector:
    """Collects ``stats()`` of every registered cache at scrape time (thread-safe)."""

    def __init__(self, *caches: _HasStats) -> None:
        self._caches: list[_HasStats] = list(caches)
        self._lock = threading.Lock()

    def add(self, cache: _HasStats) -> None:
        """Export one more cache (``Cache`` or ``AsyncCache``)."""
        with self._lock:
            self._caches.append(cache)

    def describe(self) -> list[Any]:
        """Nothing up front: the families depend on the caches (the registry then calls :meth:`collect`)."""
        return []

    def collect(self) -> Iterator[Any]:
        """The metric families of every cache, from one ``stats()`` snapshot each."""
        with self._lock:
            caches = list(self._caches)
        snapshots = []
        for cache in caches:
            try:
                snapshots.append(cache.stats())
            except Exception:  # noqa: S112 - a closed or broken cache must not break the scrape
                continue
        yield from _families(snapshots)


def _families(snapshots: list[Stats]) -> Iterator[Any]:
    requests = CounterMetricFamily(
        "stratacache_requests", "Lookups per tier by result.", labels=["namespace", "tier", "result"]
    )
    entries = GaugeMetricFamily("stratacache_entries", "Entries held by the tier.", labels=["namespace", "tier"])
    nbytes = GaugeMetricFamily("stratacache_bytes", "Bytes held by the tier.", labels=["namespace", "tier"])
    max_bytes = GaugeMetricFamily(
        "stratacache_max_bytes", "The tier's byte bound (absent without one).", labels=["namespace", "tier"]
    )
    breaker = GaugeMetricFamily(
        "stratacache_breaker_state",
        "Circuit breaker of a network tier: 0 closed, 1 half-open, 2 open.",
        labels=["namespace", "tier"],
    )
    backplane = GaugeMetricFamily(
        "stratacache_backplane_up",
        "1 while the tier's backplane link is up, 0 while lost.",
        labels=["namespace", "tier"],
    )
    pending = GaugeMetricFamily(
        "stratacache_pending_invalidations",
        "Invalidations journaled for an unreachable tier, not yet replayed (-1: overflowed).",
        labels=["namespace", "tier"],
    )
    tier_counters = {
        name: CounterMetricFamily(f"stratacache_{name}", text, labels=["namespace", "tier"])
        for name, _, text in _TIER_COUNTERS
    }
    engine_counters = {
        name: CounterMetricFamily(f"stratacache_{name}", text, labels=["namespace"])
        for name, _, text in _ENGINE_COUNTERS
    }
    evictions = CounterMetricFamily(
        "stratacache_evictions",
        "Entries dropped by the tier: for room (cause=capacity) or because their time was up (cause=expired).",
        labels=["namespace", "tier", "cause"],
    )
    invalidations = CounterMetricFamily(
        "stratacache_invalidations",
        "Invalidations by source: this process's API calls, other processes' changes (backplane), the database.",
        labels=["namespace", "source"],
    )
    durations = HistogramMetricFamily(
        "stratacache_load_duration_seconds", "Loader call durations, returned or raised.", labels=["namespace"]
    )
    lags = HistogramMetricFamily(
        "stratacache_invalidation_lag_seconds",
        "From another process's change (its publication, on that host's clock) to this process knowing it.",
        labels=["namespace", "source"],
    )
    tenants = CounterMetricFamily(
        "stratacache_tenant_requests",
        "Lookups per tenant by result (only with tenant_of; at most max_tenants tenants, then 'other').",
        labels=["namespace", "tenant", "result"],
    )
    for s in snapshots:
        ns = s.namespace
        for t in s.tiers:
            requests.add_metric([ns, t.name, "hit"], t.hits)
            requests.add_metric([ns, t.name, "miss"], t.misses)
            requests.add_metric([ns, t.name, "error"], t.errors)
            entries.add_metric([ns, t.name], t.entries)
            nbytes.add_metric([ns, t.name], t.bytes)
            if t.max_bytes is not None:
                max_bytes.add_metric([ns, t.name], t.max_bytes)
            if t.breaker is not None:
                breaker.add_metric([ns, t.name], BREAKER_STATES.get(t.breaker, 2))
            if t.backplane is not None:
                backplane.add_metric([ns, t.name], 1 if t.backplane == "up" else 0)
            pending.add_metric([ns, t.name], t.pending_invalidations)
            evictions.add_metric([ns, t.name, "capacity"], t.evictions)
            evictions.add_metric([ns, t.name, "expired"], t.expirations)
            for name, attr, _ in _TIER_COUNTERS:
                tier_counters[name].add_metric([ns, t.name], getattr(t, attr))
        requests.add_metric([ns, "any", "stale"], s.stale_served)
        for name, attr, _ in _ENGINE_COUNTERS:
            engine_counters[name].add_metric([ns], getattr(s, attr))
        invalidations.add_metric([ns, "api"], s.invalidations)
        invalidations.add_metric([ns, "backplane"], s.remote_invalidations)
        invalidations.add_metric([ns, "postgres"], s.db_invalidations)
        durations.add_metric([ns], _buckets(LOAD_BUCKETS, s.load_histogram), sum_value=s.load_seconds)
        lags.add_metric([ns, "backplane"], _buckets(LAG_BUCKETS, s.lag_histogram), sum_value=s.lag_seconds)
        for tenant, hits, misses in s.tenants:
            tenants.add_metric([ns, tenant, "hit"], hits)
            tenants.add_metric([ns, tenant, "miss"], misses)
    yield from (requests, entries, nbytes, max_bytes, breaker, backplane, pending, evictions)
    yield from tier_counters.values()
    yield from engine_counters.values()
    yield from (invalidations, durations, lags, tenants)


def _buckets(bounds: tuple[float, ...], counts: tuple[int, ...]) -> list[tuple[str, int]]:
    """Cumulative Prometheus buckets from per-bucket counts (``counts`` empty: all zero)."""
    cumulative, out = 0, []
    for bound, count in zip((*bounds, float("inf")), counts or (0,) * (len(bounds) + 1), strict=True):
        cumulative += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return out


_DEFAULT: CacheCollector | None = None
_DEFAULT_LOCK = threading.Lock()


def register(cache: _HasStats, registry: CollectorRegistry | None = None) -> CacheCollector:
    """Export ``cache``'s counters: to ``registry``, or to prometheus-client's default registry.

    On the default registry one collector serves every cache registered (one family per metric); with your own
    registry each call registers a new collector.
    """
    global _DEFAULT  # noqa: PLW0603 - one collector per process on the default registry
    if registry is not None:
        collector = CacheCollector(cache)
        registry.register(collector)
        return collector
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = CacheCollector()
            REGISTRY.register(_DEFAULT)
        _DEFAULT.add(cache)
        return _DEFAULT


def start_http_server(port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None) -> Any:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread (loopback unless you choose otherwise)."""
    return _start_http_server(port, addr=addr, registry=registry if registry is not None else REGISTRY)
