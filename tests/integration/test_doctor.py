"""``stratacache doctor`` against real servers and files: exit codes, findings, JSON, bad input, no side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import typer.testing as typer_testing
from tests.support.servers import free_port, start_server

import stratacache as sc
from stratacache.doctor import CHECK_IDS

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.servers import RedisCluster, RedisServer, SentinelTopology

REDIS_CHECKS = (
    "redis.reachable",
    "redis.version",
    "redis.maxmemory_policy",
    "redis.persistence",
    "redis.topology",
    "tier.latency",
    "clock.skew",
)


def _invoke(*args: str, env: dict[str, str] | None = None) -> typer_testing.Result:  # type: ignore[name-defined]
    from stratacache.cli import make_app

    return typer_testing.CliRunner().invoke(make_app(), ["doctor", *args], env=env)


def _no_traceback(result: Any) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr


def _doc(*args: str, env: dict[str, str] | None = None, code: int = 0) -> dict[str, Any]:
    result = _invoke(*args, "--json", env=env)
    _no_traceback(result)
    assert result.exit_code == code, (result.stdout, result.stderr)
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["ok"] is (code == 0 or (code == 3 and not any(f["severity"] == "error" for f in doc["findings"])))
    for f in doc["findings"]:
        assert f["id"] in CHECK_IDS
        assert f["severity"] in {"ok", "info", "warning", "error"}
        assert set(f) == {"id", "severity", "title", "detail", "fix", "tier"}
    return doc


def _one(doc: dict[str, Any], check: str) -> dict[str, Any]:
    found = [f for f in doc["findings"] if f["id"] == check]
    assert len(found) == 1, (check, doc)
    return found[0]


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRATACACHE_URL", "STRATACACHE_CODEC", "STRATACACHE_SIGNING_KEY", "STRATACACHE_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


# -------------------------------------------------------------------------------------------------------- Redis


def test_healthy_redis(redis_url: str, redis_kind: str) -> None:
    doc = _doc("--url", redis_url)
    ids = [f["id"] for f in doc["findings"]]
    assert ids == [*REDIS_CHECKS, "codec.pickle_secret"]
    assert {f["tier"] for f in doc["findings"][:-1]} == {redis_url}
    assert _one(doc, "redis.reachable")["severity"] == "ok"
    version = _one(doc, "redis.version")
    assert version["severity"] == "ok"
    assert version["title"].startswith("Valkey" if redis_kind == "valkey" else "Redis")
    assert _one(doc, "redis.persistence")["severity"] == "ok"  # the harness runs without persistence
    assert _one(doc, "redis.topology")["severity"] == "ok"
    assert _one(doc, "tier.latency")["severity"] in {"ok", "warning"}  # a loaded CI host may be slow
    assert "p50" in _one(doc, "tier.latency")["detail"]
    assert _one(doc, "clock.skew")["severity"] == "ok"  # same host, same clock
    assert _one(doc, "codec.pickle_secret")["severity"] == "ok"


def test_table_output(redis_url: str) -> None:
    result = _invoke("--url", redis_url)
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    for check in REDIS_CHECKS:
        assert check in result.stdout
    assert "OK:" in result.stdout


def test_allkeys_policy_on_a_private_server(private_redis: RedisServer) -> None:
    with private_redis.client() as client:
        client.config_set("maxmemory", "100mb")
        client.config_set("maxmemory-policy", "allkeys-lru")
    doc = _doc("--url", private_redis.url)  # a warning: exit 0
    policy = _one(doc, "redis.maxmemory_policy")
    assert policy["severity"] == "warning"
    assert "allkeys-lru" in policy["detail"]
    assert "P{g}gens" in policy["detail"]
    assert "volatile-lfu" in policy["fix"]
    with private_redis.client() as client:
        client.config_set("maxmemory-policy", "volatile-lfu")
    assert _one(_doc("--url", private_redis.url), "redis.maxmemory_policy")["severity"] == "ok"


def test_noeviction_at_the_limit_is_an_error(private_redis: RedisServer) -> None:
    with private_redis.client() as client:
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(used))
        client.config_set("maxmemory-policy", "noeviction")
    doc = _doc("--url", private_redis.url, code=4)
    policy = _one(doc, "redis.maxmemory_policy")
    assert policy["severity"] == "error"
    assert "OOM" in policy["detail"]


def test_persistence_on_is_reported(private_redis: RedisServer) -> None:
    with private_redis.client() as client:
        client.config_set("save", "3600 1")
    persistence = _one(_doc("--url", private_redis.url), "redis.persistence")
    assert persistence["severity"] == "warning"
    assert "save '3600 1'" in persistence["detail"]


def test_config_renamed_is_info_not_a_crash(redis_kind: str) -> None:
    with start_server(redis_kind, args=["--rename-command", "CONFIG", ""]) as server:
        doc = _doc("--url", server.url)
    persistence = _one(doc, "redis.persistence")
    assert persistence["severity"] == "info"
    assert "could not be read" in persistence["title"]
    assert _one(doc, "redis.maxmemory_policy")["detail"].startswith("maxmemory-policy noeviction")  # from INFO


def test_connected_to_a_replica(private_redis: RedisServer) -> None:
    args = ["--replicaof", private_redis.host, str(private_redis.port)]
    with start_server(private_redis.kind, args=args) as replica:
        doc = _doc("--url", replica.url, code=4)
    topology = _one(doc, "redis.topology")
    assert topology["severity"] == "error"
    assert f"replica of {private_redis.host}:{private_redis.port}" in topology["detail"]
    assert "redis+sentinel://" in topology["fix"]


def test_unreachable_redis_exits_3_quickly_with_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    start = time.monotonic()
    result = _invoke("--url", url)
    elapsed = time.monotonic() - start
    _no_traceback(result)
    assert result.exit_code == 3, result.output
    assert elapsed < 2.0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == f"error: {url} could not be reached"
    assert "redis.reachable" in result.stdout
    doc = _doc("--url", url, code=3)
    reach = _one(doc, "redis.reachable")
    assert reach["severity"] == "error"
    assert "refused" in reach["detail"].lower()
    assert [f["id"] for f in doc["findings"]] == ["redis.reachable", "codec.pickle_secret"]


def test_blackholed_redis_is_bounded_by_the_connect_timeout() -> None:
    # a TCP listener that never answers: the connect succeeds, PING waits out the tier's timeout
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0?timeout=0.2"
        start = time.monotonic()
        result = _invoke("--url", url)
        elapsed = time.monotonic() - start
    _no_traceback(result)
    assert result.exit_code == 3
    assert elapsed < 2.0


def test_wrong_password(private_redis: RedisServer) -> None:
    with private_redis.client() as client:
        client.config_set("requirepass", "right-password")
    url = private_redis.url.replace("redis://", "redis://default:wrong-password@")
    result = _invoke("--url", url, "--json")
    _no_traceback(result)
    assert result.exit_code == 3
    assert "wrong-password" not in result.stdout + result.stderr
    reach = _one(json.loads(result.stdout), "redis.reachable")
    assert "password" in reach["fix"]


def test_sentinel_topology(sentinel_topology: SentinelTopology) -> None:
    doc = _doc("--url", sentinel_topology.url)
    topology = _one(doc, "redis.topology")
    assert topology["severity"] == "ok", topology
    assert "3 of 3 listed Sentinels answered" in topology["detail"]
    assert f"{sentinel_topology.master.host}:{sentinel_topology.master.port}" in topology["detail"]
    assert "quorum 2" in topology["detail"]
    assert _one(doc, "redis.reachable")["severity"] == "ok"


def test_sentinel_with_one_sentinel_down(sentinel_topology: SentinelTopology) -> None:
    hosts = ",".join(f"{h}:{p}" for h, p in sentinel_topology.sentinels)
    url = f"redis+sentinel://{hosts},127.0.0.1:{free_port()}/{sentinel_topology.service_name}/0"
    topology = _one(_doc("--url", url), "redis.topology")
    assert topology["severity"] == "warning"
    assert "3 of 4 listed Sentinels answered" in topology["detail"]


def test_cluster_topology(redis_cluster: RedisCluster) -> None:
    redis_cluster.wait_ok()
    doc = _doc("--url", redis_cluster.url)
    topology = _one(doc, "redis.topology")
    assert topology["severity"] in {"ok", "info"}, topology  # info: a cluster without replicas
    assert "cluster_state ok, 16384 of 16384 slots assigned" in topology["detail"]


def test_redis_url_pointing_at_a_cluster_node(redis_cluster: RedisCluster) -> None:
    host, port = redis_cluster.startup_nodes[0]
    topology = _one(_doc("--url", f"redis://{host}:{port}/0", code=4), "redis.topology")
    assert topology["severity"] == "error"
    assert "redis+cluster://" in topology["fix"]


# ------------------------------------------------------------------------------------------------------- SQLite


def _make_cache_file(path: Path) -> None:
    cache = sc.open(f"sqlite://{path}")
    try:
        cache.set("k", 1)
    finally:
        cache.close()


def test_healthy_sqlite(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    path = directory / "app.db"
    _make_cache_file(path)
    path.chmod(0o600)
    before = sorted(p.name for p in directory.iterdir())
    mtime = path.stat().st_mtime_ns
    doc = _doc("--url", f"sqlite://{path}")
    assert [f["id"] for f in doc["findings"]] == [
        "sqlite.permissions",
        "sqlite.wal",
        "tier.latency",
        "codec.pickle_secret",
    ]
    assert _one(doc, "sqlite.permissions")["severity"] == "ok"
    wal = _one(doc, "sqlite.wal")
    assert wal["severity"] == "ok"
    assert "WAL, layout version 2" in wal["detail"]
    assert _one(doc, "tier.latency")["severity"] == "ok"
    # doctor created nothing (no -wal/-shm left behind) and wrote nothing
    assert sorted(p.name for p in directory.iterdir()) == before
    assert path.stat().st_mtime_ns == mtime


def test_sqlite_while_a_cache_has_it_open(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    path.touch(mode=0o600)
    cache = sc.open(f"sqlite://{path}")
    try:
        cache.set("k", 1)
        doc = _doc("--url", f"sqlite://{path}")
        assert _one(doc, "sqlite.wal")["severity"] == "ok"
    finally:
        cache.close()


def test_world_writable_sqlite_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "open.db"
    _make_cache_file(path)
    path.chmod(0o666)
    doc = _doc("--url", f"sqlite://{path}", code=4)
    permissions = _one(doc, "sqlite.permissions")
    assert permissions["severity"] == "error"
    assert "world-writable" in permissions["detail"]
    assert f"chmod 600 {path}" in permissions["fix"]


def test_sqlite_file_not_created_yet(tmp_path: Path) -> None:
    path = tmp_path / "later" / "app.db"
    doc = _doc("--url", f"sqlite://{path}")
    assert _one(doc, "sqlite.wal")["severity"] == "info"
    assert not (tmp_path / "later").exists()  # doctor creates nothing


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello " * 100)
    path.chmod(0o600)
    assert _one(_doc("--url", f"sqlite://{path}", code=4), "sqlite.wal")["severity"] == "error"


# -------------------------------------------------------------------------------------------------------- codec


def test_pickle_without_secret_exits_4(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    doc = _doc("--url", f"sqlite://{path}", "--codec", "pickle", code=4)
    verdict, note = (f for f in doc["findings"] if f["id"] == "codec.pickle_secret")
    assert verdict["severity"] == "error"
    assert "STRATACACHE_SIGNING_KEY" in verdict["fix"]
    assert note["severity"] == "info"


def test_pickle_codec_from_the_environment_with_a_key() -> None:
    env = {"STRATACACHE_CODEC": "pickle+zstd", "STRATACACHE_SIGNING_KEY": "k" * 40}
    doc = _doc(env=env)
    assert [f["severity"] for f in doc["findings"]] == ["ok", "info"]
    doc = _doc(env={**env, "STRATACACHE_SIGNING_KEY": "too-short"}, code=4)
    assert doc["findings"][0]["severity"] == "error"


def test_urls_from_the_environment(tmp_path: Path, redis_url: str) -> None:
    env = {"STRATACACHE_URL": f"memory://,sqlite://{tmp_path / 'e.db'} {redis_url}"}
    doc = _doc(env=env)
    tiers = {f["tier"] for f in doc["findings"]}
    assert tiers == {f"sqlite://{tmp_path / 'e.db'}", redis_url, None}


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", "mysql://h/db"], "unknown tier scheme"),
        (["--url", "redis://h:notaport/0"], "bad host:port"),
        (["--url", "redis://h:6379/0?nonsense=1"], "unknown parameter"),
        (["--url", "no-scheme-here"], "has no scheme"),
        (["--url", "redis://u:topsecret@h:6379/99"], "database"),
        (["--codec", "yaml"], "unknown codec"),
        ([], "nothing to check"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = _invoke(*args)
    _no_traceback(result)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "topsecret" not in result.stderr


def test_unknown_option() -> None:
    result = _invoke("--frobnicate")
    _no_traceback(result)
    assert result.exit_code == 2
    assert "--frobnicate" in result.stderr


# ---------------------------------------------------------------------------------------------------- subprocess


def test_as_a_subprocess(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "open.db"
    _make_cache_file(path)
    path.chmod(0o666)
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("STRATACACHE_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "stratacache.cli", "doctor", "--url", redis_url, "--url", f"sqlite://{path}", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert run.returncode == 4, run.stderr
    doc = json.loads(run.stdout)
    assert doc["ok"] is False
    assert _one(doc, "sqlite.permissions")["severity"] == "error"
    assert _one(doc, "redis.reachable")["severity"] == "ok"
    bad = subprocess.run(
        [sys.executable, "-m", "stratacache.cli", "doctor", "--url", "mysql://x"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("error: unknown tier scheme")


def test_acl_without_the_backplane_channel(private_redis: RedisServer) -> None:
    with private_redis.client() as client:
        client.execute_command(
            *[
                "ACL",
                "SETUSER",
                "app",
                "on",
                ">app-pw",
                "resetkeys",
                "~sc:*",
                "resetchannels",
                "-@all",
                "+ping",
                "+info",
                "+time",
                "+client|setname",
                "+subscribe",
            ]
        )
    url = private_redis.url.replace("redis://", "redis://app:app-pw@")
    doc = _doc("--url", url, code=4)
    topology = _one(doc, "redis.topology")
    assert topology["severity"] == "error"
    assert "SUBSCRIBE" in topology["detail"]
    assert _one(doc, "redis.persistence")["severity"] == "info"  # CONFIG GET refused by the ACL: no crash
    assert "app-pw" not in json.dumps(doc)
