"""``stratacache doctor``'s rules: pure evaluation over measured facts (no server, no file)."""

from __future__ import annotations

import stat

import pytest

from stratacache.doctor import (
    CHECK_IDS,
    SEVERITIES,
    Finding,
    PathFacts,
    Report,
    check_codec_name,
    evaluate_clock_skew,
    evaluate_codec,
    evaluate_latency,
    evaluate_maxmemory_policy,
    evaluate_permissions,
    evaluate_persistence,
    evaluate_reachable,
    evaluate_topology,
    evaluate_version,
    evaluate_wal,
    parse_urls,
    redact,
    split_urls,
)
from stratacache.errors import ConfigError
from stratacache.tiers.redis_admin import ClockSample, SentinelFacts

GiB = 1 << 30


def _check(f: Finding, check_id: str, severity: str) -> None:
    assert f.id == check_id
    assert f.severity == severity, f
    assert f.id in CHECK_IDS
    assert f.severity in SEVERITIES
    assert f.title
    assert f.detail
    if severity in {"warning", "error"}:
        assert f.fix, f


# ------------------------------------------------------------------------------------------ maxmemory-policy

POLICIES = {
    # policy: severity with a memory bound and room left
    "volatile-lru": "ok",
    "volatile-lfu": "ok",
    "volatile-random": "info",
    "volatile-ttl": "info",
    "allkeys-lru": "warning",
    "allkeys-lfu": "warning",
    "allkeys-random": "warning",
    "noeviction": "warning",
}


@pytest.mark.parametrize(("policy", "severity"), POLICIES.items())
def test_every_policy_with_a_bound(policy: str, severity: str) -> None:
    f = evaluate_maxmemory_policy(policy, 4 * GiB, GiB)
    _check(f, "redis.maxmemory_policy", severity)
    assert policy in f.detail


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_allkeys_explains_what_happens_to_the_counters(policy: str) -> None:
    f = evaluate_maxmemory_policy(policy, GiB)
    assert "P{g}gens" in f.detail
    assert "miss" in f.detail
    assert "nothing stale" in f.detail
    assert "volatile-lfu" in f.fix


def test_volatile_policies_never_evict_the_counters() -> None:
    for policy in ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
        assert "never the counters" in evaluate_maxmemory_policy(policy, GiB).detail


def test_volatile_ttl_explains_the_leases() -> None:
    assert "lease" in evaluate_maxmemory_policy("volatile-ttl", GiB).detail


def test_noeviction_near_the_limit_is_an_error() -> None:
    f = evaluate_maxmemory_policy("noeviction", GiB, int(0.95 * GiB))
    _check(f, "redis.maxmemory_policy", "error")
    assert "OOM" in f.detail
    assert "95%" in f.detail
    _check(evaluate_maxmemory_policy("noeviction", GiB, int(0.5 * GiB)), "redis.maxmemory_policy", "warning")
    _check(evaluate_maxmemory_policy("noeviction", GiB, None), "redis.maxmemory_policy", "warning")


@pytest.mark.parametrize("policy", [*POLICIES, "volatile-something-new"])
def test_no_memory_bound_is_a_warning_whatever_the_policy(policy: str) -> None:
    f = evaluate_maxmemory_policy(policy, 0, 123)
    assert f.severity == "warning"
    assert "no limit" in f.detail
    assert "maxmemory" in f.fix


def test_unknown_and_unreadable_policies() -> None:
    _check(evaluate_maxmemory_policy("allkeys-new", GiB), "redis.maxmemory_policy", "warning")
    _check(evaluate_maxmemory_policy("volatile-new", GiB), "redis.maxmemory_policy", "info")
    _check(evaluate_maxmemory_policy("strange", GiB), "redis.maxmemory_policy", "warning")
    _check(evaluate_maxmemory_policy(None, GiB), "redis.maxmemory_policy", "info")
    _check(evaluate_maxmemory_policy("VOLATILE-LFU", GiB), "redis.maxmemory_policy", "ok")


# ---------------------------------------------------------------------------------------------------- version


