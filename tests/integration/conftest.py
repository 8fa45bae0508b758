"""Fixtures for the integration tests that need real Redis or Valkey servers (see ``tests/support/servers.py``).

- ``redis_kind``: a test using ``redis_server``, ``redis_url`` or ``private_redis`` runs once per kind,
  ``redis`` and ``valkey``.
- ``redis_server`` / ``redis_url``: one server per kind shared by the whole session, started on first use. Tests
  share it, so they isolate themselves with a random key namespace and never FLUSHDB/FLUSHALL, kill, pause or
  reconfigure it. ``pytest --redis-url URL`` points ``redis_url`` of that server's kind at an existing server.
- ``private_redis``: a fresh server of the current kind for one test, which may kill, pause or restart it.
- ``redis_tls`` (session), ``sentinel_topology`` (per test) and ``redis_cluster`` (session): Redis only.
- ``tls_files`` (session): the throwaway CA and certificates every TLS server of the session uses.
- ``redis_cluster_tls`` (session): a three-master Cluster speaking TLS only (clients and cluster bus).
- ``secure_sentinel`` (session, once per variant ``auth`` and ``auth+tls``): a Sentinel topology with a password
  on the data nodes and another on the sentinels, and with ``auth+tls`` TLS only on every node. Tests may fail
  it over (``SentinelTopology.failover`` keeps its roles straight), nothing else.

A missing server binary skips the test, or fails it under ``STRATACACHE_REQUIRE_SERVERS=1`` (``servers._missing``).
Every test using one of these fixtures is marked ``redis``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import pytest
import redis
from tests.support.servers import (
    KINDS,
    RedisCluster,
    RedisServer,
    SentinelTopology,
    ServerError,
    TLSFiles,
    _missing,
    find_binary,
    make_tls_files,
    start_cluster,
    start_sentinel_topology,
    start_server,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVER_FIXTURES = frozenset(
    {
        "redis_kind",
        "redis_server",
        "redis_url",
        "private_redis",
        "redis_tls",
        "sentinel_topology",
        "redis_cluster",
        "tls_files",
        "redis_cluster_tls",
        "secure_sentinel",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


def _require(kind: str) -> None:
    if find_binary(kind) is None:
        _missing(f"{kind}-server")


class _SharedServers:
    """The session's shared servers, one per kind, each started on first use (a failed start is not retried)."""

    def __init__(self, external_url: str | None) -> None:
        self.external_url = external_url
        self._external_kind: str | None = None
        self._servers: dict[str, RedisServer] = {}
        self._failures: dict[str, ServerError] = {}

    def server(self, kind: str) -> RedisServer:
        if kind in self._failures:
            raise ServerError(f"the shared {kind} server failed to start earlier in this session") from (
                self._failures[kind]
            )
        if kind not in self._servers:
            _require(kind)
            try:
                self._servers[kind] = start_server(kind)
            except ServerError as error:
                self._failures[kind] = error
                raise
        return self._servers[kind]

    def url(self, kind: str) -> str:
        if self.external_url is not None and self.external_kind() == kind:
            return self.external_url
        return self.server(kind).url

    def external_kind(self) -> str:
        assert self.external_url is not None
        if self._external_kind is None:
            with redis.Redis.from_url(self.external_url, socket_timeout=5.0, socket_connect_timeout=5.0) as client:
                info = client.info("server")
            valkey = "valkey_version" in info or info.get("server_name") == "valkey"
            self._external_kind = "valkey" if valkey else "redis"
        return self._external_kind

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()


@pytest.fixture(scope="session")
def _shared_redis_servers(pytestconfig: pytest.Config) -> Iterator[_SharedServers]:
    shared = _SharedServers(pytestconfig.getoption("--redis-url"))
    try:
        yield shared
    finally:
        shared.stop()


@pytest.fixture(params=KINDS, ids=list(KINDS))
def redis_kind(request: pytest.FixtureRequest) -> str:
    """The server kind of this test run: "redis" or "valkey"."""
    kind: str = request.param
    return kind


@pytest.fixture
def redis_server(redis_kind: str, _shared_redis_servers: _SharedServers) -> RedisServer:
    """The session's shared server of the current kind (never kill, pause, flush or reconfigure it)."""
    return _shared_redis_servers.server(redis_kind)


@pytest.fixture
def redis_url(redis_kind: str, _shared_redis_servers: _SharedServers) -> str:
    """``redis://127.0.0.1:PORT/0`` of the shared server of the current kind (or the ``--redis-url`` server)."""
    return _shared_redis_servers.url(redis_kind)


@pytest.fixture
def private_redis(redis_kind: str) -> Iterator[RedisServer]:
    """A fresh server of the current kind for this test only; stopped at teardown whatever state it is in."""
    _require(redis_kind)
    with start_server(redis_kind) as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, for the session."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def redis_tls(tls_files: TLSFiles) -> Iterator[tuple[RedisServer, TLSFiles]]:
    """A Redis server speaking TLS only (``rediss://``, client certificates optional) and its CA and certificates."""
    _require("redis")
    with start_server("redis", tls=tls_files) as server:
        yield server, tls_files


@pytest.fixture
def sentinel_topology() -> Iterator[SentinelTopology]:
    """A Redis master, one replica and three sentinels monitoring them as ``mymaster``, for this test only."""
    _require("redis")
    with start_sentinel_topology("redis") as topology:
        yield topology


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A three-master Redis Cluster shared by the session (``migrate_slot`` may move slots between its nodes)."""
    _require("redis")
    with start_cluster("redis") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster_tls(tls_files: TLSFiles) -> Iterator[RedisCluster]:
    """A three-master Redis Cluster speaking TLS only (``rediss+cluster://``; ``cluster.tls`` holds its CA)."""
    _require("redis")
    with start_cluster("redis", tls=tls_files) as cluster:
        yield cluster


SENTINEL_VARIANTS = ("auth", "auth+tls")


@pytest.fixture(scope="session", params=SENTINEL_VARIANTS, ids=list(SENTINEL_VARIANTS))
def secure_sentinel(request: pytest.FixtureRequest, tls_files: TLSFiles) -> Iterator[SentinelTopology]:
    """A master, a replica and three sentinels, with passwords on the data nodes and on the sentinels (and TLS).

    The passwords are random per session (``topology.password``, ``topology.sentinel_password``).
    """
    _require("redis")
    tls = tls_files if request.param == "auth+tls" else None
    password, sentinel_password = f"data-{secrets.token_hex(8)}", f"sentinel-{secrets.token_hex(8)}"
    with start_sentinel_topology("redis", password=password, sentinel_password=sentinel_password, tls=tls) as topo:
        yield topo
