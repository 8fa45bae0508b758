"""OpenTelemetry export (``stratacache[otel]``): observable instruments over ``stats()``; spans from the tracer hook.

Metrics cost nothing on the hot path: every instrument is *observable* (``ObservableCounter``/``ObservableGauge``)
and its callback reads the plain-int counters every cache keeps anyway, from one ``stats()`` snapshot per cache and
collection. The names, attributes and meanings are the Prometheus collector's (:mod:`stratacache.metrics.prometheus`):
the OpenTelemetry name is the Prometheus name with ``stratacache.`` for ``stratacache_`` and without ``_total``
(``stratacache_requests_total`` -> ``stratacache.requests``, attributes ``namespace``, ``tier``, ``result``).
OpenTelemetry has no observable histogram, so the two histograms are exported as their count and sum
(``stratacache.load_duration.count``/``.sum``, ``stratacache.invalidation_lag.count``/``.sum``): averages and rates,
not quantiles (the Prometheus collector keeps the buckets).

Traces: ``instrument`` installs a tracer through ``cache.set_tracer``: a ``stratacache.load`` span (``INTERNAL``)
around each loader call and ``stratacache.tier.get``/``.set``/``.fill`` spans (``CLIENT``) around each call to a
tier below the L1, current while they run (so the loader's own spans are its children), with the exception recorded
and the status ERROR when the call raises. The L1 is never traced.

With only ``opentelemetry-api`` installed the meter never calls back and no tracer is installed: nothing is paid. With
the SDK installed but no global provider set yet, the tracer hands out a shared no-op context manager until one is
(looked up at most once a second).

Usage::

    from stratacache.metrics.otel import instrument
    instrumentation = instrument(cache)   # the global meter and tracer providers
    ...
    instrumentation.close()               # no more spans; the cache's series are no longer reported
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from opentelemetry.metrics import MeterProvider, Observation
from opentelemetry.trace import NoOpTracer, NoOpTracerProvider, ProxyTracerProvider, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    from opentelemetry.metrics import CallbackOptions, Meter
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.trace import Tracer as OtelTracer

    from stratacache._types import Tracer
    from stratacache.metrics.stats import Stats, TierStats

__all__ = ["INSTRUMENTS", "SCOPE", "Instrumentation", "instrument"]

SCOPE = "stratacache"
"""The instrumentation scope (meter and tracer name)."""

_COUNTER, _GAUGE = "counter", "gauge"
_BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}  # as stratacache_breaker_state

Point = tuple[float, dict[str, str]]
"""One observation: a value and its attributes."""


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    kind: str  # _COUNTER (ObservableCounter: monotonic) or _GAUGE (ObservableGauge)
    unit: str
    description: str
    points: Callable[[Stats], Iterator[Point]]
    prometheus: str


def _per_tier(fn: Callable[[TierStats], float | None]) -> Callable[[Stats], Iterator[Point]]:
    def points(s: Stats) -> Iterator[Point]:
        for t in s.tiers:
            value = fn(t)
            if value is not None:
                yield value, {"namespace": s.namespace, "tier": t.name}

    return points


def _per_cache(fn: Callable[[Stats], float]) -> Callable[[Stats], Iterator[Point]]:
    def points(s: Stats) -> Iterator[Point]:
        yield fn(s), {"namespace": s.namespace}

    return points


def _requests(s: Stats) -> Iterator[Point]:
    ns = s.namespace
    for t in s.tiers:
        yield t.hits, {"namespace": ns, "tier": t.name, "result": "hit"}
        yield t.misses, {"namespace": ns, "tier": t.name, "result": "miss"}
        yield t.errors, {"namespace": ns, "tier": t.name, "result": "error"}
    yield s.stale_served, {"namespace": ns, "tier": "any", "result": "stale"}


def _evictions(s: Stats) -> Iterator[Point]:
    for t in s.tiers:
        yield t.evictions, {"namespace": s.namespace, "tier": t.name, "cause": "capacity"}
        yield t.expirations, {"namespace": s.namespace, "tier": t.name, "cause": "expired"}


def _invalidations(s: Stats) -> Iterator[Point]:
    yield s.invalidations, {"namespace": s.namespace, "source": "api"}
    yield s.remote_invalidations, {"namespace": s.namespace, "source": "backplane"}
    yield s.db_invalidations, {"namespace": s.namespace, "source": "postgres"}


def _lag(fn: Callable[[Stats], float]) -> Callable[[Stats], Iterator[Point]]:
    def points(s: Stats) -> Iterator[Point]:
        yield fn(s), {"namespace": s.namespace, "source": "backplane"}

    return points


def _tenants(s: Stats) -> Iterator[Point]:
    for tenant, hits, misses in s.tenants:
        yield hits, {"namespace": s.namespace, "tenant": tenant, "result": "hit"}
        yield misses, {"namespace": s.namespace, "tenant": tenant, "result": "miss"}


def _breaker(t: TierStats) -> float | None:
    return None if t.breaker is None else _BREAKER_STATES.get(t.breaker, 2)


def _backplane(t: TierStats) -> float | None:
    return None if t.backplane is None else (1 if t.backplane == "up" else 0)


def _tier_counter(name: str, attr: str, unit: str, text: str) -> _Spec:
    return _Spec(
        f"stratacache.{name}", _COUNTER, unit, text, _per_tier(lambda t: getattr(t, attr)), f"stratacache_{name}_total"
    )


def _engine_counter(name: str, attr: str, unit: str, text: str) -> _Spec:
    return _Spec(
        f"stratacache.{name}", _COUNTER, unit, text, _per_cache(lambda s: getattr(s, attr)), f"stratacache_{name}_total"
    )


_SPECS: tuple[_Spec, ...] = (
    _Spec(
        "stratacache.requests",
        _COUNTER,
        "{request}",
        "Lookups per tier by result.",
        _requests,
        "stratacache_requests_total",
    ),
    _Spec(
        "stratacache.entries",
        _GAUGE,
        "{entry}",
        "Entries held by the tier.",
        _per_tier(lambda t: t.entries),
        "stratacache_entries",
    ),
    _Spec(
        "stratacache.bytes", _GAUGE, "By", "Bytes held by the tier.", _per_tier(lambda t: t.bytes), "stratacache_bytes"
    ),
    _Spec(
        "stratacache.max_bytes",
        _GAUGE,
        "By",
        "The tier's byte bound (absent without one).",
        _per_tier(lambda t: t.max_bytes),
        "stratacache_max_bytes",
    ),
    _Spec(
        "stratacache.breaker_state",
        _GAUGE,
        "1",
        "Circuit breaker of a network tier: 0 closed, 1 half-open, 2 open.",
        _per_tier(_breaker),
        "stratacache_breaker_state",
    ),
    _Spec(
        "stratacache.backplane_up",
        _GAUGE,
        "1",
        "1 while the tier's backplane link is up, 0 while lost.",
        _per_tier(_backplane),
        "stratacache_backplane_up",
    ),
    _Spec(
        "stratacache.pending_invalidations",
        _GAUGE,
        "{invalidation}",
        "Invalidations journaled for an unreachable tier, not yet replayed (-1: overflowed).",
        _per_tier(lambda t: t.pending_invalidations),
        "stratacache_pending_invalidations",
    ),
    _Spec(
        "stratacache.evictions",
        _COUNTER,
        "{entry}",
        "Entries dropped by the tier: for room (cause=capacity) or because their time was up (cause=expired).",
        _evictions,
        "stratacache_evictions_total",
    ),
    _tier_counter("sets", "sets", "{entry}", "Entries stored in the tier."),
    _tier_counter("deletes", "deletes", "{key}", "Keys deleted from the tier."),
    _tier_counter(
        "skipped", "skipped", "{call}", "Calls not attempted: the tier was known to be down or owed invalidations."
    ),
    _tier_counter("breaker_opened", "breaker_opened", "{event}", "Times the tier's circuit breaker opened."),
    _tier_counter(
        "backplane_losses",
        "backplane_losses",
        "{event}",
        "Times the tier's backplane link was lost (the L1 was flushed).",
    ),
    _tier_counter(
        "backplane_messages", "backplane_messages", "{message}", "Invalidation messages received from other processes."
    ),
    _engine_counter("loads", "loads", "{call}", "Loader calls."),
    _engine_counter("load_errors", "load_errors", "{call}", "Loader calls that raised."),
    _engine_counter(
        "coalesced", "coalesced", "{call}", "Callers that waited for another caller's load (single-flight)."
    ),
    _engine_counter("lock_waits", "lock_waits", "{call}", "Loads that waited for another process's lease."),
    _engine_counter(
        "load_timeouts", "load_timeouts", "{call}", "Callers that stopped waiting for a load (LoadPolicy timeouts)."
    ),
    _engine_counter(
        "stale_served",
        "stale_served",
        "{request}",
        "Expired values served on purpose (stale-while-revalidate, fail-safe).",
    ),
    _engine_counter("refreshes", "refreshes", "{call}", "Background refreshes started."),
    _engine_counter("refresh_errors", "refresh_errors", "{call}", "Background refreshes whose loader failed."),
    _Spec(
        "stratacache.invalidations",
        _COUNTER,
        "{invalidation}",
        "Invalidations by source: this process's API calls, other processes' changes (backplane), the database.",
        _invalidations,
        "stratacache_invalidations_total",
    ),
    _Spec(
        "stratacache.load_duration.count",
        _COUNTER,
        "{call}",
        "Loader calls timed (the count of the load-duration histogram).",
        _per_cache(lambda s: sum(s.load_histogram)),
        "stratacache_load_duration_seconds_count",
    ),
    _Spec(
        "stratacache.load_duration.sum",
        _COUNTER,
        "s",
        "Total seconds spent in loaders (the sum of the load-duration histogram).",
        _per_cache(lambda s: s.load_seconds),
        "stratacache_load_duration_seconds_sum",
    ),
    _Spec(
        "stratacache.invalidation_lag.count",
        _COUNTER,
        "{invalidation}",
        "Invalidations from other processes with a publication stamp (the count of the invalidation-lag histogram).",
        _lag(lambda s: sum(s.lag_histogram)),
        "stratacache_invalidation_lag_seconds_count",
    ),
    _Spec(
        "stratacache.invalidation_lag.sum",
        _COUNTER,
        "s",
        "Total seconds from other processes' changes to this process knowing them (the invalidation-lag sum).",
        _lag(lambda s: s.lag_seconds),
        "stratacache_invalidation_lag_seconds_sum",
    ),
    _Spec(
        "stratacache.tenant_requests",
        _COUNTER,
        "{request}",
        "Lookups per tenant by result (only with tenant_of; at most max_tenants tenants, then 'other').",
        _tenants,
        "stratacache_tenant_requests_total",
    ),
)

INSTRUMENTS: dict[str, str] = {spec.name: spec.prometheus for spec in _SPECS}
"""OpenTelemetry instrument name -> the Prometheus collector's series name of the same meaning."""


