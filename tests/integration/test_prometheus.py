"""Prometheus export: scrape a real HTTP /metrics and parse it."""

from __future__ import annotations

import time
import urllib.request
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from tests.support.exposition import samples

import stratacache as sc
from stratacache.metrics.prometheus import CacheCollector, register, start_http_server
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from pathlib import Path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scrape_over_http_reports_every_tier_and_the_engine(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    with sc.Cache(sc.MemoryTier(max_bytes="1MiB"), sc.SQLiteTier(tmp_path / "c.db"), namespace="app", clock=clock) as c:
        register(c, registry)
        c.set("a", 1)
        assert c.get("a") == 1
        assert c.get("missing") is None

        def slow() -> int:
            clock.advance(0.2)
            return 2

        c.get_or_load("b", slow)
        c.invalidate_tags("t")
        port = _free_port()
        server = start_http_server(port, registry=registry)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
                text = reply.read().decode()
        finally:
            httpd = server[0] if isinstance(server, tuple) else server
            httpd.shutdown()
            httpd.server_close()
    got = samples(text)
    assert got["stratacache_requests_total", (("namespace", "app"), ("result", "hit"), ("tier", "memory"))] == 1
    assert got["stratacache_requests_total", (("namespace", "app"), ("result", "miss"), ("tier", "sqlite"))] >= 1
    assert got["stratacache_loads_total", (("namespace", "app"),)] == 1
    assert got["stratacache_load_duration_seconds_bucket", (("le", "0.1"), ("namespace", "app"))] == 0
    assert got["stratacache_load_duration_seconds_bucket", (("le", "0.25"), ("namespace", "app"))] == 1
    assert got["stratacache_load_duration_seconds_sum", (("namespace", "app"),)] >= 0.2
    assert got["stratacache_invalidations_total", (("namespace", "app"), ("source", "api"))] == 1
    assert got["stratacache_max_bytes", (("namespace", "app"), ("tier", "memory"))] == 1024 * 1024
    assert got["stratacache_entries", (("namespace", "app"), ("tier", "memory"))] == 2


def test_redis_tier_exports_breaker_and_backplane(redis_url: str) -> None:
    registry = CollectorRegistry()
    with sc.Cache(sc.RedisTier(redis_url, prefix="prom:", timeout=2.0), namespace="r") as c:
        registry.register(CacheCollector(c))
        c.set("k", 1)
        got = samples(generate_latest(registry).decode())
    assert got["stratacache_breaker_state", (("namespace", "r"), ("tier", "redis"))] == 0
    assert got["stratacache_backplane_up", (("namespace", "r"), ("tier", "redis"))] == 1
    assert got["stratacache_sets_total", (("namespace", "r"), ("tier", "redis"))] == 1
    # max_value_bytes limits one value; it is not the tier's byte bound (bytes/max_bytes would mean nothing)
    assert ("stratacache_max_bytes", (("namespace", "r"), ("tier", "redis"))) not in got


def test_a_closed_cache_does_not_break_the_scrape() -> None:
    registry = CollectorRegistry()
    c = sc.Cache(namespace="gone")
    registry.register(CacheCollector(c))
    c.close()
    assert b'stratacache_requests_total{namespace="gone"' in generate_latest(registry)  # the scrape does not raise


def test_evictions_by_cause_and_tenant_requests_are_exported() -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    with sc.Cache(
        sc.MemoryTier(max_entries=2), namespace="ev", clock=clock, tenant_of=lambda k: k[:2], max_tenants=1
    ) as c:
        register(c, registry)
        c.set("t1a", 1, ttl=1)
        clock.advance(2)
        for i in range(5):  # later writes reclaim the expired entry, then evict for room
            c.set(f"t1{i}", i, ttl=100)
        c.get("t1a")
        c.get("t2a")
        got = samples(generate_latest(registry).decode())
    ns = ("namespace", "ev")
    assert got["stratacache_evictions_total", (("cause", "expired"), ns, ("tier", "memory"))] == 1
    assert got["stratacache_evictions_total", (("cause", "capacity"), ns, ("tier", "memory"))] == 3
    assert got["stratacache_tenant_requests_total", (ns, ("result", "miss"), ("tenant", "t1"))] == 1
    assert got["stratacache_tenant_requests_total", (ns, ("result", "miss"), ("tenant", "other"))] == 1
    assert got["stratacache_invalidations_total", (ns, ("source", "postgres"))] == 0


def test_invalidation_lag_from_another_process_is_a_histogram(redis_url: str) -> None:
    registry = CollectorRegistry()
    spec = sc.RedisTier(redis_url, prefix="lag:", timeout=2.0)
    with sc.Cache(sc.MemoryTier(), spec, namespace="lag") as reader, sc.Cache(spec, namespace="lag") as writer:
        register(reader, registry)
        for i in range(20):
            writer.set(f"k{i}", i)
        writer.invalidate_tags("t")
        deadline = time.monotonic() + 5
        while sum(reader.stats().lag_histogram) < 21 and time.monotonic() < deadline:
            reader.get("k0")  # every operation applies what the backplane delivered
            time.sleep(0.01)
        got = samples(generate_latest(registry).decode())
    labels = (("namespace", "lag"), ("source", "backplane"))
    assert got["stratacache_invalidation_lag_seconds_count", labels] == 21
    assert got["stratacache_invalidation_lag_seconds_bucket", (("le", "+Inf"), *labels)] == 21
    assert 0 <= got["stratacache_invalidation_lag_seconds_sum", labels] < 21 * 1.0  # loopback: well under 1 s each
