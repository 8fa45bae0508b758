"""The test-server harness itself (``tests/support/servers.py``): real servers start, fail and heal as promised.

No test waits on a fixed timer: every wait is a socket timeout or a bounded poll inside the harness.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING

import pytest
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry
from tests.support import servers
from tests.support.servers import find_binary, find_cli

if TYPE_CHECKING:
    from tests.support.servers import RedisCluster, RedisServer, SentinelTopology, TLSFiles

MIN_VERSION = {"redis": (7, 0), "valkey": (7, 2)}


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _key(label: str) -> str:
    return f"harness:{label}:{uuid.uuid4().hex}"


# ---------------------------------------------------------------------------------------------------- lookup


def test_find_binary_and_cli_know_both_kinds() -> None:
    for kind in servers.KINDS:
        for path in (find_binary(kind), find_cli(kind)):
            assert path is None or os.access(path, os.X_OK)
    with pytest.raises(ValueError, match="kind"):
        find_binary("memcached")


def test_missing_skips_or_fails_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATACACHE_REQUIRE_SERVERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="thing-server not available"):
        servers._missing("thing-server")
    monkeypatch.setenv("STRATACACHE_REQUIRE_SERVERS", "1")
    with pytest.raises(pytest.fail.Exception, match=r"thing-server is required \(STRATACACHE_REQUIRE_SERVERS=1\)"):
        servers._missing("thing-server")


# ---------------------------------------------------------------------------------------------------- one server


def test_shared_server_answers_ping(redis_server: RedisServer, redis_url: str, redis_kind: str) -> None:
    assert redis_server.kind == redis_kind
    assert redis_server.is_running()
    assert redis_server.host == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert _version(redis_server.version) >= MIN_VERSION[redis_kind]
    with redis_server.client() as client:
        assert client.ping()
        info = client.info("server")
        config = client.config_get("*")
    assert ("valkey_version" in info) == (redis_kind == "valkey")
    assert config["bind"] == "127.0.0.1"
    assert config["save"] == ""
    assert config["appendonly"] == "no"
    key = _key("shared")
    with redis.Redis.from_url(redis_url, socket_timeout=5.0) as client:
        assert client.set(key, b"v", ex=60)
        assert client.get(key) == b"v"
        client.delete(key)


def test_kill_and_restart_keep_the_port(private_redis: RedisServer) -> None:
    port, key = private_redis.port, _key("restart")
    with private_redis.client() as client:
        client.set(key, b"before the crash")
        private_redis.kill()
        assert not private_redis.is_running()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        private_redis.restart()
        assert private_redis.is_running()
        assert private_redis.port == port
        assert client.ping()  # the same client reconnects to the same address
        assert client.get(key) is None  # nothing is persisted


def test_pause_times_out_and_resume_heals(private_redis: RedisServer) -> None:
    with private_redis.client(socket_timeout=0.2) as client:
        assert client.ping()
        private_redis.pause()
        try:
            assert private_redis.is_running()
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError):
                client.ping()
            assert time.monotonic() - started >= 0.15
        finally:
            private_redis.resume()
        assert client.ping()


def test_stop_ends_a_paused_server_and_is_idempotent(private_redis: RedisServer) -> None:
    private_redis.pause()
    started = time.monotonic()
    private_redis.stop()
    assert time.monotonic() - started < 5.0
    assert not private_redis.is_running()
    private_redis.stop()
    with private_redis.client(socket_connect_timeout=0.5) as client, pytest.raises(redis.ConnectionError):
        client.ping()


def test_a_server_that_cannot_start_raises_with_its_log(redis_kind: str) -> None:
    if find_binary(redis_kind) is None:
        servers._missing(f"{redis_kind}-server")
    with pytest.raises(servers.ServerError, match=r"(?s)exited with code.*no-such-directive"):
        servers.start_server(redis_kind, args=["--no-such-directive", "1"])


# ---------------------------------------------------------------------------------------------------- TLS


def test_tls_server_accepts_the_ca_and_refuses_plaintext(redis_tls: tuple[RedisServer, TLSFiles]) -> None:
    server, files = redis_tls
    assert server.url == f"rediss://127.0.0.1:{server.port}/0"
    with redis.Redis(
        host=server.host, port=server.port, ssl=True, ssl_ca_certs=str(files.ca_cert), socket_timeout=5.0
    ) as client:
        assert client.ping()
    with redis.Redis.from_url(server.url, ssl_ca_certs=str(files.ca_cert), socket_timeout=5.0) as client:
        assert client.ping()
    with server.client(**files.client_kwargs(client_cert=True)) as client:  # mutual TLS
        assert client.ping()
    with (
        redis.Redis(host=server.host, port=server.port, socket_timeout=5.0, retry=_no_retry()) as plaintext,
        pytest.raises(redis.ConnectionError),
    ):
        plaintext.ping()
    with (
        redis.Redis(host=server.host, port=server.port, ssl=True, socket_timeout=5.0, retry=_no_retry()) as unknown_ca,
        pytest.raises(redis.ConnectionError),
    ):
        unknown_ca.ping()


# ---------------------------------------------------------------------------------------------------- Sentinel


@pytest.mark.slow
def test_sentinel_topology_resolves_the_master_and_fails_over(sentinel_topology: SentinelTopology) -> None:
    topology = sentinel_topology
    assert topology.service_name == "mymaster"
    assert len(topology.sentinels) == 3
    hosts = ",".join(f"127.0.0.1:{port}" for _, port in topology.sentinels)
    assert topology.url == f"redis+sentinel://{hosts}/mymaster/0"
    old_master, old_replica = topology.master.port, topology.replica.port
    key = _key("sentinel")

    sentinel = redis.sentinel.Sentinel(topology.sentinels, socket_timeout=2.0)
    try:
        assert sentinel.discover_master("mymaster") == ("127.0.0.1", old_master)
        with sentinel.master_for("mymaster", socket_timeout=2.0) as master:
            master.set(key, b"before")
            assert master.wait(1, 5000) == 1  # the replica has it before the failover

        topology.failover()

        assert (topology.master.port, topology.replica.port) == (old_replica, old_master)
        assert sentinel.discover_master("mymaster") == ("127.0.0.1", old_replica)
        with sentinel.master_for("mymaster", socket_timeout=2.0) as master:
            assert master.get(key) == b"before"
            master.set(key, b"after")
        with topology.master.client() as direct:
            assert direct.info("replication")["role"] == "master"
        with topology.replica.client() as direct:
            assert direct.info("replication")["role"] == "slave"
    finally:
        for client in sentinel.sentinels:
            client.close()


# ---------------------------------------------------------------------------------------------------- Cluster


@pytest.mark.slow
def test_cluster_routes_keys_and_migrates_a_slot_with_its_keys(redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    assert len(cluster.nodes) == 3
    assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes) + "/0"
    prefix = _key("cluster")
    spread = [f"{prefix}:{i}" for i in range(30)]
    tagged = [f"{{{prefix}}}:{i}" for i in range(250)]  # one slot, more keys than one MIGRATE batch

    client = cluster.client()
    try:
        for key in [*spread, *tagged]:
            client.set(key, key.encode(), ex=300)
        owners = {cluster.node_for_slot(cluster.keyslot(key)).port for key in spread}
        assert len(owners) >= 2
        assert [client.get(key) for key in spread] == [key.encode() for key in spread]

        slot = cluster.keyslot(tagged[0])
        source = cluster.node_for_slot(slot)
        target = next(node for node in cluster.nodes if node.port != source.port)
        with source.client() as direct:  # the session's cluster is shared: other tests may own keys in this slot
            before = direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
        assert before >= len(tagged)
        cluster.migrate_slot(slot, target)

        for node in cluster.nodes:
            assert cluster.node_for_slot(slot, view=node).port == target.port
        with target.client() as direct:
            assert direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == before
        with source.client() as direct:
            assert direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert [client.get(key) for key in tagged] == [key.encode() for key in tagged]  # follows MOVED
        with cluster.client() as fresh:
            assert fresh.get(tagged[-1]) == tagged[-1].encode()
    finally:
        client.close()