class _Instrumentable(Protocol):
    @property
    def namespace(self) -> str: ...

    def stats(self) -> Stats: ...

    def set_tracer(self, tracer: Tracer | None) -> None: ...


class _Exporter:
    """The observable instruments of one meter, shared by every cache instrumented on it.

    An OpenTelemetry meter keeps the first instrument of a name and drops the callbacks of later ones, so the
    instruments are created once per meter provider and read the list of caches registered here.

    Every callback of one collection reads the same snapshots: a callback that already ran since the snapshots
    were taken means a new collection has begun, and takes fresh ones (one ``stats()`` per cache and collection).
    """

    def __init__(self, meter: Meter) -> None:
        self._caches: list[_Instrumentable] = []
        self._lock = threading.Lock()
        self._snapshots: list[Stats] = []
        self._served: set[str] = set()
        for spec in _SPECS:
            create = meter.create_observable_counter if spec.kind == _COUNTER else meter.create_observable_gauge
            create(spec.name, callbacks=[self._callback(spec)], unit=spec.unit, description=spec.description)

    def add(self, cache: _Instrumentable) -> None:
        with self._lock:
            self._caches.append(cache)
            self._served.clear()  # the next callback takes a snapshot including this cache

    def remove(self, cache: _Instrumentable) -> None:
        with self._lock:
            self._caches = [c for c in self._caches if c is not cache]
            self._snapshots = []
            self._served.clear()  # the next callback takes a snapshot without this cache

    def _callback(self, spec: _Spec) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            snapshots = self._snapshot_for(spec.name)
            return [Observation(value, attrs) for s in snapshots for value, attrs in spec.points(s)]

        return callback

    def _snapshot_for(self, name: str) -> list[Stats]:
        with self._lock:
            if name in self._served or not self._served:
                self._served.clear()
                self._snapshots = _snapshots(self._caches)
            self._served.add(name)
            return self._snapshots