@pytest.mark.parametrize(
    ("info", "severity", "name"),
    [
        ({"redis_version": "7.0.0"}, "ok", "Redis"),
        ({"redis_version": "7.0.15"}, "ok", "Redis"),
        ({"redis_version": "7.4.1"}, "ok", "Redis"),
        ({"redis_version": "8.0.2"}, "ok", "Redis"),
        ({"redis_version": "6.2.14"}, "error", "Redis"),
        ({"redis_version": "5.0.7"}, "error", "Redis"),
        ({"redis_version": "7.2.4", "valkey_version": "8.1.0", "server_name": "valkey"}, "ok", "Valkey"),
        ({"redis_version": "7.2.4", "valkey_version": "7.2.5"}, "ok", "Valkey"),
        ({"redis_version": "7.2.4", "server_name": "valkey"}, "ok", "Valkey"),  # Valkey 7.2 has no valkey_version
        ({"redis_version": "7.0.0", "server_name": "valkey"}, "error", "Valkey"),
        ({"redis_version": "garbage"}, "warning", "Redis"),
        ({"redis_version": "6.2.11", "dragonfly_version": "df-v1.0"}, "warning", "Dragonfly"),
    ],
)
def test_versions(info: dict[str, str], severity: str, name: str) -> None:
    f = evaluate_version(info)
    _check(f, "redis.version", severity)
    assert name in f.title


def test_version_not_readable() -> None:
    f = evaluate_version({}, "INFO server: NoPermissionError")
    _check(f, "redis.version", "info")
    assert "NoPermission" in f.detail


# ------------------------------------------------------------------------------------------------ persistence


@pytest.mark.parametrize(
    ("save", "appendonly", "appendfsync", "severity"),
    [
        ("", "no", "everysec", "ok"),
        ("3600 1 300 100 60 10000", "no", "everysec", "warning"),
        ("", "yes", "always", "info"),
        ("900 1", "yes", "always", "info"),
        ("", "yes", "everysec", "warning"),
        ("", "yes", "no", "warning"),
    ],
)
def test_persistence(save: str, appendonly: str, appendfsync: str, severity: str) -> None:
    f = evaluate_persistence(save=save, appendonly=appendonly, appendfsync=appendfsync)
    _check(f, "redis.persistence", severity)
    if severity == "warning":
        assert "invalidat" in f.detail


def test_persistence_config_refused_is_info_never_a_crash() -> None:
    f = evaluate_persistence(save=None, appendonly=None, aof_enabled=1, config_error="ResponseError: unknown command")
    _check(f, "redis.persistence", "info")
    assert "AOF on" in f.detail
    assert "unknown command" in f.detail
    f = evaluate_persistence(save=None, appendonly=None)
    _check(f, "redis.persistence", "info")
    assert "AOF unknown" in f.detail


# --------------------------------------------------------------------------------------------------- topology


def test_standalone_master_and_replica() -> None:
    _check(evaluate_topology("redis", {"role": "master", "connected_slaves": 1}), "redis.topology", "ok")
    _check(evaluate_topology("unix", {"role": "master"}), "redis.topology", "ok")
    f = evaluate_topology(
        "redis", {"role": "slave", "master_host": "10.0.0.1", "master_port": 6379, "master_link_status": "up"}
    )
    _check(f, "redis.topology", "error")
    assert "10.0.0.1:6379" in f.detail
    assert "READONLY" in f.detail
    _check(evaluate_topology("redis", {}), "redis.topology", "info")


def test_cluster_node_without_cluster_url() -> None:
    f = evaluate_topology("redis", {"role": "master", "cluster_enabled": 1})
    _check(f, "redis.topology", "error")
    assert "redis+cluster://" in f.fix


def _sentinel(address: str = "s1:26379", **kw: object) -> SentinelFacts:
    facts: dict[str, object] = {
        "master": "10.0.0.1:6379",
        "flags": ("master",),
        "quorum": 2,
        "other_sentinels": 2,
        "replicas": 1,
        "ckquorum": "OK 3 usable Sentinels. Quorum and failover authorization can be reached",
    }
    facts.update(kw)
    return SentinelFacts(address, **facts)  # type: ignore[arg-type]


