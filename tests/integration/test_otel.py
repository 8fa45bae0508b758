"""OpenTelemetry export with the real SDK: in-memory metric reader and span exporter, real caches over SQLite."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

import stratacache as sc
from stratacache.metrics import otel
from stratacache.metrics.otel import INSTRUMENTS, instrument
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from opentelemetry.sdk.trace import ReadableSpan

Points = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meters(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracers(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider
    provider.shutdown()


def _points(reader: InMemoryMetricReader) -> Points:
    data = reader.get_metrics_data()
    out: Points = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "stratacache"
            for metric in sm.metrics:
                for p in metric.data.data_points:  # type: ignore[union-attr]
                    out[metric.name, tuple(sorted((k, str(v)) for k, v in (p.attributes or {}).items()))] = p.value  # type: ignore[union-attr]
    return out


def _key(**attrs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(attrs.items()))


def _by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def test_metric_points_equal_the_stats(
    tmp_path: Path, reader: InMemoryMetricReader, meters: MeterProvider, tracers: TracerProvider
) -> None:
    clock = FakeClock()
    with sc.Cache(
        sc.MemoryTier(max_entries=2, max_bytes="1MiB"), sc.SQLiteTier(tmp_path / "c.db"), namespace="app", clock=clock
    ) as c:
        inst = instrument(c, meter_provider=meters, tracer_provider=tracers)
        c.set("a", 1, tags=["t"])
        assert c.get("a") == 1
        assert c.get("missing") is None

        def slow() -> int:
            clock.advance(0.2)
            return 2

        assert c.get_or_load("b", slow) == 2

        def broken() -> int:
            raise RuntimeError("source down")

        with pytest.raises(RuntimeError):
            c.get_or_load("c", broken)
        for i in range(5):
            c.set(f"x{i}", i)  # the L1 holds 2 entries: evictions
        c.invalidate_tags("t")
        got = _points(reader)
        s = c.stats()
        inst.close()

    ns = {"namespace": "app"}
    for t in s.tiers:
        assert got["stratacache.requests", _key(**ns, tier=t.name, result="hit")] == t.hits
        assert got["stratacache.requests", _key(**ns, tier=t.name, result="miss")] == t.misses
        assert got["stratacache.requests", _key(**ns, tier=t.name, result="error")] == t.errors
        assert got["stratacache.entries", _key(**ns, tier=t.name)] == t.entries
        assert got["stratacache.bytes", _key(**ns, tier=t.name)] == t.bytes
        assert got["stratacache.sets", _key(**ns, tier=t.name)] == t.sets
        assert got["stratacache.evictions", _key(**ns, tier=t.name, cause="capacity")] == t.evictions
        assert got["stratacache.evictions", _key(**ns, tier=t.name, cause="expired")] == t.expirations
        assert got["stratacache.pending_invalidations", _key(**ns, tier=t.name)] == t.pending_invalidations
        assert ("stratacache.breaker_state", _key(**ns, tier=t.name)) not in got  # no breaker on local tiers
    assert s["memory"].hits == 1
    assert s["memory"].evictions > 0
    assert got["stratacache.max_bytes", _key(**ns, tier="memory")] == 1024 * 1024
    assert got["stratacache.requests", _key(**ns, tier="any", result="stale")] == s.stale_served
    assert got["stratacache.loads", _key(**ns)] == s.loads >= 1
    assert got["stratacache.load_errors", _key(**ns)] == s.load_errors == 1
    assert got["stratacache.load_duration.count", _key(**ns)] == sum(s.load_histogram) >= 1
    assert got["stratacache.load_duration.sum", _key(**ns)] == pytest.approx(s.load_seconds)
    assert s.load_seconds >= 0.2
    assert got["stratacache.invalidations", _key(**ns, source="api")] == s.invalidations == 1
    assert got["stratacache.invalidations", _key(**ns, source="backplane")] == s.remote_invalidations
    assert got["stratacache.invalidation_lag.count", _key(**ns, source="backplane")] == 0
    # every instrument is documented with its Prometheus twin, and reported
    assert {name for name, _ in got} <= set(INSTRUMENTS)
    assert INSTRUMENTS["stratacache.requests"] == "stratacache_requests_total"


def test_one_stats_call_per_cache_and_collection(
    reader: InMemoryMetricReader, meters: MeterProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sc.Cache(namespace="once") as c:
        calls: list[int] = []
        stats = c.stats

        def counted() -> sc.Stats:
            calls.append(1)
            return stats()

        monkeypatch.setattr(c, "stats", counted)
        with instrument(c, meter_provider=meters, traces=False) as inst:
            assert not inst.tracing
            assert inst.metrics
            c.set("k", 1)
            assert not calls  # nothing on the hot path
            first = _points(reader)
            assert len(calls) == 1
            c.get("k")
            second = _points(reader)
            assert len(calls) == 2
    hit = ("stratacache.requests", _key(namespace="once", tier="memory", result="hit"))
    assert (first[hit], second[hit]) == (0, 1)


def test_two_caches_share_the_instruments_and_close_drops_one(
    reader: InMemoryMetricReader, meters: MeterProvider
) -> None:
    with sc.Cache(namespace="one") as a, sc.Cache(namespace="two") as b:
        ia = instrument(a, meter_provider=meters, traces=False)
        ib = instrument(b, meter_provider=meters, traces=False)
        a.get("x")
        b.set("y", 1)
        b.get("y")
        got = _points(reader)
        assert got["stratacache.requests", _key(namespace="one", tier="memory", result="miss")] == 1
        assert got["stratacache.requests", _key(namespace="two", tier="memory", result="hit")] == 1
        ia.close()
        ia.close()  # idempotent
        assert not ia.metrics
        got = _points(reader)
        assert {dict(attrs).get("namespace") for _, attrs in got} == {"two"}
        ib.uninstrument()
        assert _points(reader) == {}


def test_spans_for_loads_and_tier_calls(tmp_path: Path, spans: InMemorySpanExporter, tracers: TracerProvider) -> None:
    tracer = tracers.get_tracer("app")
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="app") as c:
        inst = instrument(c, tracer_provider=tracers)
        assert inst.tracing

        def loader() -> str:
            with tracer.start_as_current_span("db.query"):
                return "row"

        with tracer.start_as_current_span("request"):
            assert c.get_or_load("k", loader) == "row"
        finished = spans.get_finished_spans()
        names = [s.name for s in finished]
        assert names == ["stratacache.tier.get", "db.query", "stratacache.load", "stratacache.tier.fill", "request"]
        (request,) = _by_name(finished, "request")
        (load,) = _by_name(finished, "stratacache.load")
        (query,) = _by_name(finished, "db.query")
        assert query.parent is not None
        assert load.context is not None
        assert query.parent.span_id == load.context.span_id  # the loader's span is a child of stratacache.load
        assert request.context is not None
        for s in finished:
            if s.name.startswith("stratacache."):
                assert s.parent is not None
                assert s.parent.span_id == request.context.span_id
        assert load.kind is SpanKind.INTERNAL
        assert dict(load.attributes or {}) == {"stratacache.namespace": "app"}
        for s in (*_by_name(finished, "stratacache.tier.get"), *_by_name(finished, "stratacache.tier.fill")):
            assert s.kind is SpanKind.CLIENT
            assert dict(s.attributes or {}) == {
                "stratacache.tier": "sqlite",
                "stratacache.keys": 1,
                "stratacache.namespace": "app",
            }
            assert s.status.status_code is StatusCode.UNSET

        spans.clear()
        assert c.get("k") == "row"  # an L1 hit: never traced
        assert spans.get_finished_spans() == ()
        c.set_many({"a": 1, "b": 2})
        (tier_set,) = spans.get_finished_spans()
        assert tier_set.name == "stratacache.tier.set"
        assert (tier_set.attributes or {})["stratacache.keys"] == 2

        spans.clear()
        inst.uninstrument()
        assert not inst.tracing
        c.delete("k")
        assert c.get_or_load("k", loader) == "row"
        assert [s.name for s in spans.get_finished_spans()] == ["db.query"]  # the loader's own span only


def test_a_failing_loader_yields_an_error_span(
    tmp_path: Path, spans: InMemorySpanExporter, tracers: TracerProvider
) -> None:
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="app") as c:
        instrument(c, tracer_provider=tracers, traces=True, metrics=False)

        def broken() -> int:
            raise LookupError("no such row")

        with pytest.raises(LookupError):
            c.get_or_load("k", broken)
    (load,) = _by_name(spans.get_finished_spans(), "stratacache.load")
    assert load.status.status_code is StatusCode.ERROR
    assert load.status.description == "LookupError: no such row"
    (event,) = load.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "LookupError"


def test_l2_hit_without_l1_is_traced(tmp_path: Path, spans: InMemorySpanExporter, tracers: TracerProvider) -> None:
    with sc.Cache(sc.SQLiteTier(tmp_path / "c.db"), namespace="l2") as c:
        c.set("k", 1)
        with instrument(c, tracer_provider=tracers):
            assert c.get("k") == 1
        assert c.get("k") == 1  # closed: no span
    (get,) = spans.get_finished_spans()
    assert get.name == "stratacache.tier.get"
    assert (get.attributes or {})["stratacache.tier"] == "sqlite"


@pytest.mark.asyncio
async def test_async_cache_spans_and_metrics(
    tmp_path: Path,
    spans: InMemorySpanExporter,
    tracers: TracerProvider,
    reader: InMemoryMetricReader,
    meters: MeterProvider,
) -> None:
    tracer = tracers.get_tracer("app")
    async with sc.AsyncCache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="aio") as c:
        inst = instrument(c, meter_provider=meters, tracer_provider=tracers)

        async def loader() -> str:
            with tracer.start_as_current_span("db.query"):
                return "row"

        async def broken() -> str:
            raise RuntimeError("down")

        assert await c.get_or_load("k", loader) == "row"
        assert await c.get("k") == "row"
        with pytest.raises(RuntimeError):
            await c.get_or_load("e", broken)
        got = _points(reader)
        s = c.stats()
        inst.close()
        assert await c.get_or_load("k2", loader) == "row"
    finished = spans.get_finished_spans()
    loads = _by_name(finished, "stratacache.load")
    assert len(loads) == 2
    ok, failed = loads
    (query, untraced_query) = _by_name(finished, "db.query")
    assert query.parent is not None
    assert ok.context is not None
    assert query.parent.span_id == ok.context.span_id  # context propagates through the awaits
    assert untraced_query.parent is None  # after close: no stratacache.load around it
    assert failed.status.status_code is StatusCode.ERROR
    assert {sp.name for sp in finished} == {
        "stratacache.tier.get",
        "stratacache.load",
        "stratacache.tier.fill",
        "db.query",
    }
    assert got["stratacache.requests", _key(namespace="aio", tier="memory", result="hit")] == s["memory"].hits == 1
    assert got["stratacache.loads", _key(namespace="aio")] == s.loads >= 1
    assert got["stratacache.load_errors", _key(namespace="aio")] == 1


def test_noop_tracer_provider_installs_nothing() -> None:
    with sc.Cache(namespace="noop") as c:
        inst = instrument(c, tracer_provider=NoOpTracerProvider(), metrics=False)
        assert not inst.tracing
        assert c._tracer is None
        inst.close()


def test_global_providers_unset_cost_a_shared_noop() -> None:
    if not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider is set in this process")
    with sc.Cache(namespace="api-only") as c:
        inst = instrument(c)  # global providers: only the API's proxies
        tracer: Any = c._tracer
        assert tracer is not None
        span = tracer("stratacache.load", {"stratacache.namespace": "api-only"})
        assert isinstance(span, contextlib.nullcontext)
        assert span is tracer("stratacache.tier.get", {"stratacache.tier": "sqlite", "stratacache.keys": 1})
        assert c.get_or_load("k", lambda: 1) == 1
        inst.close()
        assert c._tracer is None


def test_close_leaves_a_tracer_set_by_someone_else(tracers: TracerProvider) -> None:
    with sc.Cache(namespace="other") as c:
        inst = instrument(c, tracer_provider=tracers, metrics=False)

        def mine(name: str, attributes: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
            return contextlib.nullcontext()

        c.set_tracer(mine)
        inst.close()
        assert c._tracer is mine


def test_redis_tier_spans(redis_url: str, spans: InMemorySpanExporter, tracers: TracerProvider) -> None:
    with (
        sc.Cache(sc.RedisTier(redis_url, prefix="otel:", timeout=2.0), namespace="r") as c,
        instrument(c, tracer_provider=tracers, metrics=False),
    ):
        c.set("k", 1)
        assert c.get("k") == 1
    names = [(s.name, (s.attributes or {})["stratacache.tier"]) for s in spans.get_finished_spans()]
    assert names == [("stratacache.tier.set", "redis"), ("stratacache.tier.get", "redis")]


def test_tier_spans_off_keeps_the_load_spans(
    tmp_path: Path, spans: InMemorySpanExporter, tracers: TracerProvider
) -> None:
    with sc.Cache(sc.SQLiteTier(tmp_path / "c.db"), namespace="loads") as c:
        with instrument(c, tracer_provider=tracers, metrics=False, tier_spans=False) as inst:
            assert inst.tracing
            assert c.get_or_load("k", lambda: 1) == 1
            assert c.get("k") == 1
        assert [s.name for s in spans.get_finished_spans()] == ["stratacache.load"]


def test_api_alone_installs_no_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider is set in this process")
    monkeypatch.setattr(otel, "_sdk_installed", lambda: False)
    with sc.Cache(namespace="api") as c, instrument(c) as inst:
        assert not inst.tracing
        assert c._tracer is None
        assert inst.metrics  # registered with the API's proxy meter provider: never called back without an SDK