def _snapshots(caches: list[_Instrumentable]) -> list[Stats]:
    out = []
    for cache in caches:
        try:
            out.append(cache.stats())
        except Exception:  # noqa: S112 - a closed or broken cache must not break the collection
            continue
    return out


_EXPORTERS: weakref.WeakKeyDictionary[MeterProvider, _Exporter] = weakref.WeakKeyDictionary()
_EXPORTERS_LOCK = threading.Lock()


def _exporter(provider: MeterProvider) -> _Exporter:
    with _EXPORTERS_LOCK:
        exporter = _EXPORTERS.get(provider)
        if exporter is None:
            exporter = _EXPORTERS[provider] = _Exporter(provider.get_meter(SCOPE, _version()))
        return exporter


def _version() -> str | None:
    try:
        return importlib.metadata.version("stratacache")
    except importlib.metadata.PackageNotFoundError:
        return None


_NO_SPAN: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
_UNSET = (ProxyTracerProvider, NoOpTracerProvider)


class _GlobalProvider:
    """Whether a real global tracer provider is set yet (once set, it cannot change: cached).

    Until one is, the global provider is looked up at most every :data:`RECHECK` seconds (the lookup reads
    ``os.environ``), so spans start within that time of the SDK being configured.
    """

    RECHECK = 1.0
    resolved = False
    checked = float("-inf")

    @classmethod
    def ready(cls) -> bool:
        if cls.resolved:
            return True
        now = time.monotonic()
        if now - cls.checked < cls.RECHECK:
            return False
        cls.checked = now
        if isinstance(otel_trace.get_tracer_provider(), _UNSET):
            return False
        cls.resolved = True
        return True


