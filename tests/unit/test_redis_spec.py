"""RedisTier: every URL form parses to the right topology; bad URLs and options fail at the call site."""

from __future__ import annotations

import pytest

from stratacache import ConfigError, RedisTier


@pytest.mark.parametrize(
    ("url", "kind", "hosts", "db"),
    [
        ("redis://127.0.0.1:6379/0", "redis", (("127.0.0.1", 6379),), 0),
        ("redis://cache.internal/3", "redis", (("cache.internal", 6379),), 3),
        ("rediss://h:6380/1", "redis", (("h", 6380),), 1),
        ("redis+sentinel://s1:26379,s2:26380/mymaster/2", "sentinel", (("s1", 26379), ("s2", 26380)), 2),
        ("redis+sentinel://s1/mymaster", "sentinel", (("s1", 26379),), 0),
        ("redis+cluster://a:7000,b:7001,c:7002", "cluster", (("a", 7000), ("b", 7001), ("c", 7002)), 0),
        ("redis://[::1]:6379/0", "redis", (("::1", 6379),), 0),
        ("rediss+sentinel://s1/mymaster/1", "sentinel", (("s1", 26379),), 1),
        ("rediss+cluster://a:7000,b:7001", "cluster", (("a", 7000), ("b", 7001)), 0),
    ],
)
def test_url_forms(url: str, kind: str, hosts: tuple[tuple[str, int], ...], db: int) -> None:
    spec = RedisTier(url)
    assert (spec.kind, spec.hosts, spec.db) == (kind, hosts, db)


def test_sentinel_service_and_unix_socket() -> None:
    assert RedisTier("redis+sentinel://s1:26379/mymaster/0").service == "mymaster"
    unix = RedisTier.from_url("unix:///run/redis/redis.sock?db=4&timeout=0.2")
    assert (unix.kind, unix.socket_path, unix.db, unix.timeout) == ("unix", "/run/redis/redis.sock", 4, 0.2)


def test_credentials_from_url_are_unquoted_and_hidden_from_repr() -> None:
    spec = RedisTier("redis://app%40svc:p%3Ass@h:6379/0")
    assert (spec.username, spec.password) == ("app@svc", "p:ss")
    assert "p:ss" not in repr(spec)


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("STRATACACHE_REDIS_USERNAME", "cache")
    spec = RedisTier("redis://h:6379/0")
    assert (spec.username, spec.password) == ("cache", "s3cret")
    assert RedisTier("redis://u:inurl@h:6379/0").password == "inurl"  # the URL wins


def test_tls_options_and_connection_kwargs() -> None:
    spec = RedisTier.from_url("rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required&timeout=0.05")
    kw = spec.connection_kwargs()
    assert spec.tls
    assert kw["ssl"] is True
    assert kw["ssl_ca_certs"] == "/ca.pem"
    assert kw["ssl_check_hostname"] is True
    assert kw["socket_timeout"] == 0.05
    assert "ssl" not in RedisTier("redis://h/0").connection_kwargs()