def test_sentinel_healthy() -> None:
    sentinels = [_sentinel("s1:26379"), _sentinel("s2:26379"), _sentinel("s3:26379")]
    f = evaluate_topology("sentinel", {"role": "master"}, sentinels=sentinels)
    _check(f, "redis.topology", "ok")
    assert "3 of 3" in f.detail
    assert "quorum 2" in f.detail


@pytest.mark.parametrize(
    ("sentinels", "severity", "needle"),
    [
        ([_sentinel(), SentinelFacts("s2:26379", error="ConnectionError: refused")], "warning", "not answering"),
        ([_sentinel(), _sentinel("s2:26379", master="10.0.0.2:6379")], "error", "disagree"),
        ([_sentinel(flags=("master", "o_down"))], "error", "o_down"),
        ([_sentinel(ckquorum="ResponseError: NOQUORUM 1 usable Sentinels")], "error", "CKQUORUM"),
        ([_sentinel(other_sentinels=0)], "warning", "only 1 Sentinel"),
        ([_sentinel(replicas=0)], "warning", "no replica"),
        ([SentinelFacts("s1:26379", error="ConnectionError: refused")], "error", "0 of 1"),
    ],
)
def test_sentinel_problems(sentinels: list[SentinelFacts], severity: str, needle: str) -> None:
    f = evaluate_topology("sentinel", {"role": "master"}, sentinels=sentinels)
    _check(f, "redis.topology", severity)
    assert needle in f.detail


def test_sentinel_master_that_is_a_replica() -> None:
    f = evaluate_topology("sentinel", {"role": "slave"}, sentinels=[_sentinel(), _sentinel(), _sentinel()])
    _check(f, "redis.topology", "error")


def _nodes(masters: int = 3, replicas: int = 3, flags: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...], int]]:
    per = 16384 // masters
    nodes = [(f"10.0.0.{i}:7000", ("master", *flags) if i == 0 else ("master",), per) for i in range(masters)]
    nodes += [(f"10.0.1.{i}:7000", ("slave",), 0) for i in range(replicas)]
    return nodes


OK_CLUSTER = {"cluster_state": "ok", "cluster_slots_assigned": "16384", "cluster_slots_ok": "16384"}


def test_cluster_rules() -> None:
    _check(evaluate_topology("cluster", {}, cluster_info=OK_CLUSTER, cluster_nodes=_nodes()), "redis.topology", "ok")
    f = evaluate_topology("cluster", {}, cluster_info=OK_CLUSTER, cluster_nodes=_nodes(replicas=0))
    _check(f, "redis.topology", "info")
    down = {**OK_CLUSTER, "cluster_state": "fail"}
    _check(evaluate_topology("cluster", {}, cluster_info=down, cluster_nodes=_nodes()), "redis.topology", "error")
    partial = {**OK_CLUSTER, "cluster_slots_assigned": "16000", "cluster_slots_ok": "16000"}
    f = evaluate_topology("cluster", {}, cluster_info=partial, cluster_nodes=_nodes())
    _check(f, "redis.topology", "error")
    assert "16000 of 16384" in f.detail
    pfail = {**OK_CLUSTER, "cluster_slots_pfail": "100"}
    _check(evaluate_topology("cluster", {}, cluster_info=pfail, cluster_nodes=_nodes()), "redis.topology", "warning")
    f = evaluate_topology("cluster", {}, cluster_info=OK_CLUSTER, cluster_nodes=_nodes(flags=("fail?",)))
    _check(f, "redis.topology", "warning")
    assert "10.0.0.0:7000" in f.detail
    f = evaluate_topology("cluster", {}, cluster_error="ResponseError: This instance has cluster support disabled")
    _check(f, "redis.topology", "error")


# ------------------------------------------------------------------------------------------------- clock skew


@pytest.mark.parametrize(
    ("skew", "rtt", "severity"),
    [
        (0.0, 0.0001, "ok"),
        (0.049, 0.0, "ok"),
        (-0.049, 0.0, "ok"),
        (0.051, 0.0, "warning"),
        (-0.051, 0.0, "warning"),
        (0.07, 0.05, "ok"),  # within half the round trip of 50 ms: not proven
        (0.99, 0.0, "warning"),
        (1.01, 0.0, "error"),
        (-5.0, 0.001, "error"),
        (1.05, 0.2, "warning"),  # 1.05 - 0.1 = 0.95: a warning, not proven above a second
    ],
)
def test_clock_skew(skew: float, rtt: float, severity: str) -> None:
    f = evaluate_clock_skew(skew, rtt)
    _check(f, "clock.skew", severity)
    assert ("behind" if skew < 0 else "ahead of") in f.detail


