"""The ASGI /metrics app, driven directly with scope/receive/send and parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio
import gzip
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry
from tests.support.exposition import samples

import stratacache as sc
from stratacache.metrics.asgi import metrics_app
from stratacache.metrics.prometheus import register

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Reply:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        start = messages[0]
        assert start["type"] == "http.response.start"
        self.status: int = start["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in messages[1:] if m["type"] == "http.response.body")


def _call(
    app: Any, path: str, *, method: str = "GET", root_path: str = "", headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": headers or [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return Reply(sent)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "c.db"), namespace="web") as c:
        register(c, registry)
        c.set("a", 1)
        c.get("a")
        c.get("nope")
        yield registry


def test_get_metrics_serves_the_exposition(registry: CollectorRegistry) -> None:
    reply = _call(metrics_app(registry), "/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    got = samples(reply.body.decode())
    assert got["stratacache_requests_total", (("namespace", "web"), ("result", "hit"), ("tier", "memory"))] == 1
    assert got["stratacache_requests_total", (("namespace", "web"), ("result", "miss"), ("tier", "sqlite"))] == 1
    assert got["stratacache_entries", (("namespace", "web"), ("tier", "memory"))] == 1


def test_head_has_headers_and_no_body(registry: CollectorRegistry) -> None:
    reply = _call(metrics_app(registry), "/metrics", method="HEAD")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.body == b""


def test_other_paths_are_404_and_other_methods_405(registry: CollectorRegistry) -> None:
    app = metrics_app(registry)
    for path in ("/", "/metrics/x", "/other", "/metricsx"):
        reply = _call(app, path)
        assert reply.status == 404, path
        assert b"stratacache" not in reply.body
    assert _call(app, "/other", method="HEAD").body == b""
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        reply = _call(app, "/metrics", method=method)
        assert reply.status == 405, method
        assert reply.headers["allow"] == "GET, HEAD"
        assert b"stratacache" not in reply.body


def test_mounted_serves_the_mount_point(registry: CollectorRegistry) -> None:
    app = metrics_app(registry)
    # Starlette >= 0.33 keeps the full path and extends root_path; older versions strip the mount prefix
    for path in ("/metrics", "/metrics/", "/"):
        reply = _call(app, path, root_path="/metrics")
        assert reply.status == 200, path
        assert b"stratacache_requests_total" in reply.body
    assert _call(app, "/metrics/other", root_path="/metrics").status == 404
    assert _call(app, "/ops/stats/", root_path="/ops/stats").status == 200  # mounted elsewhere: its mount point
    assert _call(app, "/ops/stats", root_path="/ops").status == 404
    assert _call(app, "/api/metrics", root_path="/api").status == 200  # behind a proxy prefix, not mounted


def test_custom_path_and_gzip(registry: CollectorRegistry) -> None:
    app = metrics_app(registry, path="/internal/prom")
    assert _call(app, "/metrics").status == 404
    reply = _call(app, "/internal/prom", headers=[(b"accept-encoding", b"gzip")])
    assert reply.status == 200
    assert reply.headers["content-encoding"] == "gzip"
    assert b"stratacache_requests_total" in gzip.decompress(reply.body)
    with pytest.raises(ValueError, match="start with"):
        metrics_app(registry, path="metrics")


def test_lifespan_and_websocket() -> None:
    app = metrics_app(CollectorRegistry())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent.clear()
    asyncio.run(app({"type": "websocket", "path": "/metrics"}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_default_registry() -> None:
    reply = _call(metrics_app(), "/metrics")
    assert reply.status == 200
    assert b"python_info" in reply.body  # prometheus-client's default collectors