def test_budgets_default_to_tens_of_milliseconds() -> None:
    spec = RedisTier("redis://h/0")
    assert spec.timeout <= 0.1
    assert spec.connect_timeout <= 0.5
    assert spec.retries == 1


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("http://h/0", {}),
        ("redis://h/16", {}),
        ("redis://h/x", {}),
        ("redis://h/0/1", {}),
        ("redis://h:0/0", {}),
        ("redis://h:70000/0", {}),
        ("redis://a:1,b:2/0", {}),
        ("redis+cluster://a:1/2", {}),
        ("redis+sentinel://s:26379", {}),
        ("unix://", {}),
        ("redis://h/0", {"timeout": 0}),
        ("redis://h/0", {"timeout": float("nan")}),
        ("redis://h/0", {"timeout": True}),
        ("redis://h/0", {"retries": 11}),
        ("redis://h/0", {"retries": -1}),
        ("redis://h/0", {"prefix": "a{b"}),
        ("redis://h/0", {"prefix": ""}),
        ("redis://h/0", {"backplane": "yes"}),
        ("redis://h/0", {"max_value_bytes": "lots"}),
        ("rediss://h/0", {"ssl_cert_reqs": "maybe"}),
        ("redis://h/0", {"backplane_url": "http://h/0"}),
        ("redis://h/0", {"backplane_url": 5}),
        (42, {}),
    ],
)
def test_bad_specs_raise_config_error(url: object, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RedisTier(url, **kwargs)  # type: ignore[arg-type]


def test_unknown_url_parameter_is_named() -> None:
    with pytest.raises(ConfigError, match="colour"):
        RedisTier.from_url("redis://h/0?colour=blue")


def test_backplane_url_takes_the_data_spec_options() -> None:
    spec = RedisTier("redis://data:6379/0", backplane_url="redis://pubsub:6380/0", timeout=0.3, prefix="app:")
    bp = spec.backplane_spec()
    assert (bp.hosts, bp.timeout, bp.prefix) == ((("pubsub", 6380),), 0.3, "app:")
    assert RedisTier("redis://h/0").backplane_spec().hosts == (("h", 6379),)


def test_tls_schemes_for_every_topology() -> None:
    assert RedisTier("rediss+cluster://a:7000").tls
    assert RedisTier("rediss+sentinel://s:26379/m").tls
    assert not RedisTier("redis+cluster://a:7000").tls


def test_repr_masks_passwords_in_every_url() -> None:
    spec = RedisTier("redis://app:hunter2@h:6379/0", backplane_url="redis://bp:s3cret@h2:6379/0", timeout=0.2)
    text = repr(spec)
    assert "hunter2" not in text
    assert "s3cret" not in text
    assert "app:***@h:6379" in text
    assert "timeout=0.2" in text


def test_strict_reads_is_on_by_default_and_settable() -> None:
    assert RedisTier("redis://h/0").strict_reads is True
    assert RedisTier.from_url("redis://h/0?strict_reads=false").strict_reads is False
    with pytest.raises(ConfigError):
        RedisTier("redis://h/0", strict_reads="no")  # type: ignore[arg-type]


def test_sentinel_credentials_and_tls_go_to_the_sentinels_only() -> None:
    spec = RedisTier.from_url(
        "rediss+sentinel://m:master-pw@s1:26379,s2:26379/mymaster/0"
        "?sentinel_username=sen&sentinel_password=p%40ss&ssl_ca_certs=/ca.pem&timeout=0.2"
    )
    sentinel = spec.sentinel_kwargs()
    assert (sentinel["username"], sentinel["password"]) == ("sen", "p@ss")
    assert (sentinel["ssl"], sentinel["ssl_ca_certs"], sentinel["ssl_check_hostname"]) == (True, "/ca.pem", True)
    assert (sentinel["socket_timeout"], sentinel["socket_connect_timeout"]) == (0.2, spec.connect_timeout)
    master = spec.connection_kwargs()
    assert (master["username"], master["password"]) == ("m", "master-pw")


def test_sentinel_tls_follows_the_scheme_unless_set() -> None:
    assert "ssl" not in RedisTier("redis+sentinel://s1/m/0").sentinel_kwargs()
    assert "password" not in RedisTier("redis+sentinel://s1/m/0").sentinel_kwargs()
    assert RedisTier("rediss+sentinel://s1/m/0").sentinel_kwargs()["ssl"] is True
    plain_sentinels = RedisTier.from_url("rediss+sentinel://s1/m/0?sentinel_tls=false")
    assert plain_sentinels.sentinel_tls is False
    assert "ssl" not in plain_sentinels.sentinel_kwargs()
    assert plain_sentinels.connection_kwargs()["ssl"] is True  # the master still speaks TLS
    tls_sentinels = RedisTier("redis+sentinel://s1/m/0", sentinel_tls=True, ssl_cert_reqs="optional")
    assert tls_sentinels.sentinel_kwargs()["ssl_check_hostname"] is False
    assert "ssl" not in tls_sentinels.connection_kwargs()


def test_sentinel_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_REDIS_SENTINEL_PASSWORD", "env-pw")
    monkeypatch.setenv("STRATACACHE_REDIS_SENTINEL_USERNAME", "env-user")
    spec = RedisTier("redis+sentinel://s1/m/0")
    assert (spec.sentinel_username, spec.sentinel_password) == ("env-user", "env-pw")
    assert RedisTier("redis+sentinel://s1/m/0", sentinel_password="given").sentinel_password == "given"
    assert RedisTier("redis://h/0").sentinel_password is None  # not a Sentinel URL: the variable is not used
    assert "env-pw" not in repr(spec)


def test_sentinel_password_is_masked_everywhere() -> None:
    spec = RedisTier("redis+sentinel://s1/m/0", sentinel_password="hunter2", sentinel_username="sen")
    text = repr(spec)
    assert "hunter2" not in text
    assert "sentinel_password='***'" in text
    assert "sentinel_username='sen'" in text
    in_query = RedisTier("redis://h/0", backplane_url="redis+sentinel://s1/m/0?sentinel_password=hunter2&timeout=1")
    assert "hunter2" not in repr(in_query)
    assert "sentinel_password=***&timeout=1" in repr(in_query)
    with pytest.raises(ConfigError) as info:
        RedisTier("redis+sentinel://s1/m/0", sentinel_password=["hunter2"])  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("redis://h/0", {"sentinel_password": "x"}),
        ("redis+cluster://a:7000", {"sentinel_tls": True}),
        ("redis+sentinel://s1/m/0", {"sentinel_tls": "yes"}),
        ("redis+sentinel://s1/m/0", {"sentinel_password": ""}),
        ("redis+sentinel://s1/m/0", {"sentinel_username": 5}),
    ],
)
def test_bad_sentinel_options_raise_config_error(url: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RedisTier(url, **kwargs)  # type: ignore[arg-type]


def test_sentinel_options_follow_a_sentinel_backplane_only() -> None:
    spec = RedisTier("redis://proxy:6379/0", backplane_url="redis+sentinel://s1/m/0", sentinel_password="pw")
    assert spec.backplane_spec().sentinel_kwargs()["password"] == "pw"
    data = RedisTier("redis+sentinel://s1/m/0", backplane_url="redis://bp:6379/0", sentinel_password="pw")
    assert data.backplane_spec().sentinel_password is None  # dropped for a backplane that is not a Sentinel URL


def test_options_in_a_url_given_to_the_constructor_are_refused_not_ignored() -> None:
    with pytest.raises(ConfigError, match=r"query string \(ssl_ca_certs, timeout\).*from_url"):
        RedisTier("rediss://h:6380/0?ssl_ca_certs=/x&timeout=5")
    assert RedisTier.from_url("rediss://h:6380/0?ssl_ca_certs=/x&timeout=5").timeout == 5


def test_the_database_can_be_a_query_parameter_but_not_twice() -> None:
    assert RedisTier("redis://h:6379?db=3").db == 3
    assert RedisTier.from_url("redis://h:6379?db=3").db == 3
    with pytest.raises(ConfigError, match="database is given twice"):
        RedisTier("redis://h:6379/2?db=3")


def test_backplane_url_options_win_over_the_specs_own() -> None:
    spec = RedisTier("redis://data:6379/0", timeout=0.2, backplane_url="redis://bp:6379/0?timeout=0.5&heartbeat=2")
    bp = spec.backplane_spec()
    assert (bp.hosts, bp.timeout, bp.heartbeat) == (spec.backplane_spec().hosts, 0.5, 2.0)
    assert bp.max_connections == spec.max_connections
    with pytest.raises(ConfigError, match="unknown parameter"):
        RedisTier("redis://data:6379/0", backplane_url="redis://bp:6379/0?nope=1")


def test_url_errors_never_show_the_password() -> None:
    from stratacache.core.config import parse_tier_url

    with pytest.raises(ConfigError) as info:
        parse_tier_url("redis://u:hunter2@h:6379/0?timeout=1&timeout=2")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
    with pytest.raises(ConfigError) as info:
        RedisTier("redis://u:hunter2@h:6379/0?password=hunter3&timeout=1")
    assert "hunter2" not in str(info.value)
    assert "hunter3" not in str(info.value)