def test_clock_skew_not_measured() -> None:
    _check(evaluate_clock_skew(None, error="TIME: NoPermissionError"), "clock.skew", "info")


def test_clock_sample_takes_the_middle_of_the_round_trip() -> None:
    sample = ClockSample(local_before=100.0, server=100.15, local_after=100.1)
    assert sample.rtt == pytest.approx(0.1)
    assert sample.skew == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------------- latency


def test_redis_latency() -> None:
    fast = [0.0002] * 20
    _check(evaluate_latency(fast, tier="redis", timeout=0.1), "tier.latency", "ok")
    f = evaluate_latency([0.004] * 20, tier="redis", timeout=0.1)
    _check(f, "tier.latency", "warning")
    assert "p50 4.0 ms" in f.detail
    assert "p99 4.0 ms" in f.detail
    _check(evaluate_latency([0.0002] * 19 + [0.08], tier="redis", timeout=0.1), "tier.latency", "warning")
    _check(evaluate_latency([0.2] * 20, tier="redis", timeout=0.1), "tier.latency", "error")
    _check(evaluate_latency([], tier="redis", timeout=0.1), "tier.latency", "info")


def test_sqlite_latency() -> None:
    _check(evaluate_latency([0.00001] * 20, tier="sqlite"), "tier.latency", "ok")
    _check(evaluate_latency([0.01] * 20, tier="sqlite"), "tier.latency", "warning")


# ------------------------------------------------------------------------------------------------ reachability


def test_reachable() -> None:
    f = evaluate_reachable(None, address="h:6379", connect_seconds=0.002, timeout=0.1, connect_timeout=0.25)
    _check(f, "redis.reachable", "ok")
    assert "2.0 ms" in f.detail


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        ("ConnectionError: Error 111 connecting to h:6379. Connection refused.", "firewall"),
        ("AuthenticationError: invalid username-password pair", "password"),
        ("ConnectionError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "ssl_ca_certs"),
        ("MasterNotFoundError: No master found for 'mymaster'", "service name"),
        ("NoPermissionError: this user has no permissions to run the 'ping' command", "ACL"),
    ],
)
def test_unreachable_fix_matches_the_error(error: str, needle: str) -> None:
    f = evaluate_reachable(error, address="h:6379", timeout=0.1, connect_timeout=0.25)
    _check(f, "redis.reachable", "error")
    assert needle in f.fix
    assert error in f.detail


# -------------------------------------------------------------------------------------------------- permissions

UID = 1000


def _file(path: str, mode: int, *, uid: int = UID, writable: bool = True) -> PathFacts:
    return PathFacts(path, exists=True, mode=mode, uid=uid, gid=100, owner="app", group="app", writable=writable)


DIR = _file("/var/cache/app", 0o700)


@pytest.mark.parametrize(
    ("mode", "severity"),
    [
        (0o600, "ok"),
        (0o400, "ok"),
        (0o640, "ok"),
        (0o644, "info"),  # world-readable
        (0o660, "warning"),  # group-writable
        (0o664, "warning"),
        (0o666, "error"),  # world-writable
        (0o602, "error"),
        (0o777, "error"),
    ],
)
def test_file_modes(mode: int, severity: str) -> None:
    f = evaluate_permissions(_file("/var/cache/app/c.db", mode), DIR, uid=UID)
    _check(f, "sqlite.permissions", severity)
    assert f"mode {mode:04o}" in f.detail


@pytest.mark.parametrize(
    ("mode", "severity"),
    [
        (0o700, "ok"),
        (0o755, "ok"),
        (0o770, "warning"),
        (0o775, "warning"),
        (0o777, "error"),
        (0o757, "error"),
        (0o777 | stat.S_ISVTX, "warning"),  # /tmp
    ],
)
def test_directory_modes(mode: int, severity: str) -> None:
    f = evaluate_permissions(_file("/c/c.db", 0o600), _file("/c", mode), uid=UID)
    _check(f, "sqlite.permissions", severity)


