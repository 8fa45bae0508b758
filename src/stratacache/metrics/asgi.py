"""An ASGI app serving the Prometheus exposition (``stratacache[prometheus]``), to mount in FastAPI or Starlette.

Usage::

    from stratacache.metrics.asgi import metrics_app
    from stratacache.metrics.prometheus import register

    register(cache)
    app.mount("/metrics", metrics_app())        # FastAPI / Starlette: GET /metrics/ (Starlette redirects /metrics)

or on its own (``uvicorn module:app``): ``app = metrics_app()`` answers ``GET /metrics``.

Only ``GET`` and ``HEAD`` of the metrics path are served: mounted (a non-empty ``root_path``), the mount point
itself; on its own, ``path`` (``/metrics``). Other paths get 404, other methods 405. The exposition is
prometheus-client's (``make_asgi_app``: content negotiation, ``name[]`` filters, gzip), generated on the event
loop from each registered cache's ``stats()``, as the collector does for any scrape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, make_asgi_app

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from prometheus_client.registry import CollectorRegistry

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["metrics_app"]

_ALLOWED = (b"allow", b"GET, HEAD")


def metrics_app(registry: CollectorRegistry | None = None, *, path: str = "/metrics") -> ASGIApp:
    """An ASGI 3 app serving ``registry`` (default: prometheus-client's default registry) on ``GET``/``HEAD``.

    Args:
        registry: the registry to expose (``stratacache.metrics.prometheus.register(cache, registry)``).
        path: the path served when the app runs on its own (not mounted).

    Returns:
        ``async app(scope, receive, send)``; it also answers the ``lifespan`` protocol, so servers can run it alone.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    exposition = make_asgi_app(registry if registry is not None else REGISTRY)
    served = {path, path.rstrip("/") + "/"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await _not_http(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if not _is_metrics_path(scope, served):
            await _plain(send, 404, b"Not Found\n", head=method == "HEAD")
        elif method not in {"GET", "HEAD"}:
            await _plain(send, 405, b"Method Not Allowed: use GET or HEAD\n", extra=[_ALLOWED])
        else:
            await exposition(scope, receive, send if method == "GET" else _headers_only(send))

    return app


def _is_metrics_path(scope: Scope, served: set[str]) -> bool:
    """The request is for the metrics: the mount point itself when mounted, else ``served``."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    rest = path[len(root) :] if root and path.startswith(root) else path
    if root and rest in {"", "/"}:
        return True
    return rest in served


async def _plain(
    send: Send,
    status: int,
    body: bytes,
    *,
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _headers_only(send: Send) -> Send:
    """``send`` for a HEAD request: the response's headers, an empty body."""

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message.get("type") == "http.response.body":
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return wrapped


async def _not_http(scope: Scope, receive: Receive, send: Send) -> None:
    """``lifespan``: complete startup and shutdown (so a server can run the app alone); ``websocket``: refuse."""
    if scope.get("type") == "websocket":
        await send({"type": "websocket.close", "code": 1008})
    elif scope.get("type") == "lifespan":
        await _lifespan(receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