def _sdk_installed() -> bool:
    """Whether ``opentelemetry-sdk`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except (ImportError, ValueError):
        return False


class _Scope:
    """``start_as_current_span`` without its generator layers: the span is current inside, ended on exit.

    An ``Exception`` leaving the block is recorded on the span, whose status becomes ERROR (a ``BaseException``
    such as a cancellation only ends it), as ``opentelemetry.trace.use_span`` does.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(otel_trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        try:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            if isinstance(exc, Exception) and span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            span.end()


def _make_tracer(tracer: OtelTracer, namespace: str, *, global_provider: bool, tier_spans: bool) -> Tracer:
    start = tracer.start_span
    client, internal = SpanKind.CLIENT, SpanKind.INTERNAL
    ready = _GlobalProvider.ready

    def trace(name: str, attributes: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
        tier = name.startswith("stratacache.tier.")
        if (tier and not tier_spans) or (global_provider and not (_GlobalProvider.resolved or ready())):
            return _NO_SPAN
        attributes["stratacache.namespace"] = namespace  # a fresh dict from the engine at every call
        return _Scope(start(name, kind=client if tier else internal, attributes=attributes))

    return trace


class Instrumentation:
    """What :func:`instrument` installed on one cache; :meth:`close` (alias :meth:`uninstrument`) removes it."""

    def __init__(self, cache: _Instrumentable, exporter: _Exporter | None, tracer: Tracer | None) -> None:
        self._cache = cache
        self._exporter = exporter
        self._tracer = tracer
        self._closed = False
        self._lock = threading.Lock()

    @property
    def tracing(self) -> bool:
        """Whether this instrumentation installed a tracer (and has not been closed)."""
        return self._tracer is not None and not self._closed

    @property
    def metrics(self) -> bool:
        """Whether this instrumentation reports the cache's metrics (and has not been closed)."""
        return self._exporter is not None and not self._closed

    def close(self) -> None:
        """Stop the spans (if the cache's tracer is still ours) and stop reporting the cache's series. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._exporter is not None:
            self._exporter.remove(self._cache)
        if self._tracer is not None and getattr(self._cache, "_tracer", None) is self._tracer:
            self._cache.set_tracer(None)

    uninstrument = close

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def instrument(
    cache: _Instrumentable,
    *,
    meter_provider: MeterProvider | None = None,
    tracer_provider: TracerProvider | None = None,
    traces: bool = True,
    metrics: bool = True,
    tier_spans: bool = True,
) -> Instrumentation:
    """Export ``cache``'s counters as OpenTelemetry metrics and, with ``traces``, trace its loads and tier calls.

    Args:
        cache: a ``Cache`` or ``AsyncCache``.
        meter_provider: where the instruments are created (default: the global meter provider). Instruments are
            created once per provider; every cache instrumented on it is reported by them.
        tracer_provider: where spans are started (default: the global tracer provider, looked up lazily: spans
            start once a real provider is set; with ``opentelemetry-api`` alone no tracer is installed at all).
        traces: install a tracer with ``cache.set_tracer`` (replacing any tracer the cache had).
        metrics: register the cache with the observable instruments.
        tier_spans: with ``traces``, also trace calls to the tiers below the L1 (``stratacache.tier.*``).
            ``False`` keeps the ``stratacache.load`` spans only: an SDK span costs about as much as a SQLite hit,
            so L2 hits then pay only a function call (see ``docs/observability.md``, overhead).

    Returns:
        An :class:`Instrumentation`; ``close()`` undoes this call.
    """
    exporter: _Exporter | None = None
    if metrics:
        exporter = _exporter(meter_provider if meter_provider is not None else otel_metrics.get_meter_provider())
        exporter.add(cache)
    tracer_fn: Tracer | None = None
    global_set = not isinstance(otel_trace.get_tracer_provider(), _UNSET)
    if traces and (tracer_provider is not None or global_set or _sdk_installed()):
        # (with the API alone and no provider given, no span can ever be recorded: no tracer at all)
        provider = tracer_provider if tracer_provider is not None else otel_trace.get_tracer_provider()
        tracer = provider.get_tracer(SCOPE, _version())
        if not isinstance(tracer, NoOpTracer):  # a disabled SDK or the no-op provider: leave the hook off
            tracer_fn = _make_tracer(
                tracer, cache.namespace, global_provider=tracer_provider is None, tier_spans=tier_spans
            )
            cache.set_tracer(tracer_fn)
    return Instrumentation(cache, exporter, tracer_fn)