def test_world_writable_sidecar_is_an_error_and_foreign_owner_a_warning() -> None:
    db = _file("/c/c.db", 0o600)
    wal = _file("/c/c.db-wal", 0o666)
    _check(evaluate_permissions(db, DIR, [wal], uid=UID), "sqlite.permissions", "error")
    shm = _file("/c/c.db-shm", 0o600, uid=0)
    f = evaluate_permissions(db, DIR, [shm, PathFacts("/c/c.db-wal", exists=False)], uid=UID)
    _check(f, "sqlite.permissions", "warning")
    assert "c.db-shm" in f.detail


def test_missing_file_and_directory() -> None:
    absent = PathFacts("/c/c.db", exists=False)
    _check(evaluate_permissions(absent, DIR, uid=UID), "sqlite.permissions", "info")
    readonly_dir = _file("/c", 0o755, uid=0, writable=False)
    _check(evaluate_permissions(absent, readonly_dir, uid=UID), "sqlite.permissions", "error")
    no_dir = PathFacts("/c", exists=False)
    _check(evaluate_permissions(absent, no_dir, uid=UID, creatable=True), "sqlite.permissions", "info")
    _check(evaluate_permissions(absent, no_dir, uid=UID, creatable=False), "sqlite.permissions", "error")


def test_file_not_writable_by_the_doctor() -> None:
    f = evaluate_permissions(_file("/c/c.db", 0o600, uid=0, writable=False), DIR, uid=UID)
    _check(f, "sqlite.permissions", "warning")


# ------------------------------------------------------------------------------------------------------ WAL

HEADER_WAL = b"SQLite format 3\x00" + bytes([16, 0, 2, 2]) + bytes(80)
HEADER_ROLLBACK = b"SQLite format 3\x00" + bytes([16, 0, 1, 1]) + bytes(80)


@pytest.mark.parametrize(
    ("kw", "severity"),
    [
        ({"header": HEADER_WAL, "schema": 2}, "ok"),
        ({"header": HEADER_WAL, "schema": 1}, "info"),
        ({"header": HEADER_WAL, "schema": 3}, "error"),
        ({"header": HEADER_WAL, "schema": None}, "warning"),
        ({"header": HEADER_ROLLBACK, "schema": 2}, "warning"),
        ({"header": b"not a database at all" * 10, "schema": None}, "error"),
        ({"header": b"", "schema": None}, "info"),
        ({"header": None, "schema": None}, "warning"),
        ({"header": HEADER_WAL, "schema": None, "schema_error": "OperationalError: locked"}, "warning"),
        ({"header": HEADER_WAL, "schema": 2, "fstype": "nfs4"}, "error"),
        ({"header": HEADER_WAL, "schema": 2, "fstype": "fuse.sshfs"}, "error"),
        ({"header": HEADER_WAL, "schema": 2, "fstype": "ext4"}, "ok"),
        ({"header": HEADER_WAL, "schema": 2, "fstype": "tmpfs"}, "ok"),
    ],
)
def test_wal(kw: dict[str, object], severity: str) -> None:
    f = evaluate_wal(path="/c/c.db", exists=True, expected_schema=2, **kw)  # type: ignore[arg-type]
    _check(f, "sqlite.wal", severity)


def test_wal_missing_file_and_network_fs_before_creation() -> None:
    f = evaluate_wal(path="/c/c.db", exists=False, header=None, schema=None, expected_schema=2)
    _check(f, "sqlite.wal", "info")
    f = evaluate_wal(path="/c/c.db", exists=False, header=None, schema=None, fstype="cifs", expected_schema=2)
    _check(f, "sqlite.wal", "error")
    assert "cifs" in f.detail


# ----------------------------------------------------------------------------------------------------- codec


def test_default_codecs_are_safe() -> None:
    for codec in (None, "msgpack", "json", "msgpack+zstd", "JSON+ZSTD"):
        (f,) = evaluate_codec(codec, {})
        _check(f, "codec.pickle_secret", "ok")


