"""The Redis tier on a Cluster over TLS, and on Sentinels that require a password (and speak TLS themselves).

Real servers (``tests/support/servers.py``): a three-master Cluster speaking TLS only, on its client ports and its
cluster bus, with a throwaway CA; a master, a replica and three sentinels with a password on the data nodes and
another on the sentinels, once over plain TCP and once over TLS everywhere. Misconfigurations (no CA, a wrong
password) follow the contract of ``docs/redis.md``: reads are counted misses, writes and invalidations raise a
plain ``TierError`` every time, and the breaker stays closed (a misconfiguration is not an outage).
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

import pytest

import stratacache as sc
from stratacache import AsyncCache, Cache, MemoryTier, RedisTier, TierError, TierUnavailableError

if TYPE_CHECKING:
    from tests.support.servers import RedisCluster, SentinelTopology

pytestmark = pytest.mark.redis


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


def _opts(**kw: Any) -> dict[str, Any]:
    return {"prefix": _prefix(), "timeout": 2.0, "connect_timeout": 2.0, "heartbeat": 0.5} | kw


def _query(**params: object) -> str:
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


def _wait_backplane_up(cache: Cache, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while cache.stats()["redis"].backplane != "up":
        assert time.monotonic() < deadline, "the backplane never subscribed"
        threading.Event().wait(0.02)


def _assert_misconfigured(cache: Cache) -> None:
    """The contract for a misconfiguration: reads miss, writes raise plain TierError each time, breaker closed."""
    assert cache.get("k") is None  # a read never raises
    for _ in range(2):
        with pytest.raises(TierError) as info:
            cache.set("k", 1)
        assert not isinstance(info.value, TierUnavailableError), info.value
        assert "check the URL's credentials and TLS settings" in str(info.value)
    with pytest.raises(TierError):
        cache.invalidate_tags("t")
    stats = cache.stats()["redis"]
    assert stats.errors >= 1
    assert stats.breaker == "closed"


# ---------------------------------------------------------------------------------------------- Cluster + TLS


def _cluster_url(cluster: RedisCluster, **params: object) -> str:
    assert cluster.url.startswith("rediss+cluster://")
    return f"{cluster.url}?{_query(**params)}"


def test_cluster_tls_url_batches_span_slots_and_tags(redis_cluster_tls: RedisCluster) -> None:
    cluster = redis_cluster_tls
    assert cluster.tls is not None
    url = _cluster_url(cluster, ssl_ca_certs=cluster.tls.ca_cert, prefix=_prefix(), timeout=2, connect_timeout=2)
    with sc.open("memory://", url) as cache:
        values = {f"user:{i}": i for i in range(200)}  # spread over every node
        cache.set_many(values, tags=["users"])
        cache.set("order:1", "o1", tags=["orders"])
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get_many(values) == values
        assert cache.stats()["redis"].hits == 200
        cache.invalidate_tags("users")
        assert cache.get_many(values) == {}
        assert cache.get("order:1") == "o1"  # another tag's entry survives
        assert cache.get_or_load("loaded", lambda: 7) == 7
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get("loaded") == 7
        assert cache.stats()["redis"].errors == 0


def test_cluster_tls_async_facade(redis_cluster_tls: RedisCluster) -> None:
    cluster = redis_cluster_tls
    assert cluster.tls is not None
    tier = RedisTier.from_url(_cluster_url(cluster, ssl_ca_certs=cluster.tls.ca_cert))
    tier = RedisTier(tier.url, ssl_ca_certs=tier.ssl_ca_certs, **_opts())

    async def run() -> dict[str, int]:
        async with AsyncCache(tier) as cache:
            await cache.set_many({f"a{i}": i for i in range(50)}, tags=["a"])
            assert await cache.get_or_load("x", lambda: asyncio.sleep(0, 1)) == 1
            got = await cache.get_many([f"a{i}" for i in range(50)])
            await cache.invalidate_tags("a")
            assert await cache.get_many([f"a{i}" for i in range(50)]) == {}
            return got

    assert asyncio.run(run()) == {f"a{i}": i for i in range(50)}


def test_cluster_tls_backplane_keeps_another_l1_coherent(redis_cluster_tls: RedisCluster) -> None:
    cluster = redis_cluster_tls
    assert cluster.tls is not None
    opts = _opts(ssl_ca_certs=str(cluster.tls.ca_cert))
    with (
        Cache(MemoryTier(), RedisTier(cluster.url, **opts)) as writer,
        Cache(MemoryTier(), RedisTier(cluster.url, **opts)) as reader,
    ):
        _wait_backplane_up(reader)
        writer.set("k", "v1")
        assert reader.get("k") == "v1"  # now in the reader's L1
        writer.set("k", "v2")
        deadline = time.monotonic() + 5
        while reader.get("k") != "v2":  # the subscription, over TLS, drops the reader's copy
            assert time.monotonic() < deadline, "the reader's L1 never heard of the write"
            threading.Event().wait(0.01)
        assert reader.stats()["redis"].backplane_messages >= 1


def test_cluster_tls_verifies_by_default(redis_cluster_tls: RedisCluster) -> None:
    # No ssl_ca_certs: the system's CAs do not know the test CA, so the first use fails verification, which is a
    # misconfiguration (TierError every time, breaker closed), not an outage.
    with Cache(RedisTier(redis_cluster_tls.url, **_opts(backplane=False))) as cache:
        _assert_misconfigured(cache)


# ------------------------------------------------------------------------------- Sentinel with auth (and TLS)


def _sentinel_url(topo: SentinelTopology, *, master_password: str | None = None, **params: object) -> str:
    url = topo.url
    password = topo.password if master_password is None else master_password
    scheme, _, rest = url.partition("://")
    if topo.tls is not None:
        params.setdefault("ssl_ca_certs", topo.tls.ca_cert)
    return f"{scheme}://:{urllib.parse.quote(password or '', safe='')}@{rest}?{_query(**params)}"


def _sentinel_cache(topo: SentinelTopology, **params: object) -> Cache:
    options = {"prefix": _prefix(), "timeout": 2, "connect_timeout": 2, "heartbeat": 0.5} | params
    return sc.open("memory://", _sentinel_url(topo, **options))


def test_sentinel_with_passwords_reads_writes_and_invalidates(secure_sentinel: SentinelTopology) -> None:
    topo = secure_sentinel
    with _sentinel_cache(topo, sentinel_password=topo.sentinel_password) as cache:
        tier = cache._lower[0].spec  # type: ignore[attr-defined]
        assert tier.tls is (topo.tls is not None)
        assert topo.sentinel_password not in repr(tier)
        assert topo.password not in repr(tier)
        _wait_backplane_up(cache)  # the backplane found the master through the password-protected sentinels too
        cache.set_many({f"k{i}": i for i in range(20)}, tags=["t"])
        cache._l1.clear()  # type: ignore[union-attr]
        assert cache.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
        cache.invalidate_tags("t")
        assert cache.get("k1") is None
        stats = cache.stats()["redis"]
        assert (stats.errors, stats.breaker, stats.backplane) == (0, "closed", "up")
        key = cache._lower[0]._keys(cache._key("k1"))[0]  # type: ignore[attr-defined]
        with topo.master.client() as master:
            assert master.exists(key)  # written on the master the sentinels named


def test_sentinel_with_passwords_async_facade(secure_sentinel: SentinelTopology) -> None:
    topo = secure_sentinel
    tier = RedisTier.from_url(
        _sentinel_url(topo, sentinel_password=topo.sentinel_password, prefix=_prefix(), timeout=2, connect_timeout=2)
    )

    async def run() -> Any:
        async with AsyncCache(MemoryTier(), tier) as cache:
            await cache.set("a", {"async": True})
            cache._l1.clear()  # type: ignore[union-attr]
            return await cache.get("a")

    assert asyncio.run(run()) == {"async": True}


@pytest.mark.parametrize("sentinel_password", [None, "wrong"], ids=["no-sentinel-password", "wrong"])
def test_sentinel_refusing_the_credentials_is_a_misconfiguration(
    secure_sentinel: SentinelTopology, sentinel_password: str | None
) -> None:
    # retries=0: each call asks the Sentinels once (a retry would only repeat the same refusal, over TLS slowly)
    with _sentinel_cache(secure_sentinel, sentinel_password=sentinel_password, backplane=False, retries=0) as cache:
        _assert_misconfigured(cache)


def test_master_refusing_the_credentials_is_a_misconfiguration(secure_sentinel: SentinelTopology) -> None:
    topo = secure_sentinel
    url = _sentinel_url(
        topo,
        master_password="wrong",
        sentinel_password=topo.sentinel_password,
        prefix=_prefix(),
        backplane=False,
        retries=0,
    )
    with sc.open(url) as cache:
        _assert_misconfigured(cache)


@pytest.mark.parametrize("secure_sentinel", ["auth+tls"], indirect=True)  # nothing to verify over plain TCP
def test_sentinel_tls_verifies_by_default(secure_sentinel: SentinelTopology) -> None:
    topo = secure_sentinel
    assert topo.tls is not None
    url = (
        topo.url
        + "?"
        + _query(sentinel_password=topo.sentinel_password, prefix=_prefix(), backplane="false", retries=0)
    )
    with Cache(RedisTier.from_url(url)) as cache:  # no ssl_ca_certs: the sentinels' certificate fails verification
        _assert_misconfigured(cache)


def test_sentinel_with_passwords_survives_a_failover(secure_sentinel: SentinelTopology) -> None:
    topo = secure_sentinel
    opts = {"timeout": 0.5, "connect_timeout": 0.5, "breaker_open_for": 0.2}
    with _sentinel_cache(topo, sentinel_password=topo.sentinel_password, **opts) as cache:
        cache.set("k", "before")
        topo.failover()
        deadline = time.monotonic() + 30
        while True:  # recovers on the new master, found through the same password-protected sentinels
            try:
                cache.set("k2", "after")
                cache._l1.clear()  # type: ignore[union-attr]
                if cache.get("k2") == "after":
                    break
            except TierError:
                pass
            assert time.monotonic() < deadline, "no recovery on the new master"
            threading.Event().wait(0.05)
        key = cache._lower[0]._keys(cache._key("k2"))[0]  # type: ignore[attr-defined]
        with topo.master.client() as master:
            assert master.exists(key)