@pytest.mark.parametrize("codec", ["pickle", "pickle+zstd", " Pickle "])
@pytest.mark.parametrize(
    ("secret", "severity"),
    [
        (None, "error"),
        ("", "error"),
        ("short", "error"),
        ("x" * 15, "error"),
        ("x" * 16, "warning"),
        ("x" * 31, "warning"),
        ("x" * 32, "ok"),
        ("k2:" + "n" * 32 + ",k1:" + "o" * 32, "ok"),
        ("k2:" + "n" * 32 + ",k1:" + "o" * 20, "warning"),
        ("k2:" + "n" * 32 + ",k1", "error"),
    ],
)
def test_pickle_secrets(codec: str, secret: str | None, severity: str) -> None:
    env = {} if secret is None else {"STRATACACHE_SIGNING_KEY": secret}
    verdict, note = evaluate_codec(codec, env)
    _check(verdict, "codec.pickle_secret", severity)
    _check(note, "codec.pickle_secret", "info")
    assert "msgpack" in note.title
    if secret:
        assert secret not in verdict.detail  # the key itself is never shown


def test_unknown_codec_names() -> None:
    for bad in ("yaml", "pickle+lz4", "msgpack+zstd+zstd", ""):
        with pytest.raises(ConfigError):
            check_codec_name(bad)


# ---------------------------------------------------------------------------------------------- URLs, report


def test_split_urls() -> None:
    assert split_urls(["memory://,redis://h:6379/0"]) == ["memory://", "redis://h:6379/0"]
    assert split_urls(["sqlite:///a.db redis+cluster://h1:7000,h2:7001"]) == [
        "sqlite:///a.db",
        "redis+cluster://h1:7000,h2:7001",
    ]
    assert split_urls(["redis://a:1/0", "  redis://b:2/0 ,"]) == ["redis://a:1/0", "redis://b:2/0"]


def test_parse_urls_refuses_bad_input_without_showing_the_password() -> None:
    with pytest.raises(ConfigError, match="unknown tier scheme"):
        parse_urls(["mysql://h/db"])
    with pytest.raises(ConfigError) as info:
        parse_urls(["redis://u:s3cret@h:6379/99"])
    assert "s3cret" not in str(info.value)
    with pytest.raises(ConfigError):
        parse_urls(["redis://h:6379/0?nonsense=1"])
    with pytest.raises(ConfigError):
        parse_urls(["not a url"])


def test_redact() -> None:
    assert redact("redis://u:pw@h:6379/0") == "redis://u:***@h:6379/0"
    assert redact("redis+sentinel://h:1/m/0?sentinel_password=x&timeout=1") == (
        "redis+sentinel://h:1/m/0?sentinel_password=***&timeout=1"
    )
    assert redact("sqlite:///var/cache/a.db") == "sqlite:///var/cache/a.db"


def test_report() -> None:
    ok = Finding("tier.latency", "ok", "t", "d")
    warn = Finding("clock.skew", "warning", "t", "d", "f")
    err = Finding("sqlite.wal", "error", "t", "d", "f", tier="sqlite:///a.db")
    assert Report((ok, warn)).ok
    assert Report((ok, warn)).worst == "warning"
    assert not Report((ok, err)).ok
    doc = Report((ok, err)).to_dict()
    assert doc["ok"] is False
    assert doc["findings"][1] == {
        "id": "sqlite.wal",
        "severity": "error",
        "title": "t",
        "detail": "d",
        "fix": "f",
        "tier": "sqlite:///a.db",
    }
    assert Report(()).worst == "ok"


def test_a_backplane_that_cannot_subscribe_is_an_error_whatever_the_topology() -> None:
    for kind, kw in (
        ("redis", {}),
        ("cluster", {"cluster_info": OK_CLUSTER, "cluster_nodes": _nodes()}),
        ("sentinel", {"sentinels": [_sentinel(), _sentinel(), _sentinel()]}),
    ):
        f = evaluate_topology(kind, {"role": "master"}, backplane_error="ResponseError: unknown command", **kw)  # type: ignore[arg-type]
        _check(f, "redis.topology", "error")
        assert "unknown command" in f.detail
        assert "backplane_url" in f.fix
